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

The rule — which emission is the lead, and its label — is defined once, as Ibis expressions
(:mod:`assay.ledger.rules`); the ledger runs its DuckDB compilation (compiled once per shape
and bound per call, :mod:`assay.ledger.compiled`), and warehouses, Parquet lakes and Spark run
the same rule. ``columns`` names the prediction columns a caller reads; only those (and the
few the counts need) leave DuckDB.

Because every row the rule reads is filtered on ``recorded_at ≤ T``, a later re-run as of the
same T sees exactly the same rows and gives identical labels.

``matured`` marks predictions whose window has closed, and the lag passed, by T. A positive can
be known before its window closes, but only matured predictions are unbiased evidence: among
leads still inside their window the early converters are visible and the rest are not, so
counting them would inflate observed rates. Audits therefore use matured predictions only.

**In-sample leads of a derived scorer** (a calibrator applied to a scorer, recorded in the
``derivations`` table with the as-of F of the outcomes the calibrator was fitted on): a lead
(entity) is in-sample when the derived scorer version first scored it before F, or when
an outcome of it was recorded at or before F (an honest map serves new leads after F, but a
lead served again after its outcome taught the map is still in-sample). Its outcome may have
taught the calibrator, so ``held_out`` labels leave it out under every emission policy; a
derived scorer is judged only on leads first scored at or after F whose outcomes came after F
(an honest map built at F serves leads scored at F: the outcomes it learned from were recorded
by F, the served leads' come later).

``policy`` picks the emission per (entity, scorer): "first" (earliest scored_at), "last"
(latest scored_at ≤ T) or "all". Under "first" a lead whose first emission abstained is an
abstention (counted, never judged); a later emission does not stand in for it.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError
from assay.ledger.compiled import Arguments
from assay.ledger.rules import LABEL_ORDER, Deadline, labelled, ledger_tables
from assay.ledger.schema import PREDICTION_COLUMNS, ColumnType
from assay.ledger.session import first_row

if TYPE_CHECKING:
    from collections.abc import Sequence

    import duckdb

    from assay.ledger.lag import RecordingLag


@dataclass(frozen=True)
class LabelCounts:
    """How many leads are positive, negative, pending or abstained, and unmatched outcomes."""

    positive: int
    negative: int
    pending: int
    abstained: int
    unmatched_outcomes: int

    @property
    def resolved(self) -> int:
        """Leads with a label: positive + negative."""
        return self.positive + self.negative


@dataclass(frozen=True)
class InSample:
    """Leads left out of derived scorers' labels: fitted on outcomes as of ``fitted_as_of``."""

    fitted_as_of: tuple[dt.datetime, ...]  # each derived version's fit cut-off, ascending
    leads: int  # in-sample leads left out


@dataclass(frozen=True)
class LabelSet:
    """Labelled predictions (Arrow, ordered by scorer, scored_at, prediction_id) and counts.

    ``table`` holds the prediction columns asked for (all by default) and ``label``, ``matured``.

    ``recording_lag`` is the lag ``matured`` waited for (the plain rule: a fixed 0 days);
    ``in_sample`` what was
    left out of derived scorers (None: nothing was held out, or no scorer is derived).
    """

    table: pa.Table
    counts: LabelCounts
    as_of: dt.datetime
    policy: str
    recording_lag: RecordingLag
    in_sample: InSample | None = None


#: Leads (entity, scorer) a derived scorer version first scored by its fit cut-off, as of T.
_LEARNED = """
    SELECT DISTINCT p.entity_id, p.scorer
    FROM predictions p JOIN derivations d
      ON d.scorer = p.scorer AND d.model_version = p.model_version
    WHERE d.recorded_at <= $as_of AND p.recorded_at <= $as_of AND p.scored_at <= $as_of
      AND (p.scored_at < d.fitted_as_of OR EXISTS (
        SELECT 1 FROM outcomes o WHERE o.entity_id = p.entity_id
          AND o.recorded_at <= d.fitted_as_of AND o.recorded_at <= $as_of))
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


#: Columns the counts, the order and the hold-out read, whatever the caller asked for.
_ALWAYS = ("prediction_id", "entity_id", "scorer", "scored_at", "abstained")


def _waiting_events(recording_lag: RecordingLag) -> tuple[str, ...] | None:
    """Return the events with a deadline of their own (T − L_e > 0 wait), sorted.

    None: one deadline for every event (a fixed wait, 0 in the plain rule).
    """
    waits = recording_lag.waits()
    if isinstance(waits, dt.timedelta):
        return None
    return tuple(sorted(event for event, wait in waits.items() if wait))


@functools.lru_cache(maxsize=64)
def _rule_sql(
    policy: str,
    scorer: bool,
    model_version: bool,
    events: tuple[str, ...] | None,
    columns: tuple[str, ...],
) -> tuple[str, tuple[str, ...]]:
    """Compile the label rule for one shape; return it and the names of the parameters it binds."""
    types: dict[str, ColumnType] = {"as_of": "timestamp"}
    if scorer:
        types["scorer"] = "text"
    if model_version:
        types["model_version"] = "text"
    if events is None:
        types["deadline"] = "timestamp"
    else:
        types.update({f"deadline_{k}": "timestamp" for k in range(len(events))})
    args = Arguments(types)
    deadline: Deadline = (
        args.value("deadline")
        if events is None
        else {event: args.value(f"deadline_{k}") for k, event in enumerate(events)}
    )
    predictions, outcomes = ledger_tables()
    rule = labelled(
        predictions, outcomes, as_of=args.value("as_of"),
        scorer=args.value("scorer") if scorer else None,
        model_version=args.value("model_version") if model_version else None,
        policy=policy, deadline=deadline,
    ).select(*columns, "label", "matured")  # fmt: skip
    return args.compile(rule.order_by(list(LABEL_ORDER))), tuple(types)


def _parameters(
    names: tuple[str, ...],
    as_of: dt.datetime,
    scorer: str | None,
    model_version: str | None,
    recording_lag: RecordingLag,
) -> dict[str, object]:
    """Return the values of the parameters ``names`` of a compiled rule (:func:`_rule_sql`)."""
    values: dict[str, object] = {"as_of": as_of, "scorer": scorer, "model_version": model_version}
    waits = recording_lag.waits()
    if isinstance(waits, dt.timedelta):
        values["deadline"] = as_of - waits
    else:
        events = _waiting_events(recording_lag) or ()
        values.update({f"deadline_{k}": as_of - waits[e] for k, e in enumerate(events)})
    return {name: values[name] for name in names}


def _columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    """Return the prediction columns to read, in the ledger's order: those asked and _ALWAYS."""
    if columns is None:
        return PREDICTION_COLUMNS
    unknown = sorted(set(columns) - set(PREDICTION_COLUMNS))
    if unknown:
        raise AssayInputError(
            f"no prediction column {', '.join(unknown)}; columns: {', '.join(PREDICTION_COLUMNS)}"
        )
    wanted = {*columns, *_ALWAYS}
    return tuple(c for c in PREDICTION_COLUMNS if c in wanted)


def resolve_labels(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: dt.datetime,
    scorer: str | None,
    model_version: str | None,
    policy: str,
    recording_lag: RecordingLag,
    held_out: bool = False,
    columns: Sequence[str] | None = None,
) -> LabelSet:
    """Apply the label rule as of ``as_of``, waiting ``recording_lag`` before a negative counts.

    ``held_out`` leaves derived scorers' in-sample leads out (module docstring); ``columns``
    the prediction columns to return (None: all).
    """
    query, names = _rule_sql(
        policy,
        scorer is not None,
        model_version is not None,
        _waiting_events(recording_lag),
        _columns(columns),
    )
    params = _parameters(names, as_of, scorer, model_version, recording_lag)
    table = con.sql(query, params=params).to_arrow_table()
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
    assert row is not None
    counts = _counts(table, unmatched_outcomes=int(row[0]))
    if columns is not None:
        kept = [c for c in table.column_names if c in {*columns, "label", "matured"}]
        table = table.select(kept)
    return LabelSet(table, counts, as_of, policy, recording_lag, in_sample)


def _counts(table: pa.Table, *, unmatched_outcomes: int) -> LabelCounts:
    """Positive, negative and pending scored leads, and abstentions, of a labelled table."""
    state = pc.if_else(table["abstained"], "abstained", table["label"])
    found = {row["values"]: row["counts"] for row in pc.value_counts(state).to_pylist()}
    return LabelCounts(
        found.get("positive", 0), found.get("negative", 0), found.get("pending", 0),
        found.get("abstained", 0), unmatched_outcomes,
    )  # fmt: skip
