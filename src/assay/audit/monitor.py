"""Calibration as a standing property: an anytime-valid monitor fed by matured leads.

``Monitor`` keeps the e-processes of :mod:`assay.stats.eprocess` for one scorer (and optionally one
model version). ``update(ledger, as_of=T)`` consumes the leads that matured in
(last as-of, T], each labelled as of its own maturity (see :mod:`assay.ledger.maturity`), so a
lead whose conversion window is still open is never read as a negative. ``replay`` rebuilds
the state from scratch and gives the same bytes as any sequence of updates to the same T.

The null hypothesis is "calibrated within tolerance" — the report's tolerance on
observed/expected conversions and on the slope (:mod:`assay.stats.eprocess`) — so a scorer the
report calls calibrated does not alarm on the same leads.

Verdicts, in words: "not yet" under ``MIN_LEADS`` matured leads; "drifted" when the e-CUSUM
fires after a stretch consistent with calibration (its restart point lies beyond the first
``min_fit + window`` leads — before that the adaptive bettors have not yet bet on a full
window, so an early restart says nothing — and before any audit alarm); "miscalibrated" once
the audit e-value reaches 1/α or the e-CUSUM fires on a score that was off from the start;
otherwise "no evidence of miscalibration so far" (an e-process can only reject, so the
monitor alone never says "calibrated"). Dates are printed only for leads that carry their
maturity time; leads fed as arrays are named by number.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import beta

from assay._validation import (
    AssayInputError,
    FloatArray,
    check_binary_labels,
    check_probabilities,
    to_utc,
)
from assay.stats.eprocess import (
    SLOPE_GATE,
    StreamConfig,
    StreamPath,
    StreamState,
    audit_log_e,
    consume,
)
from assay.stats.tolerance import Tolerance

if TYPE_CHECKING:  # read through; the monitor itself runs without DuckDB (update_arrays)
    from assay.ledger import Ledger

STATE_VERSION = 2
MIN_LEADS = 100
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class MonitorPath:
    """What one update consumed: per lead its maturity (µs since epoch), p, y and the paths."""

    times_us: np.ndarray
    probability: FloatArray
    outcome: FloatArray
    log_e: FloatArray
    log_drift: FloatArray


def _date(micros: int | None) -> str:
    if micros is None:
        return "?"
    return f"{dt.datetime.fromtimestamp(micros / 1e6, dt.UTC):%Y-%m-%d}"


def format_e(log_e: float) -> str:
    """Format an e-value for people: 3 significant digits, or a power of ten when it is huge."""
    if log_e < np.log(1e6):
        return f"{np.exp(log_e):.3g}"
    return f"10^{log_e / np.log(10):.0f}"


class Monitor:
    """Anytime-valid calibration monitor for one scorer, fed by matured leads.

    Keeps the likelihood-ratio e-processes of :mod:`assay.stats.eprocess` under the null
    "calibrated within tolerance" (observed/expected within ``[1/ratio, ratio]`` and slope
    within ``[1/slope, slope]`` of ``tolerance``). By Ville's inequality the audit alarm,
    E ≥ 1/α, has false-alarm probability ≤ α however often the monitor is read; the drift
    alarm is an e-CUSUM, D_t = LR_t · max(D_{t−1}, 1) ≥ ``drift_threshold``, with mean time
    to a false alarm of at least ``drift_threshold`` leads. Verdicts: "not yet" under 100
    matured leads, "drifted", "miscalibrated", else "no evidence of miscalibration" (an
    e-process can only reject, so the monitor alone never says "calibrated"). Feeding the
    same leads in any number of updates gives the same bytes.

    Parameters
    ----------
    scorer : str
        The scorer whose leads are monitored (keyword-only, as every parameter).
    model_version : str, optional
        Restrict to one model version (None: every version).
    alpha : float, default=0.05
        Level of the audit alarm, strictly between 0 and 1.
    window : int, default=500
        Leads the adaptive bettors are refitted on.
    grace_days : float, optional
        Days a lead waits after its window closes before it counts as matured (None: the
        measured recording lag of its event).
    refit_every : int, default=25
        Leads between refits of the adaptive bettors.
    min_fit : int, default=100
        Leads needed before the adaptive bettors are fitted.
    gate_z : float, default=2.0
        The gated shift bets only when the window's score test |Σ(y − p)| / √Σp(1 − p)
        reaches this.
    slope_gate : float, default=SLOPE_GATE
        Deviance the slope refit must beat (0, 1) by to bet (the χ²₂ 95% point).
    shrinkage : float, default=50.0
        Pseudo-leads κ shrinking each decile's rate toward its mean score.
    drift_threshold : float, default=1000.0
        The e-CUSUM alarm threshold.
    tolerance : Tolerance, optional
        The null's tolerance (None: ``Tolerance()``, the report's).

    Attributes
    ----------
    config : StreamConfig
        The settings that enter the JSON state.
    state : StreamState
        The e-processes and the fitted bettors so far.
    as_of_us : int or None
        The last update's as-of, µs since the epoch (None before the first).
    late_flips : int
        Outcomes recorded after their lead was consumed (ledger updates only).
    timed : bool
        False once leads arrived as arrays without times.

    Raises
    ------
    AssayInputError
        If ``alpha`` is not strictly between 0 and 1, ``window``, ``refit_every`` or
        ``min_fit`` is below 1, or ``grace_days`` is negative.

    References
    ----------
    .. [1] J. Ville, Étude critique de la notion de collectif, Gauthier-Villars, 1939.
    .. [2] A. Ramdas, P. Grünwald, V. Vovk and G. Shafer, "Game-theoretic statistics and
       safe anytime-valid inference", Statistical Science 38(4), 2023, pp. 576–601.
    .. [3] J. Shin, A. Ramdas and A. Rinaldo, "E-detectors: a nonparametric framework for
       sequential change detection", New England Journal of Statistics in Data Science
       2(2), 2024, pp. 229–260.

    Examples
    --------
    A score that converts at half what it promises is caught; a calibrated one is not,
    and splitting the stream into updates changes nothing.

    >>> import numpy as np
    >>> from assay import Monitor
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.5, 1000)
    >>> over_promising = (rng.random(1000) < p / 2).astype(int)
    >>> calibrated = (rng.random(1000) < p).astype(int)
    >>> monitor = Monitor(scorer="vendor")
    >>> _ = monitor.update_arrays(over_promising, p)
    >>> monitor.verdict, monitor.matured
    ('miscalibrated', 1000)
    >>> whole, pieces = Monitor(scorer="vendor"), Monitor(scorer="vendor")
    >>> _ = whole.update_arrays(calibrated, p)
    >>> _ = pieces.update_arrays(calibrated[:300], p[:300])
    >>> _ = pieces.update_arrays(calibrated[300:], p[300:])
    >>> whole.verdict, whole.to_json() == pieces.to_json()
    ('no evidence of miscalibration', True)
    """

    def __init__(
        self,
        *,
        scorer: str,
        model_version: str | None = None,
        alpha: float = 0.05,
        window: int = 500,
        grace_days: float | None = None,
        refit_every: int = 25,
        min_fit: int = 100,
        gate_z: float = 2.0,
        slope_gate: float = SLOPE_GATE,
        shrinkage: float = 50.0,
        drift_threshold: float = 1000.0,
        tolerance: Tolerance | None = None,
    ) -> None:
        if not 0 < alpha < 1:
            raise AssayInputError(f"alpha={alpha} must lie strictly between 0 and 1")
        if window < 1 or refit_every < 1 or min_fit < 1:
            raise AssayInputError("window, refit_every and min_fit must be positive")
        if grace_days is not None and not grace_days >= 0:  # None: the measured recording lag
            raise AssayInputError(f"grace_days={grace_days} must not be negative")
        band = tolerance or Tolerance()
        self.scorer = scorer
        self.model_version = model_version
        self.grace_days = grace_days
        self.config = StreamConfig(
            alpha=alpha, window=window, refit_every=refit_every, min_fit=min_fit,
            gate_z=gate_z, slope_gate=slope_gate, shrinkage=shrinkage,
            drift_threshold=drift_threshold, ratio=band.ratio, slope=band.slope,
        )  # fmt: skip
        self.state = StreamState()
        self.as_of_us: int | None = None
        self.late_flips = 0
        self.timed = True  # False once leads arrive as arrays without times

    @property
    def tolerance(self) -> Tolerance:
        """The null's tolerance on observed/expected and on the slope."""
        return Tolerance(ratio=self.config.ratio, slope=self.config.slope)

    # ------------------------------------------------------------------ identity and state
    @property
    def key(self) -> str:
        """Where the ledger stores this monitor's state: scorer, version and configuration."""
        config = json.dumps({**asdict(self.config), "grace_days": self.grace_days}, sort_keys=True)
        return f"{self.scorer}|{self.model_version or '*'}|{config}"

    def to_dict(self) -> dict[str, Any]:
        """Return settings and state as a JSON-safe dict (what the ledger stores)."""
        return {
            "version": STATE_VERSION,
            "scorer": self.scorer,
            "model_version": self.model_version,
            "grace_days": self.grace_days,
            "config": asdict(self.config),
            "as_of_us": self.as_of_us,
            "late_flips": self.late_flips,
            "timed": self.timed,
            "state": self.state.to_dict(),
        }

    def to_json(self) -> str:
        """Serialise :meth:`to_dict` as compact JSON with sorted keys (byte-stable)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_settings(cls, body: dict[str, Any]) -> Monitor:
        """Return a fresh monitor (no state) with the settings ``body`` holds (:meth:`to_dict`)."""
        config = dict(body["config"])
        tolerance = Tolerance(ratio=config.pop("ratio"), slope=config.pop("slope"))
        return cls(
            scorer=body["scorer"], model_version=body["model_version"],
            grace_days=body["grace_days"], tolerance=tolerance, **config,
        )  # fmt: skip

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Monitor:
        """Rebuild a monitor, state included, from :meth:`to_dict` output."""
        if body.get("version") != STATE_VERSION:
            raise AssayInputError(f"monitor state version {body.get('version')!r} is unknown")
        monitor = cls.from_settings(body)
        monitor.state = StreamState.from_dict(body["state"])
        monitor.as_of_us, monitor.late_flips = body["as_of_us"], body["late_flips"]
        monitor.timed = body["timed"]
        return monitor

    # ------------------------------------------------------------------ feeding
    def update_arrays(self, y: Any, p: Any, *, times_us: Any = None) -> MonitorPath:
        """Consume matured leads given directly, in order (times default to lead numbers)."""
        prob = check_probabilities(p)
        labels = check_binary_labels(y)
        if len(labels) != len(prob):
            raise AssayInputError(f"y has {len(labels)} rows but p has {len(prob)}")
        if times_us is None:
            self.timed = False
        times = (
            np.arange(self.state.n + 1, self.state.n + 1 + len(prob), dtype=np.int64)
            if times_us is None
            else np.asarray(times_us, dtype=np.int64)
        )
        return self._consume(labels, prob, times)

    def _consume(self, y: FloatArray, p: FloatArray, times: np.ndarray) -> MonitorPath:
        path: StreamPath = consume(self.state, self.config, y, p, times)
        return MonitorPath(times, p, y, path.log_e, path.log_drift)

    def update(self, ledger: Ledger, *, as_of: dt.datetime | str | None = None) -> MonitorPath:
        """Consume the leads that matured since the last update, up to ``as_of`` (default now)."""
        until = to_utc(as_of)
        if until > dt.datetime.now(dt.UTC):
            raise AssayInputError(
                f"as_of {until.isoformat()} is in the future; the monitor only consumes the past"
            )
        until_us = int((until - EPOCH) / dt.timedelta(microseconds=1))
        if self.as_of_us is not None and until_us < self.as_of_us:
            raise AssayInputError(
                f"as_of {until.isoformat()} is before this monitor's last update "
                f"({_date(self.as_of_us)}); use replay to rebuild an earlier state"
            )
        since = None if self.as_of_us is None else EPOCH + dt.timedelta(microseconds=self.as_of_us)
        # None: each lead waits its event's recording lag, measured when its window closed
        grace = None if self.grace_days is None else dt.timedelta(days=self.grace_days)
        leads = ledger.matured_leads(
            scorer=self.scorer, model_version=self.model_version, since=since, until=until,
            grace=grace,
        )  # fmt: skip
        path = self._consume(
            leads["positive"].to_numpy(zero_copy_only=False).astype(float),
            leads["probability"].to_numpy(zero_copy_only=False).astype(float),
            leads["matures_us"].to_numpy(zero_copy_only=False).astype(np.int64),
        )
        self.as_of_us = until_us
        self.late_flips = ledger.late_flips(
            scorer=self.scorer, model_version=self.model_version, until=until, grace=grace
        )
        return path

    def replay(self, ledger: Ledger, *, as_of: dt.datetime | str | None = None) -> MonitorPath:
        """Forget the state and rebuild it from the ledger up to ``as_of``."""
        self.state = StreamState()
        self.as_of_us = None
        self.late_flips = 0
        self.timed = True
        return self.update(ledger, as_of=as_of)

    # ------------------------------------------------------------------ reading
    @property
    def matured(self) -> int:
        """Number of matured leads consumed so far."""
        return self.state.n

    @property
    def log_e_value(self) -> float:
        """Log of the current audit e-value (0 at the start; ≥ log 1/α means alarm)."""
        return float(audit_log_e(np.asarray(self.state.log_e)[:, None])[0])

    @property
    def drifted(self) -> bool:
        """The e-CUSUM fired after a stretch consistent with calibration (module docstring)."""
        drift, audit = self.state.drift_alarm, self.state.audit_alarm
        if drift is None or drift["since_lead"] <= self.config.min_fit + self.config.window:
            return False
        return audit is None or audit["lead"] >= drift["since_lead"]

    @property
    def verdict(self) -> str:
        """The verdict in words (see the class docstring)."""
        if self.state.n < MIN_LEADS:
            return "not yet"
        if self.drifted:
            return "drifted"
        if self.state.audit_alarm is not None or self.state.drift_alarm is not None:
            return "miscalibrated"
        return "no evidence of miscalibration"

    def _when(self, lead: int, micros: int) -> str:
        return f"lead {lead:,}, {_date(micros)}" if self.timed else f"lead {lead:,}"

    @property
    def reason(self) -> str:
        """The verdict in a sentence, with the evidence, the first alarm and the tolerance."""
        n = self.state.n
        threshold = 1 / self.config.alpha
        now = format_e(self.log_e_value)
        band = self.tolerance
        tolerance = (
            f"tolerance: observed/expected within {band.ratio_band[0]:.2f}–{band.ratio_band[1]:.2f}"
            f", slope within {band.slope_band[0]:.2f}–{band.slope_band[1]:.2f}"
        )
        if n < MIN_LEADS:
            return f"not yet: only {n:,} matured leads; at least {MIN_LEADS} are needed"
        drift, audit = self.state.drift_alarm, self.state.audit_alarm
        if self.drifted and drift is not None:
            since = self._when(drift["since_lead"], drift["since_time"])
            return (
                f"drifted: calibrated within tolerance until about {since}, then the score "
                f"moved outside it (drift evidence {drift['d_value']:,.0f} ≥ "
                f"{self.config.drift_threshold:,.0f} at {self._when(drift['lead'], drift['time'])}"
                f"; {tolerance})"
            )
        first = min(
            (alarm for alarm in (audit, drift) if alarm is not None),
            key=lambda alarm: alarm["lead"],
            default=None,
        )
        if first is not None:
            start = " from the start" if drift is not None else ""
            when = self._when(first["lead"], first["time"])
            return (
                f"miscalibrated{start}: outside tolerance with evidence E = {now} "
                f"≥ 1/α = {threshold:.0f} (first alarm at {when}; {tolerance})"
            )
        return (
            f"no evidence of miscalibration so far: E = {now} < {threshold:.0f} "
            f"after {n:,} matured leads ({tolerance})"
        )


@dataclass(frozen=True)
class MonthRow:
    """Leads that matured in one month: promised (Σp) vs observed conversions.

    With the 90% Jeffreys interval n·Beta(k + ½, n − k + ½) for the conversions the month really
    implies.
    """

    month: str
    leads: int
    expected: float
    observed: int
    lower: float
    upper: float

    @property
    def consistent(self) -> bool:
        """Whether the promised conversions Σp lie inside the month's 90% interval."""
        return self.lower <= self.expected <= self.upper


@dataclass(frozen=True, eq=False)
class MonitorChart:
    """What the report draws of a monitor, per matured lead in maturity order.

    The audit e-value and the drift detector on a log₁₀ scale, the cumulative expected minus
    observed conversions Σ(p − y), and the ±1.96 sd band a calibrated score stays inside pointwise
    (sd² = Σ p(1 − p)).
    """

    times_us: np.ndarray
    log10_e: FloatArray
    log10_drift: FloatArray
    gap: FloatArray
    band: FloatArray


def monitor_chart(path: MonitorPath) -> MonitorChart:
    """Return the drawable series of one replayed path (see :class:`MonitorChart`)."""
    return MonitorChart(
        times_us=path.times_us,
        log10_e=path.log_e / np.log(10),
        log10_drift=path.log_drift / np.log(10),
        gap=np.cumsum(path.probability - path.outcome),
        band=1.96 * np.sqrt(np.cumsum(path.probability * (1 - path.probability))),
    )


@dataclass(frozen=True, eq=False)
class MonitorSummary:
    """A monitor replayed from the ledger to ``as_of``.

    With its path and what the report draws of it.
    """

    monitor: Monitor
    path: MonitorPath
    months: list[MonthRow]
    chart: MonitorChart

    def to_dict(self) -> dict[str, Any]:
        """Return the monitor's state and verdict plus the monthly table (JSON-safe)."""
        return {
            "monitor": self.monitor.to_dict(),
            "verdict": self.monitor.verdict,
            "reason": self.monitor.reason,
            "months": [asdict(row) for row in self.months],
        }


def monthly_rows(path: MonitorPath) -> list[MonthRow]:
    """Group a replayed path's leads by maturity month into :class:`MonthRow` rows.

    Each row holds n leads, the promised Σp and the 90% Jeffreys interval
    n·Beta(k + ½, n − k + ½) of the k observed conversions.
    """
    months = path.times_us.astype("datetime64[us]").astype("datetime64[M]").astype(str)
    rows = []
    for month in np.unique(months).tolist():
        chosen = months == month
        n, k = int(chosen.sum()), int(path.outcome[chosen].sum())
        lower, upper = beta.ppf([0.05, 0.95], k + 0.5, n - k + 0.5) * n
        rows.append(
            MonthRow(month, n, float(path.probability[chosen].sum()), k, float(lower), float(upper))
        )
    return rows


def monitor_summary(
    ledger: Ledger, *, scorer: str, as_of: dt.datetime | str | None = None, **options: Any
) -> MonitorSummary:
    """Replay a monitor (``options`` as for :class:`Monitor`) and tabulate it by month."""
    return replay_summary(Monitor(scorer=scorer, **options), ledger, as_of=as_of)


def replay_summary(
    monitor: Monitor, ledger: Ledger, *, as_of: dt.datetime | str | None = None
) -> MonitorSummary:
    """Rebuild ``monitor`` from the ledger up to ``as_of`` and tabulate it by month."""
    path = monitor.replay(ledger, as_of=as_of)
    return MonitorSummary(monitor, path, monthly_rows(path), monitor_chart(path))
