"""Classical calibration tests: Spiegelhalter's z, Hosmer–Lemeshow, Cox slope and intercept."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logit
from scipy.stats import chi2, norm

from assay._validation import AssayInputError, FloatArray, check_binary_inputs, check_positive_int
from assay.stats.binning import quantile_edges
from assay.stats.binstats import BinStats


@dataclass(frozen=True)
class TestResult:
    """A test statistic with its p-value (and degrees of freedom where relevant)."""

    statistic: float
    pvalue: float
    dof: int | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def spiegelhalter_test(y_true: Any, y_prob: Any) -> TestResult:
    """Spiegelhalter's (1986) z-test of calibration, two-sided.

    Z = Σ (y_i − p_i)(1 − 2p_i) / sqrt(Σ (1 − 2p_i)² p_i (1 − p_i)); under perfect calibration
    Z is approximately standard normal and the p-value is 2·Φ(−|Z|).
    """
    labels, prob, _ = check_binary_inputs(y_true, y_prob)
    variance = float(np.sum((1 - 2 * prob) ** 2 * prob * (1 - prob)))
    if variance == 0:
        raise AssayInputError(
            "Spiegelhalter's test is undefined when every score is 0, 0.5 or 1 "
            "(its variance is zero)"
        )
    z = float(np.sum((labels - prob) * (1 - 2 * prob)) / np.sqrt(variance))
    return TestResult(z, float(2 * norm.sf(abs(z))))


def hosmer_lemeshow_test(y_true: Any, y_prob: Any, *, n_groups: int = 10) -> TestResult:
    """Hosmer–Lemeshow goodness-of-fit test on equal-mass groups of the scores.

    H = Σ_g (O_g − E_g)² / (E_g (1 − E_g / n_g)), with O_g observed and E_g = Σ p expected
    positives in group g; H ~ χ² with G − 2 degrees of freedom (G non-empty groups, ties
    never split).
    """
    n_groups = check_positive_int(n_groups, "n_groups", minimum=3)
    labels, prob, _ = check_binary_inputs(y_true, y_prob)
    stats = BinStats.accumulate(labels, prob, quantile_edges(prob, n_groups))
    mask = stats.nonempty
    n_g, observed, expected = stats.weight[mask], stats.sum_y[mask], stats.sum_p[mask]
    variance = expected * (1 - expected / n_g)
    if (variance <= 0).any() or mask.sum() < 3:
        raise AssayInputError(
            "Hosmer–Lemeshow needs at least 3 groups whose expected counts are strictly between "
            "0 and the group size; the scores are too concentrated (use fewer n_groups)"
        )
    statistic = float(np.sum((observed - expected) ** 2 / variance))
    dof = int(mask.sum()) - 2
    return TestResult(statistic, float(chi2.sf(statistic, dof)), dof)


@dataclass(frozen=True)
class CalibrationLine:
    """Cox (1958) logistic recalibration: logit P(y=1) = intercept + slope · logit(p).

    ``slope`` and ``slope_intercept`` come from the two-parameter fit; ``intercept`` is the
    calibration-in-the-large (the intercept with the slope fixed at 1, logit(p) as offset).
    A calibrated score has slope 1 and intercept 0; slope < 1 means over-confident scores.
    """

    slope: float
    intercept: float
    slope_intercept: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _logistic_fit(labels: FloatArray, offset: FloatArray, design: FloatArray) -> FloatArray:
    """Maximum-likelihood coefficients of logit P(y=1) = offset + design @ beta."""

    def objective(beta: FloatArray) -> tuple[float, FloatArray]:
        eta = offset + design @ beta
        # log(1 + e^eta) − y·eta, written stably with logaddexp.
        loss = float(np.sum(np.logaddexp(0.0, eta) - labels * eta))
        return loss, design.T @ (expit(eta) - labels)

    start = np.zeros(design.shape[1])
    result = minimize(objective, start, jac=True, method="BFGS", options={"gtol": 1e-10})
    return np.asarray(result.x)


def calibration_slope_intercept(y_true: Any, y_prob: Any) -> CalibrationLine:
    """Cox calibration slope and intercept by logistic maximum likelihood on logit(p)."""
    labels, prob, _ = check_binary_inputs(y_true, y_prob)
    extreme = (prob == 0) | (prob == 1)
    if extreme.any():
        first = int(np.flatnonzero(extreme)[0])
        raise AssayInputError(
            f"y_prob[{first}] is {float(prob[first])!r}; the calibration slope needs logit(p), "
            f"which is infinite at 0 and 1 ({int(extreme.sum())} values offend)"
        )
    if labels.min() == labels.max():
        raise AssayInputError("the calibration slope needs both outcomes in y_true")
    x = logit(prob)
    ones = np.ones((len(x), 1))
    slope_intercept, slope = _logistic_fit(labels, np.zeros_like(x), np.column_stack((ones, x)))
    (intercept,) = _logistic_fit(labels, x, ones)
    return CalibrationLine(float(slope), float(intercept), float(slope_intercept))
