"""Classical calibration tests: Spiegelhalter's z, Hosmer–Lemeshow, Cox slope and intercept."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import chdtrc, expit, logit, ndtr

from assay._validation import AssayInputError, FloatArray, check_binary_inputs, check_positive_int
from assay.stats.binning import quantile_edges
from assay.stats.binstats import BinStats


@dataclass(frozen=True)
class TestResult:
    """A test statistic with its p-value (and degrees of freedom where relevant).

    Returned by :func:`spiegelhalter_test` (a z statistic, no degrees of freedom) and
    :func:`hosmer_lemeshow_test` (a χ² statistic with G − 2 degrees of freedom). A small
    p-value is evidence against calibration; a large one is not evidence for it.

    Parameters
    ----------
    statistic : float
        The test statistic.
    pvalue : float
        Its p-value under the null hypothesis of perfect calibration.
    dof : int or None, default=None
        Degrees of freedom of the reference χ² distribution (None for a z test).

    References
    ----------
    .. [1] D. J. Spiegelhalter, "Probabilistic prediction in patient management and
       clinical trials", Statistics in Medicine 5(5), 1986, pp. 421–433.
    .. [2] D. W. Hosmer and S. Lemeshow, "Goodness of fit tests for the multiple logistic
       regression model", Communications in Statistics – Theory and Methods 9(10), 1980,
       pp. 1035–1049.

    Examples
    --------
    >>> from assay import hosmer_lemeshow_test
    >>> y, p = [0, 0, 1, 0, 1, 1], [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> result = hosmer_lemeshow_test(y, p, n_groups=3)
    >>> result.dof, round(result.statistic, 4)
    (1, 0.858)
    """

    statistic: float
    pvalue: float
    dof: int | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        """Return statistic, p-value and degrees of freedom as a dict."""
        return asdict(self)


def spiegelhalter_test(y_true: Any, y_prob: Any) -> TestResult:
    """Test calibration with Spiegelhalter's (1986) two-sided z statistic.

    Z = Σ (y_i − p_i)(1 − 2p_i) / sqrt(Σ (1 − 2p_i)² p_i (1 − p_i)); under perfect calibration
    Z is approximately standard normal and the p-value is 2·Φ(−|Z|). Z is the standardised
    Brier score: since y² = y, its numerator is n·(BS − E₀[BS]), E₀ the expectation under
    calibration.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].

    Returns
    -------
    TestResult
        Z and its two-sided p-value (``dof`` None).

    Raises
    ------
    AssayInputError
        If every score is 0, 0.5 or 1 (the variance is zero), or on NaN/inf, probabilities
        outside [0, 1], labels other than 0/1, length mismatch or empty input.

    References
    ----------
    .. [1] D. J. Spiegelhalter, "Probabilistic prediction in patient management and
       clinical trials", Statistics in Medicine 5(5), 1986, pp. 421–433.

    Examples
    --------
    Numerator Σ(y − p)(1 − 2p) = −0.085 and variance 0.2365, so Z = −0.085 / 0.4863.

    >>> from assay import spiegelhalter_test
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> result = spiegelhalter_test(y, p)
    >>> round(result.statistic, 4), round(result.pvalue, 4)
    (-0.1748, 0.8612)
    """
    labels, prob, _ = check_binary_inputs(y_true, y_prob)
    return _spiegelhalter(labels, prob)


def _spiegelhalter(labels: FloatArray, prob: FloatArray) -> TestResult:
    """:func:`spiegelhalter_test` of already-validated arrays."""
    variance = float(np.sum((1 - 2 * prob) ** 2 * prob * (1 - prob)))
    if variance == 0:
        raise AssayInputError(
            "Spiegelhalter's test is undefined when every score is 0, 0.5 or 1 "
            "(its variance is zero)"
        )
    z = float(np.sum((labels - prob) * (1 - 2 * prob)) / np.sqrt(variance))
    return TestResult(z, float(2 * ndtr(-abs(z))))  # 2·Φ(−|z|), as scipy.stats.norm.sf


def hosmer_lemeshow_test(y_true: Any, y_prob: Any, *, n_groups: int = 10) -> TestResult:
    """Test calibration with the Hosmer–Lemeshow statistic on equal-mass score groups.

    H = Σ_g (O_g − E_g)² / (E_g (1 − E_g / n_g)), with O_g observed and E_g = Σ p expected
    positives in group g; H ~ χ² with G − 2 degrees of freedom (G non-empty groups, ties
    never split).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].
    n_groups : int, default=10
        Number of equal-mass groups requested (at least 3; ties can merge groups).

    Returns
    -------
    TestResult
        H, its upper-tail χ² p-value and ``dof`` = G − 2.

    Raises
    ------
    AssayInputError
        If ``n_groups`` is not an integer ≥ 3, if fewer than 3 groups remain or some group's
        expected count is 0 or its size, or on NaN/inf, probabilities outside [0, 1],
        labels other than 0/1, length mismatch or empty input.

    References
    ----------
    .. [1] D. W. Hosmer and S. Lemeshow, "Goodness of fit tests for the multiple logistic
       regression model", Communications in Statistics – Theory and Methods 9(10), 1980,
       pp. 1035–1049.

    Examples
    --------
    Groups (0.1, 0.3), (0.35, 0.6), (0.8, 0.9): O = 0, 1, 2 and E = 0.4, 0.95, 1.7, so
    H = 0.16/0.32 + 0.0025/0.49875 + 0.09/0.255 = 0.858 on 1 degree of freedom.

    >>> from assay import hosmer_lemeshow_test
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> result = hosmer_lemeshow_test(y, p, n_groups=3)
    >>> round(result.statistic, 4), round(result.pvalue, 4), result.dof
    (0.858, 0.3543, 1)
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
    # the χ² survival function, as scipy.stats.chi2.sf (without importing scipy.stats)
    return TestResult(statistic, float(chdtrc(dof, statistic)), dof)


@dataclass(frozen=True)
class CalibrationLine:
    """Cox (1958) logistic recalibration: logit P(y=1) = intercept + slope · logit(p).

    ``slope`` and ``slope_intercept`` come from the two-parameter fit; ``intercept`` is the
    calibration-in-the-large (the intercept with the slope fixed at 1, logit(p) as offset).
    A calibrated score has slope 1 and intercept 0; slope < 1 means over-confident scores.

    Parameters
    ----------
    slope : float
        Calibration slope b of logit P(y=1) = a + b·logit(p).
    intercept : float
        Calibration-in-the-large: a with b fixed at 1 (negative: the score over-promises).
    slope_intercept : float
        The intercept a of the two-parameter fit.

    References
    ----------
    .. [1] D. R. Cox, "Two further applications of a model for binary regression",
       Biometrika 45(3/4), 1958, pp. 562–565.
    .. [2] B. Van Calster, D. Nieboer, Y. Vergouwe, B. De Cock, M. J. Pencina and
       E. W. Steyerberg, "A calibration hierarchy for risk models was defined: from utopia
       to empirical data", Journal of Clinical Epidemiology 74, 2016, pp. 167–176.

    Examples
    --------
    >>> from assay import calibration_slope_intercept
    >>> line = calibration_slope_intercept([0, 0, 1, 0, 1, 1], [0.1, 0.3, 0.35, 0.6, 0.8, 0.9])
    >>> sorted(line.to_dict())
    ['intercept', 'slope', 'slope_intercept']
    """

    slope: float
    intercept: float
    slope_intercept: float

    def to_dict(self) -> dict[str, float]:
        """Return slope, intercept and slope_intercept as a dict."""
        return asdict(self)


def _logistic_fit(labels: FloatArray, offset: FloatArray, design: FloatArray) -> FloatArray:
    """Maximum-likelihood coefficients of logit P(y=1) = offset + design @ beta."""

    def objective(beta: FloatArray) -> tuple[float, FloatArray]:
        eta = offset + design @ beta
        # log(1 + e^eta) − y·eta, written stably with logaddexp.
        loss = float(np.sum(np.logaddexp(0.0, eta) - labels * eta))
        return loss, design.T @ (expit(eta) - labels)

    from scipy.optimize import minimize  # here: `import assay` loads no scipy.optimize

    start = np.zeros(design.shape[1])
    result = minimize(objective, start, jac=True, method="BFGS", options={"gtol": 1e-10})
    return np.asarray(result.x)


def calibration_slope_intercept(y_true: Any, y_prob: Any) -> CalibrationLine:
    """Fit the Cox calibration slope and intercept by logistic maximum likelihood.

    The slope b and its intercept come from maximising Σ [y η − log(1 + e^η)] with
    η = a + b·logit(p_i); the calibration-in-the-large a' from the same likelihood with
    η = a' + logit(p_i) (logit p as an offset, slope fixed at 1). Both fits are unpenalised
    (BFGS to a gradient of 1e-10).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].

    Returns
    -------
    CalibrationLine
        The slope, the calibration-in-the-large and the two-parameter intercept.

    Raises
    ------
    AssayInputError
        If some score is exactly 0 or 1 (logit is infinite), if ``y_true`` holds one class
        only, or on NaN/inf, probabilities outside [0, 1], labels other than 0/1, length
        mismatch or empty input.

    References
    ----------
    .. [1] D. R. Cox, "Two further applications of a model for binary regression",
       Biometrika 45(3/4), 1958, pp. 562–565.
    .. [2] B. Van Calster, D. Nieboer, Y. Vergouwe, B. De Cock, M. J. Pencina and
       E. W. Steyerberg, "A calibration hierarchy for risk models was defined: from utopia
       to empirical data", Journal of Clinical Epidemiology 74, 2016, pp. 167–176.

    Examples
    --------
    The slope and intercept equal an unpenalised ``sklearn.linear_model.LogisticRegression``
    on logit(p) (1.2635, −0.0533); the intercept with the slope fixed solves
    Σ (y − σ(a' + logit p)) = 0.

    >>> from assay import calibration_slope_intercept
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> line = calibration_slope_intercept(y, p)
    >>> round(line.slope, 3), round(line.slope_intercept, 3), round(line.intercept, 3)
    (1.263, -0.053, -0.049)
    """
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
