"""Turn an input file or frame into validated, typed Arrow columns, collecting every bad row.

Nothing here writes. Each check returns a mask of offending rows; the caller gathers every
:class:`BadRow` (row number, column, value, reason) before deciding, so a batch is judged
whole. Row numbers are 1-based data rows (a CSV's header is not counted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assay._validation import AssayInputError

UTC_MICROS = pa.timestamp("us", tz="UTC")
_ZONED = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
_NAIVE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?$"
_NUMBER = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"


@dataclass(frozen=True)
class BadRow:
    """One reason a row cannot be ingested."""

    row: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}, value {self.value!r}: {self.reason}"


@dataclass(frozen=True)
class Source:
    """An input as an Arrow table, with the sha256 of its bytes (or of its Arrow IPC form)."""

    table: pa.Table
    sha256: str
    name: str


def read_source(data: Any) -> Source:
    """Read CSV / Parquet paths, Arrow tables, pandas or polars frames into Arrow.

    CSV columns are read as text so that every value can be checked and reported as written.
    """
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.exists():
            raise AssayInputError(f"{path} does not exist; check the path")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if path.suffix.lower() in {".parquet", ".pq"}:
            return Source(pq.read_table(path), digest, str(path))
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                column_types={}, strings_can_be_null=False, auto_dict_encode=False
            ),
        )
        table = pa.table({name: pc.cast(table[name], pa.string()) for name in table.column_names})
        return Source(table, digest, str(path))
    if isinstance(data, pa.Table):
        table = data
    elif hasattr(data, "to_arrow"):  # polars
        table = data.to_arrow()
    elif hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas
        table = pa.Table.from_pandas(data, preserve_index=False)
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
    """Collects bad rows while columns are parsed."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.bad: list[BadRow] = []

    @property
    def n_rows(self) -> int:
        return self.table.num_rows

    def flag(self, mask: np.ndarray, column: str, values: pa.Array, reason: str) -> None:
        for index in np.flatnonzero(mask):
            raw = values[int(index)].as_py()
            self.bad.append(BadRow(int(index) + 1, column, "" if raw is None else str(raw), reason))

    def column(self, name: str, default: Any = None) -> pa.Array | None:
        if name in self.table.column_names:
            return self.table[name].combine_chunks()
        if default is None:
            return None
        return pa.repeat(pa.scalar(default), self.n_rows)

    def require(self, name: str, default: Any = None) -> pa.Array:
        values = self.column(name, default)
        if values is None:
            raise AssayInputError(
                f"required column {name!r} is missing (columns: {self.table.column_names}); "
                f"map a source column to it (--map SOURCE={name}) or give a default "
                f"(--default {name}=VALUE)"
            )
        return values

    def text(self, name: str, *, required: bool, default: Any = None) -> pa.Array:
        """A text column; with ``required`` every value must be non-empty."""
        values = self.require(name, default) if required else self.column(name, default)
        if values is None:
            return pa.nulls(self.n_rows, pa.string())
        values = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
        if required:
            empty = pc.fill_null(pc.equal(pc.utf8_length(values), 0), True)
            self.flag(np.asarray(empty), name, values, "empty; every row needs a value")
        else:
            values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        return values

    def number(self, name: str, values: pa.Array, *, what: str = "a number") -> pa.Array:
        """Parse to float64; text that is not a number is flagged (nulls pass through)."""
        if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
            return pc.cast(values, pa.float64())
        text = pc.cast(values, pa.string())
        ok = pc.fill_null(pc.match_substring_regex(text, _NUMBER), True)
        bad = ~np.asarray(ok)
        self.flag(bad, name, text, f"not {what}")
        cleaned = pc.if_else(ok, text, pa.scalar(None, pa.string()))
        return pc.cast(pc.utf8_trim_whitespace(cleaned), pa.float64())

    def timestamp(self, name: str, values: pa.Array, assume_timezone: str | None) -> pa.Array:
        """Parse to UTC timestamps; values without a zone need ``assume_timezone``."""
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
        zoned = np.asarray(pc.fill_null(pc.match_substring_regex(text, _ZONED), False))
        naive = np.asarray(pc.fill_null(pc.match_substring_regex(text, _NAIVE), False))
        present = np.asarray(pc.fill_null(pc.greater(pc.utf8_length(text), 0), False))
        unparsable = present & ~zoned & ~naive
        self.flag(unparsable, name, text, "not an ISO 8601 timestamp (e.g. 2024-05-01T09:30:00Z)")
        if assume_timezone is None:
            self.flag(
                naive, name, text,
                "timestamp has no time zone; add one (Z or +02:00) or pass --assume-timezone",
            )  # fmt: skip
        result = pa.nulls(len(text), UTC_MICROS)
        parsed = self._cast_rows(text, zoned, UTC_MICROS, name)
        if assume_timezone is not None and naive.any():
            local = self._cast_rows(text, naive, pa.timestamp("us"), name)
            parsed_naive = pc.cast(pc.assume_timezone(local, assume_timezone), UTC_MICROS)
            parsed = pc.if_else(pa.array(naive), parsed_naive, parsed)
        return pc.if_else(pa.array(zoned | naive), parsed, result)

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
