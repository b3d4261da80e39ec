"""The per-bin sums as Ibis expressions over the ledger's label rule: one definition, any engine.

**Labels as of T** are the ledger's rule (:mod:`assay.ledger.rules`, DESIGN §6): which
emission is each (entity, scorer)'s lead under ``policy``, and when it is positive, negative
or pending. It is re-exported here (``labelled``, ``ledger_tables``) for the engines.

**Per-bin sums on fixed edges** e_0 < … < e_B. The bin of a score p is the j with
e_j ≤ p < e_{j+1} (the last bin closed), decided by *comparison* with the edges — a CASE
expression — never by ``floor(p · B)`` (``floor(0.29 * 100)`` is 28). Only matured, scored
(not abstained, probability present) predictions enter. Per group and bin the sums are n,
Σp, Σp², Σy and Σp·y with y = 1 for a positive — the unweighted ``BinStats`` fields.

Both are built from Ibis tables alone, so the ledger (DuckDB), a Parquet lake, a warehouse or
Spark evaluate the same rule, and ``ibis.to_sql`` prints it for any dialect. ``as_of`` must be
a timezone-aware datetime; it is converted to UTC and enters as a ``TIMESTAMP WITH TIME ZONE``
literal (a naive one would compile to BigQuery's DATETIME, which cannot be compared with
TIMESTAMP columns).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import numpy as np

from assay._validation import AssayInputError, FloatArray, check_choice
from assay.ledger.rules import labelled, ledger_tables, scored
from assay.pushdown import DIALECTS

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "DIALECTS",
    "GROUP_KEYS",
    "INVALID_BIN",
    "bin_index",
    "bin_sums",
    "bin_sums_sql",
    "cohort_of",
    "compile_sql",
    "labelled",
    "ledger_tables",
    "score_histogram",
    "score_quantiles",
    "segment_of",
    "usable",
    "usable_count",
]

#: Grouping keys of the per-bin sums, in this order, before the optional segment.
GROUP_KEYS = ("scorer", "model_version", "cohort")

#: Bin index given to probabilities outside [0, 1] or NaN, which no bin may hold.
INVALID_BIN = -1


def compile_sql(expr: ir.Expr, dialect: str) -> str:
    """Return the SQL an expression compiles to in ``dialect`` (one of ``DIALECTS``)."""
    check_choice(dialect, "dialect", DIALECTS)
    return str(ibis.to_sql(expr, dialect=dialect))


def bin_index(prob: ir.FloatingValue, edges: FloatArray) -> ir.IntegerValue:
    """Return each score's bin by comparison with ``edges`` (last bin closed); −1 if invalid."""
    branches = [((prob < float(edge)), j) for j, edge in enumerate(edges[1:-1])]
    invalid = prob.isnull() | prob.isnan() | (prob < float(edges[0])) | (prob > float(edges[-1]))
    return ibis.cases((invalid, INVALID_BIN), *branches, else_=len(edges) - 2)


def usable(labels: ir.Table) -> ir.Table:
    """Matured, scored predictions: what calibration may use (pending and abstained wait)."""
    return labels.filter(labels.matured, scored(labels))


def positive(labels: ir.Table) -> ir.FloatingValue:
    """Return y: 1.0 for a positive label, else 0.0.

    A CASE, because PostgreSQL cannot cast a boolean to a double.
    """
    return ibis.cases((labels.label == "positive", 1), else_=0).cast("float64")


def cohort_of(labels: ir.Table) -> ir.StringValue:
    """Return the calendar month (UTC) of ``scored_at`` as ``YYYY-MM``."""
    return labels.scored_at.strftime("%Y-%m")


def segment_of(labels: ir.Table, segment: str) -> ir.StringValue:
    """Return a segment attribute: its own column if present, else the ``segments`` map's key."""
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
    """Return n, Σp, Σp², Σy, Σp·y per (scorer, model_version, cohort[, segment], bin).

    Or per bin alone with ``grouped=False`` (the total, without formatting a month for every row).
    """
    rows = usable(labels)
    prob = rows.probability.cast("float64")
    y = positive(rows)
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
    y = positive(rows)
    return rows.group_by(probability=rows.probability.cast("float64")).aggregate(
        n=ibis._.count(), sum_y=y.sum()
    )


def usable_count(labels: ir.Table) -> ir.Scalar:
    """How many matured, scored predictions there are."""
    return usable(labels).count()


def score_quantiles(labels: ir.Table, quantiles: Sequence[float]) -> ir.Scalar:
    """Return the engine's approximate quantiles of the usable scores (a sketch, for many)."""
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
    """Return the label join and per-bin sums over the ledger's tables, as SQL for ``dialect``.

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
