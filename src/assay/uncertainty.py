"""How sure are we? The posterior of the binned ECE, the noise floor, and the verdict.

**Posterior (DESIGN §5, with a spike at τ = 0).** A hierarchical logit-gap model on the
audit bins:

    k_b ~ Binomial(n_b, θ_b),  logit θ_b = logit(p̄_b) + δ_b,  δ_b ~ N(μ, τ²),
    μ ~ N(0, mu_scale²),  τ = 0 with probability π0, else τ ~ HalfNormal(tau_scale),
    w ~ Dirichlet(n_1, ..., n_B),  ECE_B = Σ_b w_b |θ_b − p̄_b|.

A model with independent Beta posteriors per bin never puts mass near ECE = 0, because the
absolute value folds noise into bias; pooling the gaps through (μ, τ) lets a calibrated score
earn a posterior near 0. **Departure from DESIGN, with reason:** DESIGN's prior is the
half-normal alone. Its mass on moderate τ keeps P(ECE ≤ 5 points) below 0.95 for too many
calibrated scores at n = 1000 (162 of 200 seeded replicates were "calibrated"; the issue asks
for 85%). The spike — prior probability π0 = 0.4 that every bin shares one gap μ, i.e. the
score is right up to a common shift — is a Bayesian model comparison between "one shift" and
"bin-specific gaps": it raises calibrated recognition to 182/200 while slope-0.6 scores are
still caught (96/100 at n = 300) and the 90% intervals keep 89–97% coverage (tests).

The hyper-posterior of (μ, τ) is evaluated on a grid: for each grid point and bin,
m_b(μ, τ) = ∫ Bin(k_b | n_b, θ_b(δ)) N(δ | μ, τ²) dδ is integrated by adaptive
Gauss–Hermite quadrature (centred at the integrand's mode, scaled by its curvature; the
integrand is log-concave); at τ = 0 it is Bin(k_b | n_b, θ_b(μ)). Draws of (μ, τ) come from
the grid, δ_b | μ, τ, k_b by inverse CDF on a local grid around the same mode (δ_b = μ on the
spike), and w from the Dirichlet. Cost is O(bins × grid × draws), independent of n.

**Noise floor.** The ECE a perfectly calibrated score would show on these very scores:
resample y* ~ Bernoulli(p) and recompute (consistency resampling, Bröcker & Smith 2007).
Exact up to ``EXACT_RESAMPLING_ROWS`` rows; beyond, each bin's Σy* is drawn from the normal
with mean Σp and variance Σp − Σp², which needs only BinStats.

**Verdict.** "not yet" if n < 100 or fewer than 10 positives or negatives; "calibrated" if
P(ECE ≤ tolerance) ≥ probability; "miscalibrated" if P(ECE > tolerance) ≥ probability;
otherwise "not yet". Each verdict carries its reason in words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import expit, logit, logsumexp

from assay._validation import AssayInputError, FloatArray
from assay.binning import assign_bins
from assay.binstats import BinStats

MIN_ROWS = 100
MIN_CLASS_COUNT = 10
EXACT_RESAMPLING_ROWS = 100_000
#: Guard for logit(p̄_b) when every score in a bin is exactly 0 or 1.
_LOGIT_EPS = 1e-9


@dataclass(frozen=True)
class PosteriorSettings:
    """Priors and grid sizes of the hierarchical logit-gap model.

    ``tau_zero_mass`` is the prior probability of τ = 0 (one common gap for all bins); the
    other settings are DESIGN's defaults.
    """

    mu_scale: float = 1.0
    tau_scale: float = 0.5
    tau_zero_mass: float = 0.4
    mu_points: int = 61
    tau_points: int = 40
    quadrature_nodes: int = 15
    draws: int = 4000

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class EcePosterior:
    """Posterior summary of ECE_B, and per-bin posterior bands of the true rate θ_b."""

    median: float
    lower: float
    upper: float
    upper_95: float
    prob_within_tolerance: float
    tolerance: float
    credibility: float
    rate_median: FloatArray
    rate_lower: FloatArray
    rate_upper: FloatArray
    samples: FloatArray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "lower": self.lower,
            "upper": self.upper,
            "upper_95": self.upper_95,
            "prob_within_tolerance": self.prob_within_tolerance,
            "tolerance": self.tolerance,
            "credibility": self.credibility,
            "rate_median": _nan_to_none(self.rate_median),
            "rate_lower": _nan_to_none(self.rate_lower),
            "rate_upper": _nan_to_none(self.rate_upper),
        }


def _nan_to_none(values: FloatArray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def _binomial_loglik(k: FloatArray, n: FloatArray, eta: FloatArray) -> FloatArray:
    """log Bin(k | n, expit(eta)) up to the constant log C(n, k): k·η − n·log(1 + e^η)."""
    return k * eta - n * np.logaddexp(0.0, eta)


def _integrand_mode(
    k: FloatArray, n: FloatArray, base: FloatArray, mu: FloatArray, tau: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Mode and curvature scale of δ ↦ log Bin(k | n, expit(base + δ)) + log N(δ | μ, τ²).

    Newton's method on a strictly concave function, started at μ; returns (mode, 1/sqrt(−f'')).
    """
    delta = np.broadcast_to(mu, np.broadcast_shapes(mu.shape, k.shape, tau.shape)).copy()
    precision = 1.0 / tau**2
    for _ in range(30):
        prob = expit(base + delta)
        gradient = k - n * prob - (delta - mu) * precision
        curvature = n * prob * (1 - prob) + precision
        step = gradient / curvature
        delta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    prob = expit(base + delta)
    return delta, 1.0 / np.sqrt(n * prob * (1 - prob) + precision)


def _normal_logpdf(x: Any, mean: Any, sd: Any) -> FloatArray:
    return -0.5 * ((x - mean) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


def _common_gap_draws(
    k: FloatArray,
    n: FloatArray,
    base: FloatArray,
    settings: PosteriorSettings,
    size: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Draws of μ given τ = 0 (every bin's gap is μ): Π_b Bin(k_b | n_b, θ_b(μ)) N(μ | 0, s²).

    Drawn by inverse CDF on a fine grid of ±8 curvature scales around the mode, not from the
    coarse hyper-grid: the common gap is pinned down by all rows at once.
    """
    mu, precision = 0.0, 1.0 / settings.mu_scale**2
    for _ in range(50):
        prob = expit(base + mu)
        step = (np.sum(k - n * prob) - mu * precision) / (np.sum(n * prob * (1 - prob)) + precision)
        mu += step
        if abs(step) < 1e-12:
            break
    prob = expit(base + mu)
    sd = 1.0 / np.sqrt(np.sum(n * prob * (1 - prob)) + precision)
    grid = mu + sd * np.linspace(-8.0, 8.0, 2001)
    log_density = _binomial_loglik(k, n, base + grid[:, None]).sum(axis=1) + _normal_logpdf(
        grid, 0.0, settings.mu_scale
    )
    cdf = np.cumsum(np.exp(log_density - log_density.max()))
    position = np.searchsorted(cdf / cdf[-1], rng.random(size))
    jitter = rng.random(size) - 0.5
    draws: FloatArray = grid[position] + jitter * (grid[1] - grid[0])
    return draws


def _hyper_grid(
    k: FloatArray, n: FloatArray, base: FloatArray, settings: PosteriorSettings
) -> tuple[FloatArray, FloatArray]:
    """μ and τ grids that cover where the data and the priors put mass."""
    # Smoothed per-bin gap estimates and their standard errors (finite even when k = 0 or n).
    gap = logit((k + 0.5) / (n + 1.0)) - base
    se = np.sqrt(1.0 / (k + 0.5) + 1.0 / (n - k + 0.5))
    lo = max(min(float(np.min(gap - 4 * se)), -0.5), -8.0)
    hi = min(max(float(np.max(gap + 4 * se)), 0.5), 8.0)
    mu = np.linspace(lo, hi, settings.mu_points)
    tau_max = max(4.0 * settings.tau_scale, 1.5 * float(np.ptp(gap)) if len(gap) > 1 else 0.0)
    tau = tau_max * (np.arange(1, settings.tau_points + 1) / settings.tau_points) ** 2
    return mu, tau


def ece_posterior(
    stats: BinStats,
    *,
    tolerance: float = 0.05,
    credibility: float = 0.90,
    seed: int = 0,
    settings: PosteriorSettings | None = None,
) -> EcePosterior:
    """Posterior of the binned ECE under the hierarchical logit-gap model (module docstring)."""
    settings = settings or PosteriorSettings()
    rng = np.random.default_rng(seed)
    mask = stats.nonempty
    n = stats.weight[mask]
    k = stats.sum_y[mask]
    mean_p = stats.sum_p[mask] / n
    base = logit(np.clip(mean_p, _LOGIT_EPS, 1 - _LOGIT_EPS))

    mu_grid, tau_grid = _hyper_grid(k, n, base, settings)
    mu = mu_grid[:, None, None]
    tau = tau_grid[None, :, None]
    mode, scale = _integrand_mode(k, n, base, mu, tau)  # (M, T, B)

    # Adaptive Gauss–Hermite: ∫ f(δ) dδ ≈ s Σ_j w_j e^{z_j²/2} f(mode + s z_j) (probabilists').
    nodes, weights = hermegauss(settings.quadrature_nodes)
    delta = mode[..., None] + scale[..., None] * nodes
    log_f = _binomial_loglik(k[:, None], n[:, None], base[:, None] + delta) + _normal_logpdf(
        delta, mu[..., None], tau[..., None]
    )
    log_m = logsumexp(log_f + np.log(weights) + nodes**2 / 2, axis=-1) + np.log(scale)

    # Slab: τ on the grid with half-normal weights (normalised on the grid), mass 1 − π0.
    # Spike: τ = 0, every bin shares the gap μ (a score right up to one common shift), mass π0.
    log_tau_weight = _normal_logpdf(tau_grid, 0.0, settings.tau_scale) + np.log(
        np.gradient(tau_grid)  # τ grid is not evenly spaced
    )
    log_tau_weight -= logsumexp(log_tau_weight)
    log_mu_prior = _normal_logpdf(mu_grid, 0.0, settings.mu_scale)
    slab = log_m.sum(axis=-1) + log_tau_weight[None, :] + np.log1p(-settings.tau_zero_mass)
    spike = _binomial_loglik(k, n, base + mu_grid[:, None]).sum(axis=-1) + np.log(
        settings.tau_zero_mass
    )
    log_post = np.column_stack([spike, slab]) + log_mu_prior[:, None]  # (M, 1 + T)
    cell_prob = np.exp(log_post - logsumexp(log_post)).ravel()
    cells = rng.choice(cell_prob.size, size=settings.draws, p=cell_prob)
    mu_i, column = np.unravel_index(cells, log_post.shape)
    tau_i = np.maximum(column - 1, 0)

    # δ_b | μ, τ, k_b by inverse CDF on a local grid of ±8 curvature scales around the mode.
    offsets = np.linspace(-8.0, 8.0, 161)
    draw_mode, draw_scale = mode[mu_i, tau_i], scale[mu_i, tau_i]  # (S, B)
    local = draw_mode[..., None] + draw_scale[..., None] * offsets
    log_density = _binomial_loglik(k[:, None], n[:, None], base[:, None] + local) + (
        _normal_logpdf(local, mu_grid[mu_i][:, None, None], tau_grid[tau_i][:, None, None])
    )
    density = np.exp(log_density - log_density.max(axis=-1, keepdims=True))
    cdf = np.cumsum(density, axis=-1)
    cdf /= cdf[..., -1:]
    u = rng.random(cdf.shape[:-1])
    position = (cdf < u[..., None]).sum(axis=-1)
    jitter = rng.random(position.shape) - 0.5
    delta_draws = draw_mode + draw_scale * (offsets[position] + jitter * (offsets[1] - offsets[0]))
    on_spike = column == 0
    delta_draws[on_spike] = _common_gap_draws(k, n, base, settings, int(on_spike.sum()), rng)[
        :, None
    ]

    theta = expit(base + delta_draws)
    bin_weights = rng.dirichlet(n, size=settings.draws)
    samples = np.sum(bin_weights * np.abs(theta - mean_p), axis=1)

    tail = (1 - credibility) / 2
    rate_median = np.full(stats.n_bins, np.nan)
    rate_lower, rate_upper = rate_median.copy(), rate_median.copy()
    rate_median[mask] = np.median(theta, axis=0)
    rate_lower[mask] = np.quantile(theta, tail, axis=0)
    rate_upper[mask] = np.quantile(theta, 1 - tail, axis=0)
    return EcePosterior(
        median=float(np.median(samples)),
        lower=float(np.quantile(samples, tail)),
        upper=float(np.quantile(samples, 1 - tail)),
        upper_95=float(np.quantile(samples, 0.95)),
        prob_within_tolerance=float(np.mean(samples <= tolerance)),
        tolerance=tolerance,
        credibility=credibility,
        rate_median=rate_median,
        rate_lower=rate_lower,
        rate_upper=rate_upper,
        samples=samples,
    )


# --------------------------------------------------------------------------- noise floor
@dataclass(frozen=True)
class NoiseFloor:
    """ECE of a perfectly calibrated score on the same scores and bins."""

    median: float
    lower: float
    upper: float
    pvalue: float
    draws: int
    method: str  # "exact" (Bernoulli per row) or "normal" (per-bin normal approximation)

    def to_dict(self) -> dict[str, float | int | str]:
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
        chunk = max(1, 20_000_000 // len(prob))
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


# --------------------------------------------------------------------------- verdict
def _points(value: float) -> str:
    return f"{100 * value:.1f}"


def thin_data_reason(n: int, positives: int) -> str | None:
    """Why the data are too thin for any verdict, or None when there is enough."""
    negatives = n - positives
    if n < MIN_ROWS:
        return f"not yet: only {n} resolved predictions; at least {MIN_ROWS} are needed"
    if positives < MIN_CLASS_COUNT:
        return f"not yet: only {positives} conversions; at least {MIN_CLASS_COUNT} are needed"
    if negatives < MIN_CLASS_COUNT:
        return f"not yet: only {negatives} non-conversions; at least {MIN_CLASS_COUNT} are needed"
    return None


def calibration_verdict(
    *,
    n: int,
    positives: int,
    posterior: EcePosterior | None,
    probability: float = 0.95,
) -> tuple[str, str]:
    """The verdict ("calibrated", "miscalibrated" or "not yet") and its reason in words."""
    thin = thin_data_reason(n, positives)
    if thin is not None:
        return "not yet", thin
    if posterior is None:
        raise AssayInputError("a verdict on enough data needs the ECE posterior")
    within = posterior.prob_within_tolerance
    tol = _points(posterior.tolerance)
    summary = (
        f"estimate {_points(posterior.median)} points, {posterior.credibility:.0%} interval "
        f"{_points(posterior.lower)}–{_points(posterior.upper)}"
    )
    if within >= probability:
        return "calibrated", (
            f"calibrated: the typical gap between promised and observed rates is at most {tol} "
            f"points with probability {within:.2f} ({summary})"
        )
    if 1 - within >= probability:
        return "miscalibrated", (
            f"miscalibrated: the typical gap between promised and observed rates exceeds {tol} "
            f"points with probability {1 - within:.2f} ({summary})"
        )
    return "not yet", (
        f"not yet: the evidence cannot tell; P(gap ≤ {tol} points) = {within:.2f} and "
        f"{probability:.2f} is needed either way ({summary})"
    )
