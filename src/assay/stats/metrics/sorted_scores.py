"""Scores split by outcome and sorted once, shared by the AUC and the smooth-ECE gridding.

Sorting is the one super-linear step of a calibration report. Both consumers need only the
sorted negatives and positives: the AUC counts, for each positive, the negatives below and
tied with it; the smooth ECE needs, for any regular grid of ``size`` nodes on [0, 1], per-cell
sums of 1, p, p² over all rows and of 1, p over positives. With prefix sums those are two
binary searches per cell boundary, so each of the bisection's grid sizes costs O(size log n)
instead of a pass over the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from assay._validation import FloatArray


def _prefix(values: FloatArray) -> FloatArray:
    return np.concatenate(([0.0], np.cumsum(values)))


class SortedScores:
    """Sorted scores of the negatives and of the positives, with prefix sums of p and p²."""

    def __init__(self, labels: FloatArray, prob: FloatArray) -> None:
        """From validated binary labels (0/1) and probabilities."""
        positive = labels == 1
        self.negatives: FloatArray = np.sort(prob[~positive])
        self.positives: FloatArray = np.sort(prob[positive])
        self._groups = [
            (scores, _prefix(scores), _prefix(scores * scores))
            for scores in (self.negatives, self.positives)
        ]

    def auc(self) -> float:
        """P(p⁺ > p⁻) + ½ P(p⁺ = p⁻): negatives strictly below, and tied with, each positive."""
        below = np.searchsorted(self.negatives, self.positives, side="left")
        not_above = np.searchsorted(self.negatives, self.positives, side="right")
        u_statistic = float(below.sum()) + 0.5 * float((not_above - below).sum())
        return u_statistic / (len(self.positives) * len(self.negatives))

    def cell_sums(self, size: int) -> tuple[FloatArray, ...]:
        """Sum per cell of a regular grid on [0, 1].

        Per cell k of the grid k/(size − 1) (the last cell closed at 1): n, Σp, Σp² over all
        rows, then n and Σp over the positives.
        """
        inner = np.arange(1, size - 1) / (size - 1)
        totals = []
        for scores, sum_p, sum_p2 in self._groups:
            cut = np.concatenate(([0], np.searchsorted(scores, inner, side="left"), [len(scores)]))
            count = np.diff(cut).astype(np.float64)
            totals.append((count, np.diff(sum_p[cut]), np.diff(sum_p2[cut])))
        (n0, p0, q0), (n1, p1, q1) = totals
        return n0 + n1, p0 + p1, q0 + q1, n1, p1
