"""Read a CSV exactly as written: every cell as text, the header checked before the body.

The ledger types values by its own rules (:mod:`assay.ledger.parse`), so nothing here guesses:
``0042`` stays ``0042``, an 18-digit id stays its digits, ``NA`` stays the two letters, an
empty cell is the empty string. Before the body is parsed the header is read on its own, so a
file that cannot be a ledger batch is refused cheaply and in one sentence:

* too wide (more than :data:`MAX_COLUMNS` columns, or a header line over
  :data:`MAX_HEADER_BYTES`) — refused before the body is read;
* a duplicate or empty column name;
* bytes that are not UTF-8 (the line is named);
* ragged rows (every one is listed with its line number).

The delimiter is detected from the header: comma, semicolon (European Excel), tab or pipe,
whichever splits it into the most columns. Files written with a semicolon or a tab usually
carry decimal commas (``0,42``); :class:`CsvText` says which delimiter was found so the row
checker can read such numbers and the receipt can say so.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv

from assay._validation import AssayInputError

#: A batch has at most this many columns (a HubSpot "all properties" export has ~500).
MAX_COLUMNS = 2_000
#: …and a header line of at most this many bytes.
MAX_HEADER_BYTES = 256 * 1024
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_BOM = b"\xef\xbb\xbf"


class CsvShapeError(AssayInputError):
    """The CSV cannot be read as a table; ``lines`` lists (line number, reason) when known."""

    def __init__(self, message: str, lines: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.lines = lines or []


@dataclass(frozen=True)
class CsvText:
    """A CSV's cells as text columns and the delimiter it was written with."""

    table: pa.Table
    delimiter: str

    @property
    def decimal_comma(self) -> bool:
        """Semicolon- and tab-separated files are the ones written with decimal commas."""
        return self.delimiter in ";\t"

    def describe(self) -> str | None:
        """Say how the file was read, for the receipt (None for a plain comma-separated one)."""
        if self.delimiter == ",":
            return None
        return f"read as {DELIMITERS[self.delimiter]}-separated" + (
            " (decimal commas such as 0,42 read as 0.42)" if self.decimal_comma else ""
        )


def _header(data: bytes, what: str) -> tuple[list[str], str]:
    """Return the header's column names as written and the delimiter.

    A header no batch can have is refused (names are compared with surrounding spaces trimmed).
    """
    end = data.find(b"\n", 0, MAX_HEADER_BYTES + 1)
    if end < 0 and len(data) > MAX_HEADER_BYTES:
        raise CsvShapeError(
            f"{what}: the header line is longer than {MAX_HEADER_BYTES // 1024} KiB; a ledger "
            f"batch has at most {MAX_COLUMNS:,} columns — export only the columns you need"
        )
    line = data[: len(data) if end < 0 else end].rstrip(b"\r")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CsvShapeError(_not_utf8(what, 1, error)) from None
    counts = {d: text.count(d) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    if counts[delimiter] + 1 > MAX_COLUMNS:
        raise CsvShapeError(
            f"{what}: the header has {counts[delimiter] + 1:,} columns; a ledger batch has at "
            f"most {MAX_COLUMNS:,} — export only the columns you need"
        )
    names = next(csv.reader([text], delimiter=delimiter), [])
    if not names or names == [""]:
        raise CsvShapeError(f"{what}: the first line is empty; a CSV starts with a header row")
    blank = [i + 1 for i, name in enumerate(names) if not name.strip()]
    if blank:
        raise CsvShapeError(
            f"{what}: column {blank[0]} of the header has no name; name every column"
        )
    seen: dict[str, int] = {}
    for position, name in enumerate((name.strip() for name in names), start=1):
        if name in seen:
            raise CsvShapeError(
                f"{what}: column {name!r} appears twice in the header (columns {seen[name]} and "
                f"{position}); rename or drop one"
            )
        seen[name] = position
    return names, delimiter


def _not_utf8(what: str, line: int, error: UnicodeDecodeError) -> str:
    return (
        f"{what}: line {line} is not UTF-8 (byte 0x{error.object[error.start]:02x}); save the "
        "file as UTF-8 (in Excel: CSV UTF-8)"
    )


def _first_bad_utf8(data: bytes, what: str) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return _not_utf8(what, data.count(b"\n", 0, error.start) + 1, error)
    return f"{what}: not readable as UTF-8 text"


def read_csv_text(data: bytes, *, what: str = "the CSV") -> CsvText:
    """Every cell of ``data`` as a string column, or a :class:`CsvShapeError` saying why not.

    ``what`` names the input in messages (a path, or "the body").
    """
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if not data or data.isspace():  # (not data.strip(): that copies the whole file)
        raise CsvShapeError(f"{what} is empty; a CSV starts with a header row")
    names, delimiter = _header(data, what)
    ragged: list[tuple[int, str]] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        ragged.append(
            (
                -1 if row.number is None else row.number,
                f"has {row.actual_columns} fields; the header has {row.expected_columns}",
            )
        )
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(block_size=1 << 24, use_threads=False),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, invalid_row_handler=on_invalid_row, newlines_in_values=True
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                auto_dict_encode=False,
            ),
        )
    except pa.ArrowInvalid as error:
        if "UTF8" in str(error) or "utf8" in str(error).lower():
            raise CsvShapeError(_first_bad_utf8(data, what)) from None
        raise CsvShapeError(f"{what} is not a readable CSV: {str(error).splitlines()[0]}") from None
    if ragged:
        first, reason = ragged[0]
        more = f" (and {len(ragged) - 1} more such lines)" if len(ragged) > 1 else ""
        raise CsvShapeError(
            f"{what}: line {first} {reason}{more}; quote cells that contain the delimiter "
            f"{delimiter!r}",
            ragged,
        )
    table = table.rename_columns([name.strip() for name in names])
    return CsvText(table, delimiter)
