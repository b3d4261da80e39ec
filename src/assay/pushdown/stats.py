"""BinStats computed inside the engine that holds the rows; only the per-bin sums come back.

The label join and the per-bin sums (``assay.pushdown.expressions``) run where the data lives —
DuckDB over a Parquet glob, a warehouse, Spark — and return one small row per
(scorer, model version, cohort[, segment], bin). Each row group becomes a :class:`BinStats`
on the same edges, and groups merge by addition (``BinStats.__add__``), as do partitions or
engines that each hold part of the leads.

Equal-mass bins at scale: when the usable scores take few distinct values (lead scores
usually do; at most ``EXACT_DISTINCT_LIMIT``) their exact histogram (n and Σy per distinct
score) comes back in one pass; the edges are the order statistics p_(⌊j·n/B⌋), identical to
:func:`assay.stats.binning.quantile_edges` on all the rows, and the BinStats follow from the same
histogram. Otherwise the engine's approximate quantiles (a sketch) give the interior edges
and a second pass sums on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from assay._validation import AssayInputError, FloatArray, IntArray, check_positive_int
from assay.pushdown.expressions import (
    GROUP_KEYS,
    INVALID_BIN,
    bin_sums,
    labelled,
    score_histogram,
    score_quantiles,
    usable_count,
)
from assay.stats.binning import assign_bins, explicit_edges
from assay.stats.binstats import BinStats
from assay.stats.calibration import audit_bin_count

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping, Sequence

    import ibis.expr.types as ir

#: Above this many distinct usable scores, equal-mass edges come from the engine's sketch.
EXACT_DISTINCT_LIMIT = 100_000

GroupKey = tuple[Any, ...]


def _edges(edges: Sequence[float] | FloatArray) -> FloatArray:
    arr = explicit_edges(edges)
    if arr[0] != 0.0 or arr[-1] != 1.0:
        raise AssayInputError(
            f"remote bin edges must run from 0 to 1 so every probability has a bin; got "
            f"{arr[0]} … {arr[-1]}"
        )
    return arr


def stats_from_rows(rows: pa.Table | Sequence[Mapping[str, Any]], edges: Any) -> BinStats:
    """One :class:`BinStats` from per-bin sum rows (``bin, n, sum_p, sum_p2, sum_y, sum_py``).

    Rows for the same bin add up, so grouped rows (or the JSON a warehouse returns for the SQL
    of ``assay sql``) collapse to the total over their groups.
    """
    fixed = _edges(edges)
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows))
    n_bins = len(fixed) - 1
    if table.num_rows == 0:
        return BinStats.accumulate(np.empty(0), np.empty(0), fixed)
    missing = {"bin", "n", "sum_p", "sum_p2", "sum_y", "sum_py"} - set(table.column_names)
    if missing:
        raise AssayInputError(f"per-bin sums lack column(s) {', '.join(sorted(missing))}")
    idx = np.asarray(table["bin"].to_numpy(zero_copy_only=False), dtype=np.int64)
    _refuse_invalid(
        int(np.asarray(table["n"].to_numpy(zero_copy_only=False))[idx == INVALID_BIN].sum())
    )
    if idx.min() < 0 or idx.max() >= n_bins:
        raise AssayInputError(
            f"per-bin sums name bin {int(idx.max())}, but the {len(fixed)} edges make "
            f"{n_bins} bins; pass the edges the SQL was compiled with"
        )

    def total(column: str) -> FloatArray:
        values = np.asarray(table[column].to_numpy(zero_copy_only=False), dtype=np.float64)
        return np.bincount(idx, weights=values, minlength=n_bins).astype(np.float64, copy=False)

    count = total("n").astype(np.int64)  # counts below 2**53 add exactly in float64
    return BinStats(
        fixed, count, count.astype(np.float64), total("sum_p"), total("sum_p2"),
        total("sum_y"), total("sum_py"),
    )  # fmt: skip


def grouped_binstats(
    labels: ir.Table, edges: Sequence[float] | FloatArray, *, segment: str | None = None
) -> dict[GroupKey, BinStats]:
    """BinStats per (scorer, model_version, cohort[, segment]) from a labelled expression."""
    fixed = _edges(edges)
    rows = bin_sums(labels, fixed, segment=segment).to_pyarrow()
    keys = [*GROUP_KEYS, *(["segment"] if segment is not None else [])]
    columns = {k: rows[k].to_pylist() for k in keys}
    groups: dict[GroupKey, list[int]] = {}
    for i in range(rows.num_rows):
        groups.setdefault(tuple(columns[k][i] for k in keys), []).append(i)
    return {key: stats_from_rows(rows.take(index), fixed) for key, index in groups.items()}


def _refuse_invalid(count: int) -> None:
    if count:
        raise AssayInputError(
            f"{count} matured predictions have a probability outside [0, 1] or NaN; "
            "fix or drop them at the source (assay does not guess a score)"
        )


@dataclass(frozen=True, eq=False)
class ScoreHistogram:
    """The distinct usable scores, ascending, with their counts and positives."""

    values: FloatArray
    count: IntArray
    positives: FloatArray

    @classmethod
    def fetch(cls, labels: ir.Table, limit: int) -> ScoreHistogram | None:
        """Fetch the exact histogram, or None when there are more than ``limit`` distinct scores."""
        rows = score_histogram(labels).limit(limit + 1).to_pyarrow()
        if rows.num_rows > limit:
            return None
        values = np.asarray(rows["probability"].to_numpy(), dtype=np.float64)
        count = np.asarray(rows["n"].to_numpy(), dtype=np.int64)
        _refuse_invalid(int(count[~((values >= 0.0) & (values <= 1.0))].sum()))
        order = np.argsort(values)
        positives = np.asarray(rows["sum_y"].to_numpy(), dtype=np.float64)[order]
        return cls(values[order], count[order], positives)

    def edges(self, n_bins: int) -> FloatArray:
        """Equal-mass edges: the order statistics p_(⌊j·n/B⌋), as ``quantile_edges`` takes them."""
        n = int(self.count.sum())
        ranks = (np.arange(1, n_bins) * n) // n_bins
        interior = self.values[np.searchsorted(np.cumsum(self.count), ranks, side="right")]
        return np.unique(np.concatenate(([0.0], interior, [1.0])))

    def stats(self, edges: FloatArray) -> BinStats:
        """Return the BinStats on ``edges``.

        Each distinct score p with n rows and k positives adds n, n·p, n·p², k and k·p.
        """
        idx = assign_bins(self.values, edges)
        n_bins = len(edges) - 1
        weight = self.count.astype(np.float64)

        def total(values: FloatArray) -> FloatArray:
            return np.bincount(idx, weights=values, minlength=n_bins).astype(np.float64, copy=False)

        p = self.values
        return BinStats(
            np.array(edges, dtype=np.float64), total(weight).astype(np.int64), total(weight),
            total(weight * p), total(weight * p * p), total(self.positives),
            total(self.positives * p),
        )  # fmt: skip


def _bin_count(n: int, n_bins: int | None) -> int:
    if n == 0:
        raise AssayInputError("no matured, scored predictions as of this cut-off; nothing to bin")
    return audit_bin_count(n) if n_bins is None else check_positive_int(n_bins, "n_bins")


def sketch_edges(labels: ir.Table, n_bins: int | None = None) -> FloatArray:
    """Equal-mass edges from the engine's approximate quantiles (for many distinct scores)."""
    n_bins = _bin_count(int(usable_count(labels).to_pyarrow().as_py()), n_bins)
    quantiles = (np.arange(1, n_bins) / n_bins).tolist()
    interior = np.asarray(score_quantiles(labels, quantiles).to_pyarrow().as_py())
    inside = interior[(interior > 0.0) & (interior < 1.0)]
    return np.unique(np.concatenate(([0.0], inside, [1.0])))


def equal_mass_edges(labels: ir.Table, n_bins: int | None = None) -> FloatArray:
    """Equal-mass edges of the usable scores: exact from the histogram, else the sketch.

    ``n_bins`` defaults to the audit rule B = clamp(⌊n/40⌋, 2, 15).
    """
    histogram = ScoreHistogram.fetch(labels, EXACT_DISTINCT_LIMIT)
    if histogram is None:
        return sketch_edges(labels, n_bins)
    return histogram.edges(_bin_count(int(histogram.count.sum()), n_bins))


def equal_mass_stats(labels: ir.Table, n_bins: int | None) -> BinStats:
    """One pass when scores are few (edges and sums from the histogram), else two."""
    histogram = ScoreHistogram.fetch(labels, EXACT_DISTINCT_LIMIT)
    if histogram is None:
        return total_binstats(labels, sketch_edges(labels, n_bins))
    return histogram.stats(histogram.edges(_bin_count(int(histogram.count.sum()), n_bins)))


def total_binstats(labels: ir.Table, edges: Sequence[float] | FloatArray) -> BinStats:
    """Return the per-bin sums over every group (what :func:`grouped_binstats` adds up to)."""
    fixed = _edges(edges)
    return stats_from_rows(bin_sums(labels, fixed, grouped=False).to_pyarrow(), fixed)


def binstats(
    predictions: ir.Table,
    *,
    outcomes: ir.Table,
    as_of: dt.datetime,
    edges: Sequence[float] | FloatArray | int | None = None,
    scorer: str | None = None,
    model_version: str | None = None,
    policy: str = "first",
) -> BinStats:
    """BinStats of the matured, scored predictions as of ``as_of``, computed in the engine.

    ``predictions`` and ``outcomes`` are Ibis tables (or expressions) on one backend with the
    ledger's column names. ``edges`` fixes the bins; an int (or None, the audit default) asks
    for that many equal-mass bins, found in the engine first. Groups merge by addition.
    """
    labels = labelled(
        predictions, outcomes, as_of=as_of, scorer=scorer, model_version=model_version,
        policy=policy,
    )  # fmt: skip
    if edges is None or isinstance(edges, int):
        return equal_mass_stats(labels, edges)
    return total_binstats(labels, edges)
