"""The ingest schema, stated once: every column a prediction or outcome batch may carry.

The README's column table, ``assay ingest predictions --help``, the service's OpenAPI request
schema and the ledger's validation all read :data:`PREDICTION_INPUT` and
:data:`OUTCOME_INPUT`, so they cannot disagree. A column is

* ``text`` — kept exactly as written (ids are text everywhere: ``0042`` stays ``0042``), at
  most :data:`MAX_TEXT` characters;
* ``number`` — a finite decimal number (NaN, inf and anything else refused);
* ``integer`` — a whole number inside ``bounds``;
* ``timestamp`` — ISO 8601 with a zone (``2024-05-01T09:30:00Z``); a bare date is midnight
  UTC; a time without a zone needs ``--assume-timezone``;
* ``choice`` — one of ``choices``.

``required`` columns must be in the input or given a constant (``--default NAME=VALUE``);
``default`` is used when an optional column is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from assay.ledger.schema import client_fields

ColumnType = Literal["text", "number", "integer", "timestamp", "choice"]

#: Longest text value the ledger keeps (ids, names, segment values).
MAX_TEXT = 512
SCORE_KINDS = ("probability", "percent", "points", "rank")
#: The longest conversion window: ten years.
MAX_HORIZON_DAYS = 3650
INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Column:
    """One input column: its type, whether it is required, what it means, an example."""

    name: str
    type: ColumnType
    required: bool
    meaning: str
    example: str
    default: str | None = None
    bounds: tuple[int, int] | None = None
    choices: tuple[str, ...] = ()

    @property
    def rule(self) -> str:
        """The value rule in words (for help text and the README)."""
        if self.type == "integer" and self.bounds:
            low, high = self.bounds
            return f"whole number {low:,}–{high:,}" if high < 2**62 else "whole number (64-bit)"
        if self.type == "choice":
            return " / ".join(self.choices)
        return {
            "text": f"text (≤ {MAX_TEXT} chars)",
            "number": "finite number",
            "timestamp": "ISO 8601 with zone",
        }.get(self.type, self.type)

    def json_schema(self) -> dict[str, object]:
        """Return the column as a JSON Schema property (NDJSON bodies carry text or numbers)."""
        schema: dict[str, object] = {"description": self.meaning, "example": self.example}
        if self.type == "text":
            schema.update(type="string", maxLength=MAX_TEXT)
        elif self.type == "number":
            schema.update(anyOf=[{"type": "number"}, {"type": "string"}])
        elif self.type == "integer":
            low, high = self.bounds or INT64
            schema.update(
                anyOf=[{"type": "integer", "minimum": low, "maximum": high}, {"type": "string"}]
            )
        elif self.type == "timestamp":
            schema.update(type="string", format="date-time")
        else:
            schema.update(type="string", enum=list(self.choices))
        if self.default is not None:
            schema["default"] = self.default
        return schema


PREDICTION_INPUT: tuple[Column, ...] = (
    Column("entity_id", "text", True, "the lead or account the score is about", "0031a000004XyZ"),
    Column("scorer", "text", True, "who produced the score (model or vendor)", "acme-leads"),
    Column(
        "score",
        "number",
        True,
        "the score; empty or 'not yet' means the scorer abstained",
        "0.42",
    ),
    Column(
        "score_kind",
        "choice",
        False,
        "how to read the score (percent = 0–100; --score-kind percent)",
        "probability",
        default="probability",
        choices=SCORE_KINDS,
    ),
    Column("scored_at", "timestamp", True, "when the score was produced", "2024-05-01T09:30:00Z"),
    Column(
        "horizon_days",
        "integer",
        True,
        "days after scored_at within which target_event counts",
        "90",
        bounds=(1, MAX_HORIZON_DAYS),
    ),
    Column(
        "target_event",
        "text",
        True,
        "the outcome event the score predicts (matches outcomes' event)",
        "customer",
    ),
    Column("model_version", "text", False, "version of the model that scored", "2024.05"),
    Column(
        "prediction_id",
        "text",
        False,
        "your id for the emission (default: hash of scorer, entity, version, scored_at)",
        "p-1",
    ),
    Column("input_hash", "text", False, "hash of the features the model saw", "9f2c…"),
    Column("seed", "integer", False, "random seed of the scoring run", "7", bounds=INT64),
    Column("source", "text", False, "system the row came from", "hubspot"),
    Column(
        "recorded_at",
        "timestamp",
        False,
        "when the score was first recorded; earlier than now marks history (as --backfill)",
        "2024-05-01T09:31:00Z",
    ),
)

OUTCOME_INPUT: tuple[Column, ...] = (
    Column(
        "entity_id", "text", True, "the lead or account the event happened to", "0031a000004XyZ"
    ),
    Column("event", "text", True, "what happened (a prediction's target_event)", "customer"),
    Column("occurred_at", "timestamp", True, "when it happened", "2024-06-12T00:00:00Z"),
    Column(
        "outcome_id",
        "text",
        False,
        "your id for the event (default: hash of entity, event, occurred_at)",
        "o-1",
    ),
    Column("source", "text", False, "system the row came from", "hubspot"),
    Column(
        "recorded_at",
        "timestamp",
        False,
        "when the CRM recorded the event (measures the recording lag)",
        "2024-06-14T10:00:00Z",
    ),
)

INPUT = {"predictions": PREDICTION_INPUT, "outcomes": OUTCOME_INPUT}


def client_columns(kind: str) -> tuple[str, ...]:
    """Return the input columns a service client may send, in this table's order.

    They are those the schema
    declares ``client`` (:func:`assay.ledger.schema.client_fields`); not ``recorded_at``
    (the server's clock). Segments come as one ``segments`` object beside them.
    """
    allowed = client_fields(kind)
    return tuple(c.name for c in INPUT[kind] if c.name in allowed)


def row_schema(kind: str) -> dict[str, object]:
    """One NDJSON line of ``kind`` as a JSON Schema object (the service's OpenAPI body)."""
    columns = [c for c in INPUT[kind] if c.name in client_columns(kind)]
    properties: dict[str, object] = {c.name: c.json_schema() for c in columns}
    if kind == "predictions":
        properties["segments"] = {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": 'segment attributes, e.g. {"industry": "retail"}',
        }
        properties["inputs"] = {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
            "description": 'the features the model read, e.g. {"age": 31, "region": "EU"}; '
            "stored content-addressed, so the score can be replayed",
        }
    return {
        "type": "object",
        "properties": properties,
        "required": [c.name for c in columns if c.required],
        "additionalProperties": False,
    }


def column(kind: str, name: str) -> Column:
    """Return the declared column ``name`` of ``kind`` ("predictions" or "outcomes")."""
    return next(c for c in INPUT[kind] if c.name == name)


def markdown_table(kind: str) -> str:
    """Return the columns of ``kind`` as the README's Markdown table."""
    lines = ["| column | required | type | meaning | example |", "|---|---|---|---|---|"]
    for c in INPUT[kind]:
        need = "yes" if c.required else (f"no (default {c.default})" if c.default else "no")
        lines.append(f"| `{c.name}` | {need} | {c.rule} | {c.meaning} | `{c.example}` |")
    return "\n".join(lines)


def help_text(kind: str) -> str:
    """Return the columns of ``kind`` for ``--help`` (one line each; * = required)."""
    rows = [f"{'*' if c.required else ' '} {c.name}: {c.rule}; {c.meaning}" for c in INPUT[kind]]
    return "Columns (* required):\n\n" + "\n\n".join(rows)
