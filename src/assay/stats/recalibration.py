"""Recalibration: calibrators with the scikit-learn estimator API, chosen by held-out evidence.

Every calibrator maps a score to a probability. ``fit(scores, y)`` returns ``self``; learned
state ends in ``_``; ``predict_proba`` gives an (n, 2) matrix for binary problems;
``get_params`` / ``set_params`` / ``clone`` work (they derive from ``BaseEstimator``).
1-D inputs inside [0, 1] are read as probabilities and enter through their log-odds;
``input="score"`` takes raw scores (any real number) as they are.

* ``PlattCalibrator``: q = σ(A·x + B) on x = logit(p) (or the raw score), fitted by maximum
  likelihood with Platt's (1999) smoothed targets t₊ = (N₊ + 1)/(N₊ + 2), t₋ = 1/(N₋ + 2).
* ``TemperatureCalibrator``: softmax(z / T) on logits z (for probabilities z = log p); binary
  1-D input uses z = (0, logit p). The NLL is minimised over log T (convex in 1/T).
* ``IsotonicCalibrator``: PAV with tied scores pooled, predicted by linear interpolation
  between the fitted points and clipped outside them (as scikit-learn's IsotonicRegression).
* ``HistogramCalibrator``: equal-mass bins; each bin predicts its Jeffreys-smoothed rate
  (k + ½)/(n + 1).
* ``BetaCalibrator`` (Kull, Silva Filho & Flach 2017): logit q = a·ln p − b·ln(1 − p) + c with
  a, b ≥ 0 (a coefficient fitted negative is dropped and the model refitted); a = b is Platt
  on logit p.
* ``VennAbersCalibrator`` (inductive; Vovk, Petej & Fedorova 2015): ``predict_interval`` gives
  p₀ ≤ p₁, the isotonic fits with the test point labelled 0 and 1 (see ``assay.stats.venn_abers``);
  ``predict_proba`` merges them as p = p₁ / (1 − p₀ + p₁), the log-loss-minimax choice.

Scores may be 1-D or a single column (n, 1), as scikit-learn's meta-estimators pass them.

``recalibrate`` fits every candidate with K-fold cross-fitting and chooses by out-of-fold log
loss (Brier as tie-break), never by in-sample ECE. Calibrators save to versioned JSON (no
pickle) with a sha256 fingerprint over everything else in the file.

**Fit cut-off.** ``fitted_as_of_`` is the as-of T of the ledger outcomes a calibrator was
fitted on (``recalibrate(..., fitted_as_of=T)``; ``assay recalibrate`` passes its as-of). The
leads scored by T may have taught it, so a derived scorer is judged only on leads scored after
T (:mod:`assay.audit.derive`). The JSON records it as ``fitted_as_of`` under version 2, inside the
fingerprint; a file without it is version 1 (written before assay recorded the cut-off), loads
as before, and cannot be applied to a ledger.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, logit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from assay._validation import (
    AssayInputError,
    FloatArray,
    as_float_array,
    check_binary_labels,
    to_utc,
)
from assay.stats.binning import assign_bins, bin_edges, quantile_edges
from assay.stats.binstats import BinStats
from assay.stats.calibration import audit_bin_count, levels_or_none
from assay.stats.isotonic import isotonic_fit
from assay.stats.metrics.scores import _brier, _log_loss
from assay.stats.venn_abers import VennAbersTable, venn_abers_interval, venn_abers_table

if TYPE_CHECKING:
    import datetime as dt

    from sklearn.utils import Tags

#: JSON version with the fit cut-off; version 1 files have none.
SERIAL_VERSION = 2
UNDATED_VERSION = 1
#: Keeps logits finite for probabilities of exactly 0 or 1 (a log guard, not input repair).
_LOGIT_EPS = 1e-12


def _score_column(scores: Any) -> FloatArray:
    """Scores as a 1-D array; an (n, 1) column is accepted and flattened."""
    x = as_float_array(scores, "scores", ndim=(1, 2))
    if x.ndim == 2:
        if x.shape[1] != 1:
            raise AssayInputError(
                f"scores has shape {x.shape}; a calibrator takes one score per row "
                "(1-D or a single column)"
            )
        x = x[:, 0]
    return x


def _features(scores: Any, input_kind: str) -> FloatArray:
    x = _score_column(scores)
    if input_kind == "score":
        return x
    if (x < 0).any() or (x > 1).any():
        if input_kind == "probability":
            raise AssayInputError(
                "scores outside [0, 1] cannot be probabilities; use input='score'"
            )
        return x
    log_odds: FloatArray = logit(np.clip(x, _LOGIT_EPS, 1 - _LOGIT_EPS))
    return log_odds


def _logistic_loss(eta: FloatArray, targets: FloatArray) -> float:
    """Return the negative log-likelihood Σ log(1 + e^η) − t·η.

    It uses the stable softplus log(1 + e^η) = max(η, 0) + log1p(e^−|η|).
    """
    softplus = np.maximum(eta, 0.0) + np.log1p(np.exp(-np.abs(eta)))
    return float(np.sum(softplus - targets * eta))


def _logistic_mle(design: FloatArray, targets: FloatArray, start: FloatArray) -> FloatArray:
    """Return the maximum-likelihood θ of q = σ(design · θ), by Newton's method.

    The targets t lie in [0, 1] (0/1 outcomes or Platt's smoothed targets).

    The log-likelihood ℓ(θ) = Σ t·η − log(1 + e^η) is concave, with gradient Xᵀ(t − q) and
    Hessian −Xᵀ diag(q(1 − q)) X. A Newton step is taken whole when ℓ still rises at its end
    (then it rises all along it: ℓ is concave along the step, which starts uphill); otherwise
    it is kept only if ℓ did not fall, and halved (at most 40 times) until so. Iteration stops
    once a step moves no coefficient by more than 1e-12 relative to the coefficients' size,
    or when the Hessian is singular (separable outcomes, whose maximum lies at infinity).
    Quadratic convergence: five to eight steps at 10^5 rows.
    """
    theta = np.asarray(start, dtype=np.float64)
    eta = design @ theta
    q = expit(eta)
    for _ in range(100):
        hessian = design.T @ (design * (q * (1 - q))[:, None])
        try:
            step = np.linalg.solve(hessian, design.T @ (targets - q))
        except np.linalg.LinAlgError:
            break
        if float(np.max(np.abs(step))) <= 1e-12 * (1 + float(np.max(np.abs(theta)))):
            return theta + step
        for _ in range(40):
            trial_eta = design @ (theta + step)
            trial_q = expit(trial_eta)
            uphill = float(step @ (design.T @ (targets - trial_q))) >= 0
            if uphill or _logistic_loss(trial_eta, targets) <= _logistic_loss(eta, targets):
                break
            step = step / 2
        else:
            break
        theta, eta, q = theta + step, trial_eta, trial_q
    return theta


# scikit-learn ships no type stubs (ignore_missing_imports), so mypy sees its bases as Any.
class _Calibrator(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Shared plumbing: labels check, (n, 2) output, JSON round trip."""

    #: The as-of of the outcomes this calibrator was fitted on (None: not recorded).
    fitted_as_of_: dt.datetime | None = None

    def _labels(self, y: Any, n: int) -> FloatArray:
        labels = check_binary_labels(y)
        if len(labels) != n:
            raise AssayInputError(f"scores has {n} rows but y has {len(labels)}")
        self.classes_ = np.array([0, 1])
        return labels

    def __sklearn_tags__(self) -> Tags:
        """Declare 1-D scores, one per row, as for scikit-learn's IsotonicRegression."""
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        return tags

    def predict_proba(self, scores: Any) -> FloatArray:
        """Return the calibrated probabilities as an (n, 2) matrix [1 − q, q]."""
        check_is_fitted(self)
        q = self._positive(scores)
        return np.column_stack((1 - q, q))

    def predict(self, scores: Any) -> np.ndarray:
        """Return 1 where the calibrated probability is at least 0.5, else 0."""
        check_is_fitted(self)
        return (self._positive(scores) >= 0.5).astype(int)

    def _positive(self, scores: Any) -> FloatArray:
        raise NotImplementedError

    def _out_of_fold(self, scores: FloatArray, y: FloatArray, held_out: FloatArray) -> FloatArray:
        """P(y = 1) at the ``held_out`` scores of this calibrator fitted on (scores, y)."""
        return np.asarray(self.fit(scores, y).predict_proba(held_out)[:, 1])

    def state(self) -> dict[str, Any]:
        """Return the learned state as JSON-safe values."""
        raise NotImplementedError

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the learned state written by :meth:`state`."""
        raise NotImplementedError

    def to_json(self) -> str:
        """Kind, version, params, state and (version 2) the fit cut-off, with a fingerprint."""
        body: dict[str, Any] = {"kind": type(self).__name__, "version": UNDATED_VERSION,
                                "params": self.get_params(), "state": self.state()}  # fmt: skip
        if self.fitted_as_of_ is not None:
            body.update(version=SERIAL_VERSION, fitted_as_of=self.fitted_as_of_.isoformat())
        text = json.dumps(body, sort_keys=True)
        return json.dumps(
            {**body, "fingerprint": hashlib.sha256(text.encode()).hexdigest()}, sort_keys=True
        )

    @property
    def fingerprint(self) -> str:
        """The sha256 fingerprint of :meth:`to_json` (hex)."""
        return str(json.loads(self.to_json())["fingerprint"])


class PlattCalibrator(_Calibrator):
    """Platt scaling: a logistic curve q = σ(A·x + B) on the log-odds of the score.

    x = logit(p) for probabilities (or the raw score with ``input="score"``); A and B
    maximise the likelihood against Platt's smoothed targets t₊ = (N₊ + 1)/(N₊ + 2) for
    positives and t₋ = 1/(N₋ + 2) for negatives, which keeps a separable sample finite.

    Parameters
    ----------
    input : {"auto", "probability", "score"}, default="auto"
        How 1-D scores enter: "auto" reads scores inside [0, 1] as probabilities (through
        their log-odds) and others as raw scores; "score" always takes them as they are.

    Attributes
    ----------
    a_, b_ : float
        The fitted slope A and intercept B.
    classes_ : ndarray
        The classes, [0, 1] for binary.
    fitted_as_of_ : datetime or None
        As-of of the outcomes it was fitted on, when recorded (see :func:`recalibrate`).

    References
    ----------
    .. [1] J. C. Platt, "Probabilistic outputs for support vector machines and comparisons
       to regularized likelihood methods", in Advances in Large Margin Classifiers, MIT
       Press, 1999, pp. 61–74.

    Examples
    --------
    With 3 positives and 3 negatives the targets are 4/5 and 1/5; at p = 0.5 (logit 0) the
    calibrated probability is σ(B).

    >>> from assay import PlattCalibrator
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> platt = PlattCalibrator().fit(p, y)
    >>> round(platt.a_, 4), round(platt.b_, 4)
    (0.5802, -0.0314)
    >>> round(float(platt.predict_proba([0.5])[0, 1]), 4)
    0.4922
    """

    def __init__(self, input: str = "auto") -> None:
        self.input = input

    def fit(self, scores: Any, y: Any) -> PlattCalibrator:
        """Fit A and B on scores and 0/1 outcomes; return self."""
        x = _features(scores, self.input)
        labels = self._labels(y, len(x))
        positives, negatives = labels.sum(), len(labels) - labels.sum()
        targets = np.where(labels == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
        design = np.column_stack((x, np.ones_like(x)))
        a, b = _logistic_mle(design, targets, start=np.array([1.0, 0.0]))
        self.a_, self.b_ = float(a), float(b)
        return self

    def _positive(self, scores: Any) -> FloatArray:
        return np.asarray(expit(self.a_ * _features(scores, self.input) + self.b_))

    def state(self) -> dict[str, Any]:
        """Return the learned state as JSON-safe values."""
        return {"a": self.a_, "b": self.b_}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the learned state written by :meth:`state`."""
        self.a_, self.b_, self.classes_ = state["a"], state["b"], np.array([0, 1])


class TemperatureCalibrator(_Calibrator):
    """Temperature scaling: softmax(z / T) with one temperature T for every class.

    z are logits (for probabilities, z = log p); binary 1-D input uses z = (0, logit p), so
    q = σ(logit(p) / T). T minimises the mean negative log-likelihood, searched over log T
    in [−5, 5] (the NLL is convex in 1/T). T > 1 softens over-confident scores, T < 1
    sharpens under-confident ones; the ranking never changes.

    Parameters
    ----------
    input : {"probability", "score"}, default="probability"
        Whether scores are probabilities (taken through log or logit) or raw logits.

    Attributes
    ----------
    temperature_ : float
        The fitted temperature T.
    classes_ : ndarray
        The class indices 0 .. K − 1.
    fitted_as_of_ : datetime or None
        As-of of the outcomes it was fitted on, when recorded (see :func:`recalibrate`).

    References
    ----------
    .. [1] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of modern neural
       networks", Proc. ICML, PMLR 70, 2017, pp. 1321–1330.

    Examples
    --------
    These scores are too timid: T < 1 pushes them apart, 0.9 → σ(logit(0.9)/T).

    >>> from assay import TemperatureCalibrator
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> temperature = TemperatureCalibrator().fit(p, y)
    >>> round(temperature.temperature_, 4)
    0.7911
    >>> round(float(temperature.predict_proba([0.9])[0, 1]), 4)
    0.9414

    A probability matrix of three classes takes class indices as outcomes:

    >>> probs = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1]]
    >>> probs.append([0.3, 0.4, 0.3])
    >>> round(TemperatureCalibrator().fit(probs, [0, 1, 2, 1, 0]).temperature_, 3)
    0.603
    """

    def __init__(self, input: str = "probability") -> None:
        self.input = input

    def _logits(self, scores: Any) -> FloatArray:
        z = as_float_array(scores, "scores", ndim=(1, 2))
        if z.ndim == 1:
            z = np.column_stack(
                (
                    np.zeros_like(z),
                    _features(z, "probability" if self.input == "probability" else "score"),
                )
            )
        elif self.input == "probability":
            z = np.log(np.clip(z, _LOGIT_EPS, 1.0))
        return z

    def fit(self, scores: Any, y: Any) -> TemperatureCalibrator:
        """Fit T on scores (1-D or (n, K)) and class indices; return self."""
        z = self._logits(scores)
        labels = as_float_array(y, "y").astype(np.int64)
        if len(labels) != len(z) or labels.min() < 0 or labels.max() >= z.shape[1]:
            raise AssayInputError("y must hold one class index per row of scores")
        rows = np.arange(len(z))

        def nll(log_t: float) -> float:
            return float(-np.mean(log_softmax(z / np.exp(log_t), axis=1)[rows, labels]))

        self.temperature_ = float(
            np.exp(
                minimize_scalar(nll, bounds=(-5, 5), method="bounded", options={"xatol": 1e-10}).x
            )
        )
        self.classes_ = np.arange(z.shape[1])
        return self

    def __sklearn_tags__(self) -> Tags:
        """Declare 2-D inputs too: logits or probability matrices."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # logits or probability matrices
        return tags

    def predict_proba(self, scores: Any) -> FloatArray:
        """Return softmax(z / T), one row per score, one column per class."""
        check_is_fitted(self)
        return np.asarray(softmax(self._logits(scores) / self.temperature_, axis=1))

    def _positive(self, scores: Any) -> FloatArray:
        return self.predict_proba(scores)[:, 1]

    def predict(self, scores: Any) -> np.ndarray:
        """Return the most probable class of each row."""
        classes: np.ndarray = np.argmax(self.predict_proba(scores), axis=1)
        return classes

    def state(self) -> dict[str, Any]:
        """Return the learned state as JSON-safe values."""
        return {"temperature": self.temperature_, "classes": len(self.classes_)}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the learned state written by :meth:`state`."""
        self.temperature_ = state["temperature"]
        self.classes_ = np.arange(state["classes"])


class IsotonicCalibrator(_Calibrator):
    """Isotonic regression: the non-decreasing step function closest to the outcomes.

    The pool-adjacent-violators (PAV) least-squares fit of y on the score, with tied scores
    pooled first; predictions interpolate linearly between the fitted points and are
    clipped outside them, as scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``.

    Attributes
    ----------
    knots_ : ndarray
        The distinct fitted scores, increasing.
    values_ : ndarray
        The fitted rate at each knot, non-decreasing.
    classes_ : ndarray
        The classes, [0, 1] for binary.
    fitted_as_of_ : datetime or None
        As-of of the outcomes it was fitted on, when recorded (see :func:`recalibrate`).

    References
    ----------
    .. [1] B. Zadrozny and C. Elkan, "Obtaining calibrated probability estimates from
       decision trees and naive Bayesian classifiers", Proc. ICML, 2001, pp. 609–616.
    .. [2] B. Zadrozny and C. Elkan, "Transforming classifier scores into accurate
       multiclass probability estimates", Proc. KDD, 2002, pp. 694–699.
    .. [3] M. Ayer, H. D. Brunk, G. M. Ewing, W. T. Reid and E. Silverman, "An empirical
       distribution function for sampling with incomplete information", Annals of
       Mathematical Statistics 26(4), 1955, pp. 641–647.

    Examples
    --------
    PAV turns the outcomes 0, 0, 1, 0, 1, 1 (in score order) into 0, 0, ½, ½, 1, 1; 0.7 lies
    halfway between the knots 0.6 (½) and 0.8 (1).

    >>> import numpy as np
    >>> from assay import IsotonicCalibrator
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> isotonic = IsotonicCalibrator().fit(p, y)
    >>> np.round(isotonic.predict_proba([0.05, 0.2, 0.5, 0.7, 0.95])[:, 1], 4).tolist()
    [0.0, 0.0, 0.5, 0.75, 1.0]
    """

    def fit(self, scores: Any, y: Any) -> IsotonicCalibrator:
        """Fit the PAV step function on scores and 0/1 outcomes; return self."""
        x = _score_column(scores)
        labels = self._labels(y, len(x))
        _, (self.knots_, self.values_) = isotonic_fit(x, labels)
        return self

    def _positive(self, scores: Any) -> FloatArray:
        positive: FloatArray = np.interp(_score_column(scores), self.knots_, self.values_)
        return positive

    def state(self) -> dict[str, Any]:
        """Return the learned state as JSON-safe values."""
        return {"knots": self.knots_.tolist(), "values": self.values_.tolist()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the learned state written by :meth:`state`."""
        self.knots_, self.values_ = np.asarray(state["knots"]), np.asarray(state["values"])
        self.classes_ = np.array([0, 1])


class HistogramCalibrator(_Calibrator):
    """Histogram binning: each equal-mass bin of the scores predicts its smoothed rate.

    Scores are rescaled to [0, 1] by their fitted minimum and maximum and cut into
    ``n_bins`` equal-mass bins (ties never split, so there may be fewer); a bin with n rows
    and k positives predicts the Jeffreys-smoothed rate (k + ½)/(n + 1), never exactly 0 or 1.

    Parameters
    ----------
    n_bins : int, default=15
        Number of equal-mass bins.

    Attributes
    ----------
    edges_ : ndarray
        Bin edges on the rescaled scores.
    rates_ : ndarray
        The smoothed rate of each bin.
    offset_, scale_ : float
        The rescaling (score − offset) / scale.
    classes_ : ndarray
        The classes, [0, 1] for binary.
    fitted_as_of_ : datetime or None
        As-of of the outcomes it was fitted on, when recorded (see :func:`recalibrate`).

    References
    ----------
    .. [1] B. Zadrozny and C. Elkan, "Obtaining calibrated probability estimates from
       decision trees and naive Bayesian classifiers", Proc. ICML, 2001, pp. 609–616.
    .. [2] B. Zadrozny and C. Elkan, "Transforming classifier scores into accurate
       multiclass probability estimates", Proc. KDD, 2002, pp. 694–699.

    Examples
    --------
    Two bins of three rows with 1 and 2 positives: (1 + ½)/4 and (2 + ½)/4.

    >>> from assay import HistogramCalibrator
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> histogram = HistogramCalibrator(n_bins=2).fit(p, y)
    >>> histogram.predict_proba([0.2, 0.7])[:, 1].tolist()
    [0.375, 0.625]
    """

    def __init__(self, n_bins: int = 15) -> None:
        self.n_bins = n_bins

    def fit(self, scores: Any, y: Any) -> HistogramCalibrator:
        """Fit the bins and their rates on scores and 0/1 outcomes; return self."""
        x = _score_column(scores)
        labels = self._labels(y, len(x))
        lo, hi = float(x.min()), float(x.max())
        scaled = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        self.offset_, self.scale_ = lo, (hi - lo) if hi > lo else 1.0
        self.edges_ = quantile_edges(scaled, self.n_bins)
        bins = assign_bins(scaled, self.edges_)
        count = np.bincount(bins, minlength=len(self.edges_) - 1)
        hits = np.bincount(bins, weights=labels, minlength=len(self.edges_) - 1)
        self.rates_ = (hits + 0.5) / (count + 1.0)
        return self

    def _positive(self, scores: Any) -> FloatArray:
        scaled = (_score_column(scores) - self.offset_) / self.scale_
        bins = np.searchsorted(self.edges_, scaled, side="right") - 1
        return np.asarray(self.rates_[np.minimum(np.maximum(bins, 0), len(self.rates_) - 1)])

    def state(self) -> dict[str, Any]:
        """Return the learned state as JSON-safe values."""
        return {"offset": self.offset_, "scale": self.scale_, "edges": self.edges_.tolist(),
                "rates": self.rates_.tolist()}  # fmt: skip

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the learned state written by :meth:`state`."""
        self.offset_, self.scale_ = state["offset"], state["scale"]
        self.edges_, self.rates_ = np.asarray(state["edges"]), np.asarray(state["rates"])
        self.classes_ = np.array([0, 1])


class BetaCalibrator(_Calibrator):
    """Beta calibration: logit q = a·ln p − b·ln(1 − p) + c with a, b ≥ 0.

    A logistic regression on the features (ln p, −ln(1 − p)), unpenalised; a coefficient
    fitted negative is dropped and the model refitted, so the map stays monotone. a = b is
    Platt scaling on logit p; a ≠ b bends the curve, which Platt cannot.

    Attributes
    ----------
    a_, b_, c_ : float
        The fitted coefficients a, b ≥ 0 and the intercept c.
    classes_ : ndarray
        The classes, [0, 1] for binary.
    fitted_as_of_ : datetime or None
        As-of of the outcomes it was fitted on, when recorded (see :func:`recalibrate`).

    References
    ----------
    .. [1] M. Kull, T. Silva Filho and P. Flach, "Beta calibration: a well-founded and
       easily implemented improvement on logistic calibration for binary classifiers",
       Proc. AISTATS, PMLR 54, 2017, pp. 623–631.

    Examples
    --------
    The coefficients equal an unpenalised ``sklearn.linear_model.LogisticRegression`` on
    (ln p, −ln(1 − p)).

    >>> from assay import BetaCalibrator
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> beta = BetaCalibrator().fit(p, y)
    >>> round(beta.a_, 3), round(beta.b_, 3), round(beta.c_, 3)
    (0.441, 2.081, -1.411)
    """

    def fit(self, scores: Any, y: Any) -> BetaCalibrator:
        """Fit a, b and c on probabilities and 0/1 outcomes; return self."""
        p = np.clip(_score_column(scores), _LOGIT_EPS, 1 - _LOGIT_EPS)  # log guard
        labels = self._labels(y, len(p))
        features = np.column_stack((np.log(p), -np.log(1 - p)))
        keep = [0, 1]
        while True:
            design = np.column_stack((features[:, keep], np.ones(len(labels))))
            theta = _logistic_mle(design, labels, np.zeros(len(keep) + 1))
            coef = theta[:-1]
            if (coef >= 0).all() or not keep:
                break
            keep = [k for k, c in zip(keep, coef, strict=True) if c >= 0]
        full = np.zeros(2)
        full[keep] = coef
        self.a_, self.b_, self.c_ = float(full[0]), float(full[1]), float(theta[-1])
        return self

    def _positive(self, scores: Any) -> FloatArray:
        p = np.clip(_score_column(scores), _LOGIT_EPS, 1 - _LOGIT_EPS)  # log guard
        return np.asarray(expit(self.a_ * np.log(p) - self.b_ * np.log(1 - p) + self.c_))

    def state(self) -> dict[str, Any]:
        """Return the learned state as JSON-safe values."""
        return {"a": self.a_, "b": self.b_, "c": self.c_}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the learned state written by :meth:`state`."""
        self.a_, self.b_, self.c_ = state["a"], state["b"], state["c"]
        self.classes_ = np.array([0, 1])


class VennAbersCalibrator(_Calibrator):
    """Inductive Venn–Abers: two isotonic fits per test score, merged into one probability.

    For a test score s, p_ℓ(s) is the isotonic (PAV) fit at s of the calibration data with
    (s, ℓ) added, ℓ ∈ {0, 1}; p₀ ≤ p₁, and one of them is calibrated in the Venn sense.
    ``predict_interval`` returns (p₀, p₁); ``predict_proba`` merges them as
    p = p₁ / (1 − p₀ + p₁), the log-loss minimax choice. Both are precomputed at every gap
    between and every tie with the calibration scores (:mod:`assay.stats.venn_abers`).

    Attributes
    ----------
    table_ : VennAbersTable
        (p₀, p₁) at every gap and tie of the distinct calibration scores.
    classes_ : ndarray
        The classes, [0, 1] for binary.
    fitted_as_of_ : datetime or None
        As-of of the outcomes it was fitted on, when recorded (see :func:`recalibrate`).

    References
    ----------
    .. [1] V. Vovk and I. Petej, "Venn–Abers predictors", Proc. UAI, 2014, pp. 829–838.
    .. [2] V. Vovk, I. Petej and V. Fedorova, "Large-scale probabilistic predictors with and
       without guarantees of validity", NeurIPS 28, 2015 (the inductive predictor and the
       merged probability).

    Examples
    --------
    At s = 0.5 the outcomes in score order become 0, 0, 1, ℓ, 0, 1, 1: PAV pools 1, 0, 0
    into ⅓ for ℓ = 0 and 1, 1, 0 into ⅔ for ℓ = 1, so p = (⅔)/(1 − ⅓ + ⅔) = ½.

    >>> from assay import VennAbersCalibrator
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> venn_abers = VennAbersCalibrator().fit(p, y)
    >>> p0, p1 = venn_abers.predict_interval([0.5])
    >>> round(float(p0[0]), 4), round(float(p1[0]), 4)
    (0.3333, 0.6667)
    >>> round(float(venn_abers.predict_proba([0.5])[0, 1]), 4)
    0.5
    """

    def fit(self, scores: Any, y: Any) -> VennAbersCalibrator:
        """Precompute the Venn–Abers table from scores and 0/1 outcomes; return self."""
        x = _score_column(scores)
        self.table_ = venn_abers_table(x, self._labels(y, len(x)))
        return self

    def predict_interval(self, scores: Any) -> tuple[FloatArray, FloatArray]:
        """Return (p₀, p₁) per score, p₀ ≤ p₁: the isotonic fits with it labelled 0 and 1."""
        return self.table_.interval(_score_column(scores))

    def _positive(self, scores: Any) -> FloatArray:
        return _merge(*self.predict_interval(scores))

    def _out_of_fold(self, scores: FloatArray, y: FloatArray, held_out: FloatArray) -> FloatArray:
        """As fit-then-predict, bit for bit, bridging only the held-out scores' positions."""
        x = _score_column(scores)
        return _merge(*venn_abers_interval(x, self._labels(y, len(x)), _score_column(held_out)))

    def state(self) -> dict[str, Any]:
        """Return the learned state as JSON-safe values."""
        table = self.table_
        return {"scores": table.scores.tolist(), "gap": table.gap.tolist(),
                "tie": table.tie.tolist()}  # fmt: skip

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the learned state written by :meth:`state`."""
        self.table_ = VennAbersTable(
            np.asarray(state["scores"], dtype=float),
            np.asarray(state["gap"], dtype=float).reshape(-1, 2),
            np.asarray(state["tie"], dtype=float).reshape(-1, 2),
        )
        self.classes_ = np.array([0, 1])


def _merge(p0: FloatArray, p1: FloatArray) -> FloatArray:
    """Venn–Abers (p₀, p₁) merged into one probability p₁ / (1 − p₀ + p₁) (log-loss minimax)."""
    return np.asarray(p1 / (1 - p0 + p1))


CALIBRATORS: dict[str, type[_Calibrator]] = {
    "platt": PlattCalibrator,
    "temperature": TemperatureCalibrator,
    "isotonic": IsotonicCalibrator,
    "histogram": HistogramCalibrator,
    "beta": BetaCalibrator,
    "venn-abers": VennAbersCalibrator,
}


def load_calibrator(text: str) -> _Calibrator:
    """Rebuild a calibrator from its JSON, checking its fingerprint.

    The file holds the kind, the version (1, or 2 with the fit cut-off ``fitted_as_of``),
    the constructor parameters, the learned state and a sha256 fingerprint of all of them
    (the JSON with sorted keys, fingerprint excluded). Any change to the contents breaks the
    fingerprint, so an altered file is refused rather than applied. No pickle is involved.

    Parameters
    ----------
    text : str
        JSON written by a calibrator's ``to_json`` (or ``assay recalibrate --out``).

    Returns
    -------
    calibrator
        The fitted calibrator (a :class:`PlattCalibrator`, :class:`TemperatureCalibrator`,
        :class:`IsotonicCalibrator`, :class:`HistogramCalibrator`, :class:`BetaCalibrator`
        or :class:`VennAbersCalibrator`), ready to ``predict_proba``.

    Raises
    ------
    AssayInputError
        If the text is not JSON, lacks kind, params or state, has an unsupported version or
        an unknown kind, or its fingerprint does not match its contents.

    References
    ----------
    .. [1] NIST, "Secure Hash Standard (SHS)", FIPS PUB 180-4, 2015 (SHA-256).
    .. [2] T. Bray (ed.), "The JavaScript Object Notation (JSON) data interchange format",
       RFC 8259, IETF, 2017.

    Examples
    --------
    >>> from assay import PlattCalibrator, load_calibrator
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> text = PlattCalibrator().fit(p, y).to_json()
    >>> again = load_calibrator(text)
    >>> type(again).__name__, round(float(again.predict_proba([0.5])[0, 1]), 4)
    ('PlattCalibrator', 0.4922)
    >>> load_calibrator(text.replace('"a": 0.58', '"a": 0.68'))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    assay._validation.AssayInputError: calibrator fingerprint does not match its contents; ...
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise AssayInputError(f"the calibrator file is not JSON ({error})") from None
    if not isinstance(data, dict) or not {"kind", "params", "state"} <= data.keys():
        raise AssayInputError(
            "the calibrator file is not one `assay recalibrate --out` wrote (it needs kind, "
            "params and state)"
        )
    if data.get("version") not in (UNDATED_VERSION, SERIAL_VERSION):
        raise AssayInputError(f"calibrator version {data.get('version')!r} is not supported")
    kinds = {cls.__name__: cls for cls in CALIBRATORS.values()}
    if data.get("kind") not in kinds:
        raise AssayInputError(f"unknown calibrator kind {data.get('kind')!r}")
    calibrator = kinds[data["kind"]](**data["params"])
    calibrator.load_state(data["state"])
    if data.get("fitted_as_of") is not None:
        calibrator.fitted_as_of_ = to_utc(data["fitted_as_of"])
    if calibrator.fingerprint != data.get("fingerprint"):
        raise AssayInputError(
            "calibrator fingerprint does not match its contents; the file was altered"
        )
    return calibrator


@dataclass(frozen=True)
class MethodResult:
    """One candidate's out-of-fold scores in :func:`recalibrate`'s table.

    Attributes
    ----------
    method : str
        The candidate's name.
    log_loss, brier, ece : float
        Log loss, Brier score and plug-in ECE of its out-of-fold probabilities.
    ece_lower, ece_upper : float or None
        Credible interval of the ECE (None on thin data).
    """

    method: str
    log_loss: float
    brier: float
    ece: float
    ece_lower: float | None
    ece_upper: float | None


@dataclass(frozen=True, eq=False)
class Recalibration:
    """The result of :func:`recalibrate`: the chosen method, refitted, and the evidence.

    Attributes
    ----------
    method : str
        The chosen candidate.
    calibrator : calibrator
        The chosen calibrator (e.g. a :class:`PlattCalibrator`), refitted on all rows.
    table : list of MethodResult
        Every candidate's out-of-fold scores.
    """

    method: str
    calibrator: _Calibrator
    table: list[MethodResult]


def _method_result(name: str, labels: FloatArray, prob: FloatArray, seed: int) -> MethodResult:
    """Return one row of the table for the out-of-fold probabilities ``prob``.

    The row holds the log loss, the Brier score, and the plug-in ECE with the 90% interval of
    its posterior on the audit bins, as ``calibration(labels, prob, seed=seed)`` reports them
    (the same numbers, without the noise floor, companions and verdict the table does not show).
    """
    stats = BinStats.accumulate(
        labels, prob, bin_edges(prob, audit_bin_count(len(prob)), "quantile")
    )
    levels = levels_or_none(stats, seed=seed)
    return MethodResult(
        name,
        _log_loss(labels, prob, None),
        _brier(labels, prob, None),
        stats.calibration_error("l1"),
        None if levels is None else levels.ece.lower,
        None if levels is None else levels.ece.upper,
    )


def recalibrate(
    y_true: Any,
    y_prob: Any,
    *,
    method: str = "auto",
    cv: int = 5,
    seed: int = 0,
    fitted_as_of: dt.datetime | str | None = None,
) -> Recalibration:
    """Choose a calibrator by cross-fitted log loss and refit it on all rows.

    Rows are split into ``cv`` folds by a seeded permutation; each candidate is fitted on
    the other folds and predicts the held-out one, so every row gets an out-of-fold
    probability. The candidate with the least out-of-fold log loss wins (Brier breaks ties;
    never in-sample ECE, which rewards over-fitting) and is refitted on every row.
    ``fitted_as_of``: the as-of of the ledger outcomes ``y_true`` came from, recorded in the
    chosen calibrator (and its fingerprint) as its fit cut-off.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        The scores to recalibrate (probabilities or raw scores).
    method : str, default="auto"
        One of "platt", "temperature", "isotonic", "histogram", "beta", "venn-abers", or
        "auto" for all of them but temperature.
    cv : int, default=5
        Number of cross-fitting folds.
    seed : int, default=0
        Seed of the fold assignment and of the table's intervals.
    fitted_as_of : datetime or str, optional
        The fit cut-off to record (timezone-aware, or ISO 8601 with a zone).

    Returns
    -------
    Recalibration
        The chosen method, its calibrator refitted on all rows, and the table of every
        candidate's out-of-fold log loss, Brier score and ECE.

    Raises
    ------
    AssayInputError
        On an unknown ``method``, labels other than 0/1, NaN/inf or empty scores, or a
        ``fitted_as_of`` without a time zone.

    References
    ----------
    .. [1] A. Niculescu-Mizil and R. Caruana, "Predicting good probabilities with supervised
       learning", Proc. ICML, 2005, pp. 625–632.
    .. [2] T. Gneiting and A. E. Raftery, "Strictly proper scoring rules, prediction, and
       estimation", Journal of the American Statistical Association 102(477), 2007,
       pp. 359–378.

    Examples
    --------
    >>> import numpy as np
    >>> from assay import recalibrate
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.5, 60)
    >>> y = (rng.random(60) < p).astype(int)
    >>> result = recalibrate(y, p)
    >>> [row.method for row in result.table]
    ['platt', 'isotonic', 'histogram', 'beta', 'venn-abers']
    >>> result.method == min(result.table, key=lambda row: row.log_loss).method
    True
    >>> result.calibrator.predict_proba(p).shape
    (60, 2)
    """
    labels = check_binary_labels(y_true)
    scores = as_float_array(y_prob, "y_prob")
    candidates = (
        ["platt", "isotonic", "histogram", "beta", "venn-abers"] if method == "auto" else [method]
    )
    for name in candidates:
        if name not in CALIBRATORS:
            raise AssayInputError(
                f"method={name!r} is not supported; choose auto or one of {sorted(CALIBRATORS)}"
            )
    folds = np.random.default_rng(seed).permutation(len(labels)) % cv
    table = []
    for name in candidates:
        out_of_fold = np.empty(len(labels))
        for fold in range(cv):
            train, test = folds != fold, folds == fold
            out_of_fold[test] = CALIBRATORS[name]()._out_of_fold(
                scores[train], labels[train], scores[test]
            )
        table.append(_method_result(name, labels, out_of_fold, seed))
    best = min(table, key=lambda r: (round(r.log_loss, 12), r.brier))
    chosen = CALIBRATORS[best.method]().fit(scores, labels)
    if fitted_as_of is not None:
        chosen.fitted_as_of_ = to_utc(fitted_as_of)
    return Recalibration(best.method, chosen, table)
