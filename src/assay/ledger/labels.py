"""Labels derived as of a cut-off T (DESIGN §6), never imported.

For a prediction scored at s with horizon h days and target event e, as of T:

* it is visible only if it was recorded by T (``recorded_at ≤ T``) and ``s ≤ T``;
* **positive** if an outcome of event e for the same entity occurred in [s, s + h) and was
  recorded by T;
* **negative** if s + h + L_e ≤ T and no such outcome was recorded by T;
* **pending** otherwise (excluded from calibration, counted and reported).

L_e is the recording lag waited for event e: 0 in the plain rule of DESIGN §6
(``Ledger.labels``), the measured lag (:mod:`assay.ledger.lag`) for the labels a scorer is
judged on (``Ledger.judged_labels``).

The rule is defined once, as an Ibis expression (``assay.pushdown.expressions.labelled``); the
ledger runs its DuckDB compilation, and warehouses, Parquet lakes and Spark run the same rule.

Because every row the rule reads is filtered on ``recorded_at ≤ T``, a later re-run as of the
same T sees exactly the same rows and gives identical labels.

``matured`` marks predictions whose window has closed, and the lag passed, by T. A positive can
be known before its window closes, but only matured predictions are unbiased evidence: among
leads still inside their window the early converters are visible and the rest are not, so
counting them would inflate observed rates. Audits therefore use matured predictions only.

**In-sample leads of a derived scorer** (a calibrator applied to a scorer, recorded in the
``derivations`` table with the as-of F of the outcomes the calibrator was fitted on): a lead
(entity) is in-sample when the derived scorer version first scored it at or before F. Its
outcome may have taught the calibrator, so ``held_out`` labels leave it out under every
emission policy; a derived scorer is judged only on leads first scored after F.

``policy`` picks the emission per (entity, scorer): "first" (earliest scored_at), "last"
(latest scored_at ≤ T) or "all".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from assay.ledger._db import first_row
from assay.ledger.lag import RecordingLag
from assay.pushdown.expressions import LABEL_ORDER, compile_sql, labelled, ledger_tables


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
class InSample:
    """Leads left out of derived scorers' labels: fitted on outcomes as of ``fitted_as_of``."""

    fitted_as_of: tuple[dt.datetime, ...]  # each derived version's fit cut-off, ascending
    leads: int  # in-sample leads left out


@dataclass(frozen=True)
class LabelSet:
    """Labelled predictions (Arrow, ordered by scorer, scored_at, prediction_id) and counts.

    ``recording_lag`` is the lag ``matured`` waited for (None: none); ``in_sample`` what was
    left out of derived scorers (None: nothing was held out, or no scorer is derived).
    """

    table: pa.Table
    counts: LabelCounts
    as_of: dt.datetime
    policy: str
    recording_lag: RecordingLag | None = None
    in_sample: InSample | None = None


#: Leads (entity, scorer) a derived scorer version first scored by its fit cut-off, as of T.
_LEARNED = """
    SELECT DISTINCT p.entity_id, p.scorer
    FROM predictions p JOIN derivations d
      ON d.scorer = p.scorer AND d.model_version = p.model_version
    WHERE d.recorded_at <= $as_of AND p.recorded_at <= $as_of AND p.scored_at <= $as_of
      AND p.scored_at <= d.fitted_as_of
"""


def _hold_out(
    con: duckdb.DuckDBPyConnection, table: pa.Table, as_of: dt.datetime
) -> tuple[pa.Table, InSample | None]:
    """``table`` without derived scorers' in-sample leads, and what was left out."""
    con.register("labelled", table)
    try:
        cutoffs = con.execute(
            """
            SELECT DISTINCT fitted_as_of FROM derivations
            WHERE recorded_at <= $as_of AND scorer IN (SELECT scorer FROM labelled) ORDER BY 1
            """,
            {"as_of": as_of},
        ).fetchall()
        if not cutoffs:
            return table, None
        kept = con.sql(
            f"""
            SELECT l.* FROM labelled l WHERE NOT EXISTS (
                SELECT 1 FROM ({_LEARNED}) x
                WHERE x.entity_id = l.entity_id AND x.scorer = l.scorer)
            ORDER BY {", ".join(LABEL_ORDER)}
            """,
            params={"as_of": as_of},
        ).to_arrow_table()
    finally:
        con.unregister("labelled")
    return kept, InSample(tuple(row[0] for row in cutoffs), table.num_rows - kept.num_rows)


def resolve_labels(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: dt.datetime,
    scorer: str | None,
    model_version: str | None,
    policy: str,
    recording_lag: RecordingLag | None = None,
    held_out: bool = False,
) -> LabelSet:
    """The label rule as of ``as_of``, waiting ``recording_lag`` before a negative counts;
    ``held_out`` leaves derived scorers' in-sample leads out (module docstring)."""
    predictions, outcomes = ledger_tables()
    waits: Mapping[str, dt.timedelta] | dt.timedelta | None = (
        None if recording_lag is None else recording_lag.waits()
    )
    rule = labelled(
        predictions, outcomes, as_of=as_of, scorer=scorer, model_version=model_version,
        policy=policy, recording_lag=waits,
    ).order_by(list(LABEL_ORDER))  # fmt: skip
    table = con.sql(compile_sql(rule, "duckdb")).to_arrow_table()
    in_sample = None
    if held_out:
        table, in_sample = _hold_out(con, table, as_of)
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
    return LabelSet(table, counts, as_of, policy, recording_lag, in_sample)
