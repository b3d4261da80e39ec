"""Open predictions and outcomes where they live: a Parquet glob or any Ibis connection URL.

A source is either

* an Ibis URL (``duckdb:///path.db``, ``postgres://…``, ``bigquery://project/dataset``, …) whose
  connection holds ``predictions`` and ``outcomes`` tables (the ledger's own file works), or
* a Parquet glob of predictions, with the outcomes' glob beside it, read by an in-process
  DuckDB through Ibis without ingesting anything, in the ledger's session settings (memory
  capped at ``ASSAY_MEMORY_LIMIT``, :mod:`assay.ledger.session`; DuckDB spills to disk beyond).

Columns follow the ledger's names. Lakes often lack the bookkeeping ones, so ``recorded_at``
defaults to ``scored_at`` (predictions) and ``occurred_at`` (outcomes), and ``model_version``
to null; every timestamp must carry a time zone.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from assay._validation import AssayInputError
from assay.ledger.session import session_settings

_TIMESTAMPS = {
    "predictions": ("scored_at", "recorded_at"),
    "outcomes": ("occurred_at", "recorded_at"),
}


@dataclass(frozen=True)
class Source:
    """Predictions and outcomes as Ibis tables on one backend, and where they came from."""

    predictions: ir.Table
    outcomes: ir.Table
    description: str


def _is_url(text: str) -> bool:
    return "://" in text


#: Backends whose plain TIMESTAMP is an instant (Spark's TIMESTAMP is TIMESTAMP_LTZ), though
#: Ibis reports it without a zone; their sessions must run in UTC.
INSTANT_TIMESTAMP_BACKENDS = ("pyspark",)


def _check_zones(table: ir.Table, what: str) -> None:
    if table.get_backend().name in INSTANT_TIMESTAMP_BACKENDS:
        return
    for column in _TIMESTAMPS[what]:
        if column not in table.columns:
            continue
        dtype = table.schema()[column]
        if not dtype.is_timestamp():
            raise AssayInputError(
                f"{what}.{column} is {dtype}, not a timestamp; store it as a UTC timestamp"
            )
        if dtype.timezone is None:
            raise AssayInputError(
                f"{what}.{column} is a timestamp without a time zone; assay will not guess "
                "one: write it as TIMESTAMP WITH TIME ZONE (UTC)"
            )


def conform(predictions: ir.Table, outcomes: ir.Table) -> tuple[ir.Table, ir.Table]:
    """Fill the optional bookkeeping columns and refuse zone-less timestamps.

    A lake may name the score ``score`` (as ingest inputs do) or ``probability`` (as the
    ledger stores it); either is read as a probability in [0, 1].
    """
    if "probability" not in predictions.columns and "score" in predictions.columns:
        predictions = predictions.mutate(probability=predictions.score.cast("float64"))
    if "recorded_at" not in predictions.columns and "scored_at" in predictions.columns:
        predictions = predictions.mutate(recorded_at=predictions.scored_at)
    if "model_version" not in predictions.columns:
        predictions = predictions.mutate(model_version=ibis.null("string"))
    if "recorded_at" not in outcomes.columns and "occurred_at" in outcomes.columns:
        outcomes = outcomes.mutate(recorded_at=outcomes.occurred_at)
    _check_zones(predictions, "predictions")
    _check_zones(outcomes, "outcomes")
    return predictions, outcomes


def open_source(
    source: str,
    *,
    outcomes: str | None = None,
    predictions_table: str = "predictions",
    outcomes_table: str = "outcomes",
) -> Source:
    """Open ``source`` (an Ibis URL or a Parquet glob; ``outcomes`` is the outcomes' glob)."""
    try:
        if _is_url(source):
            con = ibis.connect(source)
            tables = (con.table(predictions_table), con.table(outcomes_table))
        else:
            if outcomes is None:
                raise AssayInputError(
                    f"{source!r} is a Parquet glob of predictions; give the outcomes' glob too "
                    "(--outcomes 'lake/outcomes/*.parquet')"
                )
            con = ibis.duckdb.connect()
            for statement in session_settings():
                con.raw_sql(statement)
            tables = (con.read_parquet(source), con.read_parquet(outcomes))
    except AssayInputError:
        raise
    except Exception as error:  # the backends raise their own types; say what failed
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AssayInputError(f"cannot open {source!r}: {first}") from error
    predictions, found = conform(*tables)
    where = source if outcomes is None else f"{source} + {outcomes}"
    return Source(predictions, found, where)
