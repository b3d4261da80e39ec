"""Small segments with skepticism: empirical-Bayes shrinkage of segment rates.

Model (DESIGN §5): k_j ~ Binomial(n_j, θ_j), θ_j ~ Beta(μM, (1 − μ)M). The posterior of a
segment's rate is Beta(μM + k_j, (1 − μ)M + n_j − k_j): its mean is the *shrunken* rate, pulled
toward μ with weight B_j = M / (M + n_j); the raw rate k_j / n_j is the optimistic number.
The effective sample size reported is n_j + M (the posterior Beta's α + β). μ is the *prior
mean*: the typical segment's rate, each segment counting once, so it differs from the overall
(lead-weighted) rate Σk/Σn when small segments convert differently from large ones.

Fitting (μ, M):

* ``"grid"`` (default, full Bayes): μ ~ U(0, 1) and ρ = 1 / (M + 1) ~ U(0, 1), evaluated on a
  grid in (logit μ, log M) with the priors' Jacobians μ(1 − μ) and M/(M + 1)² as weights, so
  rates of 0.1% are resolved as finely as rates of 30% (the first version's midpoint grid
  started at μ = 0.0042 and M ≤ 239). The grid starts on logit μ ∈ [−16, 16], log M ∈ [−10, 16]
  and re-grids (up to ``GRID_PASSES`` times) the box of cells within e^−25 of the highest until
  the box settles. Draws pick a cell by its weight and a uniform point in it; the segment
  posteriors are mixed over the draws (seeded). Stays sane in degenerate cases.
* ``"mle"``: maximum marginal likelihood (SciPy), M capped at ``M_CAP`` when the data show no
  spread between segments. Like ``"moments"`` a plug-in: its intervals ignore the uncertainty in
  (μ, M) and under-cover at low counts (71% for mle, 77% for moments at true rates of
  0.1–0.5% in 8 segments of 500–5,000 leads, where the grid covers 96%).
* ``"moments"``: μ̂ = Σk/Σn and ρ̂ from the weighted between-segment variance,
  ρ̂ = (S/(μ̂(1−μ̂)) − (J − 1)) / (N − Σn_j²/N − (J − 1)) with S = Σ n_j (r_j − μ̂)², floored at 0.

Degenerate cases have fixed rules (reported in ``rule``): segments under ``min_size`` are pooled
into "other" before the fit; one segment cannot be pooled (Jeffreys interval of its own rate);
with two segments, or all outcomes 0 or all 1, "mle" and "moments" hand over to the grid.

**No tighter than its own data.** A segment with no conversions never gets an upper bound below
its own Jeffreys upper bound, the (1 + credibility)/2 quantile of Beta(½, n_j + ½); one where
every lead converted never gets a lower bound above its Jeffreys lower bound. With zero events
the segment says nothing about how far it sits from the others (the between-segment spread
cannot be estimated from it), so a statement about it may not be tighter than its own data allow.

**Verdicts** against the reference ρ_ref (the overall rate Σk/Σn unless given) and the band
[ρ_ref / r, ρ_ref · r] with r the ``Tolerance.ratio`` (default 1.25: 0.80×–1.25×). Four answers;
"not yet" only where more matured leads could change the answer:

* "not yet" if n_j < 30;
* "above" / "below" if the interval excludes ρ_ref, provided the segment's own data carry the
  estimate (n_j/(n_j + M) ≥ ½) or its own Jeffreys interval excludes ρ_ref on the same side;
  the reason says when the interval also lies inside the band;
* "in line" if both the interval and the segment's own Jeffreys interval lie inside the band
  (shrinkage pulls toward the other segments, so "no difference" needs the segment's own data);
* otherwise "not yet", with roughly how many more leads would settle the segment's own interval
  if its rate held: half-widths shrink like 1/sqrt(n), so an interval whose half-widths must
  shrink by a factor s < 1 (to exclude the reference or to fit the band) needs about n_j/s² leads
  in all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, gammaln, log_expit, logit
from scipy.stats import beta as beta_dist
from scipy.stats import binom, chi2, gamma, norm

from assay._validation import (
    FloatArray,
    check_binary_inputs,
    check_binary_labels,
    check_choice,
    check_same_length,
)
from assay.stats.calibration import calibration
from assay.stats.tolerance import Tolerance

METHODS = ("grid", "mle", "moments")
M_CAP = 1e6
GRID_POINTS = 120
GRID_PASSES = 6
GRID_LOGIT_MU = (-16.0, 16.0)
GRID_LOG_M = (-10.0, 16.0)
GRID_CUTOFF = 25.0  # cells more than e^25 below the highest carry no posterior mass
DRAWS = 4000
MIN_VERDICT_SIZE = 30
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
    verdict: str  # "above", "below", "in line" or "not yet"
    reason: str
    pooled_from: list[str]  # labels pooled into "other" (empty otherwise)


@dataclass(frozen=True)
class SegmentRates:
    rows: list[SegmentRow]
    method: str
    mu: float  # the prior mean: the centre the shrinkage pulls toward (segments count equally)
    concentration: float | None  # M (None when a single segment cannot be pooled)
    reference: float  # what verdicts compare with: the overall rate Σk/Σn unless given
    credibility: float
    rule: str | None
    notes: list[str]
    band: tuple[float, float]  # "in line" band [reference / ratio, reference · ratio]

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
    missing = np.array([v is None for v in raw], dtype=bool)
    spellings, inverse = np.unique(np.where(missing, "", raw).astype(str), return_inverse=True)
    cleaned_spellings = np.array([s.strip().casefold() for s in spellings], dtype=str)
    cleaned = np.where(missing, "(missing)", cleaned_spellings[inverse])
    present = np.unique(inverse[~missing])
    notes = []
    for label in np.unique(cleaned_spellings[present]):
        merged = sorted(str(s) for s in spellings[present][cleaned_spellings[present] == label])
        if len(merged) > 1:
            notes.append(f"merged {', '.join(repr(s) for s in merged)} into {str(label)!r}")
    return cleaned, notes


def _pool_small(labels: np.ndarray, min_size: int) -> tuple[np.ndarray, list[str]]:
    names, counts = np.unique(labels, return_counts=True)
    small = names[counts < min_size]
    if len(small) == 0 or len(small) == len(names):
        return labels, []
    pooled = np.where(np.isin(labels, small), OTHER, labels)
    return pooled, [str(s) for s in small]


def _betabinom_loglik(k: FloatArray, n: FloatArray, a: Any, b: Any) -> Any:
    """Σ_j log BetaBinomial(k_j | n_j, a, b), without the binomial coefficients (constant):
    Σ_j [lnΓ(k_j + a) + lnΓ(n_j − k_j + b) − lnΓ(n_j + a + b) − lnΓ(a) − lnΓ(b) + lnΓ(a + b)]."""
    prior = gammaln(a) + gammaln(b) - gammaln(a + b)
    return np.sum(gammaln(k + a) + gammaln(n - k + b) - gammaln(n + a + b) - prior, axis=-1)


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


def _log_posterior(k: FloatArray, n: FloatArray, u: FloatArray, w: FloatArray) -> FloatArray:
    """log p(μ, M | k, n) + const at μ = expit(u_i), M = exp(w_l), per unit of (u, w).

    μ ~ U(0, 1) and ρ = 1/(M + 1) ~ U(0, 1) become the densities μ(1 − μ) in u = logit μ and
    M/(M + 1)² in w = log M (the Jacobians |dμ/du| and |dρ/dw|).
    """
    log_mu, log_rest = log_expit(u)[:, None], log_expit(-u)[:, None]
    a, b = np.exp(log_mu + w)[..., None], np.exp(log_rest + w)[..., None]
    jacobian = log_mu + log_rest + w - 2 * np.logaddexp(0.0, w)
    return np.asarray(_betabinom_loglik(k, n, a, b) + jacobian)


def _zoom(nodes: FloatArray, kept: np.ndarray, limits: tuple[float, float]) -> tuple[float, float]:
    """From one node before the first kept node to one after the last; where the kept cells
    reach the edge of the grid, the box grows by its own width on that side (within limits)."""
    index = np.flatnonzero(kept)
    step, width = nodes[1] - nodes[0], nodes[-1] - nodes[0]
    lo = nodes[index[0]] - step if index[0] > 0 else nodes[0] - width
    hi = nodes[index[-1]] + step if index[-1] < len(nodes) - 1 else nodes[-1] + width
    return float(max(lo, limits[0])), float(min(hi, limits[1]))


def _zoomed_grid(k: FloatArray, n: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Nodes in u = logit μ and w = log M and the log posterior on them (module docs).

    Each pass keeps the box of cells within e^−``GRID_CUTOFF`` of the highest, widened by one
    cell (or by the box's width where those cells reach its edge: a coarse grid in μ can hide
    mass at large M, where μ is pinned down finely), and evaluates a fresh ``GRID_POINTS``² grid
    on it. It stops when the box neither grows nor shrinks below half on either side, i.e.
    when the grid resolves the posterior.
    """
    limits = np.array([GRID_LOGIT_MU, GRID_LOG_M])
    box = limits.copy()
    for _ in range(GRID_PASSES):
        u, w = (np.linspace(lo, hi, GRID_POINTS) for lo, hi in box)
        log_post = _log_posterior(k, n, u, w)
        kept = log_post >= log_post.max() - GRID_CUTOFF
        zoomed = np.array(
            [_zoom(u, kept.any(axis=1), GRID_LOGIT_MU), _zoom(w, kept.any(axis=0), GRID_LOG_M)]
        )
        grew = np.any(zoomed[:, 0] < box[:, 0]) or np.any(zoomed[:, 1] > box[:, 1])
        if not grew and np.all(np.diff(zoomed, axis=1) > 0.5 * np.diff(box, axis=1)):
            break
        box = zoomed
    return u, w, log_post


def _grid_draws(
    k: FloatArray, n: FloatArray, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Posterior draws of (μ, M, θ_j): a cell by its weight, a uniform point inside it, then
    θ_j ~ Beta(μM + k_j, (1 − μ)M + n_j − k_j)."""
    u, w, log_post = _zoomed_grid(k, n)
    weights = np.exp(log_post - log_post.max()).ravel()
    cells = rng.choice(weights.size, size=DRAWS, p=weights / weights.sum())
    row, column = np.unravel_index(cells, log_post.shape)
    u_s = u[row] + (u[1] - u[0]) * (rng.random(DRAWS) - 0.5)
    w_s = w[column] + (w[1] - w[0]) * (rng.random(DRAWS) - 0.5)
    a, b = np.exp(log_expit(u_s) + w_s), np.exp(log_expit(-u_s) + w_s)
    theta = rng.beta(a[:, None] + k, b[:, None] + n - k)
    return expit(u_s), np.exp(w_s), theta


def _own_interval(k: Any, n: Any, tail: float) -> tuple[Any, Any]:
    """The segment's own Jeffreys interval: Beta(k + ½, n − k + ½) quantiles at tail and
    1 − tail, with the lower end 0 when k = 0 and the upper end 1 when k = n."""
    a, b = np.asarray(k) + 0.5, np.asarray(n) - np.asarray(k) + 0.5
    lower = np.where(a > 0.5, beta_dist.ppf(tail, a, b), 0.0)
    upper = np.where(b > 0.5, beta_dist.ppf(1 - tail, a, b), 1.0)
    return lower, upper


@dataclass(frozen=True)
class _Yardstick:
    """What a segment is judged against: the reference rate and the tolerance band around it."""

    reference: float
    ratio: float
    label: str  # "the overall rate", or "the reference" when the caller gave one

    @property
    def band(self) -> tuple[float, float]:
        return self.reference / self.ratio, self.reference * self.ratio

    @property
    def words(self) -> str:
        """The band in words: "0.80×–1.25×, i.e. 30.8%–48.1%"."""
        lo, hi = self.band
        return f"{1 / self.ratio:.2f}×–{self.ratio:.2f}×, i.e. {lo:.1%}–{hi:.1%}"

    def side(self, lower: float, upper: float) -> str | None:
        """ "above" / "below" when the interval excludes the reference, else None."""
        return "above" if lower > self.reference else "below" if upper < self.reference else None

    def inside(self, lower: float, upper: float) -> bool:
        lo, hi = self.band
        return bool(lo <= lower and upper <= hi)

    def shrink_to_settle(self, centre: float, lower: float, upper: float) -> float:
        """The factor s on the half-widths centre − lower and upper − centre at which the
        interval would exclude the reference or fit inside the band (s ≥ 1: it already does)."""
        below, above = max(centre - lower, 1e-12), max(upper - centre, 1e-12)
        gap = centre - self.reference
        exclude = gap / below if gap > 0 else -gap / above
        lo, hi = self.band
        return max(exclude, min((centre - lo) / below, (hi - centre) / above))


def _leads_needed(size: float, shrink: float) -> float:
    """More leads for half-widths ∝ 1/sqrt(size) to shrink by ``shrink``: size (1/s² − 1)."""
    if shrink >= 1:
        return 0.0
    return float("inf") if shrink <= 0 else size * (1 / shrink**2 - 1)


def _roughly(more: float) -> str:
    if not np.isfinite(more):
        return "far more leads are needed"
    if more <= 0:
        return "more leads are needed"
    return f"roughly {float(f'{more:.2g}'):,.0f} more leads would settle it"


def _verdict(
    n: int,
    k: int,
    shrunk: tuple[float, float],
    own: tuple[float, float],
    concentration: float | None,
    yard: _Yardstick,
) -> tuple[str, str]:
    """The verdict and its reason (module docs) from the shrunken and the own interval."""
    if n < MIN_VERDICT_SIZE:
        return "not yet", f"not yet: only {n} leads; at least {MIN_VERDICT_SIZE} are needed"
    ref, label = yard.reference, yard.label
    if not 0 < ref < 1:
        return "not yet", (
            f"not yet: {label} is {ref:.0%}; segments cannot be told apart until some leads "
            "convert and some do not"
        )
    lower, upper = shrunk
    interval = f"interval {lower:.1%}–{upper:.1%}"
    side = yard.side(lower, upper)
    share = 1.0 if concentration is None else n / (n + concentration)
    if side and (share >= 0.5 or yard.side(*own) == side):
        within = f", but within the tolerance of {yard.words}" if yard.inside(lower, upper) else ""
        return side, f"{side} {label} {ref:.1%} ({interval}){within}"
    if yard.inside(lower, upper) and yard.inside(*own):
        return "in line", f"in line with {label} {ref:.1%} (within {yard.words}; {interval})"
    more = _leads_needed(n, yard.shrink_to_settle((k + 0.5) / (n + 1), *own))
    if side or yard.inside(lower, upper):
        return "not yet", (
            f"not yet: the {interval} settles it only by leaning on the other segments; this "
            f"segment's own {n:,} leads ({own[0]:.1%}–{own[1]:.1%}) do not yet; {_roughly(more)}"
        )
    return "not yet", (
        f"not yet: the {interval} contains {label} {ref:.1%} and reaches outside "
        f"{yard.words}; {_roughly(more)}"
    )


def segment_rates(
    y_true: Any,
    segments: Any,
    *,
    min_size: int = 10,
    method: str = "grid",
    credibility: float = 0.95,
    reference: float | None = None,
    tolerance: Tolerance | None = None,
    seed: int = 0,
) -> SegmentRates:
    """Raw and shrunken conversion rate per segment, with intervals and verdicts (module docs).

    ``tolerance.ratio`` (default 1.25) sets the "in line" band [reference/ratio,
    reference·ratio] around the reference.
    """
    check_choice(method, "method", METHODS)
    ratio = Tolerance.coerce(tolerance).ratio
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
    own_lower, own_upper = _own_interval(k, n, tail)
    rng = np.random.default_rng(seed)
    rule: str | None = None
    used = method

    if len(names) == 1:
        rule = "one segment: nothing to pool; its own Jeffreys interval is reported"
        mu, concentration = overall, None
        shrunk = (k + 0.5) / (n + 1)
        lower, upper = own_lower, own_upper
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
        # No tighter than its own data (module docs).
        upper = np.where(k == 0, np.maximum(upper, own_upper), upper)
        lower = np.where(k == n, np.minimum(lower, own_lower), lower)

    yard = _Yardstick(ref, ratio, "the overall rate" if reference is None else "the reference")
    rows = []
    for j, name in enumerate(names):
        m_j = concentration
        verdict, reason = _verdict(
            int(n[j]),
            int(k[j]),
            (float(lower[j]), float(upper[j])),
            (float(own_lower[j]), float(own_upper[j])),
            m_j,
            yard,
        )
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
    return SegmentRates(rows, used, mu, concentration, ref, credibility, rule, notes, yard.band)


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
    also get their own ECE and calibration verdict from :func:`assay.stats.calibration`.
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
