"""Anytime-valid calibration evidence: likelihood-ratio e-processes on a stream of matured leads.

**Null hypothesis: calibrated within tolerance** (the same tolerance the report judges,
:class:`assay.Tolerance`). Lead t, scored p_t = σ(x_t), converts with a true probability r_t
inside its band

    [σ(x_t + g_lo)/ratio,  min(σ(x_t + g_hi)·ratio, 1)],

g_lo and g_hi the smallest and largest g = (b − 1)(x_t − c_t) over b ∈ [1/slope, slope]:
the score may be off by a calibration slope and then by an observed/expected ratio within
tolerance. c_t, the mean log-odds of the leads
consumed before t, is known in advance. For an alternative q_t chosen from the past alone,
the bet is placed against p'_t, the point of the band nearest q_t (p'_t = q_t inside it):

    LR_t(q) = q^y (1 − q)^(1−y) / (p'^y (1 − p')^(1−y)).

E[LR_t] = r q/p' + (1 − r)(1 − q)/(1 − p') is linear in r, equals 1 at r = p' and is ≤ 1 for
every r on the far side of p' from q, which is every r in the band. So E_t = ∏ LR_s is a
non-negative supermartingale under every null member, and so is any fixed average of such
products. Ville's inequality, P(sup_t E_t ≥ 1/α) ≤ α, is why the audit alarm keeps its error
rate however often anyone looks — and why a score the report calls calibrated within
tolerance does not alarm (the first version tested exact calibration, so a score with
observed/expected 1.1 alarmed while the report called it calibrated). The curve level (ECE)
is the report's alone.

The audit e-process averages four components with weight ¼ each:

* **shift mixture**: q = σ(logit p + δ), the plain average over the fixed δ ∈ ±{0.1, 0.25,
  0.5, 1.0};
* **gated shift**: q = σ(logit p + δ̂), δ̂ the maximum-likelihood log-odds shift on the last
  ``window`` leads, bet only when the window's score test |Σ(y − p)| / √Σp(1 − p) ≥ ``gate_z``
  (otherwise q = p, LR = 1, so a calibrated stream costs it almost nothing);
* **slope** (Cox 1958 refit): q = σ(a + b·logit p) fitted on the window, bet only when the
  deviance against (a, b) = (0, 1) exceeds the χ²₂ 95% point;
* **binned**: q's log-odds offset per probability decile is logit r_b − logit p̄_b with the
  window's shrunken rate r_b = (Σy + κ p̄_b) / (n_b + κ).

Refits happen every ``refit_every`` leads, counted from the start of the stream, and see only
leads consumed before them, so how the stream is split into updates never changes a bit of the
result (sums run sequentially in consumption order).

The drift alarm is the e-CUSUM detector D_t = LR_t · max(D_{t−1}, 1) on the gated-shift bet
(Shin, Ramdas & Rinaldo 2023): D_t − t is a supermartingale under the null, so the mean time to
a false alarm at threshold c is at least c leads. The change is dated at the last restart,
the last lead after which D had fallen to 1 or below.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import expit
from scipy.stats import chi2

if TYPE_CHECKING:
    from assay._validation import FloatArray

#: Fixed log-odds shifts of the mixture, all beyond the default tolerance (log 1.25 ≈ 0.22).
SHIFTS = (-1.5, -1.0, -0.7, -0.4, 0.4, 0.7, 1.0, 1.5)
COMPONENTS = ("shift mixture", "gated shift", "slope", "binned")
#: Row layout of the log-e vector: the eight fixed shifts, then the three refitted bettors.
GATED, SLOPE, BINNED = len(SHIFTS), len(SHIFTS) + 1, len(SHIFTS) + 2
N_BINS = 10
#: Keeps logits finite for probabilities of exactly 0 or 1 (a log guard, not input repair).
LOGIT_EPS = 1e-9
#: The χ²₂ 95% point: the Cox refit bets only when its deviance beats (0, 1) by this much.
SLOPE_GATE = float(chi2.ppf(0.95, 2))


@dataclass(frozen=True)
class StreamConfig:
    """How the alternatives are fitted; every field enters the JSON state."""

    alpha: float = 0.05
    window: int = 500
    refit_every: int = 25
    min_fit: int = 100
    gate_z: float = 2.0
    shrinkage: float = 50.0
    slope_gate: float = SLOPE_GATE
    drift_threshold: float = 1000.0
    ratio: float = 1.25  # tolerance: observed/expected within [1/ratio, ratio]
    slope: float = 1.25  # tolerance: calibration slope within [1/slope, slope]


@dataclass
class StreamState:
    """Everything the e-processes need to continue; constant in size (the window is capped)."""

    n: int = 0
    logit_sum: float = 0.0  # Σ x over consumed leads: c_t = logit_sum / n
    log_e: list[float] = field(default_factory=lambda: [0.0] * (len(SHIFTS) + 3))
    shift: float = 0.0  # gated δ̂ (0 while the gate is closed)
    slope: tuple[float, float] = (0.0, 1.0)  # Cox (a, b); (0, 1) while the gate is closed
    binned: list[float] = field(default_factory=lambda: [0.0] * N_BINS)
    window_x: list[float] = field(default_factory=list)
    window_y: list[int] = field(default_factory=list)
    cusum: float = 0.0  # log max(D_t, 1)
    cusum_start: int | None = None  # lead index (1-based) after the last restart
    cusum_start_time: int | None = None
    max_log_e: float = 0.0
    audit_alarm: dict[str, Any] | None = None
    drift_alarm: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the state as a JSON-ready dict (``slope`` as a list)."""
        body = asdict(self)
        body["slope"] = list(self.slope)
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> StreamState:
        """Rebuild a state from :meth:`to_dict` output (``slope`` back to a tuple)."""
        values = dict(body)
        values["slope"] = tuple(values["slope"])
        return cls(**values)


@dataclass(frozen=True)
class StreamPath:
    """Per consumed lead: the audit log e-value and the drift detector's log D."""

    log_e: FloatArray
    log_drift: FloatArray


def _centres(state: StreamState, x: FloatArray) -> FloatArray:
    """c_t per lead: the mean log-odds of the leads before it (its own for the very first)."""
    before = np.cumsum(np.concatenate(([state.logit_sum], x)))[:-1]  # sequential, as `consume`
    count = state.n + np.arange(len(x))
    return np.where(count > 0, before / np.maximum(count, 1), x)


def null_band(
    x: FloatArray, centre: FloatArray | float, config: StreamConfig
) -> tuple[FloatArray, FloatArray]:
    """Log-odds of the band's edges (module docstring) for leads with log-odds x."""
    distance = x - centre
    gaps = np.vstack(((1 / config.slope - 1) * distance, (config.slope - 1) * distance))
    low = np.log(expit(x + gaps.min(axis=0)) / config.ratio)
    high_p = np.minimum(expit(x + gaps.max(axis=0)) * config.ratio, 1.0)
    with np.errstate(divide="ignore"):
        high = np.log(high_p) - np.log1p(-high_p)  # +inf where the band reaches 1
    return low - np.log1p(-np.exp(low)), high


def log_likelihood_ratio(y: FloatArray, x: FloatArray, z: FloatArray) -> FloatArray:
    """Log LR on the log-odds scale (x = logit p, z = logit q), stable for extreme odds."""
    sign = np.where(y > 0.5, -1.0, 1.0)
    return np.asarray(np.logaddexp(0.0, sign * x) - np.logaddexp(0.0, sign * z))


def logit_of(p: FloatArray) -> FloatArray:
    """Return log(p / (1 − p)) with p clipped to [LOGIT_EPS, 1 − LOGIT_EPS]."""
    guarded = np.minimum(np.maximum(p, LOGIT_EPS), 1 - LOGIT_EPS)  # log guard
    return np.asarray(np.log(guarded) - np.log1p(-guarded))


def bins_of(x: FloatArray) -> np.ndarray:
    """Probability deciles by comparison of p = σ(x) with the edges b/10."""
    edges = np.log(np.arange(1, N_BINS) / (N_BINS - np.arange(1, N_BINS)))  # logit(b/10)
    return np.searchsorted(edges, x, side="right")


def _fit_shift(x: FloatArray, y: FloatArray) -> float:
    """Maximum-likelihood δ in y ~ Bernoulli(σ(x + δ)) by Newton, bounded to [−2, 2]."""
    delta = 0.0
    for _ in range(50):
        q = expit(x + delta)
        step = float(np.sum(y - q) / max(np.sum(q * (1 - q)), 1e-12))
        bounded = min(max(delta + step, -2.0), 2.0)
        if abs(bounded - delta) < 1e-12:
            break
        delta = bounded
    return delta


def _log_likelihood(x: FloatArray, y: FloatArray, a: float, b: float) -> float:
    z = a + b * x
    return float(np.sum(y * z - np.logaddexp(0.0, z)))


def _fit_slope(x: FloatArray, y: FloatArray) -> tuple[float, float]:
    """Cox's (a, b) by Newton–Raphson from (0, 1), bounded to a ∈ [−3, 3], b ∈ [0.2, 5]."""
    theta = np.array([0.0, 1.0])
    design = np.column_stack((np.ones_like(x), x))
    for _ in range(50):
        q = expit(design @ theta)
        hessian = design.T @ (design * (q * (1 - q))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, design.T @ (y - q))
        bounded = np.array(
            [min(max(theta[0] + step[0], -3.0), 3.0), min(max(theta[1] + step[1], 0.2), 5.0)]
        )
        if float(np.max(np.abs(bounded - theta))) < 1e-10:
            break
        theta = bounded
    return float(theta[0]), float(theta[1])


def _fit_binned(x: FloatArray, y: FloatArray, shrinkage: float) -> list[float]:
    bins = bins_of(x)
    p = expit(x)
    count = np.bincount(bins, minlength=N_BINS)
    hits = np.bincount(bins, weights=y, minlength=N_BINS)
    mass = np.bincount(bins, weights=p, minlength=N_BINS)
    offsets = np.zeros(N_BINS)
    seen = count > 0
    mean_p = mass[seen] / count[seen]
    rate = (hits[seen] + shrinkage * mean_p) / (count[seen] + shrinkage)
    offsets[seen] = logit_of(rate) - logit_of(mean_p)
    return [float(v) for v in offsets]


def refit(state: StreamState, config: StreamConfig) -> None:
    """Refit the three adaptive alternatives on the window of consumed leads."""
    if len(state.window_x) < config.min_fit:
        return
    x = np.asarray(state.window_x)
    y = np.asarray(state.window_y, dtype=float)
    p = expit(x)
    score = float(np.sum(y - p) / np.sqrt(np.sum(p * (1 - p))))
    state.shift = _fit_shift(x, y) if abs(score) >= config.gate_z else 0.0
    a, b = _fit_slope(x, y)
    deviance = 2 * (_log_likelihood(x, y, a, b) - _log_likelihood(x, y, 0.0, 1.0))
    state.slope = (a, b) if deviance >= config.slope_gate else (0.0, 1.0)
    state.binned = _fit_binned(x, y, config.shrinkage)


def alternatives(state: StreamState, x: FloatArray) -> FloatArray:
    """Log-odds of every alternative q (rows as in ``log_e``) for leads with log-odds x."""
    a, b = state.slope
    rows = [x + delta for delta in SHIFTS]
    rows += [x + state.shift, a + b * x, x + np.asarray(state.binned)[bins_of(x)]]
    return np.vstack(rows)


def audit_log_e(log_e: FloatArray) -> FloatArray:
    """Log of the audit e-value: ¼ (mean of the shift bets) + ¼ each refitted bettor."""
    mixture = _log_mean_exp(log_e[: len(SHIFTS)])
    stacked = np.vstack([np.atleast_1d(mixture), np.atleast_2d(log_e[len(SHIFTS) :])])
    return _log_mean_exp(stacked)


def _log_mean_exp(rows: FloatArray) -> FloatArray:
    """Log of the mean of exp(rows) down axis 0, stably (NumPy; this runs once per refit)."""
    top = rows.max(axis=0)
    return np.asarray(top + np.log(np.mean(np.exp(rows - top), axis=0)))


def consume(
    state: StreamState,
    config: StreamConfig,
    y: FloatArray,
    p: FloatArray,
    times: np.ndarray,
) -> StreamPath:
    """Feed matured leads in order; returns the path of the audit e-value and of log D."""
    x_all, y_all = logit_of(p), np.asarray(y, dtype=float)
    paths_e, paths_d = [], []
    start = 0
    while start < len(x_all):
        room = config.refit_every - state.n % config.refit_every
        x, yy = x_all[start : start + room], y_all[start : start + room]
        lead_times = times[start : start + room]
        low, high = null_band(x, _centres(state, x), config)
        bets = alternatives(state, x)
        log_lr = log_likelihood_ratio(yy, np.clip(bets, low, high), bets)
        carried = np.column_stack((np.asarray(state.log_e), log_lr))
        cumulative = np.cumsum(carried, axis=1)[:, 1:]  # sequential, so batching cannot matter
        path = audit_log_e(cumulative)
        drift = _cusum(state, config, log_lr[GATED], lead_times)
        crossed = np.flatnonzero(path >= np.log(1 / config.alpha))
        if state.audit_alarm is None and len(crossed):
            first = int(crossed[0])
            state.audit_alarm = {"lead": state.n + first + 1, "time": int(lead_times[first]),
                                 "e_value": float(np.exp(path[first]))}  # fmt: skip
        state.log_e = [float(v) for v in cumulative[:, -1]]
        state.max_log_e = max(state.max_log_e, float(path.max()))
        state.n += len(x)
        state.logit_sum = float(np.cumsum(np.concatenate(([state.logit_sum], x)))[-1])
        state.window_x = (state.window_x + [float(v) for v in x])[-config.window :]
        state.window_y = (state.window_y + [int(v) for v in yy])[-config.window :]
        if state.n % config.refit_every == 0:
            refit(state, config)
        paths_e.append(path)
        paths_d.append(drift)
        start += len(x)
    empty = np.zeros(0)
    return StreamPath(
        np.concatenate(paths_e) if paths_e else empty,
        np.concatenate(paths_d) if paths_d else empty,
    )


def _cusum(
    state: StreamState, config: StreamConfig, log_lr: FloatArray, times: np.ndarray
) -> FloatArray:
    """Log D_t = log LR_t + log max(D_{t−1}, 1); alarm at D_t ≥ ``drift_threshold``."""
    threshold = float(np.log(config.drift_threshold))
    out = np.empty(len(log_lr))
    for i, step in enumerate(log_lr.tolist()):
        if state.cusum <= 0.0:
            state.cusum_start, state.cusum_start_time = state.n + i + 1, int(times[i])
        log_d = step + state.cusum
        out[i] = log_d
        state.cusum = max(log_d, 0.0)
        if state.drift_alarm is None and log_d >= threshold:
            state.drift_alarm = {
                "lead": state.n + i + 1,
                "time": int(times[i]),
                "since_lead": state.cusum_start,
                "since_time": state.cusum_start_time,
                "d_value": float(np.exp(log_d)),
            }
    return out
