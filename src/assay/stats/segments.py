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
import pyarrow as pa
import pyarrow.compute as pc
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
MISSING = "(missing)"


@dataclass(frozen=True)
class SegmentRow:
    """One segment's raw and shrunken conversion rate, interval and verdict.

    Attributes
    ----------
    segment : str
        The segment's label ("other" for pooled small segments).
    n, conversions : int
        Leads and conversions in the segment.
    raw_rate : float
        k_j / n_j, the optimistic number.
    shrunken_rate : float
        Posterior mean of the segment's rate, pulled toward μ.
    lower, upper : float
        Credible interval of the rate.
    shrinkage : float or None
        B_j = M / (M + n_j), the weight on μ; None when nothing is pooled.
    effective_n : float
        n_j + M, the posterior Beta's α + β.
    verdict : str
        "above", "below", "in line" or "not yet".
    reason : str
        The verdict in a sentence.
    pooled_from : list of str
        Labels pooled into "other" (empty otherwise).
    """

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
    """The result of :func:`segment_rates`: one row per segment and the fitted prior.

    Attributes
    ----------
    rows : list of SegmentRow
        Segments, largest first.
    method : str
        The fit used ("grid", "mle" or "moments").
    mu : float
        The prior mean μ: the centre the shrinkage pulls toward.
    concentration : float or None
        The prior concentration M (None when a single segment cannot be pooled).
    reference : float
        What verdicts compare with: the overall rate Σk/Σn unless given.
    credibility : float
        Mass of the intervals.
    rule : str or None
        The degenerate-case rule applied, if any.
    notes : list of str
        Merged spellings and pooled segments.
    band : tuple of (float, float)
        The "in line" band [reference / ratio, reference · ratio].
    """

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
        """Return the result as a JSON-safe dict, rows included."""
        data = asdict(self)
        data["rows"] = [asdict(r) for r in self.rows]
        return data


@dataclass(frozen=True)
class SegmentLabels:
    """Each lead's segment as a code into ``names`` (distinct, sorted by code point, all used)."""

    names: list[str]
    codes: np.ndarray  # intp, one per lead: names[codes[i]] is lead i's segment
    notes: list[str]  # which distinct spellings were merged into one label

    def counts(self) -> np.ndarray:
        """Leads per segment, aligned with ``names``."""
        return np.bincount(self.codes, minlength=len(self.names))


def _as_text(values: Any) -> pa.Array:
    """Return the labels as an Arrow string array.

    None (an Arrow null) stays null, any other value is ``str(value)``. Arrow string columns
    (as the ledger hands them out) pass through as they are.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            return values
        values = values.to_pylist()
    if isinstance(values, np.ndarray) and values.dtype.kind == "U":
        return pa.array(values, pa.string())
    raw = np.asarray(values, dtype=object)
    try:
        return pa.array(raw, pa.string())
    except pa.ArrowTypeError:  # numbers, booleans or NaN among them: labelled as str() writes them
        return pa.array([None if v is None else str(v) for v in raw], pa.string())


def normalise_labels(values: Any) -> SegmentLabels:
    """Strip and casefold labels (``str.strip().casefold()``); say which spellings were merged.

    Missing labels (None) become "(missing)".

    The labels are dictionary-encoded by Arrow, so only the distinct spellings are cleaned in
    Python and every lead is carried as an integer code (no sort of n Python strings).
    """
    encoded = pc.dictionary_encode(_as_text(values))
    spellings = encoded.dictionary.to_pylist()
    # Missing leads take one extra slot after the spellings; it is a name only if used.
    slots = np.asarray(encoded.indices.fill_null(len(spellings)), dtype=np.intp)
    cleaned = [*(s.strip().casefold() for s in spellings), MISSING]
    used = np.bincount(slots, minlength=len(cleaned)) > 0
    cleaned_array = pa.array(cleaned, pa.string())
    names_array = pc.unique(cleaned_array.filter(pa.array(used)))
    names_array = names_array.take(pc.array_sort_indices(names_array))
    lookup = np.asarray(pc.index_in(cleaned_array, value_set=names_array).fill_null(-1), np.intp)
    names = names_array.to_pylist()
    label_of = lookup[: len(spellings)]  # every spelling is used (the dictionary holds no other)
    shared: dict[int, list[str]] = {}
    for k in np.flatnonzero(np.bincount(label_of, minlength=len(names))[label_of] > 1):
        shared.setdefault(int(label_of[k]), []).append(spellings[k])
    notes = [
        f"merged {', '.join(repr(s) for s in sorted(merged))} into {names[label]!r}"
        for label, merged in sorted(shared.items())
    ]
    return SegmentLabels(names, lookup[slots], notes)


def _pool_small(labels: SegmentLabels, min_size: int) -> tuple[SegmentLabels, list[str]]:
    """Segments under ``min_size`` leads become "other" (unless every segment is that small)."""
    small = labels.counts() < min_size
    if not small.any() or small.all():
        return labels, []
    merged = [OTHER if tiny else name for name, tiny in zip(labels.names, small, strict=True)]
    names = sorted(set(merged))
    position = {name: i for i, name in enumerate(names)}
    lookup = np.array([position[name] for name in merged], dtype=np.intp)
    pooled = [name for name, tiny in zip(labels.names, small, strict=True) if tiny]
    return SegmentLabels(names, lookup[labels.codes], labels.notes), pooled


def _betabinom_loglik(k: FloatArray, n: FloatArray, a: Any, b: Any) -> Any:
    """Return Σ_j log BetaBinomial(k_j | n_j, a, b) without the (constant) binomial coefficients.

    Σ_j [lnΓ(k_j + a) + lnΓ(n_j − k_j + b) − lnΓ(n_j + a + b) − lnΓ(a) − lnΓ(b) + lnΓ(a + b)].
    """
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
    """Return log p(μ, M | k, n) + const at μ = expit(u_i), M = exp(w_l), per unit of (u, w).

    μ ~ U(0, 1) and ρ = 1/(M + 1) ~ U(0, 1) become the densities μ(1 − μ) in u = logit μ and
    M/(M + 1)² in w = log M (the Jacobians |dμ/du| and |dρ/dw|).
    """
    log_mu, log_rest = log_expit(u)[:, None], log_expit(-u)[:, None]
    a, b = np.exp(log_mu + w)[..., None], np.exp(log_rest + w)[..., None]
    jacobian = log_mu + log_rest + w - 2 * np.logaddexp(0.0, w)
    return np.asarray(_betabinom_loglik(k, n, a, b) + jacobian)


def _zoom(nodes: FloatArray, kept: np.ndarray, limits: tuple[float, float]) -> tuple[float, float]:
    """Return the range from one node before the first kept node to one after the last.

    Where the kept cells reach the edge of the grid, the box grows by its own width on that
    side (within limits).
    """
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
    """Draw (μ, M, θ_j) from the posterior.

    A grid cell by its weight, a uniform point inside it, then
    θ_j ~ Beta(μM + k_j, (1 − μ)M + n_j − k_j).
    """
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
    """Return the segment's own Jeffreys interval.

    Beta(k + ½, n − k + ½) quantiles at tail and 1 − tail, with the lower end 0 when k = 0
    and the upper end 1 when k = n.
    """
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
        """Return "above" / "below" when the interval excludes the reference, else None."""
        return "above" if lower > self.reference else "below" if upper < self.reference else None

    def inside(self, lower: float, upper: float) -> bool:
        lo, hi = self.band
        return bool(lo <= lower and upper <= hi)

    def shrink_to_settle(self, centre: float, lower: float, upper: float) -> float:
        """Return the factor s on the half-widths that would settle the interval.

        s scales the half-widths centre − lower and upper − centre; at s the interval would
        exclude the reference or fit inside the band (s ≥ 1: it already does).
        """
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
    """Return the verdict and its reason (module docs) from the shrunken and the own interval."""
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
    """Estimate each segment's conversion rate with empirical-Bayes shrinkage and a verdict.

    k_j ~ Binomial(n_j, θ_j), θ_j ~ Beta(μM, (1 − μ)M): the shrunken rate is the posterior
    mean of θ_j, pulled toward μ with weight B_j = M / (M + n_j), and its interval the
    posterior's (mixed over the draws of (μ, M) for the default full-Bayes grid). A segment
    with no conversions (or only conversions) never gets a bound tighter than its own
    Jeffreys interval. Verdicts compare each interval with the reference and the band
    [reference/ratio, reference·ratio], ``ratio`` being ``tolerance.ratio`` (default 1.25):
    "above", "below", "in line" or "not yet" (under 30 leads, or when more leads could
    still change the answer). The module docstring has the fits and the degenerate cases.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    segments : array-like of shape (n,)
        Each lead's segment label (strings, numbers or None; Arrow, pandas and polars work).
    min_size : int, default=10
        Segments with fewer leads are pooled into "other" before the fit.
    method : {"grid", "mle", "moments"}, default="grid"
        Full Bayes on a grid, or a plug-in fit of (μ, M).
    credibility : float, default=0.95
        Mass of the intervals.
    reference : float, optional
        The rate verdicts compare with (None: the overall rate Σk/Σn).
    tolerance : Tolerance, optional
        Its ``ratio`` sets the "in line" band (None: ``Tolerance()``).
    seed : int, default=0
        Seed of the grid draws.

    Returns
    -------
    SegmentRates
        One row per segment (largest first), the fitted μ and M, and the rules applied.

    Raises
    ------
    AssayInputError
        On an unknown ``method``, labels other than 0/1, NaN/inf or empty outcomes, or a
        ``segments`` of a different length.

    References
    ----------
    .. [1] B. Efron and C. Morris, "Data analysis using Stein's estimator and its
       generalizations", Journal of the American Statistical Association 70(350), 1975,
       pp. 311–319.
    .. [2] A. Gelman, J. B. Carlin, H. S. Stern, D. B. Dunson, A. Vehtari and D. B. Rubin,
       Bayesian Data Analysis, 3rd ed., CRC Press, 2013, §5.3 (the hierarchical
       beta-binomial model on a grid).
    .. [3] L. D. Brown, T. T. Cai and A. DasGupta, "Interval estimation for a binomial
       proportion", Statistical Science 16(2), 2001, pp. 101–133 (the Jeffreys interval).

    Examples
    --------
    Two large regions converting at 10% and 30% and a small one at 10% (4 of 40): the
    overall rate is 84/440 = 19.1%. The small region's rate is shrunk the most toward the
    others', and its 40 leads cannot yet place it.

    >>> from assay import segment_rates
    >>> segments = ["north"] * 200 + ["south"] * 200 + ["west"] * 40
    >>> converted = [1] * 20 + [0] * 180 + [1] * 60 + [0] * 140 + [1] * 4 + [0] * 36
    >>> rates = segment_rates(converted, segments)
    >>> round(rates.reference, 4)
    0.1909
    >>> [(row.segment, row.raw_rate, row.verdict) for row in rates.rows]
    [('north', 0.1, 'below'), ('south', 0.3, 'above'), ('west', 0.1, 'not yet')]
    >>> west = rates.rows[2]
    >>> west.raw_rate < west.shrunken_rate < rates.reference
    True
    """
    check_choice(method, "method", METHODS)
    ratio = Tolerance.coerce(tolerance).ratio
    y = check_binary_labels(y_true)
    labels = normalise_labels(segments)
    check_same_length(("y_true", y), ("segments", labels.codes))
    notes = list(labels.notes)
    labels, pooled = _pool_small(labels, min_size)
    if pooled:
        notes.append(f"pooled {len(pooled)} segments under {min_size} leads into {OTHER!r}")
    names, inverse = labels.names, labels.codes
    n = labels.counts().astype(np.float64)
    k: FloatArray = np.bincount(inverse, weights=y, minlength=len(names)).astype(np.float64)
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
    """One segment's observed against expected conversions (see :func:`segment_calibration`).

    Attributes
    ----------
    segment : str
        The segment's label.
    n, observed : int
        Leads and conversions in the segment.
    expected : float
        E_j = Σp over the segment.
    ratio : float
        Raw O/E (NaN when nothing was expected).
    shrunken_ratio : float
        Posterior mean (a + O_j)/(a + E_j).
    lower, upper : float
        Its Gamma credible interval.
    ece : float or None
        The segment's plug-in ECE (segments of at least 100 leads).
    verdict : str or None
        The segment's own calibration verdict (at least 100 leads).
    """

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
    """Compare observed with expected conversions per segment, with shrinkage.

    Is the score miscalibrated for a segment? O_j ~ Poisson(λ_j E_j) with E_j = Σp over the
    segment and λ_j ~ Gamma(a, a) (mean 1): the shrunken O/E ratio is the posterior mean
    (a + O_j)/(a + E_j), with its Gamma interval; a is fitted by maximum marginal
    (negative-binomial) likelihood. Segments with at least 100 leads also get their own ECE
    and calibration verdict from :func:`assay.stats.calibration`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].
    segments : array-like of shape (n,)
        Each lead's segment label.
    min_size : int, default=10
        Segments with fewer leads are pooled into "other".
    credibility : float, default=0.95
        Mass of the intervals.
    seed : int, default=0
        Seed of each segment's calibration posterior.

    Returns
    -------
    list of SegmentCalibrationRow
        One row per segment, in label order.

    Raises
    ------
    AssayInputError
        On NaN/inf, probabilities outside [0, 1], labels other than 0/1, empty input, or
        inputs of different lengths.

    References
    ----------
    .. [1] D. Clayton and J. Kaldor, "Empirical Bayes estimates of age-standardized relative
       risks for use in disease mapping", Biometrics 43(3), 1987, pp. 671–681.

    Examples
    --------
    A score of 20% that holds in the north, promises twice what the south delivers, and
    promises 30% in the west where 4 of 40 convert: the small segment's O/E of 1/3 is
    pulled toward 1, yet its interval still lies below 1.

    >>> from assay import segment_calibration
    >>> segments = ["north"] * 200 + ["south"] * 200 + ["west"] * 40
    >>> converted = [1] * 40 + [0] * 160 + [1] * 20 + [0] * 180 + [1] * 4 + [0] * 36
    >>> promised = [0.2] * 400 + [0.3] * 40
    >>> rows = segment_calibration(converted, promised, segments)
    >>> [(row.segment, row.observed, round(row.expected, 6), round(row.ratio, 2)) for row in rows]
    [('north', 40, 40.0, 1.0), ('south', 20, 40.0, 0.5), ('west', 4, 12.0, 0.33)]
    >>> west = rows[2]
    >>> west.ratio < west.shrunken_ratio < west.upper < 1
    True
    """
    y, p, _ = check_binary_inputs(y_true, y_prob)
    labels = normalise_labels(segments)
    check_same_length(("y_true", y), ("segments", labels.codes))
    labels, _ = _pool_small(labels, min_size)
    names, inverse = labels.names, labels.codes
    observed = np.bincount(inverse, weights=y, minlength=len(names))
    expected = np.bincount(inverse, weights=p, minlength=len(names))
    counts = labels.counts()
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
        ece = verdict = None
        if counts[j] >= 100:
            mask = inverse == j
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
