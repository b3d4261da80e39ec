"""Labels derived as of a cut-off T (DESIGN §6), never imported.

For a prediction scored at s with horizon h days and target event e, as of T:

* it is visible only if it was recorded by T (``recorded_at ≤ T``) and ``s ≤ T``;
* **positive** if an outcome of event e for the same entity occurred in [s, s + h) and was
  recorded by T;
* **negative** if s + h ≤ T and no such outcome was recorded by T;
* **pending** otherwise (excluded from calibration, counted and reported).

The rule is defined once, as an Ibis expression (``assay.remote.expressions.labelled``); the
ledger runs its DuckDB compilation, and warehouses, Parquet lakes and Spark run the same rule.

Because every row the rule reads is filtered on ``recorded_at ≤ T``, a later re-run as of the
same T sees exactly the same rows and gives identical labels.

``matured`` marks predictions whose window has closed by T. A positive can be known before its
window closes, but only matured predictions are unbiased evidence: among leads still inside
their window the early converters are visible and the rest are not, so counting them would
inflate observed rates. Audits therefore use matured predictions only.

``policy`` picks the emission per (entity, scorer): "first" (earliest scored_at), "last"
(latest scored_at ≤ T) or "all".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from assay.ledger._db import first_row
from assay.remote.expressions import LABEL_ORDER, compile_sql, labelled, ledger_tables


@dataclass(frozen=True)
class LabelCounts:
    positive: int
    negative: int
    pending: int
    abstained: int
    unmatched_outcomes: int

    @property
    def resolved(self) -> int:
        return self.positive + self.negative


@dataclass(frozen=True)
class LabelSet:
    """Labelled predictions (Arrow, ordered by scorer, scored_at, prediction_id) and counts."""

    table: pa.Table
    counts: LabelCounts
    as_of: dt.datetime
    policy: str


def resolve_labels(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: dt.datetime,
    scorer: str | None,
    model_version: str | None,
    policy: str,
) -> LabelSet:
    predictions, outcomes = ledger_tables()
    rule = labelled(
        predictions, outcomes, as_of=as_of, scorer=scorer, model_version=model_version,
        policy=policy,
    ).order_by(list(LABEL_ORDER))  # fmt: skip
    table = con.sql(compile_sql(rule, "duckdb")).to_arrow_table()
    row = first_row(
        con.execute(
            """
        SELECT count(*) FROM outcomes o WHERE o.recorded_at <= $as_of AND NOT EXISTS (
            SELECT 1 FROM predictions p WHERE p.entity_id = o.entity_id
              AND p.recorded_at <= $as_of AND p.scored_at <= $as_of)
        """,
            {"as_of": as_of},
        )
    )
    con.register("labelled", table)
    try:
        tallies = first_row(
            con.execute(
                """
            SELECT count(*) FILTER (WHERE label = 'positive' AND NOT abstained),
                   count(*) FILTER (WHERE label = 'negative' AND NOT abstained),
                   count(*) FILTER (WHERE label = 'pending' AND NOT abstained),
                   count(*) FILTER (WHERE abstained)
            FROM labelled
            """
            )
        )
    finally:
        con.unregister("labelled")
    assert tallies is not None and row is not None
    positive, negative, pending, abstained = (int(v) for v in tallies)
    counts = LabelCounts(positive, negative, pending, abstained, unmatched_outcomes=int(row[0]))
    return LabelSet(table, counts, as_of, policy)
