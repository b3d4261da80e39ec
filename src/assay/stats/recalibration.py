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

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_softmax, logit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted

from assay._validation import (
    AssayInputError,
    FloatArray,
    as_float_array,
    check_binary_labels,
    to_utc,
)
from assay.stats.binning import assign_bins, quantile_edges
from assay.stats.calibration import calibration
from assay.stats.isotonic import isotonic_fit
from assay.stats.metrics.scores import brier_score, log_loss
from assay.stats.venn_abers import VennAbersTable, venn_abers_table

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
    return logit(np.clip(x, _LOGIT_EPS, 1 - _LOGIT_EPS))


def _logistic_fit(x: FloatArray, targets: FloatArray) -> tuple[float, float]:
    """Maximum likelihood of q = σ(A·x + B) against (possibly smoothed) targets."""

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        eta = theta[0] * x + theta[1]
        loss = float(np.sum(np.logaddexp(0.0, eta) - targets * eta))
        residual = expit(eta) - targets
        return loss, np.array([residual @ x, residual.sum()])

    result = minimize(
        objective, np.array([1.0, 0.0]), jac=True, method="BFGS", options={"gtol": 1e-10}
    )
    return float(result.x[0]), float(result.x[1])


class _Calibrator(ClassifierMixin, BaseEstimator):
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
        """Scores come one per row, as for scikit-learn's IsotonicRegression."""
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        return tags

    def predict_proba(self, scores: Any) -> FloatArray:
        check_is_fitted(self)
        q = self._positive(scores)
        return np.column_stack((1 - q, q))

    def predict(self, scores: Any) -> np.ndarray:
        check_is_fitted(self)
        return (self._positive(scores) >= 0.5).astype(int)

    def _positive(self, scores: Any) -> FloatArray:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state(self, state: dict[str, Any]) -> None:
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
        return str(json.loads(self.to_json())["fingerprint"])


class PlattCalibrator(_Calibrator):
    def __init__(self, input: str = "auto") -> None:
        self.input = input

    def fit(self, scores: Any, y: Any) -> PlattCalibrator:
        x = _features(scores, self.input)
        labels = self._labels(y, len(x))
        positives, negatives = labels.sum(), len(labels) - labels.sum()
        targets = np.where(labels == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
        self.a_, self.b_ = _logistic_fit(x, targets)
        return self

    def _positive(self, scores: Any) -> FloatArray:
        return np.asarray(expit(self.a_ * _features(scores, self.input) + self.b_))

    def state(self) -> dict[str, Any]:
        return {"a": self.a_, "b": self.b_}

    def load_state(self, state: dict[str, Any]) -> None:
        self.a_, self.b_, self.classes_ = state["a"], state["b"], np.array([0, 1])


class TemperatureCalibrator(_Calibrator):
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
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # logits or probability matrices
        return tags

    def predict_proba(self, scores: Any) -> FloatArray:
        check_is_fitted(self)
        return np.asarray(softmax(self._logits(scores) / self.temperature_, axis=1))

    def _positive(self, scores: Any) -> FloatArray:
        return self.predict_proba(scores)[:, 1]

    def predict(self, scores: Any) -> np.ndarray:
        return np.argmax(self.predict_proba(scores), axis=1)

    def state(self) -> dict[str, Any]:
        return {"temperature": self.temperature_, "classes": len(self.classes_)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.temperature_ = state["temperature"]
        self.classes_ = np.arange(state["classes"])


class IsotonicCalibrator(_Calibrator):
    def fit(self, scores: Any, y: Any) -> IsotonicCalibrator:
        x = _score_column(scores)
        labels = self._labels(y, len(x))
        _, (self.knots_, self.values_) = isotonic_fit(x, labels)
        return self

    def _positive(self, scores: Any) -> FloatArray:
        return np.interp(_score_column(scores), self.knots_, self.values_)

    def state(self) -> dict[str, Any]:
        return {"knots": self.knots_.tolist(), "values": self.values_.tolist()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.knots_, self.values_ = np.asarray(state["knots"]), np.asarray(state["values"])
        self.classes_ = np.array([0, 1])


class HistogramCalibrator(_Calibrator):
    def __init__(self, n_bins: int = 15) -> None:
        self.n_bins = n_bins

    def fit(self, scores: Any, y: Any) -> HistogramCalibrator:
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
        return {"offset": self.offset_, "scale": self.scale_, "edges": self.edges_.tolist(),
                "rates": self.rates_.tolist()}  # fmt: skip

    def load_state(self, state: dict[str, Any]) -> None:
        self.offset_, self.scale_ = state["offset"], state["scale"]
        self.edges_, self.rates_ = np.asarray(state["edges"]), np.asarray(state["rates"])
        self.classes_ = np.array([0, 1])


class BetaCalibrator(_Calibrator):
    def fit(self, scores: Any, y: Any) -> BetaCalibrator:
        p = np.clip(_score_column(scores), _LOGIT_EPS, 1 - _LOGIT_EPS)  # log guard
        labels = self._labels(y, len(p))
        features = np.column_stack((np.log(p), -np.log(1 - p)))
        keep = [0, 1]
        while True:
            coef, intercept = _multi_logistic(features[:, keep], labels)
            if (coef >= 0).all() or not keep:
                break
            keep = [k for k, c in zip(keep, coef, strict=True) if c >= 0]
        full = np.zeros(2)
        full[keep] = coef
        self.a_, self.b_, self.c_ = float(full[0]), float(full[1]), float(intercept)
        return self

    def _positive(self, scores: Any) -> FloatArray:
        p = np.clip(_score_column(scores), _LOGIT_EPS, 1 - _LOGIT_EPS)  # log guard
        return np.asarray(expit(self.a_ * np.log(p) - self.b_ * np.log(1 - p) + self.c_))

    def state(self) -> dict[str, Any]:
        return {"a": self.a_, "b": self.b_, "c": self.c_}

    def load_state(self, state: dict[str, Any]) -> None:
        self.a_, self.b_, self.c_ = state["a"], state["b"], state["c"]
        self.classes_ = np.array([0, 1])


class VennAbersCalibrator(_Calibrator):
    def fit(self, scores: Any, y: Any) -> VennAbersCalibrator:
        x = _score_column(scores)
        self.table_ = venn_abers_table(x, self._labels(y, len(x)))
        return self

    def predict_interval(self, scores: Any) -> tuple[FloatArray, FloatArray]:
        """(p₀, p₁) per score, p₀ ≤ p₁: the isotonic fits with the score labelled 0 and 1."""
        return self.table_.interval(_score_column(scores))

    def _positive(self, scores: Any) -> FloatArray:
        p0, p1 = self.predict_interval(scores)
        return np.asarray(p1 / (1 - p0 + p1))

    def state(self) -> dict[str, Any]:
        table = self.table_
        return {"scores": table.scores.tolist(), "gap": table.gap.tolist(),
                "tie": table.tie.tolist()}  # fmt: skip

    def load_state(self, state: dict[str, Any]) -> None:
        self.table_ = VennAbersTable(
            np.asarray(state["scores"], dtype=float),
            np.asarray(state["gap"], dtype=float).reshape(-1, 2),
            np.asarray(state["tie"], dtype=float).reshape(-1, 2),
        )
        self.classes_ = np.array([0, 1])


def _multi_logistic(features: FloatArray, labels: FloatArray) -> tuple[FloatArray, float]:
    """Unpenalised logistic regression by BFGS; returns (coefficients, intercept)."""
    design = np.column_stack((features, np.ones(len(labels))))

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        eta = design @ theta
        return float(np.sum(np.logaddexp(0.0, eta) - labels * eta)), design.T @ (
            expit(eta) - labels
        )

    theta = minimize(
        objective, np.zeros(design.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-10}
    ).x
    return np.asarray(theta[:-1]), float(theta[-1])


CALIBRATORS: dict[str, type[_Calibrator]] = {
    "platt": PlattCalibrator,
    "temperature": TemperatureCalibrator,
    "isotonic": IsotonicCalibrator,
    "histogram": HistogramCalibrator,
    "beta": BetaCalibrator,
    "venn-abers": VennAbersCalibrator,
}


def load_calibrator(text: str) -> _Calibrator:
    """Rebuild a calibrator from :meth:`to_json` output, checking its fingerprint."""
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
    method: str
    log_loss: float
    brier: float
    ece: float
    ece_lower: float | None
    ece_upper: float | None


@dataclass(frozen=True, eq=False)
class Recalibration:
    method: str
    calibrator: _Calibrator
    table: list[MethodResult]


def recalibrate(
    y_true: Any,
    y_prob: Any,
    *,
    method: str = "auto",
    cv: int = 5,
    seed: int = 0,
    fitted_as_of: dt.datetime | str | None = None,
) -> Recalibration:
    """Cross-fit every candidate, choose by out-of-fold log loss (Brier breaks ties), refit.

    ``fitted_as_of``: the as-of of the ledger outcomes ``y_true`` came from, recorded in the
    chosen calibrator (and its fingerprint) as its fit cut-off.
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
            fitted = clone(CALIBRATORS[name]()).fit(scores[train], labels[train])
            out_of_fold[test] = fitted.predict_proba(scores[test])[:, 1]
        report = calibration(labels, out_of_fold, seed=seed)
        posterior = report.posterior
        table.append(
            MethodResult(
                name,
                log_loss(labels, out_of_fold),
                brier_score(labels, out_of_fold),
                report.ece,
                None if posterior is None else posterior.lower,
                None if posterior is None else posterior.upper,
            )
        )
    best = min(table, key=lambda r: (round(r.log_loss, 12), r.brier))
    chosen = CALIBRATORS[best.method]().fit(scores, labels)
    if fitted_as_of is not None:
        chosen.fitted_as_of_ = to_utc(fitted_as_of)
    return Recalibration(best.method, chosen, table)
