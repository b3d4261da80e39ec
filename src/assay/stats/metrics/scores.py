"""Proper scores, discrimination and their decompositions (binary, positive class)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from assay._validation import AssayInputError, FloatArray, check_binary_inputs, check_choice
from assay.stats.binstats import BinStats
from assay.stats.isotonic import isotonic_fit
from assay.stats.metrics.sorted_scores import SortedScores

if TYPE_CHECKING:
    from assay.stats.binning import BinSpec


def _weighted_mean(values: FloatArray, weight: FloatArray | None) -> float:
    return float(np.mean(values) if weight is None else np.average(values, weights=weight))


def _brier_terms(labels: FloatArray, prob: FloatArray) -> FloatArray:
    return (prob - labels) ** 2


def _log_terms(labels: FloatArray, prob: FloatArray) -> FloatArray:
    # −log of the probability given to what happened (labels are 0/1): one logarithm per row.
    # A confident correct forecast costs nothing; a confident wrong one (p = 0 with y = 1)
    # costs +inf, which is the truth about that forecast.
    with np.errstate(divide="ignore"):
        return -np.log(np.where(labels == 1.0, prob, 1.0 - prob))


def _brier(labels: FloatArray, prob: FloatArray, weight: FloatArray | None) -> float:
    """:func:`brier_score` of already-validated arrays."""
    return _weighted_mean(_brier_terms(labels, prob), weight)


def _log_loss(labels: FloatArray, prob: FloatArray, weight: FloatArray | None) -> float:
    """:func:`log_loss` of already-validated arrays."""
    return _weighted_mean(_log_terms(labels, prob), weight)


def brier_score(y_true: Any, y_prob: Any, *, sample_weight: Any = None) -> float:
    """Compute the Brier score of binary probability forecasts.

    BS = Σ_i w_i (p_i − y_i)² / Σ_i w_i (every w_i = 1 without ``sample_weight``): the mean
    squared error of the probability, a strictly proper score; lower is better.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].
    sample_weight : array-like of shape (n,), optional
        Non-negative row weights, not all zero.

    Returns
    -------
    float
        The Brier score, in [0, 1].

    Raises
    ------
    AssayInputError
        On NaN/inf, probabilities outside [0, 1], labels other than 0/1, length mismatch,
        empty input, or negative or all-zero weights.

    References
    ----------
    .. [1] G. W. Brier, "Verification of forecasts expressed in terms of probability",
       Monthly Weather Review 78(1), 1950, pp. 1–3.

    Examples
    --------
    (0.01 + 0.09 + 0.4225 + 0.36 + 0.04 + 0.01) / 6 = 0.1554, as
    ``sklearn.metrics.brier_score_loss`` gives.

    >>> from assay import brier_score
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> round(brier_score(y, p), 4)
    0.1554
    """
    return _brier(*check_binary_inputs(y_true, y_prob, sample_weight))


def log_loss(y_true: Any, y_prob: Any, *, sample_weight: Any = None) -> float:
    """Compute the log loss (mean negative log-likelihood) of binary forecasts.

    LL = −Σ_i w_i [y_i log p_i + (1 − y_i) log(1 − p_i)] / Σ_i w_i, natural logarithm,
    the logarithmic (ignorance) score; lower is better. Not clipped: a forecast of exactly
    0 or 1 that turns out wrong gives ``inf``, and a right one costs nothing.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].
    sample_weight : array-like of shape (n,), optional
        Non-negative row weights, not all zero.

    Returns
    -------
    float
        The log loss in nats, in [0, inf].

    Raises
    ------
    AssayInputError
        On NaN/inf, probabilities outside [0, 1], labels other than 0/1, length mismatch,
        empty input, or negative or all-zero weights.

    References
    ----------
    .. [1] I. J. Good, "Rational decisions", Journal of the Royal Statistical Society B
       14(1), 1952, pp. 107–114.

    Examples
    --------
    The value equals ``sklearn.metrics.log_loss(y, p)``; a certain forecast proved wrong
    costs infinity.

    >>> from assay import log_loss
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> round(log_loss(y, p), 4)
    0.4594
    >>> log_loss([1], [0.0])
    inf
    """
    return _log_loss(*check_binary_inputs(y_true, y_prob, sample_weight))


def roc_auc(y_true: Any, y_prob: Any) -> float:
    """Compute the area under the ROC curve (AUC).

    AUC = P(p⁺ > p⁻) + ½ P(p⁺ = p⁻) over all positive–negative pairs, the Mann–Whitney U
    divided by n⁺n⁻. Sorts each class once and counts, for each positive, the negatives
    strictly below it and tied with it (two binary searches), so ties count one half.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].

    Returns
    -------
    float
        The AUC, in [0, 1]; 0.5 is no discrimination.

    Raises
    ------
    AssayInputError
        If ``y_true`` holds only one class, or on NaN/inf, probabilities outside [0, 1],
        labels other than 0/1, length mismatch or empty input.

    References
    ----------
    .. [1] H. B. Mann and D. R. Whitney, "On a test of whether one of two random variables
       is stochastically larger than the other", Annals of Mathematical Statistics 18(1),
       1947, pp. 50–60.
    .. [2] J. A. Hanley and B. J. McNeil, "The meaning and use of the area under a receiver
       operating characteristic (ROC) curve", Radiology 143(1), 1982, pp. 29–36.

    Examples
    --------
    The positives 0.35, 0.8, 0.9 outrank 2, 3 and 3 of the 3 negatives: 8/9. A tie counts
    one half: (0.5 + 0 + 1 + 1)/4 = 0.625.

    >>> from assay import roc_auc
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> round(roc_auc(y, p), 4)
    0.8889
    >>> roc_auc([0, 1, 0, 1], [0.2, 0.2, 0.4, 0.9])
    0.625
    """
    labels, prob, _ = check_binary_inputs(y_true, y_prob)
    n_pos = float(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        only = "positive" if n_neg == 0 else "negative"
        raise AssayInputError(
            f"AUC is undefined: every outcome in y_true is {only}; it needs both classes"
        )
    return SortedScores(labels, prob).auc()


def auc_interval(
    auc: float, positives: int, negatives: int, credibility: float = 0.9
) -> tuple[float, float]:
    """Return an approximate central interval of the AUC from its Hanley–McNeil standard error.

    SE² = [A(1 − A) + (n⁺ − 1)(Q₁ − A²) + (n⁻ − 1)(Q₂ − A²)] / (n⁺n⁻), with
    Q₁ = A/(2 − A) and Q₂ = 2A²/(1 + A) (exponential score distributions [1]_); the interval
    is A ∓ z·SE at the central ``credibility`` mass, clipped to [0, 1]. A cheap interval for
    one scorer; a comparison bootstraps its own.

    References
    ----------
    .. [1] J. A. Hanley and B. J. McNeil, "The meaning and use of the area under a receiver
       operating characteristic (ROC) curve", Radiology 143(1), 1982, pp. 29–36, eq. (2).

    Examples
    --------
    AUC 0.8 on 50 positives and 50 negatives: Q₁ = 2/3, Q₂ = 0.7111, SE = 0.0445, so the 90%
    interval is 0.8 ∓ 1.645 · 0.0445.

    >>> lower, upper = auc_interval(0.8, 50, 50)
    >>> round(lower, 3), round(upper, 3)
    (0.727, 0.873)
    """
    from scipy.special import ndtri

    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    half = float(ndtri(0.5 + credibility / 2)) * math.sqrt(max(variance, 0.0))
    return max(auc - half, 0.0), min(auc + half, 1.0)


@dataclass(frozen=True)
class BrierDecomposition:
    """Five-term Brier decomposition BS = rel − res + unc + wbv − wbc, exact for any binning.

    Murphy's (1973) reliability, resolution and uncertainty terms, plus Stephenson, Coelho &
    Jolliffe's (2008) within-bin variance and covariance, which make the identity exact when
    scores vary inside a bin. The formulas are in :func:`brier_decomposition`.

    Parameters
    ----------
    brier : float
        The Brier score BS.
    rel : float
        Reliability Σ_b (W_b/W)(p̄_b − ȳ_b)² (miscalibration; lower is better).
    res : float
        Resolution Σ_b (W_b/W)(ȳ_b − ȳ)² (higher is better).
    unc : float
        Uncertainty ȳ(1 − ȳ) of the outcomes alone.
    wbv : float
        Within-bin variance of the scores.
    wbc : float
        Twice the within-bin covariance of scores and outcomes.

    References
    ----------
    .. [1] A. H. Murphy, "A new vector partition of the probability score", Journal of
       Applied Meteorology 12(4), 1973, pp. 595–600.
    .. [2] D. B. Stephenson, C. A. S. Coelho and I. T. Jolliffe, "Two extra components in the
       Brier score decomposition", Weather and Forecasting 23(4), 2008, pp. 752–757.

    Examples
    --------
    >>> from assay import brier_decomposition
    >>> d = brier_decomposition([0, 0, 1, 0, 1, 1], [0.1, 0.3, 0.35, 0.6, 0.8, 0.9], n_bins=2)
    >>> round(d.rel - d.res + d.unc + d.wbv - d.wbc, 6) == round(d.brier, 6)
    True
    >>> sorted(d.to_dict())
    ['brier', 'rel', 'res', 'unc', 'wbc', 'wbv']
    """

    brier: float
    rel: float
    res: float
    unc: float
    wbv: float
    wbc: float

    def to_dict(self) -> dict[str, float]:
        """Return the six terms as a dict keyed by attribute name."""
        return asdict(self)


def brier_from_stats(stats: BinStats) -> BrierDecomposition:
    """Compute the five-term Brier decomposition from per-bin sums alone.

    With W = Σw, ȳ = Σy/W and per bin W_b, p̄_b, ȳ_b:
    rel = Σ W_b (p̄_b − ȳ_b)²/W, res = Σ W_b (ȳ_b − ȳ)²/W, unc = ȳ(1 − ȳ),
    wbv = Σ (Σp² − (Σp)²/W_b)/W (within-bin variance of the scores),
    wbc = 2 Σ (Σpy − Σp·Σy/W_b)/W (within-bin covariance of scores and outcomes).
    """
    mask = stats.nonempty
    w_b = stats.weight[mask]
    sp, sy = stats.sum_p[mask], stats.sum_y[mask]
    total = stats.total_weight
    base = float(sy.sum() / total)
    mean_p, rate = sp / w_b, sy / w_b
    rel = float(np.sum(w_b * (mean_p - rate) ** 2) / total)
    res = float(np.sum(w_b * (rate - base) ** 2) / total)
    unc = base * (1 - base)
    wbv = float(np.sum(stats.sum_p2[mask] - sp * mean_p) / total)
    wbc = float(2 * np.sum(stats.sum_py[mask] - sp * rate) / total)
    brier = float(np.sum(stats.sum_p2 - 2 * stats.sum_py + stats.sum_y) / total)
    return BrierDecomposition(brier, rel, res, unc, wbv, wbc)


def brier_decomposition(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: BinSpec = 15,
    strategy: str = "uniform",
    sample_weight: Any = None,
) -> BrierDecomposition:
    """Decompose the Brier score into five binned terms that sum to it exactly.

    With W = Σw, ȳ = Σwy/W and per bin b the weight W_b, mean score p̄_b and rate ȳ_b:
    REL = Σ_b W_b (p̄_b − ȳ_b)²/W, RES = Σ_b W_b (ȳ_b − ȳ)²/W, UNC = ȳ(1 − ȳ) (Murphy 1973),
    WBV = Σ_b Σ_{i∈b} w_i (p_i − p̄_b)²/W and WBC = 2 Σ_b Σ_{i∈b} w_i (p_i − p̄_b)(y_i − ȳ_b)/W
    (Stephenson, Coelho & Jolliffe 2008). BS = REL − RES + UNC + WBV − WBC holds exactly for
    any binning; Murphy's three terms alone are exact only when scores are constant in a bin.
    Computed from per-bin sums (see :func:`brier_from_stats`).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].
    n_bins : int or sequence of float, default=15
        Number of bins, or explicit edges.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins.
    sample_weight : array-like of shape (n,), optional
        Non-negative row weights, not all zero.

    Returns
    -------
    BrierDecomposition
        The five terms and the Brier score.

    Raises
    ------
    AssayInputError
        On NaN/inf, probabilities outside [0, 1], labels other than 0/1, length mismatch,
        empty input, or negative or all-zero weights.

    References
    ----------
    .. [1] A. H. Murphy, "A new vector partition of the probability score", Journal of
       Applied Meteorology 12(4), 1973, pp. 595–600.
    .. [2] D. B. Stephenson, C. A. S. Coelho and I. T. Jolliffe, "Two extra components in the
       Brier score decomposition", Weather and Forecasting 23(4), 2008, pp. 752–757.

    Examples
    --------
    Bins of the scores (0.1, 0.3, 0.35) and (0.6, 0.8, 0.9) with rates 1/3 and 2/3:
    REL = ½(1/12)² + ½(0.1)² = 0.0085, RES = (1/6)² = 0.0278, UNC = ¼.

    >>> from assay import brier_decomposition
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> d = brier_decomposition(y, p, n_bins=2)
    >>> [round(v, 4) for v in (d.rel, d.res, d.unc, d.wbv, d.wbc, d.brier)]
    [0.0085, 0.0278, 0.25, 0.0136, 0.0889, 0.1554]
    """
    return brier_from_stats(
        BinStats.from_arrays(
            y_true, y_prob, n_bins=n_bins, strategy=strategy, sample_weight=sample_weight
        )
    )


@dataclass(frozen=True)
class CorpDecomposition:
    """CORP decomposition S̄ = MCB − DSC + UNC of a mean score (Dimitriadis et al. 2021).

    The terms are defined in :func:`corp_decomposition`.

    Parameters
    ----------
    score : float
        Mean score S̄(p) of the forecasts.
    mcb : float
        Miscalibration S̄(p) − S̄(x̂), x̂ the isotonic recalibration (≥ 0).
    dsc : float
        Discrimination S̄(ȳ) − S̄(x̂) (≥ 0).
    unc : float
        Uncertainty S̄(ȳ), the score of always forecasting the base rate.
    kind : str
        The scoring rule, "brier" or "log".

    References
    ----------
    .. [1] T. Dimitriadis, T. Gneiting and A. I. Jordan, "Stable reliability diagrams for
       probabilistic classifiers", PNAS 118(8), 2021, e2016191118.
    .. [2] M. Ayer, H. D. Brunk, G. M. Ewing, W. T. Reid and E. Silverman, "An empirical
       distribution function for sampling with incomplete information", Annals of
       Mathematical Statistics 26(4), 1955, pp. 641–647 (the PAV algorithm).

    Examples
    --------
    >>> from assay import corp_decomposition
    >>> d = corp_decomposition([0, 0, 1, 0, 1, 1], [0.1, 0.3, 0.35, 0.6, 0.8, 0.9])
    >>> d.kind, round(d.mcb - d.dsc + d.unc, 6) == round(d.score, 6)
    ('brier', True)
    """

    score: float
    mcb: float
    dsc: float
    unc: float
    kind: str

    def to_dict(self) -> dict[str, float | str]:
        """Return the terms and the kind as a dict keyed by attribute name."""
        return asdict(self)


def corp_decomposition(
    y_true: Any, y_prob: Any, *, score: str = "brier", sample_weight: Any = None
) -> CorpDecomposition:
    """Decompose the mean Brier or log score by the CORP approach.

    x̂ is the PAV isotonic regression of y on p (ties pooled). With S̄(·) the mean score,
    MCB = S̄(p) − S̄(x̂) (miscalibration), DSC = S̄(ȳ) − S̄(x̂) (discrimination) and UNC = S̄(ȳ)
    (uncertainty), so S̄(p) = MCB − DSC + UNC exactly. No binning is involved: the isotonic
    fit chooses the bins, which makes the decomposition stable.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].
    score : {"brier", "log"}, default="brier"
        The proper scoring rule to decompose.
    sample_weight : array-like of shape (n,), optional
        Non-negative row weights, not all zero.

    Returns
    -------
    CorpDecomposition
        The score and its three terms.

    Raises
    ------
    AssayInputError
        On an unknown ``score``, NaN/inf, probabilities outside [0, 1], labels other than
        0/1, length mismatch, empty input, or negative or all-zero weights.

    References
    ----------
    .. [1] T. Dimitriadis, T. Gneiting and A. I. Jordan, "Stable reliability diagrams for
       probabilistic classifiers", PNAS 118(8), 2021, e2016191118.
    .. [2] M. Ayer, H. D. Brunk, G. M. Ewing, W. T. Reid and E. Silverman, "An empirical
       distribution function for sampling with incomplete information", Annals of
       Mathematical Statistics 26(4), 1955, pp. 641–647 (the PAV algorithm).

    Examples
    --------
    PAV turns the outcomes (0, 0, 1, 0, 1, 1), sorted by score, into x̂ = (0, 0, ½, ½, 1, 1)
    with Brier score 1/12: MCB = 0.1554 − 0.0833 = 0.0721, DSC = ¼ − 1/12 = 0.1667.

    >>> from assay import corp_decomposition
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> d = corp_decomposition(y, p)
    >>> round(d.mcb, 4), round(d.dsc, 4), round(d.unc, 4)
    (0.0721, 0.1667, 0.25)
    >>> round(corp_decomposition(y, p, score="log").unc, 4)  # log 2
    0.6931
    """
    check_choice(score, "score", ("brier", "log"))
    labels, prob, weight = check_binary_inputs(y_true, y_prob, sample_weight)
    terms = _brier_terms if score == "brier" else _log_terms
    recalibrated, _ = isotonic_fit(prob, labels, weight)
    climatology = np.full_like(prob, _weighted_mean(labels, weight))
    s_forecast = _weighted_mean(terms(labels, prob), weight)
    s_recalibrated = _weighted_mean(terms(labels, recalibrated), weight)
    s_climatology = _weighted_mean(terms(labels, climatology), weight)
    return CorpDecomposition(
        score=s_forecast,
        mcb=s_forecast - s_recalibrated,
        dsc=s_climatology - s_recalibrated,
        unc=s_climatology,
        kind=score,
    )
