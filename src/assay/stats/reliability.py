"""Per-bucket reliability tables: what a score promised and what happened, bin by bin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from assay._validation import FloatArray, IntArray
from assay.stats.binning import BinSpec
from assay.stats.binstats import BinStats


@dataclass(frozen=True, eq=False)
class ReliabilityTable:
    """One row per bin: edges, n, mean score p̄_b, observed rate ȳ_b and gap ȳ_b − p̄_b.

    Empty bins are kept with n = 0 and NaN means (``None`` in ``to_dict``).
    """

    lower: FloatArray
    upper: FloatArray
    n: IntArray
    positives: FloatArray
    mean_score: FloatArray
    observed_rate: FloatArray

    @property
    def gap(self) -> FloatArray:
        """Observed minus promised: negative where the score over-promises."""
        return self.observed_rate - self.mean_score

    @classmethod
    def from_stats(cls, stats: BinStats) -> ReliabilityTable:
        return cls(
            stats.edges[:-1].copy(),
            stats.edges[1:].copy(),
            stats.count.copy(),
            stats.sum_y.copy(),
            stats.mean_prob,
            stats.observed_rate,
        )

    def __len__(self) -> int:
        return len(self.n)

    def to_dict(self) -> dict[str, list[Any]]:
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
    """Reliability table of a binary score on the given binning (see :mod:`assay.stats.binning`)."""
    return ReliabilityTable.from_stats(
        BinStats.from_arrays(
            y_true, y_prob, n_bins=n_bins, strategy=strategy, sample_weight=sample_weight
        )
    )
