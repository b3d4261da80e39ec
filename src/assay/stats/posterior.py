"""The posterior of a score's calibration: one model, every level of the hierarchy.

**Model** (DESIGN §5, with a score-dependent gap and a spike at τ = 0). On the audit bins,

    k_b ~ Binomial(n_b, θ_b),   logit θ_b = logit(p̄_b) + δ_b,
    δ_b = μ + β·z_b + ε_b,      z_b = logit(p̄_b) − Σ_b n_b logit(p̄_b) / n,
    ε_b ~ N(0, τ²),  μ ~ N(0, mu_scale²),  β ~ N(0, beta_scale²),
    τ = 0 with probability π0, else τ ~ HalfNormal(tau_scale),
    w_b = n_b / n.

μ is the gap at the centre of the scores (calibration in the large), 1 + β the calibration
slope (logit θ = a + (1 + β)·logit p̄), ε_b what no line explains (a wiggle). **Departure from
DESIGN, with reason:** DESIGN's gaps are exchangeable (δ_b ~ N(μ, τ²)); a systematic,
score-dependent gap (a logit stretch) then looks like large τ and is shrunk toward the common
mean, so the 90% interval of a badly miscalibrated score missed the truth (0 of 10 at a
stretch of ×3, n = 10,000). With β the line carries the systematic part and the coverage
table in ``tests/test_verdicts.py`` stays within 85–95%. The spike (π0 = 0.4) is the model
"right up to a line on the logit scale", which lets a calibrated score earn a posterior near 0.
**Second departure:** the bin masses are the audited leads' own, w_b = n_b/n, not DESIGN's
Dirichlet(n_b) draws. The estimand is the calibration of the score on these leads (what the
plug-in ECE estimates, and what equal-mass bins fix by construction); Dirichlet masses added
their own noise, so the 90% interval covered a large, score-dependent ECE 97–100% of the time.

From the same draws: ECE_B = Σ_b w_b |θ_b − p̄_b| (the curve), O/E = Σ_b w_b θ_b / Σ_b w_b p̄_b
(in the large) and the slope 1 + β (weak), so every level and their joint probability of
lying within tolerance come from one posterior.

**Computation.** The spike (ε = 0) is a two-parameter logistic model with offsets: its
posterior is evaluated exactly on a 61 × 61 grid in whitened coordinates around its mode. For
each τ on a grid, the marginal likelihood of (μ, β) integrates every ε_b by adaptive
Gauss–Hermite quadrature (centred at the integrand's mode, scaled by its curvature; the
integrand is log-concave) on a grid centred and scaled by a weighted-least-squares fit of the
smoothed bin gaps. Draws pick a grid cell by its posterior mass (with uniform jitter inside the
cell) and δ_b | μ, β, τ, k_b by inverse CDF on a local grid around the same mode. Cost is
O(bins × grid × draws), independent of n.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import betaincinv, expit, logit, logsumexp

from assay.stats.tolerance import Tolerance

if TYPE_CHECKING:
    from assay._validation import FloatArray
    from assay.stats.binstats import BinStats

#: Guard for logit(p̄_b) when every score in a bin is exactly 0 or 1.
_LOGIT_EPS = 1e-9
#: Half-width of the whitened spike grid and of the slab grids (in standard deviations).
_SPIKE_HALF_WIDTH, _SLAB_HALF_WIDTH = 6.0, 5.0
#: The slab grid is scaled by this factor beyond the least-squares covariance (it is approximate).
_SLAB_WIDEN = 1.4
_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)
#: The local δ grid of the inverse-CDF draws, in curvature scales around the mode.
_GAP_OFFSETS = np.linspace(-7.0, 7.0, 71)
#: Draws per block of the inverse-CDF sampler: its (block, bins, 71) arrays stay in cache.
_DRAW_BLOCK = 32


@dataclass(frozen=True)
class PosteriorSettings:
    """Priors and grid sizes of the score-dependent logit-gap model.

    The model (module docstring): k_b ~ Binomial(n_b, θ_b) with logit θ_b = logit p̄_b + μ
    + β·z_b + ε_b, μ ~ N(0, mu_scale²), β ~ N(0, beta_scale²), ε_b ~ N(0, τ²), and τ = 0 with
    probability ``tau_zero_mass``, else τ ~ HalfNormal(tau_scale). The grid sizes trade
    accuracy for time; the cost is independent of the number of rows.

    Parameters
    ----------
    mu_scale : float, default=1.0
        Prior s.d. of μ, the log-odds gap at the centre of the scores.
    beta_scale : float, default=1.0
        Prior s.d. of β (the calibration slope is 1 + β).
    tau_scale : float, default=0.5
        Scale of the half-normal prior of τ, the bin-to-bin wiggle.
    tau_zero_mass : float, default=0.4
        Prior probability of the spike τ = 0 ("right up to a line on the logit scale").
    tau_points : int, default=16
        Points of the τ grid (denser near 0).
    hyper_points : int, default=17
        Points per axis of each slab's (μ, β) grid.
    spike_points : int, default=61
        Points per axis of the spike's (μ, β) grid.
    quadrature_nodes : int, default=9
        Adaptive Gauss–Hermite nodes per bin for integrating out ε_b.
    draws : int, default=4000
        Posterior draws.

    References
    ----------
    .. [1] T. J. Mitchell and J. J. Beauchamp, "Bayesian variable selection in linear
       regression", Journal of the American Statistical Association 83(404), 1988,
       pp. 1023–1032 (the spike-and-slab prior).
    .. [2] A. Gelman, "Prior distributions for variance parameters in hierarchical models",
       Bayesian Analysis 1(3), 2006, pp. 515–534 (the half-normal scale prior).
    .. [3] Q. Liu and D. A. Pierce, "A note on Gauss–Hermite quadrature", Biometrika 81(3),
       1994, pp. 624–629 (adaptive quadrature).

    Examples
    --------
    Fewer draws for a quick look; every setting is recorded in the report's conventions.

    >>> from assay import PosteriorSettings, calibration
    >>> quick = PosteriorSettings(draws=1000)
    >>> quick.to_dict()["draws"], quick.to_dict()["tau_zero_mass"]
    (1000, 0.4)
    >>> report = calibration([0, 1] * 60, [0.3, 0.6] * 60, settings=quick)
    >>> report.to_dict()["conventions"]["prior"]["draws"]
    1000
    """

    mu_scale: float = 1.0
    beta_scale: float = 1.0
    tau_scale: float = 0.5
    tau_zero_mass: float = 0.4
    tau_points: int = 16
    hyper_points: int = 17
    spike_points: int = 61
    quadrature_nodes: int = 9
    draws: int = 4000

    def to_dict(self) -> dict[str, float | int]:
        """Return the settings as a dict."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class EcePosterior:
    """Posterior summary of ECE_B, and per-bin posterior bands of the true rate θ_b.

    ECE_B = Σ_b (n_b/n) |θ_b − p̄_b| over the non-empty audit bins, one value per posterior
    draw of the true rates θ_b. A bin with no conversions (or only conversions) never gets a
    band tighter at that end than its own Jeffreys interval.

    Parameters
    ----------
    median : float
        Posterior median of ECE_B (the report's headline).
    lower, upper : float
        Central credible interval of mass ``credibility``.
    upper_95 : float
        The 95% posterior quantile.
    prob_within_tolerance : float
        P(ECE_B ≤ tolerance | data).
    tolerance : float
        The ECE allowed (:meth:`Tolerance.curve_limit` at the mean score).
    credibility : float
        Mass of the credible intervals.
    rate_median, rate_lower, rate_upper : ndarray of shape (B,)
        Per-bin posterior median and credible band of θ_b (NaN for empty bins).
    samples : ndarray of shape (draws,)
        The posterior draws of ECE_B.

    References
    ----------
    .. [1] B. Van Calster, D. Nieboer, Y. Vergouwe, B. De Cock, M. J. Pencina and
       E. W. Steyerberg, "A calibration hierarchy for risk models was defined: from utopia
       to empirical data", Journal of Clinical Epidemiology 74, 2016, pp. 167–176.
    .. [2] A. Gelman, J. B. Carlin, H. S. Stern, D. B. Dunson, A. Vehtari and D. B. Rubin,
       Bayesian Data Analysis, 3rd ed., CRC Press, 2013 (hierarchical binomial models,
       grid approximation).

    Examples
    --------
    Rates 35%, 50%, 65% where 20%, 50%, 80% were promised: the true ECE of these bins is
    0.1, twice the 0.05 allowed at a mean score of 0.5.

    >>> import numpy as np
    >>> from assay import PosteriorSettings, calibration
    >>> p = np.repeat([0.2, 0.5, 0.8], 100)
    >>> y = np.concatenate([np.arange(100) < k for k in (35, 50, 65)]).astype(int)
    >>> report = calibration(y, p, settings=PosteriorSettings(draws=1000))
    >>> post = report.posterior
    >>> post.tolerance, post.lower < 0.1 < post.upper, post.prob_within_tolerance < 0.05
    (0.05, True, True)
    >>> np.round(post.rate_median, 2).tolist()  # the bin [0, 0.2) is empty
    [nan, 0.35, 0.5, 0.65]
    """

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
        """Return the summary as a JSON-safe dict (NaN written as None; no samples)."""
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


@dataclass(frozen=True, eq=False)
class LevelPosterior:
    """Posterior of one level's quantity (O/E ratio or slope) against its tolerance band.

    In the large, O/E = Σ_b n_b θ_b / Σ_b n_b p̄_b; weak, the calibration slope 1 + β. Both
    come from the same draws as the ECE.

    Parameters
    ----------
    name : str
        "in the large (O/E)" or "slope".
    median : float
        Posterior median.
    lower, upper : float
        Central credible interval.
    band : tuple of (float, float)
        The tolerance band, e.g. (0.8, 1.25).
    prob_below, prob_above : float
        Posterior probability below and above the band.
    samples : ndarray of shape (draws,)
        The posterior draws.

    References
    ----------
    .. [1] B. Van Calster, D. Nieboer, Y. Vergouwe, B. De Cock, M. J. Pencina and
       E. W. Steyerberg, "A calibration hierarchy for risk models was defined: from utopia
       to empirical data", Journal of Clinical Epidemiology 74, 2016, pp. 167–176.
    .. [2] A. Gelman, J. B. Carlin, H. S. Stern, D. B. Dunson, A. Vehtari and D. B. Rubin,
       Bayesian Data Analysis, 3rd ed., CRC Press, 2013 (hierarchical binomial models,
       grid approximation).

    Examples
    --------
    >>> import numpy as np
    >>> from assay import PosteriorSettings, calibration
    >>> p = np.repeat([0.2, 0.5, 0.8], 100)
    >>> y = np.concatenate([np.arange(100) < k for k in (35, 50, 65)]).astype(int)
    >>> report = calibration(y, p, settings=PosteriorSettings(draws=1000))
    >>> ratio = report.levels.ratio
    >>> ratio.name, ratio.band, abs(ratio.median - 1) < 0.05
    ('in the large (O/E)', (0.8, 1.25), True)
    >>> round(ratio.prob_below + ratio.prob_within + ratio.prob_above, 12)
    1.0
    """

    name: str
    median: float
    lower: float
    upper: float
    band: tuple[float, float]
    prob_below: float
    prob_above: float
    samples: FloatArray = field(repr=False)

    @property
    def prob_within(self) -> float:
        """Posterior probability inside the band, 1 − below − above."""
        return 1.0 - self.prob_below - self.prob_above

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-safe dict (no samples)."""
        return {
            "name": self.name,
            "median": self.median,
            "lower": self.lower,
            "upper": self.upper,
            "band": list(self.band),
            "prob_below": self.prob_below,
            "prob_above": self.prob_above,
            "prob_within": self.prob_within,
        }


@dataclass(frozen=True, eq=False)
class CalibrationPosterior:
    """Every level of the hierarchy from one set of draws, and their joint probability.

    ``prob_all_within`` is the share of draws in which the ECE, the O/E ratio and the slope
    all lie within tolerance at once; the verdict "calibrated" needs it to reach the
    required probability.

    Parameters
    ----------
    ece : EcePosterior
        The curve level.
    ratio : LevelPosterior
        In the large (observed/expected).
    slope : LevelPosterior or None
        The weak level; None when all scores fall in one bin.
    prob_all_within : float
        Joint posterior probability that every level lies within tolerance.

    References
    ----------
    .. [1] B. Van Calster, D. Nieboer, Y. Vergouwe, B. De Cock, M. J. Pencina and
       E. W. Steyerberg, "A calibration hierarchy for risk models was defined: from utopia
       to empirical data", Journal of Clinical Epidemiology 74, 2016, pp. 167–176.
    .. [2] A. Gelman, J. B. Carlin, H. S. Stern, D. B. Dunson, A. Vehtari and D. B. Rubin,
       Bayesian Data Analysis, 3rd ed., CRC Press, 2013 (hierarchical binomial models,
       grid approximation).

    Examples
    --------
    >>> import numpy as np
    >>> from assay import PosteriorSettings, calibration
    >>> p = np.repeat([0.2, 0.5, 0.8], 100)
    >>> y = np.concatenate([np.arange(100) < k for k in (35, 50, 65)]).astype(int)
    >>> report = calibration(y, p, settings=PosteriorSettings(draws=1000))
    >>> levels = report.levels
    >>> levels.slope.upper < 0.8  # over-confident: the slope lies credibly below 0.8
    True
    >>> levels.prob_all_within <= min(levels.ratio.prob_within, levels.slope.prob_within)
    True
    """

    ece: EcePosterior
    ratio: LevelPosterior
    slope: LevelPosterior | None  # None when all scores fall in one bin (no slope to judge)
    prob_all_within: float

    def to_dict(self) -> dict[str, Any]:
        """Return the ratio and slope levels and the joint probability as a JSON-safe dict."""
        return {
            "ratio": self.ratio.to_dict(),
            "slope": None if self.slope is None else self.slope.to_dict(),
            "prob_all_within": self.prob_all_within,
        }


def _nan_to_none(values: FloatArray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def _binomial_loglik(k: FloatArray, n: FloatArray, eta: FloatArray) -> FloatArray:
    """Return log Bin(k | n, expit(eta)) up to the constant log C(n, k).

    That is k·η − n·log(1 + e^η), with log(1 + e^η) = max(η, 0) + log1p(e^−|η|) (stable,
    cheaper than logaddexp). ``eta`` carries the full shape; the temporaries are reused in place.
    """
    softplus = np.abs(eta)
    np.negative(softplus, out=softplus)
    np.exp(softplus, out=softplus)
    np.log1p(softplus, out=softplus)
    softplus += np.maximum(eta, 0.0)
    softplus *= n
    loglik: FloatArray = k * eta
    loglik -= softplus
    return loglik


def _normal_logpdf(x: Any, mean: Any, sd: Any) -> FloatArray:
    """Return log N(x | mean, sd²) = −((x − mean)/sd)²/2 − log sd − log(2π)/2.

    ``x − mean`` carries the full shape; one temporary, reused in place.
    """
    z: FloatArray = np.subtract(x, mean)
    z /= sd
    np.square(z, out=z)
    z *= -0.5
    z -= np.log(sd)
    z -= _HALF_LOG_2PI
    return z


def _integrand_mode(
    k: FloatArray, n: FloatArray, base: FloatArray, centre: FloatArray, tau: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Mode and curvature scale of δ ↦ log Bin(k | n, expit(base + δ)) + log N(δ | c, τ²).

    Newton's method on a strictly concave function, started at the precision-weighted mean of
    c and the bin's smoothed gap (the normal approximation's answer); returns
    (mode, 1/sqrt(−f'')). The last two axes of ``centre`` are one problem (points × bins);
    each index of any axes before them is a problem of its own that stops when its own steps
    fall below 1e-9, so a batch gives every member its one-at-a-time answer bit for bit.
    """
    precision = 1.0 / tau**2
    gap = logit((k + 0.5) / (n + 1.0)) - base
    information = 1.0 / (1.0 / (k + 0.5) + 1.0 / (n - k + 0.5))
    delta = np.asarray((gap * information + centre * precision) / (information + precision))
    delta = np.broadcast_to(delta, np.broadcast_shapes(delta.shape, k.shape)).copy()
    done = np.zeros(delta.shape[:-2], dtype=bool)
    for _ in range(30):
        prob = expit(base + delta)
        gradient = k - n * prob - (delta - centre) * precision
        curvature = n * prob * (1 - prob) + precision
        step = gradient / curvature
        step[done] = 0.0
        delta += step
        done |= np.max(np.abs(step), axis=(-2, -1)) < 1e-9
        if done.all():
            break
    prob = expit(base + delta)
    return delta, 1.0 / np.sqrt(n * prob * (1 - prob) + precision)


@dataclass(frozen=True)
class _Bins:
    """The non-empty audit bins in the model's terms."""

    k: FloatArray
    n: FloatArray
    mean_p: FloatArray
    base: FloatArray  # logit p̄_b
    z: FloatArray  # centred logit p̄_b (zeros when there is one bin)

    @property
    def design(self) -> FloatArray:
        return np.column_stack((np.ones_like(self.z), self.z))

    @property
    def has_slope(self) -> bool:
        return len(self.z) > 1 and float(np.ptp(self.z)) > 1e-9


def _bins(stats: BinStats) -> _Bins:
    mask = stats.nonempty
    n = stats.weight[mask]
    mean_p = stats.sum_p[mask] / n
    base = logit(np.clip(mean_p, _LOGIT_EPS, 1 - _LOGIT_EPS))
    z = base - np.sum(n * base) / np.sum(n)
    if len(z) < 2 or float(np.ptp(z)) <= 1e-9:
        z = np.zeros_like(z)
    return _Bins(stats.sum_y[mask], n, mean_p, base, z)


def _log_prior(mu: FloatArray, beta: FloatArray, settings: PosteriorSettings) -> FloatArray:
    return _normal_logpdf(mu, 0.0, settings.mu_scale) + _normal_logpdf(
        beta, 0.0, settings.beta_scale
    )


@dataclass(frozen=True)
class _Grid:
    """Points (μ, β) of one grid, their log posterior mass and the cell half-steps for jitter."""

    points: FloatArray  # (G, 2)
    log_mass: FloatArray  # (G,)
    transform: FloatArray  # whitened → (μ, β)
    step: float  # cell width in whitened coordinates


def _whitened_grid(
    centre: FloatArray, covariance: FloatArray, half_width: float, points: int
) -> tuple[FloatArray, FloatArray, float, float]:
    """(μ, β) points on a square grid in whitened coordinates; log of each cell's area."""
    transform = np.asarray(np.linalg.cholesky(covariance), dtype=np.float64)
    axis = np.linspace(-half_width, half_width, points)
    step = float(axis[1] - axis[0])
    u = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    log_area = float(np.log(abs(np.linalg.det(transform)))) + 2 * np.log(step)
    return centre + u @ transform.T, transform, step, log_area


def _spike_grid(bins: _Bins, settings: PosteriorSettings) -> _Grid:
    """τ = 0: the exact posterior of (μ, β) of the logistic model with offsets logit p̄_b."""
    x = bins.design
    prior_precision = np.diag([settings.mu_scale**-2, settings.beta_scale**-2])
    theta = np.zeros(2)
    for _ in range(50):
        prob = expit(bins.base + x @ theta)
        gradient = x.T @ (bins.k - bins.n * prob) - prior_precision @ theta
        hessian = x.T @ (x * (bins.n * prob * (1 - prob))[:, None]) + prior_precision
        step = np.linalg.solve(hessian, gradient)
        theta = theta + step
        if float(np.max(np.abs(step))) < 1e-12:
            break
    prob = expit(bins.base + x @ theta)
    hessian = x.T @ (x * (bins.n * prob * (1 - prob))[:, None]) + prior_precision
    covariance = np.asarray(np.linalg.inv(hessian), dtype=np.float64)
    points, transform, step_u, log_area = _whitened_grid(
        theta, covariance, _SPIKE_HALF_WIDTH, settings.spike_points
    )
    eta = bins.base + points @ x.T  # (G, B)
    log_post = _binomial_loglik(bins.k, bins.n, eta).sum(axis=1) + _log_prior(
        points[:, 0], points[:, 1], settings
    )
    log_mass = log_post + log_area + np.log(settings.tau_zero_mass)
    return _Grid(points, log_mass, transform, step_u)


def _tau_grid(bins: _Bins, settings: PosteriorSettings) -> tuple[FloatArray, FloatArray]:
    """τ grid points (denser near 0) and their normalised half-normal log weights."""
    gap = logit((bins.k + 0.5) / (bins.n + 1.0)) - bins.base
    tau_max = max(4.0 * settings.tau_scale, 1.5 * float(np.ptp(gap)) if len(gap) > 1 else 0.0)
    tau = tau_max * (np.arange(1, settings.tau_points + 1) / settings.tau_points) ** 2
    log_weight = _normal_logpdf(tau, 0.0, settings.tau_scale) + np.log(np.gradient(tau))
    return tau, log_weight - logsumexp(log_weight)


def _slab_grids(bins: _Bins, taus: FloatArray, settings: PosteriorSettings) -> list[_Grid]:
    """Marginal posterior mass of (μ, β) given each τ, on a grid around a least-squares fit.

    The grids' geometry is 2 × 2 algebra per τ and the Newton modes of every τ run as one
    batch (each τ's numbers equal to computing it alone); the quadrature runs per τ, so its
    (point, bin, node) arrays stay in cache.
    """
    x = bins.design
    gap = logit((bins.k + 0.5) / (bins.n + 1.0)) - bins.base
    geometry = []
    for tau in taus:
        variance = 1.0 / (bins.k + 0.5) + 1.0 / (bins.n - bins.k + 0.5) + tau**2
        precision = x.T @ (x / variance[:, None]) + np.diag(
            [settings.mu_scale**-2, settings.beta_scale**-2]
        )
        covariance = np.asarray(np.linalg.inv(precision), dtype=np.float64)
        centre: FloatArray = covariance @ (x.T @ (gap / variance))
        geometry.append(
            _whitened_grid(
                centre, covariance * _SLAB_WIDEN**2, _SLAB_HALF_WIDTH, settings.hyper_points
            )
        )
    line = np.stack([points @ x.T for points, *_ in geometry])  # (T, G, B): μ + β z_b
    tau_axis = np.asarray(taus, dtype=np.float64)[:, None, None]
    mode, scale = _integrand_mode(bins.k, bins.n, bins.base, line, tau_axis)
    nodes, weights = hermegauss(settings.quadrature_nodes)
    log_node_weight = np.log(weights) + nodes**2 / 2
    grids = []
    for tau, (points, transform, step_u, log_area), mode_t, scale_t, line_t in zip(
        taus, geometry, mode, scale, line, strict=True
    ):
        # Adaptive Gauss–Hermite: ∫ f(δ) dδ ≈ s Σ_j w_j e^{z_j²/2} f(mode + s z_j).
        delta = mode_t[..., None] + scale_t[..., None] * nodes
        terms = _binomial_loglik(bins.k[:, None], bins.n[:, None], bins.base[:, None] + delta)
        terms += _normal_logpdf(delta, line_t[..., None], tau)
        terms += log_node_weight
        top = terms.max(axis=-1)
        terms -= top[..., None]
        log_m = top + np.log(np.exp(terms, out=terms).sum(axis=-1)) + np.log(scale_t)
        log_mass = log_m.sum(axis=1) + _log_prior(points[:, 0], points[:, 1], settings) + log_area
        grids.append(_Grid(points, log_mass, transform, step_u))
    return grids


def _draw_gaps(
    bins: _Bins,
    line: FloatArray,
    tau: FloatArray,
    rng: np.random.Generator,
) -> FloatArray:
    """δ_b | line_b, τ, k_b by inverse CDF on a local grid of ±7 curvature scales (S, B).

    The Newton modes are found for all draws at once; the 71-point CDFs (the only arrays of
    size draws × bins × 71) are built ``_DRAW_BLOCK`` draws at a time with the same arithmetic,
    so the draws do not depend on the block size and the memory does not grow with the draws.
    """
    mode, scale = _integrand_mode(bins.k, bins.n, bins.base, line, tau[:, None])
    uniform = rng.random(mode.shape)
    position = np.empty(mode.shape, dtype=np.intp)
    for start in range(0, len(mode), _DRAW_BLOCK):
        block = slice(start, start + _DRAW_BLOCK)
        position[block] = _cdf_position(
            bins, mode[block], scale[block], line[block], tau[block], uniform[block]
        )
    jitter = rng.random(position.shape) - 0.5
    step = _GAP_OFFSETS[1] - _GAP_OFFSETS[0]
    draws: FloatArray = mode + scale * (_GAP_OFFSETS[position] + jitter * step)
    return draws


def _cdf_position(
    bins: _Bins,
    mode: FloatArray,
    scale: FloatArray,
    line: FloatArray,
    tau: FloatArray,
    uniform: FloatArray,
) -> np.ndarray:
    """Per draw and bin, the number of local grid points whose CDF lies below the uniform."""
    local = mode[..., None] + scale[..., None] * _GAP_OFFSETS
    cdf = _binomial_loglik(bins.k[:, None], bins.n[:, None], bins.base[:, None] + local)
    cdf += _normal_logpdf(local, line[..., None], tau[:, None, None])  # log density
    cdf -= cdf.max(axis=-1, keepdims=True)
    np.cumsum(np.exp(cdf, out=cdf), axis=-1, out=cdf)
    cdf /= cdf[..., -1:]
    below: np.ndarray = (cdf < uniform[..., None]).sum(axis=-1)
    return below


def _level(
    name: str, samples: FloatArray, band: tuple[float, float], credibility: float
) -> LevelPosterior:
    tail = (1 - credibility) / 2
    return LevelPosterior(
        name=name,
        median=float(np.median(samples)),
        lower=float(np.quantile(samples, tail)),
        upper=float(np.quantile(samples, 1 - tail)),
        band=band,
        prob_below=float(np.mean(samples < band[0])),
        prob_above=float(np.mean(samples > band[1])),
        samples=samples,
    )


def calibration_posterior(
    stats: BinStats,
    *,
    tolerance: Tolerance | None = None,
    credibility: float = 0.90,
    seed: int = 0,
    settings: PosteriorSettings | None = None,
) -> CalibrationPosterior:
    """Posterior of the ECE, the O/E ratio and the slope under the model in the module docs."""
    tolerance = tolerance or Tolerance()
    settings = settings or PosteriorSettings()
    rng = np.random.default_rng(seed)
    bins = _bins(stats)

    tau_grid, log_tau_weight = _tau_grid(bins, settings)
    grids = [_spike_grid(bins, settings)]
    for slab, log_weight in zip(_slab_grids(bins, tau_grid, settings), log_tau_weight, strict=True):
        extra = log_weight + np.log1p(-settings.tau_zero_mass)
        grids.append(_Grid(slab.points, slab.log_mass + extra, slab.transform, slab.step))
    sizes = np.array([len(g.log_mass) for g in grids])
    log_mass = np.concatenate([g.log_mass for g in grids])
    cell_prob = np.exp(log_mass - logsumexp(log_mass))
    cells = np.sort(rng.choice(cell_prob.size, size=settings.draws, p=cell_prob))
    which = np.searchsorted(np.cumsum(sizes), cells, side="right")
    within = cells - np.concatenate(([0], np.cumsum(sizes)))[which]

    hyper = np.empty((settings.draws, 2))
    for g in np.unique(which):
        chosen = which == g
        grid = grids[g]
        jitter = (rng.random((int(chosen.sum()), 2)) - 0.5) * grid.step
        hyper[chosen] = grid.points[within[chosen]] + jitter @ grid.transform.T
    tau_draws = np.concatenate(([0.0], tau_grid))[which]
    line = hyper @ bins.design.T  # (S, B)
    delta = line.copy()
    on_slab = which > 0
    delta[on_slab] = _draw_gaps(bins, line[on_slab], tau_draws[on_slab], rng)

    theta = expit(bins.base + delta)
    weights = bins.n / bins.n.sum()
    ece = np.abs(theta - bins.mean_p) @ weights
    ratio = (theta @ weights) / float(bins.mean_p @ weights)
    slope = 1.0 + hyper[:, 1]
    curve_limit = tolerance.curve_limit(float(stats.sum_p.sum() / stats.total_weight))
    ece_within = ece <= curve_limit
    ratio_level = _level("in the large (O/E)", ratio, tolerance.ratio_band, credibility)
    slope_level = (
        _level("slope", slope, tolerance.slope_band, credibility) if bins.has_slope else None
    )
    joint = ece_within & (ratio >= tolerance.ratio_band[0]) & (ratio <= tolerance.ratio_band[1])
    if slope_level is not None:
        joint &= (slope >= tolerance.slope_band[0]) & (slope <= tolerance.slope_band[1])
    return CalibrationPosterior(
        ece=_ece_summary(stats, ece, theta, curve_limit, credibility),
        ratio=ratio_level,
        slope=slope_level,
        prob_all_within=float(np.mean(joint)),
    )


def _ece_summary(
    stats: BinStats, samples: FloatArray, theta: FloatArray, limit: float, credibility: float
) -> EcePosterior:
    tail = (1 - credibility) / 2
    mask = stats.nonempty
    rate_median = np.full(stats.n_bins, np.nan)
    rate_lower, rate_upper = rate_median.copy(), rate_median.copy()
    rate_median[mask] = np.median(theta, axis=0)
    # A bin with no conversions (or only conversions) never gets a band tighter at that end
    # than its own Jeffreys interval: its data alone cannot place the rate closer to 0 (or 1).
    k, n = stats.sum_y[mask], stats.weight[mask]
    # Beta(k + ½, n − k + ½) quantiles: betaincinv is what scipy.stats.beta.ppf calls
    own_lower, own_upper = betaincinv(k + 0.5, n - k + 0.5, np.array([[tail], [1 - tail]]))
    lower, upper = np.quantile(theta, tail, axis=0), np.quantile(theta, 1 - tail, axis=0)
    rate_lower[mask] = np.where(k >= n, np.minimum(lower, own_lower), lower)
    rate_upper[mask] = np.where(k <= 0, np.maximum(upper, own_upper), upper)
    return EcePosterior(
        median=float(np.median(samples)),
        lower=float(np.quantile(samples, tail)),
        upper=float(np.quantile(samples, 1 - tail)),
        upper_95=float(np.quantile(samples, 0.95)),
        prob_within_tolerance=float(np.mean(samples <= limit)),
        tolerance=limit,
        credibility=credibility,
        rate_median=rate_median,
        rate_lower=rate_lower,
        rate_upper=rate_upper,
        samples=samples,
    )
