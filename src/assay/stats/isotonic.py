"""Pool-adjacent-violators with tied scores pooled first (used by CORP and recalibration)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from assay._validation import FloatArray


def isotonic_fit(
    prob: FloatArray, labels: FloatArray, weight: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """Non-decreasing least-squares fit of ``labels`` on ``prob``.

    Rows with equal scores are pooled into one weighted point before PAV, so tied scores get
    one fitted value (the CORP convention of Dimitriadis, Gneiting & Jordan 2021). Returns
    ``(fitted, (unique_scores, unique_fitted))``: the fitted value of every row, and the
    step function on the sorted unique scores.
    """
    w = np.ones_like(prob) if weight is None else weight
    unique, inverse = np.unique(prob, return_inverse=True)
    block_weight = np.bincount(inverse, weights=w, minlength=len(unique))
    block_mean = np.bincount(inverse, weights=w * labels, minlength=len(unique)) / block_weight
    from scipy.optimize import isotonic_regression  # here: `import assay` loads no scipy.optimize

    fitted = isotonic_regression(block_mean, weights=block_weight, increasing=True).x
    return fitted[inverse], np.stack((unique, fitted))
