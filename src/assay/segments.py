"""Small segments with skepticism: empirical-Bayes shrinkage of segment rates.

Model (DESIGN §5): k_j ~ Binomial(n_j, θ_j), θ_j ~ Beta(μM, (1 − μ)M). The posterior of a
segment's rate is Beta(μM + k_j, (1 − μ)M + n_j − k_j): its mean is the *shrunken* rate, pulled
toward μ with weight B_j = M / (M + n_j); the raw rate k_j / n_j is the optimistic number.
The effective sample size reported is n_j + M (the posterior Beta's α + β).

Fitting (μ, M):

* ``"grid"`` (default, full Bayes): μ ~ U(0, 1) and ρ = 1 / (M + 1) ~ U(0, 1) on a midpoint grid;
  the beta-binomial marginal likelihood is evaluated at every point and the segment posteriors
  are mixed over the grid by sampling (seeded). Stays sane in degenerate cases.
* ``"mle"``: maximum marginal likelihood (SciPy), M capped at ``M_CAP`` when the data show no
  spread between segments.
* ``"moments"``: μ̂ = Σk/Σn and ρ̂ from the weighted between-segment variance,
  ρ̂ = (S/(μ̂(1−μ̂)) − (J − 1)) / (N − Σn_j²/N − (J − 1)) with S = Σ n_j (r_j − μ̂)², floored at 0.

Degenerate cases have fixed rules (reported in ``rule``): segments under ``min_size`` are pooled
into "other" before the fit; one segment cannot be pooled (Jeffreys interval of its own rate);
with two segments, or all outcomes 0 or all 1, "mle" and "moments" hand over to the grid.

Verdict per segment against the reference (the overall rate unless given): "not yet" if
n_j < 30, the interval is wider than 0.20, or the segment is mostly prior (n_j/(n_j + M) < ½);
"above" / "below" if the interval excludes the reference; otherwise "not yet" (it cannot be
told from the reference yet).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import betaln, expit, gammaln, logit
from scipy.stats import beta as beta_dist
from scipy.stats import binom, chi2, gamma, norm

from assay._validation import (
    FloatArray,
    check_binary_inputs,
    check_binary_labels,
    check_choice,
    check_same_length,
)
from assay.calibration import calibration

METHODS = ("grid", "mle", "moments")
M_CAP = 1e6
GRID_POINTS = 120
DRAWS = 4000
MIN_VERDICT_SIZE = 30
MAX_INTERVAL_WIDTH = 0.20
OTHER = "other"


@dataclass(frozen=True)
class SegmentRow:
    segment: str
    n: int
    conversions: int
    raw_rate: float
    shrunken_rate: float
    lower: float
    upper: float
    shrinkage: float | None  # B_j = M / (M + n_j); None when nothing is pooled
    effective_n: float
    verdict: str
    reason: str
    pooled_from: list[str]  # labels pooled into "other" (empty otherwise)


@dataclass(frozen=True)
class SegmentRates:
    rows: list[SegmentRow]
    method: str
    mu: float
    concentration: float | None  # M (None when a single segment cannot be pooled)
    reference: float
    credibility: float
    rule: str | None
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = [asdict(r) for r in self.rows]
        return data


def normalise_labels(values: Any) -> tuple[np.ndarray, list[str]]:
    """Casefold and strip labels; say which distinct spellings were merged."""
    raw = np.asarray(
        values.to_numpy(zero_copy_only=False) if hasattr(values, "to_numpy") else values,
        dtype=object,
    )
    cleaned = np.array(
        ["(missing)" if v is None else str(v).strip().casefold() for v in raw], dtype=object
    )
    notes = []
    for label in sorted(set(cleaned.tolist())):
        spellings = sorted(
            {str(v) for v, c in zip(raw, cleaned, strict=True) if c == label and v is not None}
        )
        if len(spellings) > 1:
            notes.append(f"merged {', '.join(repr(s) for s in spellings)} into {label!r}")
    return cleaned, notes


def _pool_small(labels: np.ndarray, min_size: int) -> tuple[np.ndarray, list[str]]:
    names, counts = np.unique(labels, return_counts=True)
    small = names[counts < min_size]
    if len(small) == 0 or len(small) == len(names):
        return labels, []
    pooled = np.where(np.isin(labels, small), OTHER, labels)
    return pooled, [str(s) for s in small]


def _betabinom_loglik(k: FloatArray, n: FloatArray, a: Any, b: Any) -> Any:
    """Σ_j log BetaBinomial(k_j | n_j, a, b), without the binomial coefficients (constant)."""
    return np.sum(betaln(k + a, n - k + b) - betaln(a, b), axis=-1)


def _fit_mle(k: FloatArray, n: FloatArray) -> tuple[float, float]:
    def negative(params: FloatArray) -> float:
        mu, m = expit(params[0]), np.exp(params[1])
        return -float(_betabinom_loglik(k, n, mu * m, (1 - mu) * m))

    start = np.array([logit(np.clip(k.sum() / n.sum(), 1e-3, 1 - 1e-3)), np.log(10.0)])
    result = minimize(
        negative,
        start,
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000},
    )
    return float(expit(result.x[0])), float(min(np.exp(result.x[1]), M_CAP))


def _fit_moments(k: FloatArray, n: FloatArray) -> tuple[float, float]:
    total = n.sum()
    mu = float(k.sum() / total)
    spread = float(np.sum(n * (k / n - mu) ** 2))
    j = len(n)
    denominator = total - np.sum(n**2) / total - (j - 1)
    rho = (spread / (mu * (1 - mu)) - (j - 1)) / denominator if denominator > 0 else 0.0
    rho = min(max(rho, 0.0), 1 - 1e-9)
    return mu, M_CAP if rho == 0 else float(min(1 / rho - 1, M_CAP))


def _grid_draws(
    k: FloatArray, n: FloatArray, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Posterior draws of (μ, M, θ_j) under μ ~ U(0,1), ρ ~ U(0,1) on a midpoint grid."""
    centres = (np.arange(GRID_POINTS) + 0.5) / GRID_POINTS
    mu, rho = np.meshgrid(centres, centres, indexing="ij")
    m = 1 / rho - 1
    a, b = (mu * m)[..., None], ((1 - mu) * m)[..., None]
    log_post = _betabinom_loglik(k, n, a, b)
    weights = np.exp(log_post - log_post.max()).ravel()
    cells = rng.choice(weights.size, size=DRAWS, p=weights / weights.sum())
    mu_s, m_s = mu.ravel()[cells], m.ravel()[cells]
    theta = rng.beta(mu_s[:, None] * m_s[:, None] + k, (1 - mu_s[:, None]) * m_s[:, None] + n - k)
    return mu_s, m_s, theta


def _verdict(
    n: int, lower: float, upper: float, data_share: float, reference: float
) -> tuple[str, str]:
    if n < MIN_VERDICT_SIZE:
        return "not yet", f"not yet: only {n} leads; at least {MIN_VERDICT_SIZE} are needed"
    if upper - lower > MAX_INTERVAL_WIDTH:
        return "not yet", f"not yet: the interval is {100 * (upper - lower):.0f} points wide"
    if data_share < 0.5:
        return (
            "not yet",
            "not yet: the estimate is mostly the overall rate, not this segment's data",
        )
    if lower > reference:
        return "above", f"above the reference {reference:.1%} (interval {lower:.1%}–{upper:.1%})"
    if upper < reference:
        return "below", f"below the reference {reference:.1%} (interval {lower:.1%}–{upper:.1%})"
    return (
        "not yet",
        f"not yet: the interval {lower:.1%}–{upper:.1%} still contains {reference:.1%}",
    )


def segment_rates(
    y_true: Any,
    segments: Any,
    *,
    min_size: int = 10,
    method: str = "grid",
    credibility: float = 0.95,
    reference: float | None = None,
    seed: int = 0,
) -> SegmentRates:
    """Raw and shrunken conversion rate per segment, with intervals and verdicts (module docs)."""
    check_choice(method, "method", METHODS)
    y = check_binary_labels(y_true)
    labels, notes = normalise_labels(segments)
    check_same_length(("y_true", y), ("segments", labels))
    labels, pooled = _pool_small(labels, min_size)
    if pooled:
        notes.append(f"pooled {len(pooled)} segments under {min_size} leads into {OTHER!r}")
    names, inverse = np.unique(labels, return_inverse=True)
    n = np.bincount(inverse).astype(np.float64)
    k: FloatArray = np.asarray(np.bincount(inverse, weights=y), dtype=np.float64)
    overall = float(k.sum() / n.sum())
    ref = overall if reference is None else float(reference)
    tail = (1 - credibility) / 2
    rng = np.random.default_rng(seed)
    rule: str | None = None
    used = method

    if len(names) == 1:
        rule = "one segment: nothing to pool; its own Jeffreys interval is reported"
        mu, concentration = overall, None
        post_a, post_b = k + 0.5, n - k + 0.5
        shrunk = post_a / (post_a + post_b)
        lower, upper = beta_dist.ppf(tail, post_a, post_b), beta_dist.ppf(1 - tail, post_a, post_b)
    else:
        degenerate = len(names) == 2 or k.sum() in (0, n.sum())
        if method != "grid" and degenerate:
            rule = (
                "two segments: too few to estimate the spread between segments"
                if len(names) == 2
                else f"all outcomes are {int(k.sum() > 0)}: no spread can be estimated"
            ) + "; used the full-Bayes grid"
            used = "grid"
        if used == "grid":
            mu_s, m_s, theta = _grid_draws(k, n, rng)
            mu, concentration = float(mu_s.mean()), float(np.median(m_s))
            shrunk = theta.mean(axis=0)
            lower, upper = np.quantile(theta, tail, axis=0), np.quantile(theta, 1 - tail, axis=0)
        else:
            mu, concentration = (_fit_mle if used == "mle" else _fit_moments)(k, n)
            if concentration >= M_CAP:
                rule = "no spread between segments: full pooling (M capped at 1e6)"
            post_a, post_b = mu * concentration + k, (1 - mu) * concentration + n - k
            shrunk = post_a / (post_a + post_b)
            lower = beta_dist.ppf(tail, post_a, post_b)
            upper = beta_dist.ppf(1 - tail, post_a, post_b)

    rows = []
    for j, name in enumerate(names):
        m_j = concentration
        share = 1.0 if m_j is None else n[j] / (n[j] + m_j)
        verdict, reason = _verdict(int(n[j]), float(lower[j]), float(upper[j]), share, ref)
        rows.append(
            SegmentRow(
                segment=str(name),
                n=int(n[j]),
                conversions=int(k[j]),
                raw_rate=float(k[j] / n[j]),
                shrunken_rate=float(shrunk[j]),
                lower=float(lower[j]),
                upper=float(upper[j]),
                shrinkage=None if m_j is None else float(m_j / (m_j + n[j])),
                effective_n=float(n[j] + (m_j or 0.0)),
                verdict=verdict,
                reason=reason,
                pooled_from=pooled if name == OTHER else [],
            )
        )
    rows.sort(key=lambda r: (-r.n, r.segment))
    return SegmentRates(rows, used, mu, concentration, ref, credibility, rule, notes)


@dataclass(frozen=True)
class SegmentCalibrationRow:
    segment: str
    n: int
    observed: int
    expected: float
    ratio: float  # observed / expected (raw)
    shrunken_ratio: float
    lower: float
    upper: float
    ece: float | None
    verdict: str | None  # the segment's own calibration verdict when it has enough data


def segment_calibration(
    y_true: Any,
    y_prob: Any,
    segments: Any,
    *,
    min_size: int = 10,
    credibility: float = 0.95,
    seed: int = 0,
) -> list[SegmentCalibrationRow]:
    """Is the score miscalibrated for a segment? Observed vs expected conversions per segment.

    O_j ~ Poisson(λ_j E_j) with E_j = Σp over the segment and λ_j ~ Gamma(a, a) (mean 1): the
    shrunken O/E ratio is the posterior mean (a + O_j)/(a + E_j), with its Gamma interval; a is
    fitted by maximum marginal (negative-binomial) likelihood. Segments with at least 100 leads
    also get their own ECE and calibration verdict from :func:`assay.calibration`.
    """
    y, p, _ = check_binary_inputs(y_true, y_prob)
    labels, _ = normalise_labels(segments)
    check_same_length(("y_true", y), ("segments", labels))
    labels, _ = _pool_small(labels, min_size)
    names, inverse = np.unique(labels, return_inverse=True)
    observed = np.bincount(inverse, weights=y)
    expected = np.bincount(inverse, weights=p)
    counts = np.bincount(inverse)
    keep = expected > 0

    def negative(log_a: float) -> float:
        a = np.exp(log_a)
        o, e = observed[keep], expected[keep]
        return -float(
            np.sum(gammaln(a + o) - gammaln(a) + a * np.log(a / (a + e)) + o * np.log(e / (a + e)))
        )

    a = float(np.exp(minimize_scalar(negative, bounds=(-5, 15), method="bounded").x))
    tail = (1 - credibility) / 2
    rows = []
    for j, name in enumerate(names):
        shape, rate = a + observed[j], a + expected[j]
        mask = inverse == j
        ece = verdict = None
        if counts[j] >= 100:
            report = calibration(y[mask], p[mask], seed=seed)
            ece, verdict = report.ece, report.verdict
        rows.append(
            SegmentCalibrationRow(
                segment=str(name),
                n=int(counts[j]),
                observed=int(observed[j]),
                expected=float(expected[j]),
                ratio=float(observed[j] / expected[j]) if expected[j] > 0 else float("nan"),
                shrunken_ratio=float(shape / rate),
                lower=float(gamma.ppf(tail, shape, scale=1 / rate)),
                upper=float(gamma.ppf(1 - tail, shape, scale=1 / rate)),
                ece=ece,
                verdict=verdict,
            )
        )
    return rows


@dataclass(frozen=True)
class FunnelLimits:
    """Control limits of a funnel plot around the reference rate (Spiegelhalter 2005)."""

    n: FloatArray
    lower_95: FloatArray
    upper_95: FloatArray
    lower_998: FloatArray
    upper_998: FloatArray
    overdispersion: float  # φ = mean z²; limits are widened by sqrt(φ) when it is significant
    adjusted: bool


def funnel_limits(rates: SegmentRates, *, points: int = 200) -> FunnelLimits:
    """Exact binomial limits at 95% and 99.8% for n from the smallest to the largest segment.

    z_j = (r_j − ρ)/sqrt(ρ(1 − ρ)/n_j) and φ = mean z_j²; when J·φ exceeds the 95% point of
    χ²_{J−1} the data are over-dispersed and the limits become ρ ± z_α sqrt(φ ρ(1 − ρ)/n).
    """
    ref = rates.reference
    sizes = np.array([r.n for r in rates.rows], dtype=np.float64)
    raw = np.array([r.raw_rate for r in rates.rows])
    grid: FloatArray = np.unique(
        np.round(np.geomspace(max(sizes.min(), 1), max(sizes.max(), 2), points))
    ).astype(np.float64)
    variance = ref * (1 - ref)
    z = (raw - ref) / np.sqrt(variance / sizes) if variance > 0 else np.zeros_like(raw)
    phi = float(np.mean(z**2)) if len(z) else 1.0
    adjusted = len(z) > 1 and phi > 1 and len(z) * phi > chi2.ppf(0.95, len(z) - 1)
    limits = []
    for level in (0.975, 0.999):
        if adjusted:
            half = norm.ppf(level) * np.sqrt(phi * variance / grid)
            limits += [np.maximum(ref - half, 0.0), np.minimum(ref + half, 1.0)]
        else:
            limits += [binom.ppf(1 - level, grid, ref) / grid, binom.ppf(level, grid, ref) / grid]
    return FunnelLimits(grid, limits[0], limits[1], limits[2], limits[3], phi, bool(adjusted))
