"""Per-bucket reliability tables: what a score promised and what happened, bin by bin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from assay.stats.binstats import BinStats

if TYPE_CHECKING:
    from assay._validation import FloatArray, IntArray
    from assay.stats.binning import BinSpec


@dataclass(frozen=True, eq=False)
class ReliabilityTable:
    """One row per bin: edges, n, mean score p̄_b, observed rate ȳ_b and gap ȳ_b − p̄_b.

    Empty bins are kept with n = 0 and NaN means (``None`` in ``to_dict``). The table a
    reliability diagram plots: what the score promised in each bin (its mean score, never
    the midpoint) against what happened.

    Parameters
    ----------
    lower, upper : ndarray of shape (B,)
        Bin edges: [lower, upper), the last bin closed.
    n : ndarray of shape (B,)
        Rows per bin.
    positives : ndarray of shape (B,)
        Positive outcomes (weighted) per bin.
    mean_score : ndarray of shape (B,)
        Mean score p̄_b (NaN when empty).
    observed_rate : ndarray of shape (B,)
        Observed rate ȳ_b (NaN when empty).

    References
    ----------
    .. [1] M. H. DeGroot and S. E. Fienberg, "The comparison and evaluation of forecasters",
       Journal of the Royal Statistical Society D 32(1/2), 1983, pp. 12–22.
    .. [2] J. Bröcker and L. A. Smith, "Increasing the reliability of reliability diagrams",
       Weather and Forecasting 22(3), 2007, pp. 651–661.

    Examples
    --------
    >>> from assay import reliability_table
    >>> table = reliability_table([0, 1, 1], [0.2, 0.3, 0.9], n_bins=4)
    >>> len(table), table.n.tolist()
    (4, [1, 1, 0, 1])
    >>> table.to_dict()["observed_rate"]
    [0.0, 1.0, None, 1.0]
    """

    lower: FloatArray
    upper: FloatArray
    n: IntArray
    positives: FloatArray
    mean_score: FloatArray
    observed_rate: FloatArray

    @property
    def gap(self) -> FloatArray:
        """Observed minus promised, ȳ_b − p̄_b: negative where the score over-promises."""
        return self.observed_rate - self.mean_score

    @classmethod
    def from_stats(cls, stats: BinStats) -> ReliabilityTable:
        """Build the table from per-bin sums."""
        return cls(
            stats.edges[:-1].copy(),
            stats.edges[1:].copy(),
            stats.count.copy(),
            stats.sum_y.copy(),
            stats.mean_prob,
            stats.observed_rate,
        )

    def __len__(self) -> int:
        """Return the number of bins."""
        return len(self.n)

    def to_dict(self) -> dict[str, list[Any]]:
        """Return the columns (and the gap) as lists, NaN written as None."""

        def clean(values: np.ndarray) -> list[Any]:
            return [None if isinstance(v, float) and np.isnan(v) else v for v in values.tolist()]

        return {
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "n": self.n.tolist(),
            "positives": self.positives.tolist(),
            "mean_score": clean(self.mean_score),
            "observed_rate": clean(self.observed_rate),
            "gap": clean(self.gap),
        }

    def to_arrow(self) -> pa.Table:
        """Arrow table; empty bins carry nulls rather than NaN."""
        data = self.to_dict()
        return pa.table(
            {k: pa.array(v, type=pa.int64() if k == "n" else pa.float64()) for k, v in data.items()}
        )


def reliability_table(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: BinSpec = 15,
    strategy: str = "uniform",
    sample_weight: Any = None,
) -> ReliabilityTable:
    """Tabulate promised against observed conversion rates, bin by bin.

    For each bin b (left-closed [lo, hi), the last closed [lo, 1]; see
    :mod:`assay.stats.binning`): its row count n_b, positives, mean score p̄_b = Σwp/Σw,
    observed rate ȳ_b = Σwy/Σw and gap ȳ_b − p̄_b. Empty bins stay in the table.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].
    n_bins : int or sequence of float, default=15
        Number of bins, or explicit edges.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins.
    sample_weight : array-like of shape (n,), optional
        Non-negative row weights, not all zero.

    Returns
    -------
    ReliabilityTable
        One row per bin.

    Raises
    ------
    AssayInputError
        On NaN/inf, probabilities outside [0, 1], labels other than 0/1, length mismatch,
        empty input, negative or all-zero weights, invalid edges or an unknown ``strategy``.

    References
    ----------
    .. [1] M. H. DeGroot and S. E. Fienberg, "The comparison and evaluation of forecasters",
       Journal of the Royal Statistical Society D 32(1/2), 1983, pp. 12–22.

    Examples
    --------
    >>> import numpy as np
    >>> from assay import reliability_table
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> table = reliability_table(y, p, n_bins=2)
    >>> table.n.tolist(), np.round(table.mean_score, 4).tolist()
    ([3, 3], [0.25, 0.7667])
    >>> np.round(table.observed_rate, 4).tolist(), np.round(table.gap, 4).tolist()
    ([0.3333, 0.6667], [0.0833, -0.1])
    """
    return ReliabilityTable.from_stats(
        BinStats.from_arrays(
            y_true, y_prob, n_bins=n_bins, strategy=strategy, sample_weight=sample_weight
        )
    )
