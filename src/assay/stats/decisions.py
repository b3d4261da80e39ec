"""When may an automated action fire on its own? Certified thresholds, risk–coverage, net benefit.

**Certified threshold** (Learn-then-Test with fixed-sequence testing; Angelopoulos, Bates,
Candès, Jordan & Lei 2021). On a descending grid of thresholds fixed before looking at outcomes
(by default the score quantiles 0.99, 0.98, ..., deduplicated), let n_t leads score ≥ t and k_t
of them convert. For H_t: precision(t) < π the p-value is

    p_t = P(Bin(n_t, π) ≥ k_t) = I_π(k_t, n_t − k_t + 1)     (= BinomCDF(n_t − k_t; n_t, 1 − π)),

the regularised incomplete beta function. Test from the top down at level δ and stop at the
first non-rejection; every rejected threshold is certified, and with probability ≥ 1 − δ every
certified threshold has precision ≥ π. p_t ≤ δ exactly when the one-sided Clopper–Pearson lower
bound I⁻¹_δ(k_t, n_t − k_t + 1) is ≥ π; both are computed from the same function. Thresholds
with n_t < ``min_count`` are not tested (that depends on the scores only, so the sequence stays
fixed in advance). Beside it: the Jeffreys posterior P(precision ≥ π | k_t, n_t) with a
Beta(½, ½) prior.

**Verdicts.** "certified" when some threshold is; "cannot reach" when none is, every threshold
on the grid is tested, and at every one the one-sided (1 − δ) Clopper–Pearson *upper* bound
I⁻¹_{1−δ}(k_t + 1, n_t − k_t) (1 when k_t = n_t) is below π: each threshold's precision is below
the target with confidence 1 − δ, so more leads of the same kind will not certify one. Its
reason names the best precision that *can* be certified, Y = max_t I⁻¹_δ(k_t, n_t − k_t + 1)
over the tested thresholds. Otherwise "not yet": while thresholds with fewer than ``min_count``
leads remain, more leads can test them; and at the top tested threshold, if its precision
p̂ = k/n > π held, about n(f − 1) more leads scored above it would certify it, f the smallest
factor with I⁻¹_δ(f k, f(n − k) + 1) ≥ π.

**Costs.** With value V per conversion and cost C per action, acting on a lead pays off when its
conversion probability exceeds the break-even C / V. The firing rule is: the set precision is
certified AND the lead's calibrated probability lower bound (the one-sided 1 − δ
Clopper–Pearson bound of its score band) is ≥ C / V.

**Risk–coverage.** Act on the highest-scored leads first; at coverage c (share of leads acted
on) the risk is the share of acted-on leads that do not convert. Tied scores enter together.
AURC is the mean risk over the n coverage steps (each lead in a tied group gets the group's
risk); E-AURC subtracts the AURC of an oracle ranking every converter first.

**Net benefit** (decision curves; Vickers & Elkin 2006): NB(t) = TP/n − FP/n · t / (1 − t) for
acting on leads scored ≥ t, beside "act on all" (prevalence − (1 − prevalence) t/(1 − t)) and
"act on none" (0). With t = C/V, profit per scored lead = (V − C) · NB(C/V).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import betainc, betaincc, betaincinv

from assay._validation import AssayInputError, FloatArray, check_binary_inputs


def _check_fraction(value: float, name: str) -> float:
    if not (isinstance(value, (int, float)) and 0 < value < 1):
        raise AssayInputError(f"{name}={value!r}; it must be a number strictly between 0 and 1")
    return float(value)


def default_grid(y_prob: FloatArray) -> FloatArray:
    """Score quantiles from 0.99 down to 0.01 in steps of 0.01, deduplicated, descending."""
    levels = np.round(np.arange(99, 0, -1) / 100, 2)
    return np.unique(np.quantile(y_prob, levels, method="inverted_cdf"))[::-1]


def _counts_above(
    y: FloatArray, p: FloatArray, thresholds: FloatArray
) -> tuple[np.ndarray, np.ndarray]:
    """n_t = #{p ≥ t} and k_t = #{p ≥ t, y = 1} for every threshold, by one sort."""
    order = np.argsort(p, kind="stable")
    sorted_p = p[order]
    converted_from = np.concatenate((np.cumsum(y[order][::-1])[::-1], [0.0]))
    start = np.searchsorted(sorted_p, thresholds, side="left")
    return (len(p) - start).astype(np.int64), converted_from[start].astype(np.int64)


@dataclass(frozen=True)
class ThresholdRow:
    """One threshold t of the grid: the leads scored ≥ t, their test and bounds.

    Attributes
    ----------
    threshold : float
        The threshold t.
    n, conversions : int
        Leads scored ≥ t and how many converted (n_t, k_t).
    precision : float or None
        k_t / n_t (None when no lead scores ≥ t).
    pvalue : float or None
        P(Bin(n_t, π) ≥ k_t); None when not tested (n_t < ``min_count``).
    lower_bound, upper_bound : float or None
        One-sided (1 − δ) Clopper–Pearson bounds of the precision.
    prob_above_target : float or None
        Jeffreys posterior P(precision ≥ π).
    band_lower_bound : float or None
        Lower bound of the rate in the band [t, previous threshold).
    certified : bool
        Whether the fixed-sequence test certified t.
    """

    threshold: float
    n: int
    conversions: int
    precision: float | None
    pvalue: float | None  # None: not tested (fewer than min_count leads)
    lower_bound: float | None  # one-sided (1 − δ) Clopper–Pearson lower bound of precision
    upper_bound: float | None  # one-sided (1 − δ) Clopper–Pearson upper bound of precision
    prob_above_target: float | None  # Jeffreys posterior P(precision ≥ target)
    band_lower_bound: float | None  # lower bound of the rate in [t, previous threshold)
    certified: bool


@dataclass(frozen=True)
class CertifiedThreshold:
    """The lowest certified threshold, the verdict in words and the firing rule.

    The result of :func:`certify_threshold`: with probability ≥ 1 − δ every certified
    threshold has precision ≥ the target.

    Parameters
    ----------
    threshold : float or None
        The lowest certified threshold (None when none is).
    verdict : str
        "certified", "cannot reach" or "not yet".
    reason : str
        The verdict in a sentence, with what more data would do.
    target_precision : float
        The target π.
    delta : float
        The error level δ.
    rows : list of ThresholdRow
        Every threshold of the grid, from the top down.
    break_even : float or None
        C / V when a value and a cost were given.
    firing_threshold : float or None
        Lowest score at which an action may fire on its own.
    rule : str
        The firing rule in words.

    References
    ----------
    .. [1] A. N. Angelopoulos, S. Bates, E. J. Candès, M. I. Jordan and L. Lei, "Learn then
       Test: calibrating predictive algorithms to achieve risk control", arXiv:2110.01052,
       2021 (fixed-sequence testing).
    .. [2] C. J. Clopper and E. S. Pearson, "The use of confidence or fiducial limits
       illustrated in the case of the binomial", Biometrika 26(4), 1934, pp. 404–413.

    Examples
    --------
    200 leads scored 0.005, 0.010, ..., 1.000; above 0.5, 9 in 10 convert, below it 1 in 5.

    >>> import numpy as np
    >>> from assay import certify_threshold
    >>> scores = np.arange(1, 201) / 200
    >>> lead = np.arange(200)
    >>> converted = np.where(scores > 0.5, lead % 10 != 0, lead % 5 == 0).astype(int)
    >>> result = certify_threshold(converted, scores, target_precision=0.75, grid=[0.9, 0.7, 0.5])
    >>> result.verdict, result.threshold, [row.certified for row in result.rows]
    ('certified', 0.5, [False, True, True])
    >>> sorted(result.to_dict())[:3]
    ['break_even', 'delta', 'firing_threshold']
    """

    threshold: float | None
    verdict: str  # "certified", "cannot reach" or "not yet"
    reason: str
    target_precision: float
    delta: float
    rows: list[ThresholdRow]
    break_even: float | None
    firing_threshold: float | None
    rule: str

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-safe dict, rows included."""
        data = asdict(self)
        data["rows"] = [asdict(r) for r in self.rows]
        return data


def certify_threshold(
    y_true: Any,
    y_prob: Any,
    *,
    target_precision: float,
    delta: float = 0.05,
    min_count: int = 30,
    grid: Any = None,
    value_per_conversion: float | None = None,
    cost_per_action: float | None = None,
) -> CertifiedThreshold:
    """Find the lowest score above which an action may fire with precision ≥ target.

    Learn-then-Test with fixed-sequence testing: on a descending grid fixed before looking
    at outcomes (default: the score quantiles 0.99, 0.98, ..., 0.01), with n_t leads scored
    ≥ t and k_t conversions, H_t: precision(t) < π has the exact binomial p-value
    p_t = P(Bin(n_t, π) ≥ k_t) = I_π(k_t, n_t − k_t + 1). Thresholds are tested from the top
    at level δ until the first non-rejection; with probability ≥ 1 − δ every certified
    threshold has precision ≥ π. Thresholds with n_t < ``min_count`` are not tested. With a
    value V per conversion and a cost C per action, an action fires where the precision is
    certified AND the score band's one-sided Clopper–Pearson lower bound is ≥ C / V. The
    verdict rules are in the module docstring.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].
    target_precision : float
        The precision π to certify, strictly between 0 and 1.
    delta : float, default=0.05
        Error level δ, strictly between 0 and 1.
    min_count : int, default=30
        Least number of leads above a threshold for it to be tested.
    grid : array-like of float, optional
        Thresholds to test (sorted descending); None: the score quantiles.
    value_per_conversion : float, optional
        Value V of a conversion; with ``cost_per_action`` gives the break-even C / V.
    cost_per_action : float, optional
        Cost C of one action, 0 ≤ C < V.

    Returns
    -------
    CertifiedThreshold
        The certified threshold (or None), the verdict, a row per threshold and the rule.

    Raises
    ------
    AssayInputError
        If ``target_precision`` or ``delta`` is not strictly between 0 and 1, if the cost
        and value do not satisfy 0 ≤ cost < value, or on NaN/inf, probabilities outside
        [0, 1], labels other than 0/1, length mismatch or empty input.

    References
    ----------
    .. [1] A. N. Angelopoulos, S. Bates, E. J. Candès, M. I. Jordan and L. Lei, "Learn then
       Test: calibrating predictive algorithms to achieve risk control", arXiv:2110.01052,
       2021 (fixed-sequence testing).
    .. [2] C. J. Clopper and E. S. Pearson, "The use of confidence or fiducial limits
       illustrated in the case of the binomial", Biometrika 26(4), 1934, pp. 404–413.

    Examples
    --------
    200 leads scored 0.005, 0.010, ..., 1.000; above 0.5, 9 in 10 convert, below it 1 in 5.

    >>> import numpy as np
    >>> from assay import certify_threshold
    >>> scores = np.arange(1, 201) / 200
    >>> lead = np.arange(200)
    >>> converted = np.where(scores > 0.5, lead % 10 != 0, lead % 5 == 0).astype(int)
    >>> result = certify_threshold(converted, scores, target_precision=0.75, grid=[0.9, 0.7, 0.5])
    >>> result.verdict, result.threshold
    ('certified', 0.5)
    >>> [(row.threshold, row.n, row.conversions) for row in result.rows]
    [(0.9, 21, 19), (0.7, 61, 55), (0.5, 101, 90)]

    The top threshold has fewer than 30 leads and is not tested; at 0.5 the p-value is the
    binomial tail P(Bin(101, 0.75) ≥ 90), as ``scipy.stats.binom.sf(89, 101, 0.75)`` gives.

    >>> result.rows[0].pvalue is None, round(result.rows[2].pvalue, 6)
    (True, 0.000329)

    A target the score cannot meet yet gets "not yet", with the reason:

    >>> certify_threshold(converted, scores, target_precision=0.95, grid=[0.9, 0.7, 0.5]).verdict
    'not yet'
    """
    target = _check_fraction(target_precision, "target_precision")
    delta = _check_fraction(delta, "delta")
    y, p, _ = check_binary_inputs(y_true, y_prob)
    thresholds = default_grid(p) if grid is None else np.sort(np.asarray(grid, dtype=float))[::-1]
    n_t, k_t = _counts_above(y, p, thresholds)
    tested = n_t >= min_count
    safe_k = np.maximum(k_t, 1)
    pvalues = np.where(k_t > 0, betainc(safe_k, n_t - k_t + 1, target), 1.0)
    lower = np.where(k_t > 0, betaincinv(safe_k, n_t - k_t + 1, delta), 0.0)
    upper = np.where(k_t < n_t, betaincinv(k_t + 1, np.maximum(n_t - k_t, 1), 1 - delta), 1.0)
    posterior = betaincc(k_t + 0.5, n_t - k_t + 0.5, target)  # Beta(k+½, n−k+½) tail, as beta.sf
    certified = np.zeros(len(thresholds), dtype=bool)
    for i in np.flatnonzero(tested):
        if pvalues[i] > delta:
            break
        certified[i] = True

    # Band bounds: leads in [t_i, t_{i-1}) (the top band is [t_0, 1]).
    band_n = np.diff(np.concatenate(([0], n_t)))
    band_k = np.diff(np.concatenate(([0], k_t)))
    band_lower = np.where(
        band_k > 0, betaincinv(np.maximum(band_k, 1), band_n - band_k + 1, delta), 0.0
    )

    rows = [
        ThresholdRow(
            threshold=float(thresholds[i]),
            n=int(n_t[i]),
            conversions=int(k_t[i]),
            precision=float(k_t[i] / n_t[i]) if n_t[i] else None,
            pvalue=float(pvalues[i]) if tested[i] else None,
            lower_bound=float(lower[i]) if n_t[i] else None,
            upper_bound=float(upper[i]) if n_t[i] else None,
            prob_above_target=float(posterior[i]) if n_t[i] else None,
            band_lower_bound=float(band_lower[i]) if band_n[i] else None,
            certified=bool(certified[i]),
        )
        for i in range(len(thresholds))
    ]
    threshold = float(thresholds[certified].min()) if certified.any() else None
    if threshold is not None:
        verdict = "certified"
        reason = (
            f"certified: leads scored ≥ {threshold:.2%} convert at ≥ {target:.0%} with "
            f"probability ≥ {1 - delta:.0%} (fixed-sequence test, {int(certified.sum())} "
            "thresholds passed from the top)"
        )
    elif not tested.any():
        verdict = "not yet"
        reason = f"not yet: no threshold has {min_count} scored leads above it"
    elif tested.all() and (upper < target).all():
        verdict = "cannot reach"
        reason = (
            f"cannot reach the target: best certified precision {lower.max():.1%}; at every "
            f"threshold the precision is below {target:.0%} with probability ≥ {1 - delta:.0%} "
            f"(highest upper bound {upper.max():.1%}), so more leads will not help: the score "
            "does not separate leads well enough"
        )
    else:
        verdict = "not yet"
        reason = _not_yet_reason(thresholds, n_t, k_t, upper, tested, target, delta, min_count)
    break_even, firing, rule = _firing_rule(
        thresholds,
        certified,
        band_lower,
        band_n,
        threshold,
        verdict == "cannot reach",
        value_per_conversion,
        cost_per_action,
    )
    return CertifiedThreshold(
        threshold, verdict, reason, target, delta, rows, break_even, firing, rule
    )


def _leads_to_certify(n: int, k: int, target: float, delta: float) -> float:
    """Return how many more leads at the current precision k/n certify the target.

    That is how many more the one-sided Clopper–Pearson lower bound needs to reach the target:
    n(f − 1), f the smallest factor on a geometric grid up to 10⁴ with
    I⁻¹_δ(f k, f(n − k) + 1) ≥ π (inf when none is).
    """
    factor = np.geomspace(1.0, 1e4, 400)
    passes = betaincinv(factor * k, factor * (n - k) + 1, delta) >= target
    return float(n * (factor[np.argmax(passes)] - 1)) if passes.any() else float("inf")


def _not_yet_reason(
    thresholds: FloatArray,
    n_t: np.ndarray,
    k_t: np.ndarray,
    upper: FloatArray,
    tested: np.ndarray,
    target: float,
    delta: float,
    min_count: int,
) -> str:
    """Why no threshold is certified yet, and what more data would do (module docs)."""
    first = int(np.flatnonzero(tested)[0])
    t, n, k = thresholds[first], int(n_t[first]), int(k_t[first])
    reason = (
        f"not yet: at the top tested threshold ({t:.2%}) {k} of {n} leads converted; that "
        f"cannot show precision ≥ {target:.0%} at level {delta}"
    )
    if (upper[tested] < target).all():
        return reason + (
            f"; no tested threshold can reach it, but higher thresholds ({int((~tested).sum())}) "
            f"have fewer than {min_count} leads above them and more leads would test them"
        )
    if k <= target * n:
        return reason + (
            f"; at its current precision ({k / n:.0%}) more leads would not certify it, but the "
            f"data cannot yet rule out {target:.0%} (upper bound {upper[first]:.1%})"
        )
    more = _leads_to_certify(n, k, target, delta)
    if not np.isfinite(more):
        return reason + f"; its precision ({k / n:.0%}) is too close to the target to say when"
    return reason + (
        f"; if its precision ({k / n:.0%}) held, roughly {float(f'{more:.2g}'):,.0f} more "
        f"leads scored ≥ {t:.2%} would certify it"
    )


def _firing_rule(
    thresholds: FloatArray,
    certified: np.ndarray,
    band_lower: FloatArray,
    band_n: np.ndarray,
    threshold: float | None,
    unreachable: bool,
    value: float | None,
    cost: float | None,
) -> tuple[float | None, float | None, str]:
    if value is None or cost is None:
        if threshold is not None:
            rule = "fire on leads scored at or above the certified threshold"
        elif unreachable:
            rule = "do not fire automatically: the score cannot reach the target"
        else:
            rule = "do not fire automatically yet"
        return None, threshold, rule
    if not (value > 0 and 0 <= cost < value):
        raise AssayInputError(
            f"cost_per_action={cost!r} and value_per_conversion={value!r}: need 0 ≤ cost < value"
        )
    break_even = cost / value
    # Walk down the certified thresholds while each band's lower bound still clears C/V.
    firing = None
    for i in np.flatnonzero(certified):
        if band_n[i] == 0:
            continue
        if band_lower[i] < break_even:
            break
        firing = float(thresholds[i])
    if firing is not None:
        rule = (
            f"fire when the score is ≥ {firing:.2%}: the set precision is certified AND the "
            f"lead's calibrated probability lower bound is ≥ the break-even C/V = {break_even:.3g}"
        )
    elif unreachable:
        rule = "do not fire automatically: the score cannot reach the target"
    elif threshold is None:
        rule = "do not fire automatically yet: no threshold is certified"
    else:
        rule = (
            "do not fire automatically yet: no certified score band clears the break-even "
            f"C/V = {break_even:.3g}"
        )
    return break_even, firing, rule


@dataclass(frozen=True)
class RiskCoverage:
    """The risk–coverage curve of acting on the highest-scored leads first.

    Computed by :func:`risk_coverage`; one point per group of tied scores.

    Parameters
    ----------
    coverage : ndarray
        Share of leads acted on, at the end of each tied group.
    risk : ndarray
        Share of the acted-on leads that did not convert.
    thresholds : ndarray
        The score of each tied group (descending).
    aurc : float
        Area under the curve: the mean risk over the n coverage steps.
    e_aurc : float
        AURC minus that of an oracle ranking every converter first.

    References
    ----------
    .. [1] Y. Geifman and R. El-Yaniv, "Selective classification for deep neural networks",
       NeurIPS 30, 2017.
    .. [2] Y. Geifman, G. Uziel and R. El-Yaniv, "Bias-reduced uncertainty estimation for
       deep neural classifiers", ICLR, 2019 (AURC and E-AURC).

    Examples
    --------
    >>> from assay import risk_coverage
    >>> curve = risk_coverage([0, 1, 1, 0], [0.2, 0.9, 0.7, 0.7])
    >>> curve.coverage.tolist(), curve.risk.tolist(), curve.thresholds.tolist()
    ([0.25, 0.75, 1.0], [0.0, 0.3333333333333333, 0.5], [0.9, 0.7, 0.2])
    """

    coverage: FloatArray  # at the end of each tied group
    risk: FloatArray
    thresholds: FloatArray
    aurc: float
    e_aurc: float

    def to_dict(self) -> dict[str, Any]:
        """Return the curve and its areas as a JSON-safe dict."""
        return {
            "coverage": self.coverage.tolist(),
            "risk": self.risk.tolist(),
            "thresholds": self.thresholds.tolist(),
            "aurc": self.aurc,
            "e_aurc": self.e_aurc,
        }


def risk_coverage(y_true: Any, y_prob: Any) -> RiskCoverage:
    """Trace risk against coverage when acting on the highest scores first.

    At coverage c (share of leads acted on) the risk is the share of acted-on leads that do
    not convert; tied scores enter together. AURC = (1/n) Σ_{i=1..n} risk_i, each lead in a
    tied group counted at its group's risk; E-AURC = AURC − AURC*, AURC* the oracle's, which
    ranks the n⁺ converters first: AURC* = (1/n) Σ_i max(i − n⁺, 0) / i.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].

    Returns
    -------
    RiskCoverage
        Coverage, risk and threshold per tied group, with AURC and E-AURC.

    Raises
    ------
    AssayInputError
        On NaN/inf, probabilities outside [0, 1], labels other than 0/1, length mismatch or
        empty input.

    References
    ----------
    .. [1] Y. Geifman and R. El-Yaniv, "Selective classification for deep neural networks",
       NeurIPS 30, 2017.
    .. [2] Y. Geifman, G. Uziel and R. El-Yaniv, "Bias-reduced uncertainty estimation for
       deep neural classifiers", ICLR, 2019 (AURC and E-AURC).

    Examples
    --------
    Acting from the top, the risks are 0, 0, 1/3, 1/4, 2/5, 1/2: AURC = 1.4833/6 = 0.2472.
    The oracle's risks are 0, 0, 0, 1/4, 2/5, 1/2, so E-AURC = 0.3333/6 = 0.0556.

    >>> from assay import risk_coverage
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> curve = risk_coverage(y, p)
    >>> [round(r, 4) for r in curve.risk.tolist()]
    [0.0, 0.0, 0.3333, 0.25, 0.4, 0.5]
    >>> round(curve.aurc, 4), round(curve.e_aurc, 4)
    (0.2472, 0.0556)
    """
    y, p, _ = check_binary_inputs(y_true, y_prob)
    n = len(y)
    order = np.argsort(-p, kind="stable")
    p_sorted, misses = p[order], 1.0 - y[order]
    group_end = np.flatnonzero(np.concatenate((p_sorted[1:] != p_sorted[:-1], [True])))
    cum_misses = np.cumsum(misses)[group_end]
    acted = group_end + 1
    risk = cum_misses / acted
    sizes = np.diff(np.concatenate(([0], acted)))
    aurc = float(np.sum(risk * sizes) / n)
    positives = int(y.sum())
    steps = np.arange(1, n + 1)
    oracle = float(np.mean(np.maximum(steps - positives, 0) / steps))
    return RiskCoverage(acted / n, risk, p_sorted[group_end], aurc, aurc - oracle)


@dataclass(frozen=True)
class NetBenefit:
    """A decision curve: net benefit of acting on leads scored ≥ t, with its references.

    Computed by :func:`net_benefit`.

    Parameters
    ----------
    thresholds : ndarray
        The thresholds t, strictly inside (0, 1).
    model : ndarray
        NB(t) = TP/n − FP/n · t/(1 − t) of acting on leads scored ≥ t.
    treat_all : ndarray
        Acting on every lead: prevalence − (1 − prevalence) · t/(1 − t).
    treat_none : ndarray
        Acting on none: 0.

    References
    ----------
    .. [1] A. J. Vickers and E. B. Elkin, "Decision curve analysis: a novel method for
       evaluating prediction models", Medical Decision Making 26(6), 2006, pp. 565–574.

    Examples
    --------
    >>> from assay import net_benefit
    >>> curve = net_benefit([0, 1, 1, 0], [0.2, 0.9, 0.7, 0.4], [0.5])
    >>> curve.model.tolist(), curve.treat_all.tolist(), curve.treat_none.tolist()
    ([0.5], [0.0], [0.0])
    """

    thresholds: FloatArray
    model: FloatArray
    treat_all: FloatArray
    treat_none: FloatArray

    def to_dict(self) -> dict[str, Any]:
        """Return the four series as lists."""
        return {k: v.tolist() for k, v in asdict(self).items()}


def net_benefit(y_true: Any, y_prob: Any, thresholds: Any) -> NetBenefit:
    """Compute the decision-curve net benefit of acting on leads scored ≥ t.

    NB(t) = TP/n − FP/n · t/(1 − t), with TP and FP the converting and non-converting leads
    scored ≥ t, beside "act on all" (prevalence − (1 − prevalence) · t/(1 − t)) and "act on
    none" (0). The threshold t is the break-even probability: with value V per conversion
    and cost C per action, t = C/V and the profit per scored lead is (V − C) · NB(C/V).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].
    thresholds : array-like of float
        1-D thresholds strictly inside (0, 1).

    Returns
    -------
    NetBenefit
        NB of the model, of acting on all and of acting on none, per threshold.

    Raises
    ------
    AssayInputError
        If ``thresholds`` is not 1-D or some threshold is outside (0, 1), or on NaN/inf,
        probabilities outside [0, 1], labels other than 0/1, length mismatch or empty input.

    References
    ----------
    .. [1] A. J. Vickers and E. B. Elkin, "Decision curve analysis: a novel method for
       evaluating prediction models", Medical Decision Making 26(6), 2006, pp. 565–574.

    Examples
    --------
    At t = 0.25 the leads scored ≥ 0.25 hold 3 conversions and 2 misses:
    NB = 3/6 − 2/6 · 1/3 = 0.3889, against 1/2 − 1/2 · 1/3 = 0.3333 for acting on all.

    >>> from assay import net_benefit
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> curve = net_benefit(y, p, [0.25, 0.5])
    >>> [round(v, 4) for v in curve.model.tolist()]
    [0.3889, 0.1667]
    >>> [round(v, 4) for v in curve.treat_all.tolist()]
    [0.3333, 0.0]
    """
    y, p, _ = check_binary_inputs(y_true, y_prob)
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or ((t <= 0) | (t >= 1)).any():
        raise AssayInputError("thresholds must be a 1-D sequence of numbers strictly inside (0, 1)")
    n = len(y)
    acted_n, acted_k = _counts_above(y, p, t)
    odds = t / (1 - t)
    model = acted_k / n - (acted_n - acted_k) / n * odds
    prevalence = y.mean()
    treat_all = prevalence - (1 - prevalence) * odds
    return NetBenefit(t, model, treat_all, np.zeros_like(t))
