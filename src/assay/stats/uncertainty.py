"""The noise floor: the ECE a perfectly calibrated score would show on these very scores.

Resample y* ~ Bernoulli(p) and recompute (consistency resampling, Bröcker & Smith 2007).
Exact up to ``EXACT_RESAMPLING_ROWS`` rows; beyond, each bin's Σy* is drawn from the normal
with mean Σp and variance Σp − Σp², which needs only BinStats. The posterior of the
calibration error lives in :mod:`assay.stats.posterior`, the verdict in :mod:`assay.stats.verdict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from assay.stats.binning import assign_bins

if TYPE_CHECKING:
    from assay._validation import FloatArray
    from assay.stats.binstats import BinStats

EXACT_RESAMPLING_ROWS = 100_000
#: Uniforms drawn per block by the exact resampling (16 MB); the stream, and so the
#: result, is the same for any block size.
_RESAMPLING_BLOCK = 2_000_000


# --------------------------------------------------------------------------- noise floor
@dataclass(frozen=True)
class NoiseFloor:
    """The ECE a perfectly calibrated score would show on the same scores and bins.

    Consistency resampling (Bröcker & Smith 2007): outcomes y* ~ Bernoulli(p) are drawn
    for the very scores and the ℓ1 ECE recomputed; an observed ECE inside this band is what
    chance alone gives. With the rows (≤ 100,000 of them) each draw is exact; otherwise each
    bin's Σy* ~ N(Σp, Σp − Σp²). The p-value is (1 + #{ECE* ≥ observed}) / (1 + draws).

    Parameters
    ----------
    median : float
        Median of the resampled ECE.
    lower, upper : float
        Its 5% and 95% quantiles (the central 90% band).
    pvalue : float
        Share of resampled ECEs at least the observed one, with the +1 correction.
    draws : int
        Number of resamples.
    method : str
        "exact" (Bernoulli per row) or "normal" (per-bin normal approximation).

    References
    ----------
    .. [1] J. Bröcker and L. A. Smith, "Increasing the reliability of reliability diagrams",
       Weather and Forecasting 22(3), 2007, pp. 651–661.

    Examples
    --------
    300 leads at scores 0.2, 0.5, 0.8 in three bins of 100: chance alone moves a bin's
    rate by about sqrt(2 p(1 − p) / (π·100)), 0.032–0.040, so the floor sits near 0.03.

    >>> import numpy as np
    >>> from assay import calibration
    >>> p = np.repeat([0.2, 0.5, 0.8], 100)
    >>> y = np.concatenate([np.arange(100) < k for k in (20, 50, 80)]).astype(int)
    >>> floor = calibration(y, p).noise_floor
    >>> floor.method, floor.draws, round(floor.median, 2)
    ('exact', 1000, 0.03)
    >>> floor.pvalue  # the observed ECE is 0: every resample is at least as large
    1.0
    """

    median: float
    lower: float
    upper: float
    pvalue: float
    draws: int
    method: str  # "exact" (Bernoulli per row) or "normal" (per-bin normal approximation)

    def to_dict(self) -> dict[str, float | int | str]:
        """Return the fields as a dict."""
        return asdict(self)


def noise_floor(
    stats: BinStats,
    observed: float,
    *,
    prob: FloatArray | None = None,
    draws: int = 1000,
    seed: int = 0,
) -> NoiseFloor:
    """Consistency resampling of the l1 ECE (Bröcker & Smith 2007).

    With the row scores ``prob`` (and at most ``EXACT_RESAMPLING_ROWS`` of them) each draw is
    y*_i ~ Bernoulli(p_i); otherwise each bin's Σy* ~ N(Σp, Σp − Σp²). The p-value is
    (1 + #{ECE* ≥ observed}) / (1 + draws); the band is the central 90%.
    """
    rng = np.random.default_rng(seed)
    total = stats.total_weight
    resampled_y: FloatArray
    if prob is not None and len(prob) <= EXACT_RESAMPLING_ROWS and stats.total_count == total:
        idx = assign_bins(prob, stats.edges)
        chunk = max(1, _RESAMPLING_BLOCK // len(prob))  # draws per block of uniforms
        sums = []
        for start in range(0, draws, chunk):
            size = min(chunk, draws - start)
            outcomes = rng.random((size, len(prob))) < prob
            sums.append(np.stack([np.bincount(idx, row, stats.n_bins) for row in outcomes]))
        resampled_y = np.concatenate(sums).astype(np.float64)
        method = "exact"
    else:
        variance = np.maximum(stats.sum_p - stats.sum_p2, 0.0)
        resampled_y = stats.sum_p + np.sqrt(variance) * rng.standard_normal((draws, stats.n_bins))
        method = "normal"
    samples = np.abs(resampled_y - stats.sum_p).sum(axis=1) / total
    return NoiseFloor(
        median=float(np.median(samples)),
        lower=float(np.quantile(samples, 0.05)),
        upper=float(np.quantile(samples, 0.95)),
        pvalue=float((1 + np.sum(samples >= observed)) / (1 + draws)),
        draws=draws,
        method=method,
    )


def expected_noise_floor(stats: BinStats) -> float:
    """Closed-form approximation Σ_b (n_b/n) sqrt(2 p̄_b(1 − p̄_b) / (π n_b)) (DESIGN §5)."""
    mask = stats.nonempty
    n_b = stats.weight[mask]
    p_b = stats.sum_p[mask] / n_b
    return float(np.sum(n_b / n_b.sum() * np.sqrt(2 * p_b * (1 - p_b) / (np.pi * n_b))))
