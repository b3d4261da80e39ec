"""Request bodies into ledger batches: strict NDJSON or CSV, an allow-list of fields.

Only the fields a client may set are accepted — the server stamps ``recorded_at`` itself and
owns ``batch_id`` and ``row_hash`` — so an unexpected field is a row error, not a silent extra
(mass assignment). Values become text **exactly as written** and the ledger's row checker
validates them, so both formats share one rule. A ``POST /v1/score`` body (kind ``scores``) is
read the same way, with fewer fields (:data:`FIELDS`). Prediction segments arrive as an object
``{"segments": {"industry": "retail"}}`` (NDJSON) or as ``segment:NAME`` columns (CSV).
A prediction's inputs (the features its model read) arrive as a flat object
``{"inputs": {"age": 31, "region": "EU"}}`` (NDJSON: string, number, true/false or null values,
the same names in every row that has one, one JSON type per name) or as ``input:NAME`` columns
(CSV, typed per column as :func:`assay.ledger.inputs.typed_text` says); they become one
``inputs`` column of objects, which the ledger hashes and stores (:mod:`assay.ledger.inputs`).

NDJSON: each line must be one JSON object (strict: no NaN or Infinity, no trailing garbage, no
lone surrogates). Numbers keep the text they were written with. orjson parses the batch (the
fast path) and its result is used when it is exact: strings, integers (orjson keeps up to 64
bits exactly) and floating-point ``score`` values (the ledger reads a score as a double
anyway, the same double). Any other float — an id written ``1.10``, a segment value ``2.50``,
an integer beyond 64 bits that orjson turns into a float — or an integer 0 in a text field
(written ``0`` or ``-0``?) makes the batch be parsed again with the standard library, every
number kept as its literal text (measured: the common batch never takes it). ``true``/``false`` are
refused for every field (only segment values may be booleans: ``"true"``/``"false"``).

CSV: read by the ledger's reader (:func:`assay.ledger.csvtext.read_csv_text`): every cell as
written (``0042`` stays ``0042``, ``NA`` stays ``NA``), the header checked first (width,
duplicate names, UTF-8), ragged rows listed. A semicolon- or tab-separated body may carry
decimal commas in ``score`` (``0,42``); the receipt's notes say how it was read.

Limits, so that a batch costs time and memory linear in its size:

* at most :data:`MAX_ROWS` rows and :data:`MAX_BYTES` bytes (413);
* at most :data:`MAX_SEGMENTS` distinct segment names per batch (413);
* at most 2,000 CSV columns and a 256 KiB header line (413, :mod:`assay.ledger.csvtext`);
* segment names 1 to :data:`MAX_SEGMENT_NAME` characters, values at most
  :data:`MAX_SEGMENT_VALUE` (422, per row);
* no text may hold a NUL character (422, per row): PostgreSQL cannot store one, and both
  stores answer alike.

A refusal lists its bad rows; the HTTP answer shows the first :data:`MAX_BAD_ROWS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from assay.ledger.columns import MAX_TEXT
from assay.ledger.csvtext import (
    DELIMITERS,
    MAX_COLUMNS,
    MAX_HEADER_BYTES,
    CsvShapeError,
    read_csv_text,
)
from assay.ledger.inputs import INPUTS_COLUMN, typed_text
from assay.ledger.parse import BadRow
from assay.ledger.schema import client_fields

if TYPE_CHECKING:
    from collections.abc import Callable

#: A batch holds at most this many rows.
MAX_ROWS = 50_000
#: …and at most this many bytes.
MAX_BYTES = 32 * 1024 * 1024
#: …and at most this many distinct segment names (attributes) over all its rows.
MAX_SEGMENTS = 64
#: A segment name has 1 to this many characters…
MAX_SEGMENT_NAME = 64
#: …and a segment value at most this many (the ledger's longest text).
MAX_SEGMENT_VALUE = MAX_TEXT
#: A refusal's answer lists at most this many bad rows (and says how many there were).
MAX_BAD_ROWS = 1_000

#: What a client may send: the ``client`` columns of the ledger's one schema declaration
#: (:func:`assay.ledger.schema.client_fields`) — not ``recorded_at``, which the server stamps
#: itself, nor the chain's ``batch_id`` and ``row_hash``; predictions carry their segments as
#: one object (and their inputs as another, :func:`_ndjson_inputs`).
FIELDS = {kind: client_fields(kind) for kind in ("predictions", "outcomes")}
#: A lead sent to ``POST /v1/score`` (kind "scores"): a prediction's fields but those the server
#: sets itself for the honest scorer it records (scorer, model version, score kind, inputs).
FIELDS["scores"] = tuple(
    f for f in FIELDS["predictions"]
    if f not in ("scorer", "model_version", "score_kind", "input_hash", "seed")
)  # fmt: skip
#: Fields whose floats orjson reads exactly as the ledger will (the value is a double).
_FLOAT_FIELDS = frozenset({"score"})
#: Numeric fields: a number's value is what counts (``-0`` and ``0`` are the same there).
_NUMBER_FIELDS = frozenset({"score", "horizon_days", "seed"})
_DECIMAL_COMMA = r"^\s*[+-]?\d*,\d+\s*$"


class BatchRejected(Exception):
    """The body cannot become a batch.

    ``bad_rows`` says where and why, ``status`` the HTTP answer (422, or 413 for a batch over a
    size limit), ``message`` the one-line reason when the body as a whole is refused.
    """

    def __init__(
        self,
        bad_rows: list[BadRow],
        status: int = 422,
        message: str | None = None,
        total: int | None = None,
    ) -> None:
        super().__init__(message or f"{len(bad_rows)} bad row(s)")
        self.bad_rows, self.status, self.message = bad_rows, status, message
        #: How many bad rows there were (``bad_rows`` may hold only the first ones).
        self.total = len(bad_rows) if total is None else total


@dataclass(frozen=True)
class Batch:
    """Rows as text columns, the segment attributes they carry, and how they were read."""

    table: pa.Table
    segments: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def scorers(self) -> set[str]:
        """The distinct non-null ``scorer`` values (empty when the batch has no such column)."""
        if "scorer" not in self.table.column_names:
            return set()
        return {s for s in self.table["scorer"].to_pylist() if s is not None}


class _Inexact(Exception):
    """orjson's reading of the batch lost the text of a number: parse it again exactly."""


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _shown(value: object) -> str:
    """Show a value in an error message: text, cut to 200 characters."""
    text = _text(value) or ""
    return text if len(text) <= 200 else text[:200] + "…"


def _too_many(rows: int, limit: int) -> BatchRejected:
    reason = f"a batch holds at most {limit:,} rows"
    return BatchRejected(
        [BadRow(limit + 1, "*", f"{rows} rows", reason)],
        status=413,
        message=f"batch refused: {rows:,} rows; {reason}, nothing was written",
    )


def _no_rows() -> BatchRejected:
    reason = "the body holds no rows"
    return BatchRejected([BadRow(0, "*", "", reason)], message=f"batch refused: {reason}")


def _too_many_segments(count: str) -> BatchRejected:
    return BatchRejected(
        [],
        status=413,
        message=f"batch refused: {count} distinct segment names; a batch carries at most "
        f"{MAX_SEGMENTS} (send segments as a few named attributes, not one name per row)",
    )


def _exact_loads(line: bytes) -> object:
    """Parse JSON with every number as the text it was written with.

    Only called on lines orjson already accepted, so NaN, Infinity and lone surrogates never
    reach it.
    """
    return json.loads(line, parse_int=str, parse_float=str)


def _objects(lines: list[bytes], loads: Callable[[bytes], object]) -> list[dict[str, object]]:
    """Each line as one JSON object, or BatchRejected naming the lines that are not."""
    try:
        parsed = list(map(loads, lines))
    except ValueError:  # orjson.JSONDecodeError and json.JSONDecodeError are ValueErrors
        parsed = None
    if parsed is not None and all(type(item) is dict for item in parsed):
        return parsed  # type: ignore[return-value]
    bad = []
    for number, line in enumerate(lines, start=1):
        try:
            item = loads(line)
        except ValueError as error:
            bad.append(BadRow(number, "*", _shown(line[:80].decode(errors="replace")),
                              f"not JSON: {error}"))  # fmt: skip
            continue
        if not isinstance(item, dict):
            bad.append(BadRow(number, "*", _shown(item), "each line must be a JSON object"))
    raise BatchRejected(bad[:MAX_BAD_ROWS], total=len(bad))


def parse_ndjson(body: bytes, kind: str, max_rows: int = MAX_ROWS) -> Batch:
    """One JSON object per line; blank lines are skipped. Raises BatchRejected.

    Checks run per field over the whole batch (set operations, type sets) and fall back to
    row-by-row only to name the rows that fail them. Above ``max_rows`` lines, a 413.
    """
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) > max_rows:
        raise _too_many(len(lines), max_rows)
    if not lines:
        raise _no_rows()
    records = _objects(lines, orjson.loads)
    inputs = _ndjson_inputs(records) if kind == "predictions" else None
    try:
        return _with_inputs(_records(records, kind, exact=False), inputs)
    except _Inexact:
        exact = _objects(lines, _exact_loads)
        for item in exact:  # the inputs were read above, by value
            item.pop(INPUTS_COLUMN, None)
        return _with_inputs(_records(exact, kind, exact=True), inputs)


def _with_inputs(batch: Batch, inputs: pa.Array | None) -> Batch:
    if inputs is None:
        return batch
    return Batch(batch.table.append_column(INPUTS_COLUMN, inputs), batch.segments, batch.notes)


def _ndjson_inputs(records: list[dict[str, object]]) -> pa.Array | None:
    """Take each row's ``inputs`` object out of it; return them as one struct array.

    Raises BatchRejected for an ``inputs`` that is not a flat object, names that differ from
    the first row's, or a name holding two JSON types (text and a number, say).
    """
    if not any(INPUTS_COLUMN in item for item in records):
        return None
    values = [item.pop(INPUTS_COLUMN, None) for item in records]
    bad: list[BadRow] = []
    names: set[str] | None = None
    for number, value in enumerate(values, start=1):
        if value is None:
            continue
        if not isinstance(value, dict):
            reason = 'must be an object of input values, e.g. {"age": 31, "region": "EU"}'
            bad.append(BadRow(number, INPUTS_COLUMN, _shown(value), reason))
        elif any(isinstance(v, (dict, list)) for v in value.values()):
            reason = "input values are strings, numbers, true/false or null: no objects or lists"
            bad.append(BadRow(number, INPUTS_COLUMN, _shown(value), reason))
        elif names is None:
            names = set(value)
        elif set(value) != names:
            reason = (
                f"names other inputs than the first row ({', '.join(sorted(names))}); send "
                "every input in every row (null when unknown)"
            )
            bad.append(BadRow(number, INPUTS_COLUMN, ", ".join(sorted(value)), reason))
        if len(bad) >= MAX_BAD_ROWS:
            break
    if bad:
        raise BatchRejected(bad)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise BatchRejected(_mixed_inputs(values)) from None


def _mixed_inputs(values: list[object]) -> list[BadRow]:
    """Name the rows whose input holds another JSON type than its first value did."""
    first: dict[str, str] = {}
    bad = []
    for number, value in enumerate(values, start=1):
        for name, item in value.items() if isinstance(value, dict) else ():
            if item is None:
                continue
            kind = "true/false" if isinstance(item, bool) else (
                "text" if isinstance(item, str) else "a number"
            )  # fmt: skip
            if first.setdefault(name, kind) != kind:
                reason = f"input {name!r} was {first[name]} in an earlier row; one type per input"
                bad.append(BadRow(number, INPUTS_COLUMN, _shown(item), reason))
    return bad[:MAX_BAD_ROWS]


def _records(records: list[dict[str, object]], kind: str, *, exact: bool) -> Batch:
    allowed = FIELDS[kind]
    names: set[str] = set().union(*records)
    unknown = names - set(allowed)
    if unknown:
        bad: list[BadRow] = []
        total = 0
        also = f" and {INPUTS_COLUMN}" if kind == "predictions" else ""
        reason = f"unknown field; allowed: {', '.join(allowed)}{also}"
        for number, item in enumerate(records, start=1):
            found = unknown & item.keys()
            total += len(found)
            for name in sorted(found)[: max(0, MAX_BAD_ROWS - len(bad))]:
                bad.append(BadRow(number, name, _shown(item[name]), reason))
        raise BatchRejected(bad, total=total)
    segments: tuple[str, ...] = ()
    if "segments" in names:
        segments = _flatten_segments(records, allowed, exact)
    return _finish(_table(records, [k for k in allowed if k != "segments"], exact), segments)


def _flatten_segments(
    records: list[dict[str, object]], allowed: tuple[str, ...], exact: bool
) -> tuple[str, ...]:
    """Move each row's ``segments`` object into ``segment:NAME`` fields.

    A batch with more than MAX_SEGMENTS distinct names is refused as soon as the next one
    appears (linear cost).
    """
    seen: dict[str, None] = {}
    bad: list[BadRow] = []
    scalar = (str, int, bool) if exact else (str, int, float, bool)
    for number, item in enumerate(records, start=1):
        if "segments" not in item:
            continue
        value = item.pop("segments")
        if value is None:
            continue
        if not isinstance(value, dict) or not all(
            v is None or isinstance(v, scalar) for v in value.values()
        ):
            reason = "must map names to strings, numbers or booleans"
            bad.append(BadRow(number, "segments", _shown(value), reason))
            continue
        for name in value:
            if name not in seen:
                seen[name] = None
                if len(seen) > MAX_SEGMENTS:
                    raise _too_many_segments(f"more than {MAX_SEGMENTS}")
        clashes = sorted(set(value) & set(allowed))
        if clashes:
            reason = "segment names must not reuse field names"
            bad.append(BadRow(number, "segments", ", ".join(clashes), reason))
            continue
        for name, v in value.items():
            if isinstance(v, float) or (v == 0 and type(v) is int):
                raise _Inexact  # a float's text (or a -0) is lost: read it again as written
            item[f"segment:{name}"] = _text(v)
        if len(bad) >= MAX_BAD_ROWS:
            break
    if bad:
        raise BatchRejected(bad)
    return tuple(seen)


def _table(records: list[dict[str, object]], order: list[str], exact: bool) -> pa.Table:
    """One text column per field (and per segment name) over every record."""
    present: set[str] = set().union(*records)
    core = [n for n in order if n in present]
    extra = sorted(n for n in present if n.startswith("segment:"))
    columns, bad = {}, []
    for name in (*core, *extra):
        values = [r.get(name) for r in records]
        kinds = set(map(type, values))
        if kinds <= {str, type(None)}:
            columns[name] = pa.array(values, pa.string())
            continue
        if not exact and float in kinds and name not in _FLOAT_FIELDS:
            raise _Inexact
        if not exact and int in kinds and name not in _NUMBER_FIELDS and 0 in values:
            raise _Inexact  # a 0 may have been written -0
        if not kinds & {dict, list, bool}:
            text = [v if v is None or type(v) is str else str(v) for v in values]
            columns[name] = pa.array(text, pa.string())
            continue
        for number, value in enumerate(values, start=1):
            if isinstance(value, (dict, list)):
                bad.append(BadRow(number, name, _shown(value), "must be a string or a number"))
            elif isinstance(value, bool):
                reason = "must be a string or a number, not true/false"
                bad.append(BadRow(number, name, _shown(value), reason))
        if len(bad) >= MAX_BAD_ROWS:
            break
    if bad:
        raise BatchRejected(bad[:MAX_BAD_ROWS], total=len(bad))
    return pa.table(columns)


def _finish(table: pa.Table, segments: tuple[str, ...], notes: tuple[str, ...] = ()) -> Batch:
    """Run the checks both formats share (segment names and values, NUL); return the batch.

    The batch has its ``segment:NAME`` columns renamed to NAME.
    """
    bad: list[BadRow] = []
    for name in segments:
        if not 1 <= len(name) <= MAX_SEGMENT_NAME or "\x00" in name:
            column = table[f"segment:{name}"]
            rows = [i + 1 for i, v in enumerate(column.to_pylist()) if v is not None][:1] or [1]
            reason = f"segment names have 1 to {MAX_SEGMENT_NAME} characters and no NUL"
            bad.append(BadRow(rows[0], "segments", _shown(name), reason))
    for name in table.column_names:
        values = table[name]
        shown = name.removeprefix("segment:")
        field = "segments" if name.startswith("segment:") else name
        if name.startswith("segment:"):
            long = pc.fill_null(pc.greater(pc.utf8_length(values), MAX_SEGMENT_VALUE), False)
            for index in _true(long):
                reason = f"segment {shown!r}: values have at most {MAX_SEGMENT_VALUE} characters"
                bad.append(BadRow(index + 1, field, _shown(values[index].as_py()), reason))
        nul = pc.fill_null(pc.match_substring(values, "\x00"), False)
        for index in _true(nul):
            reason = "holds a NUL character (\\u0000); text may not contain one"
            value = str(values[index].as_py()).replace("\x00", "\\u0000")
            bad.append(BadRow(index + 1, field, _shown(value), reason))
    if bad:
        bad.sort(key=lambda b: (b.row, b.column))
        raise BatchRejected(bad[:MAX_BAD_ROWS], total=len(bad))
    renamed = table.rename_columns([n.removeprefix("segment:") for n in table.column_names])
    return Batch(renamed, segments, notes)


def _true(mask: pa.ChunkedArray | pa.Array) -> list[int]:
    """Return the indices where a boolean Arrow array is true (few, usually none)."""
    if not pc.any(mask).as_py():
        return []
    return [int(i) for i in pc.indices_nonzero(mask).to_pylist()][:MAX_BAD_ROWS]


def _too_wide(body: bytes) -> bool:
    """Tell whether the CSV header is over the reader's width limits (a 413, not a 422)."""
    end = body.find(b"\n", 0, MAX_HEADER_BYTES + 1)
    header = body[: MAX_HEADER_BYTES + 1 if end < 0 else end]
    if len(header) > MAX_HEADER_BYTES:
        return True
    return max(header.count(d.encode()) for d in DELIMITERS) + 1 > MAX_COLUMNS


def parse_csv(body: bytes, kind: str, max_rows: int = MAX_ROWS) -> Batch:
    """Parse a CSV with a header row; every cell as the text written. Raises BatchRejected.

    Above ``max_rows`` rows, a 413.
    """
    try:
        csv = read_csv_text(body, what="the body")
    except CsvShapeError as error:
        bad = [BadRow(max(line - 1, 0), "*", "", f"line {line} {why}") for line, why in error.lines]
        status = 413 if _too_wide(body) else 422
        raise BatchRejected(bad[:MAX_BAD_ROWS], status, str(error), total=len(bad)) from None
    table = csv.table
    if table.num_rows > max_rows:
        raise _too_many(table.num_rows, max_rows)
    if table.num_rows == 0:
        raise _no_rows()
    allowed = [f for f in FIELDS[kind] if f != "segments"]
    prefixes = ("segment:", "input:") if kind == "predictions" else ("segment:",)
    unknown = [n for n in table.column_names if n not in allowed and not n.startswith(prefixes)]
    if unknown:
        also = " and segment:NAME" + (", input:NAME" if kind == "predictions" else "")
        reason = f"unknown column; allowed: {', '.join(allowed)}{also}"
        raise BatchRejected([BadRow(0, n, "", reason) for n in unknown[:MAX_BAD_ROWS]])
    names = table.column_names
    segments = tuple(n.removeprefix("segment:") for n in names if n.startswith("segment:"))
    if len(segments) > MAX_SEGMENTS:
        raise _too_many_segments(f"{len(segments):,}")
    reserved = {*FIELDS[kind], INPUTS_COLUMN}
    clashes = [f"segment:{s}" for s in segments if s in reserved]
    if clashes:
        reason = "segment names must not reuse field names"
        raise BatchRejected([BadRow(0, n, "", reason) for n in clashes[:MAX_BAD_ROWS]])
    if csv.decimal_comma and "score" in table.column_names:
        score = table["score"]
        comma = pc.fill_null(pc.match_substring_regex(score, _DECIMAL_COMMA), False)
        fixed = pc.if_else(comma, pc.replace_substring(score, ",", "."), score)
        table = table.set_column(table.column_names.index("score"), "score", fixed)
    named = [n for n in table.column_names if n.startswith("input:")]
    inputs = None
    if named:
        typed = typed_text(table.select(named), decimal_comma=csv.decimal_comma)
        inputs = pa.StructArray.from_arrays(
            [typed[n].combine_chunks() for n in named], [n.removeprefix("input:") for n in named]
        )
        table = table.drop_columns(named)
    note = csv.describe()
    return _with_inputs(_finish(table, segments, (note,) if note else ()), inputs)
