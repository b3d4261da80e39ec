"""Request bodies into ledger batches: strict NDJSON or CSV, an allow-list of fields.

NDJSON is parsed line by line with orjson (strict: no NaN, no trailing garbage); every line
must be a JSON object. Only the fields a client may set are accepted — the server stamps
``recorded_at`` itself and owns ``batch_id`` and ``row_hash`` — so an unexpected field is a
row error, not a silent extra (mass assignment). Values become text, exactly as a CSV cell
would, and the ledger's row checker validates them, so both formats share one rule.
Prediction segments arrive as an object ``{"segments": {"industry": "retail"}}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from assay.ledger.parse import BadRow

#: A batch holds at most this many rows.
MAX_ROWS = 50_000
#: …and at most this many bytes.
MAX_BYTES = 32 * 1024 * 1024

PREDICTION_FIELDS = (
    "prediction_id", "entity_id", "scorer", "model_version", "score", "score_kind",
    "scored_at", "horizon_days", "target_event", "input_hash", "seed", "source", "segments",
)  # fmt: skip
OUTCOME_FIELDS = ("outcome_id", "entity_id", "event", "occurred_at", "source")
FIELDS = {"predictions": PREDICTION_FIELDS, "outcomes": OUTCOME_FIELDS}


class BatchRejected(Exception):
    """The body cannot become a batch; ``bad_rows`` says where and why, ``status`` the HTTP
    answer (422, or 413 for a batch over the size limit)."""

    def __init__(self, bad_rows: list[BadRow], status: int = 422) -> None:
        super().__init__(f"{len(bad_rows)} bad row(s)")
        self.bad_rows, self.status = bad_rows, status


@dataclass(frozen=True)
class Batch:
    """Rows as text columns, and the segment attributes they carry."""

    table: pa.Table
    segments: tuple[str, ...]

    @property
    def scorers(self) -> set[str]:
        if "scorer" not in self.table.column_names:
            return set()
        return {s for s in self.table["scorer"].to_pylist() if s is not None}


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _too_many(rows: int) -> BatchRejected:
    reason = f"a batch holds at most {MAX_ROWS} rows"
    return BatchRejected([BadRow(MAX_ROWS + 1, "*", f"{rows} rows", reason)], status=413)


def _objects(lines: list[bytes], bad: list[BadRow]) -> list[dict[str, object]]:
    """The lines as JSON objects: one parse of the whole batch, line by line only to say
    which lines are not JSON objects."""
    try:
        parsed = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        parsed = None
    if parsed is not None and all(type(item) is dict for item in parsed):
        return list(parsed)
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            text = line[:80].decode(errors="replace")
            bad.append(BadRow(number, "*", text, f"not JSON: {error}"))
            continue
        if not isinstance(item, dict):
            reason = "each line must be a JSON object"
            bad.append(BadRow(number, "*", _text(item) or "null", reason))
            continue
        records.append(item)
    return records


def parse_ndjson(body: bytes, kind: str) -> Batch:
    """One JSON object per line; blank lines are skipped. Raises BatchRejected.

    Checks run per field over the whole batch (set operations, type sets) and fall back to
    row-by-row only to name the rows that fail them.
    """
    allowed = FIELDS[kind]
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) > MAX_ROWS:
        raise _too_many(len(lines))
    bad: list[BadRow] = []
    records = _objects(lines, bad)
    if bad:
        raise BatchRejected(bad)
    if not records:
        raise BatchRejected([BadRow(0, "*", "", "the body holds no rows")])
    names = set().union(*records)
    unknown = names - set(allowed)
    for number, item in enumerate(records if unknown or "segments" in names else (), start=1):
        for name in sorted(unknown & item.keys()):
            reason = f"unknown field; allowed: {', '.join(allowed)}"
            bad.append(BadRow(number, name, _text(item[name]) or "", reason))
        if "segments" in item:
            item.update(_segments(number, item.pop("segments"), allowed, bad))
    if bad:
        raise BatchRejected(bad)
    return _batch(records, [k for k in FIELDS[kind] if k != "segments"])


def _segments(
    number: int, value: object, allowed: tuple[str, ...], bad: list[BadRow]
) -> dict[str, object]:
    if not isinstance(value, dict) or not all(
        isinstance(v, (str, int, float)) or v is None for v in value.values()
    ):
        bad.append(BadRow(number, "segments", _text(value) or "", "must map names to strings"))
        return {}
    clashes = sorted(set(value) & set(allowed))
    if clashes:
        bad.append(
            BadRow(
                number, "segments", ", ".join(clashes), "segment names must not reuse field names"
            )
        )
        return {}
    return {f"segment:{k}": _text(v) for k, v in value.items()}


def _batch(records: list[dict[str, object]], order: list[str]) -> Batch:
    names = list(dict.fromkeys(name for r in records for name in r))
    core = [n for n in order if n in names]
    extra = sorted(n for n in names if n.startswith("segment:"))
    columns, bad = {}, []
    for name in (*core, *extra):
        values = [r.get(name) for r in records]
        kinds = set(map(type, values))
        if kinds <= {str, type(None)}:
            columns[name] = pa.array(values, pa.string())
            continue
        for number, value in enumerate(values, start=1):
            if isinstance(value, (dict, list)):
                reason = "must be a string or a number"
                bad.append(BadRow(number, name, _text(value) or "", reason))
        text = [v if v is None or type(v) is str else _text(v) for v in values]
        columns[name] = pa.array(text, pa.string())
    if bad:
        raise BatchRejected(bad)
    table = pa.table(columns)
    renamed = table.rename_columns([n.removeprefix("segment:") for n in table.column_names])
    return Batch(renamed, tuple(n.removeprefix("segment:") for n in extra))


def parse_csv(body: bytes, kind: str) -> Batch:
    """A CSV with a header row; every column read as text. Raises BatchRejected."""
    try:
        table = pacsv.read_csv(
            pa.BufferReader(body),
            convert_options=pacsv.ConvertOptions(
                column_types={}, strings_can_be_null=False, auto_dict_encode=False
            ),
        )
    except pa.ArrowInvalid as error:
        raise BatchRejected([BadRow(0, "*", "", f"not a readable CSV: {error}")]) from None
    if table.num_rows > MAX_ROWS:
        raise _too_many(table.num_rows)
    if table.num_rows == 0:
        raise BatchRejected([BadRow(0, "*", "", "the body holds no rows")])
    allowed = [f for f in FIELDS[kind] if f != "segments"]
    unknown = [n for n in table.column_names if n not in allowed and not n.startswith("segment:")]
    if unknown:
        raise BatchRejected(
            [
                BadRow(0, n, "", f"unknown column; allowed: {', '.join(allowed)} and segment:NAME")
                for n in unknown
            ]
        )
    text = pa.table({n: table[n].cast(pa.string()) for n in table.column_names})
    extra = tuple(n.removeprefix("segment:") for n in text.column_names if n.startswith("segment:"))
    renamed = text.rename_columns([n.removeprefix("segment:") for n in text.column_names])
    return Batch(renamed, extra)
