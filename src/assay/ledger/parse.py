"""Turn an input file or frame into validated, typed Arrow columns, collecting every bad row.

Nothing here writes. Each check returns a mask of offending rows; the caller gathers every
:class:`BadRow` (row number, column, value, reason) before deciding, so a batch is judged
whole. Row numbers are 1-based data rows (a CSV's header is not counted).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay._validation import AssayInputError
from assay.ledger.columns import INT64, MAX_TEXT
from assay.ledger.csvtext import read_csv_text

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

UTC_MICROS = pa.timestamp("us", tz="UTC")
_ZONED = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
_NAIVE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_NUMBER = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
_DECIMAL_COMMA = r"^\s*[+-]?\d*,\d+\s*$"
_INTEGER = r"^\s*[+-]?\d+\s*$"
#: Shapes of dates other tools write, and the --date-format that reads them.
_DATE_SHAPES = (
    (r"^\d{1,2}\.\d{1,2}\.\d{4}", "%d.%m.%Y %H:%M"),
    (r"^\d{1,2}/\d{1,2}/\d{4}", "%m/%d/%Y %H:%M (US) or %d/%m/%Y %H:%M"),
)


@dataclass(frozen=True)
class BadRow:
    """One reason a row cannot be ingested."""

    row: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        """Return "row R, column 'C', value 'V': reason"."""
        return f"row {self.row}, column {self.column!r}, value {self.value!r}: {self.reason}"


@dataclass(frozen=True)
class Source:
    """An input as an Arrow table, with the sha256 of its bytes (or of its Arrow IPC form).

    ``decimal_comma``: numbers may be written ``0,42`` (a semicolon- or tab-separated CSV);
    ``notes``: what the reader decided, in sentences for the receipt.
    """

    table: pa.Table
    sha256: str
    name: str
    decimal_comma: bool = False
    notes: tuple[str, ...] = ()
    #: Every cell is text as written (a CSV file); typed values otherwise.
    text_cells: bool = False


def read_source(data: Any) -> Source:
    """Read CSV / Parquet paths, Arrow tables, pandas or polars frames into Arrow.

    CSV cells are read as text, exactly as written (:mod:`assay.ledger.csvtext`), so that every
    value is typed by the ledger's rules and reported as written.
    """
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise AssayInputError(f"{path} does not exist or is not a file; check the path")
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if path.suffix.lower() in {".parquet", ".pq"}:
            try:
                return Source(pq.read_table(pa.BufferReader(raw)), digest, str(path))
            except (pa.ArrowInvalid, OSError) as error:
                raise AssayInputError(f"{path} is not a readable Parquet file: {error}") from None
        csv = read_csv_text(raw, what=str(path))
        del raw
        note = csv.describe()
        return Source(
            csv.table, digest, str(path), csv.decimal_comma, (note,) if note else (),
            text_cells=True,
        )  # fmt: skip
    if isinstance(data, pa.Table):
        table = data
    elif hasattr(data, "to_arrow"):  # polars
        table = data.to_arrow()
    elif hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas
        try:
            table = pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
            raise AssayInputError(
                f"the frame cannot be read: {error}; columns must hold text, numbers or timestamps"
            ) from None
    else:
        raise AssayInputError(
            f"cannot ingest a {type(data).__name__}; pass a CSV or Parquet path, an Arrow "
            "table, or a pandas or polars frame"
        )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Source(table, hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest(), "<frame>")


def apply_mapping(table: pa.Table, mapping: Mapping[str, str]) -> pa.Table:
    """Rename source columns to ledger names (``{"hs_object_id": "entity_id"}``)."""
    missing = [source for source in mapping if source not in table.column_names]
    if missing:
        raise AssayInputError(
            f"the mapping names columns the input lacks: {missing}; the input has "
            f"{table.column_names}"
        )
    return table.rename_columns([mapping.get(name, name) for name in table.column_names])


class RowChecker:
    """Collects bad rows while columns are parsed, and notes on what it read (for the receipt).

    ``decimal_comma`` reads ``0,42`` as 0.42; ``date_format`` (strptime, e.g.
    ``%d.%m.%Y %H:%M``) reads timestamps that are not ISO 8601.
    """

    def __init__(
        self, table: pa.Table, *, decimal_comma: bool = False, date_format: str | None = None
    ) -> None:
        self.table = table
        self.decimal_comma = decimal_comma
        self.date_format = date_format
        self.bad: list[BadRow] = []
        self.notes: list[str] = []
        #: Sentences that explain many bad rows at once (shown ahead of the row list).
        self.hints: list[str] = []

    @property
    def n_rows(self) -> int:
        """Rows in the input table."""
        return int(self.table.num_rows)

    def flag(self, mask: np.ndarray, column: str, values: pa.Array, reason: str) -> None:
        """Record a :class:`BadRow` (1-based) for every row ``mask`` marks, showing its value."""
        for index in np.flatnonzero(mask):
            raw = values[int(index)].as_py()
            self.bad.append(BadRow(int(index) + 1, column, "" if raw is None else str(raw), reason))

    def column(self, name: str, default: Any = None) -> pa.Array | None:
        """Return the named column, else ``default`` repeated, else None."""
        if name in self.table.column_names:
            return self.table[name].combine_chunks()
        if default is None:
            return None
        return pa.repeat(pa.scalar(default), self.n_rows)

    def require(self, name: str, default: Any = None) -> pa.Array:
        """Return the named column (or ``default`` repeated); refuse the input without it."""
        values = self.column(name, default)
        if values is None:
            raise AssayInputError(
                f"required column {name!r} is missing (columns: {self.table.column_names}); "
                f"map a source column to it (--map SOURCE={name}) or give a default "
                f"(--default {name}=VALUE)"
            )
        return values

    def text(self, name: str, *, required: bool, default: Any = None) -> pa.Array:
        """Read a text column; with ``required`` every value must be non-empty."""
        values = self.require(name, default) if required else self.column(name, default)
        if values is None:
            return pa.nulls(self.n_rows, pa.string())
        if pa.types.is_floating(values.type):
            raise AssayInputError(
                f"column {name!r} holds floating-point numbers; text is kept as written, so "
                f"read it as text (e.g. pandas dtype=str) — 1e18 and 1e18+1 are the same float"
            )
        values = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
        long = np.asarray(pc.fill_null(pc.greater(pc.utf8_length(values), MAX_TEXT), False))
        if long.any():
            start = pc.utf8_slice_codeunits(values, 0, 40)
            self.flag(long, name, start, f"longer than {MAX_TEXT} characters")
        if required:
            empty = pc.fill_null(pc.equal(pc.utf8_length(values), 0), True)
            self.flag(np.asarray(empty), name, values, "empty; every row needs a value")
        else:
            values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        return values

    def number(self, name: str, values: pa.Array, *, what: str = "a number") -> pa.Array:
        """Parse to finite float64; anything else is flagged (nulls pass through).

        Typed inputs must be integer or floating columns (NaN and inf are flagged); text must
        be a decimal number — with a decimal comma (``0,42``) only when the file is one that
        writes them (semicolon- or tab-separated).
        """
        if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
            parsed = pc.cast(values, pa.float64())
            finite = np.isfinite(np.asarray(parsed.to_numpy(zero_copy_only=False), np.float64))
            self.flag(
                ~finite & np.asarray(pc.is_valid(parsed)), name, parsed,
                f"not {what} (NaN and infinity are not values; leave the cell empty)",
            )  # fmt: skip
            return pc.if_else(pa.array(finite), parsed, pa.scalar(None, pa.float64()))
        text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
        if self.decimal_comma:
            comma = pc.fill_null(pc.match_substring_regex(text, _DECIMAL_COMMA), False)
            text = pc.if_else(comma, pc.replace_substring(text, ",", "."), text)
        ok = pc.fill_null(pc.match_substring_regex(text, _NUMBER), True)
        bad = ~np.asarray(ok)
        if bad.any():  # say which bad values are decimal commas (in a comma-separated file)
            comma_written = self._matches(text, _DECIMAL_COMMA)
            self.flag(bad & ~comma_written, name, text, f"not {what}")
            self.flag(
                bad & comma_written, name, text,
                "a decimal comma in a comma-separated file; write 0.42, or save the file "
                "semicolon-separated",
            )  # fmt: skip
        parsed = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
        huge = ~np.isfinite(np.asarray(parsed.to_numpy(zero_copy_only=False), np.float64))
        huge &= np.asarray(pc.is_valid(parsed))  # 1e999 is written as a number but is inf
        self.flag(huge, name, text, f"not {what} (too large to be finite)")
        return pc.if_else(pa.array(huge), pa.scalar(None, pa.float64()), parsed)

    def integer(self, name: str, values: pa.Array, bounds: tuple[int, int], what: str) -> pa.Array:
        """Parse to int64 inside ``bounds`` (inclusive); anything else is flagged.

        Whole-valued decimals (``90.0``, as pandas writes them) are read exactly below 2^53;
        larger values must be written as digits and are read without passing through floats.
        """
        low, high = bounds
        if pa.types.is_integer(values.type):
            exact = pc.cast(values, pa.int64())
        else:
            text = (
                pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
                if not pa.types.is_floating(values.type)
                else None
            )
            number = self.number(name, values, what=what)
            whole = np.asarray(number.to_numpy(zero_copy_only=False), np.float64)
            fits = np.abs(whole) <= 2.0**53
            is_whole = np.isnan(whole) | ((whole == np.round(whole)) & fits)
            digits = (
                np.asarray(pc.fill_null(pc.match_substring_regex(text, _INTEGER), False))
                if text is not None
                else np.zeros(len(values), bool)
            )
            self.flag(~is_whole & ~digits, name, values, f"not {what}")
            from_float = pa.array(np.where(is_whole & ~np.isnan(whole), whole, 0).astype(np.int64))
            exact = pc.if_else(
                pa.array(is_whole & ~np.isnan(whole)), from_float, pa.scalar(None, pa.int64())
            )
            if digits.any() and text is not None:
                exact = pc.if_else(pa.array(digits), self._exact_int(name, text, digits), exact)
        array = np.asarray(pc.fill_null(exact, low).to_numpy(zero_copy_only=False), np.int64)
        outside = ((array < low) | (array > high)) & np.asarray(pc.is_valid(exact))
        self.flag(outside, name, values, f"must be {what} from {low:,} to {high:,}")
        return pc.if_else(pa.array(outside), pa.scalar(None, pa.int64()), exact)

    def _exact_int(self, name: str, text: pa.Array, digits: np.ndarray) -> pa.Array:
        """Read digit strings as int64; values beyond 64 bits are flagged, never rounded."""
        candidate = pc.if_else(pa.array(digits), text, pa.scalar(None, pa.string()))
        try:
            return pc.cast(candidate, pa.int64())
        except pa.ArrowInvalid:
            out: list[int | None] = []
            for index, value in enumerate(candidate.to_pylist()):
                number = None if value is None else int(value)
                if number is not None and not INT64[0] <= number <= INT64[1]:
                    self.bad.append(BadRow(index + 1, name, value, "outside the 64-bit range"))
                    number = None
                out.append(number)
            return pa.array(out, pa.int64())

    def timestamp(self, name: str, values: pa.Array, assume_timezone: str | None) -> pa.Array:
        """Parse to UTC timestamps.

        ISO 8601 with a zone is read as written; without a zone it needs ``assume_timezone``;
        a bare date (``2024-03-10``, as Salesforce writes date fields) is midnight in
        ``assume_timezone``, or UTC, and a note says so; other shapes need ``date_format``.
        """
        if pa.types.is_timestamp(values.type):
            if values.type.tz is None:
                if assume_timezone is None:
                    self.flag(
                        np.asarray(pc.is_valid(values)), name, values,
                        "timestamp has no time zone; add one or pass --assume-timezone",
                    )  # fmt: skip
                    return pa.nulls(len(values), UTC_MICROS)
                values = pc.assume_timezone(values, assume_timezone)
            return pc.cast(values, UTC_MICROS)
        if pa.types.is_date(values.type):
            values = pc.cast(values, pa.string())
        text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
        zoned = self._matches(text, _ZONED)
        present = np.asarray(pc.fill_null(pc.greater(pc.utf8_length(text), 0), False))
        # The shapes exclude one another: when every value carries a zone, none is naive.
        others = (present & ~zoned).any()
        naive = self._matches(text, _NAIVE) if others else np.zeros(len(text), bool)
        date = self._matches(text, _DATE) if others else np.zeros(len(text), bool)
        formatted = np.zeros(len(text), bool)
        result = self._cast_rows(text, zoned, UTC_MICROS, name)
        if self.date_format is not None:
            formatted = present & ~zoned & ~naive & ~date
            local = pc.strptime(
                pc.if_else(pa.array(formatted), text, pa.scalar(None, pa.string())),
                format=self.date_format, unit="us", error_is_null=True,
            )  # fmt: skip
            failed = formatted & ~np.asarray(pc.is_valid(local))
            self.flag(failed, name, text, f"does not match --date-format {self.date_format!r}")
            formatted &= ~failed
            if local.type.tz is None:
                naive |= formatted
                iso = pc.strftime(local, "%Y-%m-%dT%H:%M:%S")
                text = pc.if_else(pa.array(formatted), iso, text)
            else:
                result = pc.if_else(pa.array(formatted), pc.cast(local, UTC_MICROS), result)
                zoned |= formatted
        self._flag_unparsable(name, text, present & ~zoned & ~naive & ~date & ~formatted)
        if assume_timezone is None and naive.any():
            self.flag(
                naive, name, text,
                "timestamp has no time zone; add one (Z or +02:00) or pass --assume-timezone",
            )  # fmt: skip
            example = text[int(np.flatnonzero(naive)[0])].as_py()
            self.hints.append(
                f"{int(naive.sum()):,} {name} value(s) have no time zone (e.g. {example!r}): "
                "pass --assume-timezone with the zone the export was written in (a HubSpot "
                "export uses the portal's zone, e.g. America/New_York)"
            )
        elif naive.any():
            local = self._cast_rows(text, naive, pa.timestamp("us"), name)
            parsed = pc.cast(pc.assume_timezone(local, assume_timezone), UTC_MICROS)
            result = pc.if_else(pa.array(naive), parsed, result)
        if date.any():
            midnight = self._cast_rows(text, date, pa.timestamp("us"), name)
            zone = assume_timezone or "UTC"
            parsed = pc.cast(pc.assume_timezone(midnight, zone), UTC_MICROS)
            result = pc.if_else(pa.array(date), parsed, result)
            self.notes.append(
                f"{int(date.sum()):,} {name} value(s) are dates without a time; read as "
                f"midnight {zone}"
            )
        return pc.if_else(pa.array(zoned | naive | date), result, pa.nulls(len(text), UTC_MICROS))

    @staticmethod
    def _matches(text: pa.Array, pattern: str) -> np.ndarray:
        return np.asarray(pc.fill_null(pc.match_substring_regex(text, pattern), False))

    def _flag_unparsable(self, name: str, text: pa.Array, mask: np.ndarray) -> None:
        """Flag values no rule reads, naming the --date-format that would read their shape."""
        if not mask.any():
            return
        advice = "not an ISO 8601 timestamp (e.g. 2024-05-01T09:30:00Z)"
        first = str(text[int(np.flatnonzero(mask)[0])].as_py())
        for pattern, example in _DATE_SHAPES:
            if re.match(pattern, first):
                advice += f"; for dates written like {first!r} pass --date-format '{example}'"
                break
        self.flag(mask, name, text, advice)

    def _cast_rows(
        self, text: pa.Array, mask: np.ndarray, target: pa.DataType, name: str
    ) -> pa.Array:
        """Cast the masked rows; a value the pattern let through but Arrow rejects is flagged."""
        candidate = pc.if_else(pa.array(mask), text, pa.scalar(None, pa.string()))
        try:
            return pc.cast(candidate, target)
        except pa.ArrowInvalid:
            out = []
            for index, value in enumerate(candidate.to_pylist()):
                try:
                    out.append(pa.scalar(value, pa.string()).cast(target).as_py())
                except pa.ArrowInvalid:
                    out.append(None)
                    self.bad.append(BadRow(index + 1, name, value, "not a valid date or time"))
            return pa.array(out, target)


def segment_map(table: pa.Table, columns: Iterable[str]) -> pa.Array:
    """Build a MAP<string, string> of segment attributes from the named columns."""
    columns = list(columns)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise AssayInputError(
            f"segment columns {missing} are not in the input (columns: {table.column_names})"
        )
    n = table.num_rows
    if not columns:
        return pa.MapArray.from_arrays(
            pa.array(np.zeros(n + 1, dtype=np.int32)),
            pa.array([], pa.string()),
            pa.array([], pa.string()),
        )
    values = [
        pc.utf8_trim_whitespace(pc.cast(table[c].combine_chunks(), pa.string())) for c in columns
    ]
    valid = [np.asarray(pc.fill_null(pc.greater(pc.utf8_length(v), 0), False)) for v in values]
    counts = np.sum(valid, axis=0)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    keep = np.stack(valid, axis=1).ravel()
    keys = np.tile(np.array(columns, dtype=object), n)[keep]
    items = np.stack([v.to_numpy(zero_copy_only=False) for v in values], axis=1).ravel()[keep]
    return pa.MapArray.from_arrays(
        pa.array(offsets), pa.array(keys, pa.string()), pa.array(items, pa.string())
    )
