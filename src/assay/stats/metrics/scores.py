"""Proper scores, discrimination and their decompositions (binary, positive class)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from assay._validation import AssayInputError, FloatArray, check_binary_inputs, check_choice
from assay.stats.binning import BinSpec
from assay.stats.binstats import BinStats
from assay.stats.isotonic import isotonic_fit
from assay.stats.metrics.sorted_scores import SortedScores


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


def brier_score(y_true: Any, y_prob: Any, *, sample_weight: Any = None) -> float:
    """Brier score (1/n) Σ (p_i − y_i)² for binary outcomes; lower is better."""
    labels, prob, weight = check_binary_inputs(y_true, y_prob, sample_weight)
    return _weighted_mean(_brier_terms(labels, prob), weight)


def log_loss(y_true: Any, y_prob: Any, *, sample_weight: Any = None) -> float:
    """Mean negative log-likelihood −(1/n) Σ [y log p + (1 − y) log(1 − p)] (natural log).

    Not clipped: a forecast of exactly 0 or 1 that turns out wrong gives ``inf``.
    """
    labels, prob, weight = check_binary_inputs(y_true, y_prob, sample_weight)
    return _weighted_mean(_log_terms(labels, prob), weight)


def roc_auc(y_true: Any, y_prob: Any) -> float:
    """Area under the ROC curve: P(p⁺ > p⁻) + ½ P(p⁺ = p⁻) (the Mann–Whitney U / n⁺n⁻).

    Sorts each class once and counts, for each positive, the negatives strictly below it and
    tied with it (two binary searches), so ties count one half.
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


@dataclass(frozen=True)
class BrierDecomposition:
    """Stephenson, Coelho & Jolliffe (2008): BS = rel − res + unc + wbv − wbc, exactly."""

    brier: float
    rel: float
    res: float
    unc: float
    wbv: float
    wbc: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def brier_from_stats(stats: BinStats) -> BrierDecomposition:
    """The five-term decomposition from per-bin sums alone.

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
    """Five-term binned Brier decomposition (Stephenson, Coelho & Jolliffe 2008).

    BS = REL − RES + UNC + WBV − WBC holds exactly for any binning; see :func:`brier_from_stats`.
    """
    return brier_from_stats(
        BinStats.from_arrays(
            y_true, y_prob, n_bins=n_bins, strategy=strategy, sample_weight=sample_weight
        )
    )


@dataclass(frozen=True)
class CorpDecomposition:
    """CORP decomposition S̄ = MCB − DSC + UNC (Dimitriadis, Gneiting & Jordan 2021)."""

    score: float
    mcb: float
    dsc: float
    unc: float
    kind: str

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def corp_decomposition(
    y_true: Any, y_prob: Any, *, score: str = "brier", sample_weight: Any = None
) -> CorpDecomposition:
    """CORP decomposition of the mean Brier or log score.

    x̂ is the PAV isotonic regression of y on p (ties pooled). With S̄(·) the mean score,
    MCB = S̄(p) − S̄(x̂) (miscalibration), DSC = S̄(ȳ) − S̄(x̂) (discrimination) and UNC = S̄(ȳ)
    (uncertainty), so S̄(p) = MCB − DSC + UNC exactly.
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
