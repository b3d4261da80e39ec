"""The horizon label rule and the per-bin sums as Ibis expressions: one definition, any engine.

**Labels as of T** (DESIGN §6, the ledger's rule). A prediction scored at s with horizon h days
and target event e is visible if ``recorded_at ≤ T`` and ``s ≤ T``; one emission per
(entity, scorer) is kept under ``policy`` ("first": earliest ``(scored_at, prediction_id)``,
"last": latest, "all": every one). It is

* **positive** if an outcome of event e for the same entity occurred in [s, s + h) and was
  recorded by T;
* **negative** if s + h + L_e ≤ T and no such outcome was recorded by T;
* **pending** otherwise; ``matured`` is s + h + L_e ≤ T.

L_e is the recording lag waited for event e (``recording_lag``: one wait per target event, or
one for all; 0 when not given, DESIGN §6's plain rule). Outcomes reach a CRM weeks after they
occur, so a window that closed less than L_e ago may still receive its conversion.

**Per-bin sums on fixed edges** e_0 < … < e_B. The bin of a score p is the j with
e_j ≤ p < e_{j+1} (the last bin closed), decided by *comparison* with the edges — a CASE
expression — never by ``floor(p · B)`` (``floor(0.29 * 100)`` is 28). Only matured, scored
(not abstained, probability present) predictions enter. Per group and bin the sums are n,
Σp, Σp², Σy and Σp·y with y = 1 for a positive — the unweighted ``BinStats`` fields.

Both expressions are built from Ibis tables alone, so the ledger (DuckDB), a Parquet lake, a
warehouse or Spark evaluate the same rule, and ``ibis.to_sql`` prints it for any dialect.
``as_of`` must be a timezone-aware datetime; it is converted to UTC and enters as a
``TIMESTAMP WITH TIME ZONE`` literal (a naive one would compile to BigQuery's DATETIME, which
cannot be compared with TIMESTAMP columns).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.datatypes as dt_types
import ibis.expr.types as ir
import numpy as np

from assay._validation import AssayInputError, FloatArray, check_choice, to_utc

POLICIES = ("first", "last", "all")

#: Columns the label rule reads from the predictions and outcomes tables.
PREDICTION_FIELDS = (
    "prediction_id", "entity_id", "scorer", "scored_at", "recorded_at", "horizon_days",
    "target_event",
)  # fmt: skip
OUTCOME_FIELDS = ("entity_id", "event", "occurred_at", "recorded_at")

#: Grouping keys of the per-bin sums, in this order, before the optional segment.
GROUP_KEYS = ("scorer", "model_version", "cohort")

#: Bin index given to probabilities outside [0, 1] or NaN, which no bin may hold.
INVALID_BIN = -1

UTC_TIMESTAMP = dt_types.Timestamp(timezone="UTC")

#: The ledger's predictions and outcomes as the label rule sees them (its bookkeeping columns,
#: batch_id and row_hash, stay out). Unbound: compiled to SQL, then run on any connection.
LEDGER_PREDICTIONS = ibis.schema(
    {
        "prediction_id": "!string", "entity_id": "!string", "scorer": "!string",
        "model_version": "string", "score": "float64", "score_kind": "!string",
        "probability": "float64", "abstained": "!boolean", "scored_at": "!timestamp('UTC')",
        "recorded_at": "!timestamp('UTC')", "horizon_days": "!int32", "target_event": "!string",
        "input_hash": "string", "seed": "int64", "source": "string",
        "segments": "map<string, string>",
    }
)  # fmt: skip
LEDGER_OUTCOMES = ibis.schema(
    {
        "outcome_id": "!string", "entity_id": "!string", "event": "!string",
        "occurred_at": "!timestamp('UTC')", "recorded_at": "!timestamp('UTC')",
        "source": "string",
    }
)  # fmt: skip

#: Dialects ``compile_sql`` prints for teams who run the SQL themselves.
DIALECTS = ("duckdb", "bigquery", "snowflake", "databricks", "postgres", "trino")


def ledger_tables() -> tuple[ir.Table, ir.Table]:
    """Unbound ``predictions`` and ``outcomes`` tables with the ledger's schemas."""
    return (
        ibis.table(LEDGER_PREDICTIONS, name="predictions"),
        ibis.table(LEDGER_OUTCOMES, name="outcomes"),
    )


def compile_sql(expr: ir.Expr, dialect: str) -> str:
    """The SQL an expression compiles to in ``dialect`` (one of ``DIALECTS``)."""
    check_choice(dialect, "dialect", DIALECTS)
    return str(ibis.to_sql(expr, dialect=dialect))


def utc_literal(moment: dt.datetime) -> ir.TimestampScalar:
    """``moment`` as a UTC ``TIMESTAMP WITH TIME ZONE`` literal; naive datetimes are refused."""
    return ibis.literal(to_utc(moment), type=UTC_TIMESTAMP)


def _require(table: ir.Table, fields: Sequence[str], what: str) -> None:
    missing = [f for f in fields if f not in table.columns]
    if missing:
        raise AssayInputError(
            f"the {what} table lacks column(s) {', '.join(missing)}; it has "
            f"{', '.join(table.columns)} (rename or add them to match the ledger's columns)"
        )


def window_closes(predictions: ir.Table) -> ir.TimestampValue:
    """s + h: the end (exclusive) of a prediction's conversion window."""
    return predictions.scored_at + predictions.horizon_days.as_interval("D")


def _recording_deadline(
    predictions: ir.Table,
    as_of: dt.datetime,
    recording_lag: Mapping[str, dt.timedelta] | dt.timedelta | None,
) -> ir.TimestampValue:
    """T − L_e per prediction: the latest window close that has waited out its event's lag."""
    if recording_lag is None:
        return utc_literal(as_of)
    if isinstance(recording_lag, dt.timedelta):
        return utc_literal(as_of - recording_lag)
    cases = [
        (predictions.target_event == event, utc_literal(as_of - wait))
        for event, wait in sorted(recording_lag.items())
        if wait
    ]
    return ibis.cases(*cases, else_=utc_literal(as_of)) if cases else utc_literal(as_of)


#: The order labelled rows come in: the ledger's, fixed so snapshots hash the same every time.
LABEL_ORDER = ("scorer", "scored_at", "prediction_id")


def labelled(
    predictions: ir.Table,
    outcomes: ir.Table,
    *,
    as_of: dt.datetime,
    scorer: str | None = None,
    model_version: str | None = None,
    policy: str = "first",
    recording_lag: Mapping[str, dt.timedelta] | dt.timedelta | None = None,
) -> ir.Table:
    """Every visible prediction's columns plus ``label`` and ``matured`` as of ``as_of``
    (``recording_lag``: the wait L_e after the window closes, per target event or for all)."""
    check_choice(policy, "policy", POLICIES)
    _require(predictions, PREDICTION_FIELDS, "predictions")
    _require(outcomes, OUTCOME_FIELDS, "outcomes")
    cutoff = utc_literal(as_of)
    p = predictions
    visible = [p.recorded_at <= cutoff, p.scored_at <= cutoff]
    if scorer is not None:
        visible.append(p.scorer == scorer)
    if model_version is not None:
        visible.append(p.model_version == model_version)
    chosen = p.filter(*visible)
    if policy != "all":
        order = [chosen.scored_at, chosen.prediction_id]
        if policy == "last":
            order = [key.desc() for key in order]
        rank = ibis.row_number().over(group_by=[chosen.entity_id, chosen.scorer], order_by=order)
        chosen = chosen.filter(rank == 0)
    known = outcomes.filter(outcomes.recorded_at <= cutoff)
    hits = chosen.join(
        known,
        [
            chosen.entity_id == known.entity_id,
            chosen.target_event == known.event,
            known.occurred_at >= chosen.scored_at,
            known.occurred_at < window_closes(chosen),
        ],
    ).select("prediction_id")
    matured = window_closes(chosen) <= _recording_deadline(chosen, as_of, recording_lag)
    label = ibis.cases(
        (chosen.prediction_id.isin(hits.prediction_id), "positive"),
        (matured, "negative"),
        else_="pending",
    )
    return chosen.mutate(label=label, matured=matured)


def bin_index(prob: ir.FloatingValue, edges: FloatArray) -> ir.IntegerValue:
    """The bin of each score by comparison with ``edges`` (last bin closed); −1 if invalid."""
    branches = [((prob < float(edge)), j) for j, edge in enumerate(edges[1:-1])]
    invalid = prob.isnull() | prob.isnan() | (prob < float(edges[0])) | (prob > float(edges[-1]))
    return ibis.cases((invalid, INVALID_BIN), *branches, else_=len(edges) - 2)


def usable(labels: ir.Table) -> ir.Table:
    """Matured, scored predictions: what calibration may use (pending and abstained wait)."""
    keep = [labels.matured, labels.probability.notnull()]
    if "abstained" in labels.columns:
        keep.append(~labels.abstained)
    return labels.filter(*keep)


def cohort_of(labels: ir.Table) -> ir.StringValue:
    """The calendar month (UTC) of ``scored_at`` as ``YYYY-MM``."""
    return labels.scored_at.strftime("%Y-%m")


def segment_of(labels: ir.Table, segment: str) -> ir.StringValue:
    """A segment attribute: its own column if present, else the key of the ``segments`` map."""
    if segment in labels.columns:
        return labels[segment].cast("string")
    if "segments" in labels.columns:
        return labels.segments.get(segment)
    raise AssayInputError(
        f"no segment {segment!r}: the table has neither a column of that name nor a 'segments' map"
    )


def bin_sums(
    labels: ir.Table, edges: FloatArray, *, segment: str | None = None, grouped: bool = True
) -> ir.Table:
    """n, Σp, Σp², Σy, Σp·y per (scorer, model_version, cohort[, segment], bin), or per bin
    alone with ``grouped=False`` (the total, without formatting a month for every row)."""
    rows = usable(labels)
    prob = rows.probability.cast("float64")
    y = (rows.label == "positive").cast("float64")
    keys: dict[str, ir.Value] = {}
    if grouped:
        keys["scorer"] = rows.scorer
        keys["model_version"] = (
            rows.model_version if "model_version" in rows.columns else ibis.null()
        )
        keys["cohort"] = cohort_of(rows)
    if segment is not None:
        keys["segment"] = segment_of(rows, segment)
    keys["bin"] = bin_index(prob, np.asarray(edges, dtype=np.float64))
    return (
        rows.mutate(_p=prob, _y=y, **keys)
        .group_by(list(keys))
        .aggregate(
            n=ibis._.count(),
            sum_p=ibis._._p.sum(),
            sum_p2=(ibis._._p * ibis._._p).sum(),
            sum_y=ibis._._y.sum(),
            sum_py=(ibis._._p * ibis._._y).sum(),
        )
        .order_by(list(keys))
    )


def score_histogram(labels: ir.Table) -> ir.Table:
    """Per distinct usable score p: n and Σy (the BinStats sums follow: Σp = n·p, …)."""
    rows = usable(labels)
    y = (rows.label == "positive").cast("float64")
    return rows.group_by(probability=rows.probability.cast("float64")).aggregate(
        n=ibis._.count(), sum_y=y.sum()
    )


def usable_count(labels: ir.Table) -> ir.Scalar:
    """How many matured, scored predictions there are."""
    return usable(labels).count()


def score_quantiles(labels: ir.Table, quantiles: Sequence[float]) -> ir.Scalar:
    """The engine's approximate quantiles of the usable scores (a sketch, for many scores)."""
    prob = usable(labels).probability.cast("float64")
    return prob.approx_quantile(list(quantiles))


def bin_sums_sql(
    dialect: str,
    *,
    as_of: dt.datetime,
    edges: FloatArray,
    scorer: str | None = None,
    model_version: str | None = None,
    policy: str = "first",
    segment: str | None = None,
) -> str:
    """The label join and per-bin sums over the ledger's tables, as SQL for ``dialect``.

    A header comment records the cut-off and the edges, which the result needs to become
    BinStats again (``assay audit --sums result.json --edges …``).
    """
    predictions, outcomes = ledger_tables()
    rule = labelled(
        predictions, outcomes, as_of=as_of, scorer=scorer, model_version=model_version,
        policy=policy,
    )  # fmt: skip
    query = compile_sql(bin_sums(rule, edges, segment=segment), dialect)
    edge_list = ",".join(repr(float(e)) for e in edges)
    header = (
        f"-- assay per-bin sums ({dialect}): labels as of {as_of.astimezone(dt.UTC).isoformat()}, "
        f"policy {policy}\n-- edges: {edge_list}\n"
    )
    return header + query + "\n"
