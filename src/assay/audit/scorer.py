"""The audit: ledger (or arrays) in, one immutable :class:`Audit` out.

An audit joins the pure statistics (calibration with its posterior and verdict, per-bucket
tables with credible intervals, proper scores with the CORP decomposition, monthly cohorts)
with the evidence they came from (counts of resolved, pending and abstained predictions,
model versions, and a reproducibility block whose snapshot hash covers every labelled row the
audit read). Renderers (terminal, HTML, JSON) only render it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import assay
from assay._validation import AssayInputError, FloatArray, check_binary_inputs, check_choice
from assay.audit.charts import AuditCharts, audit_charts, jeffreys_interval
from assay.ledger.checks import EvidenceWarning, closest
from assay.ledger.lag import LAG_QUANTILE
from assay.stats.binning import bin_edges, quantile_edges
from assay.stats.binstats import BinStats
from assay.stats.calibration import CalibrationReport, audit_bin_count, calibration
from assay.stats.decisions import (
    CertifiedThreshold,
    NetBenefit,
    RiskCoverage,
    certify_threshold,
    net_benefit,
    risk_coverage,
)
from assay.stats.metrics.scores import CorpDecomposition, corp_decomposition, roc_auc
from assay.stats.reliability import ReliabilityTable
from assay.stats.segments import SegmentRates, segment_rates
from assay.stats.tolerance import Tolerance

if TYPE_CHECKING:
    from assay.ledger import InSample, LabelSet, RecordingLag
    from assay.ledger.source import LabelSource

AUDIT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class AuditConfig:
    """What an audit computes with; recorded in the report so it can be re-run exactly."""

    n_bins: int | None = None  # None: the audit rule B = clamp(n // 40, 2, 15)
    strategy: str = "quantile"
    tolerance: Tolerance = field(default_factory=Tolerance)
    probability: float = 0.95
    credibility: float = 0.90
    seed: int = 0
    thin_bucket: int = 30  # buckets with fewer resolved predictions say "not yet"
    min_cohort: int = 100  # months with fewer resolved predictions are reported, not judged
    target_precision: float | None = None  # set: the audit certifies an action threshold
    delta: float = 0.05
    value_per_conversion: float | None = None
    cost_per_action: float | None = None
    segment_by: str | None = None  # set: the audit adds segment rates for this attribute
    recording_lag_days: float | None = None  # None: the lag measured from the ledger

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-safe data (the tolerance as a nested dict)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditConfig:
        """Rebuild the settings :meth:`to_dict` wrote."""
        return cls(**{**data, "tolerance": Tolerance(**data["tolerance"])})


@dataclass(frozen=True)
class Bucket:
    """One row of a per-bucket table: what the score promised and what happened."""

    lower: float
    upper: float
    n: int
    mean_score: float | None
    observed_rate: float | None
    rate_lower: float | None  # Jeffreys credible interval of the observed rate
    rate_upper: float | None
    gap: float | None
    thin: bool  # fewer than AuditConfig.thin_bucket predictions: "not yet"


def bucket_rows(table: ReliabilityTable, credibility: float, thin: int) -> list[Bucket]:
    """Rows with Jeffreys intervals: Beta(k + ½, n − k + ½) quantiles at (1 ± credibility)/2."""
    lower, upper = jeffreys_interval(table.positives, table.n, credibility)
    rows = []
    for i in range(len(table)):
        n = int(table.n[i])
        empty = n == 0
        rows.append(
            Bucket(
                lower=float(table.lower[i]),
                upper=float(table.upper[i]),
                n=n,
                mean_score=None if empty else float(table.mean_score[i]),
                observed_rate=None if empty else float(table.observed_rate[i]),
                rate_lower=None if empty else float(lower[i]),
                rate_upper=None if empty else float(upper[i]),
                gap=None if empty else float(table.gap[i]),
                thin=n < thin,
            )
        )
    return rows


@dataclass(frozen=True)
class Cohort:
    """Calibration of the predictions scored in one calendar month."""

    month: str
    n: int
    positives: int
    ece: float
    median: float | None
    lower: float | None
    upper: float | None
    verdict: str
    reason: str


@dataclass(frozen=True)
class Counts:
    """How many predictions and outcomes an audit saw, and of what kind.

    ``resolved``: scored and matured; ``positives``: those that converted (among the ones with
    a probability); ``pending``: scored, window still open; ``abstained``: predictions the
    scorer abstained on.
    """

    resolved: int
    positives: int
    pending: int
    abstained: int
    unscored: int  # resolved predictions without a probability (points or rank scores)
    unmatched_outcomes: int
    in_sample: int = 0  # a derived scorer's leads its calibrator was fitted on, left out
    backfilled: int = 0  # predictions loaded after the fact (--backfill), not frozen when scored


@dataclass(frozen=True, eq=False)
class Audit:
    """Everything a report shows about one scorer, and what it was computed from."""

    scorer: str
    calibration: CalibrationReport
    deciles: list[Bucket]
    audit_bins: list[Bucket]
    scores: dict[str, float | None]
    corp: CorpDecomposition
    cohorts: list[Cohort]
    counts: Counts
    model_versions: list[str]
    reproducibility: dict[str, Any]
    decisions: Decisions | None
    segments: SegmentRates | None
    #: What the report draws (computed here, so renderers only draw); not serialised.
    charts: AuditCharts = field(repr=False)
    #: The outcomes and scores behind the numbers; not serialised.
    y_true: FloatArray = field(repr=False)
    y_prob: FloatArray = field(repr=False)
    #: What the evidence leaves out and why, in words (recording lag, in-sample leads).
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """The calibration verdict."""
        return self.calibration.verdict

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, with a stable key order; floats keep full precision."""
        return {
            "scorer": self.scorer,
            "verdict": self.calibration.verdict,
            "reason": self.calibration.reason,
            "calibration": self.calibration.to_dict(),
            "buckets": {
                "deciles": [asdict(b) for b in self.deciles],
                "audit_bins": [asdict(b) for b in self.audit_bins],
            },
            "scores": dict(self.scores),
            "corp": self.corp.to_dict(),
            "cohorts": [asdict(c) for c in self.cohorts],
            "counts": asdict(self.counts),
            "notes": list(self.notes),
            "model_versions": list(self.model_versions),
            "decisions": None if self.decisions is None else self.decisions.to_dict(),
            "segments": None if self.segments is None else self.segments.to_dict(),
            "reproducibility": dict(self.reproducibility),
        }


@dataclass(frozen=True, eq=False)
class Decisions:
    """When an action may fire: the certified threshold, risk–coverage and net benefit."""

    threshold: CertifiedThreshold
    risk_coverage: RiskCoverage
    net_benefit: NetBenefit

    def to_dict(self) -> dict[str, Any]:
        """Return the certified threshold, AURC and excess AURC as JSON-safe data."""
        return {
            "threshold": self.threshold.to_dict(),
            "aurc": self.risk_coverage.aurc,
            "e_aurc": self.risk_coverage.e_aurc,
        }


#: Net-benefit curve thresholds shown in reports.
NET_BENEFIT_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)


def _decisions(labels: FloatArray, prob: FloatArray, config: AuditConfig) -> Decisions | None:
    if config.target_precision is None:
        return None
    return Decisions(
        certify_threshold(
            labels,
            prob,
            target_precision=config.target_precision,
            delta=config.delta,
            value_per_conversion=config.value_per_conversion,
            cost_per_action=config.cost_per_action,
        ),
        risk_coverage(labels, prob),
        net_benefit(labels, prob, NET_BENEFIT_GRID),
    )


def _reported_only(month: str, labels: FloatArray, prob: FloatArray, config: AuditConfig) -> Cohort:
    """Report, not judge, a month under ``config.min_cohort`` resolved predictions.

    Its counts and plug-in ECE (on the bins :func:`assay.stats.calibration` would use), "not yet",
    and no posterior.
    """
    edges = bin_edges(prob, audit_bin_count(len(prob)), config.strategy)
    return Cohort(
        month=month,
        n=len(labels),
        positives=round(float(labels.sum())),
        ece=BinStats.accumulate(labels, prob, edges).calibration_error("l1"),
        median=None,
        lower=None,
        upper=None,
        verdict="not yet",
        reason=f"not yet: only {len(labels):,} resolved predictions; at least "
        f"{config.min_cohort:,} are needed",
    )


def _cohorts(
    labels: FloatArray, prob: FloatArray, months: np.ndarray, config: AuditConfig
) -> list[Cohort]:
    """Return the calibration per scoring month.

    A month with fewer than ``config.min_cohort`` resolved predictions is reported (counts, plug-in
    ECE), not judged: no posterior is computed for it. Months at or above it still meet the
    statistics' own floor (100 rows, 10 of each outcome).
    """
    cohorts = []
    for month in sorted(set(months.tolist())):
        mask = months == month
        if np.count_nonzero(mask) < config.min_cohort:
            cohorts.append(_reported_only(str(month), labels[mask], prob[mask], config))
            continue
        report = calibration(
            labels[mask], prob[mask], strategy=config.strategy, tolerance=config.tolerance,
            probability=config.probability, credibility=config.credibility, seed=config.seed,
            noise_floor="normal",  # a cohort shows no noise floor: skip the row resampling
        )  # fmt: skip
        posterior = report.posterior
        cohorts.append(
            Cohort(
                month=str(month),
                n=report.n,
                positives=round(report.positives),
                ece=report.ece,
                median=None if posterior is None else posterior.median,
                lower=None if posterior is None else posterior.lower,
                upper=None if posterior is None else posterior.upper,
                verdict=report.verdict,
                reason=report.reason,
            )
        )
    return cohorts


def _build(
    scorer: str,
    labels: FloatArray,
    prob: FloatArray,
    months: np.ndarray | None,
    counts: Counts,
    model_versions: list[str],
    reproducibility: dict[str, Any],
    config: AuditConfig,
    segment_values: pa.Array | None = None,
) -> Audit:
    check_choice(config.strategy, "strategy", ("uniform", "quantile"))
    report = calibration(
        labels, prob, n_bins=config.n_bins, strategy=config.strategy, tolerance=config.tolerance,
        probability=config.probability, credibility=config.credibility, seed=config.seed,
    )  # fmt: skip
    deciles = ReliabilityTable.from_stats(
        BinStats.accumulate(labels, prob, quantile_edges(prob, 10))
    )
    both = 0 < labels.sum() < len(labels)
    decisions = _decisions(labels, prob, config)
    segments = (
        None
        if segment_values is None
        else segment_rates(labels, segment_values, seed=config.seed, tolerance=config.tolerance)
    )
    certified = None if decisions is None else decisions.threshold.threshold
    return Audit(
        scorer=scorer,
        calibration=report,
        deciles=bucket_rows(deciles, config.credibility, config.thin_bucket),
        audit_bins=bucket_rows(report.table, config.credibility, config.thin_bucket),
        scores={
            "brier": report.companions["brier"],
            "log_loss": report.companions["log_loss"],
            "auc": roc_auc(labels, prob) if both else None,
            "base_rate": float(labels.mean()),
            "mean_score": float(prob.mean()),
        },
        corp=corp_decomposition(labels, prob),
        cohorts=[] if months is None else _cohorts(labels, prob, months, config),
        counts=counts,
        model_versions=model_versions,
        reproducibility={
            **reproducibility,
            "config": config.to_dict(),
            "assay_version": assay.__version__,
            "seed": config.seed,
        },
        decisions=decisions,
        segments=segments,
        charts=audit_charts(report, labels, prob, certified=certified, segments=segments),
        y_true=labels,
        y_prob=prob,
    )


def audit_arrays(
    y_true: Any,
    y_prob: Any,
    *,
    scored_at: Any = None,
    scorer: str = "scores",
    config: AuditConfig | None = None,
) -> Audit:
    """Audit arrays of outcomes and probabilities (``scored_at`` adds monthly cohorts)."""
    config = config or AuditConfig()
    labels, prob, _ = check_binary_inputs(y_true, y_prob)
    months = None
    if scored_at is not None:
        months = np.asarray(scored_at, dtype="datetime64[M]").astype(str)
    digest = hashlib.sha256(prob.tobytes() + labels.tobytes()).hexdigest()
    counts = Counts(len(labels), int(labels.sum()), 0, 0, 0, 0)
    return _build(scorer, labels, prob, months, counts, [], {"snapshot_sha256": digest}, config)


def _count(mask: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def snapshot_hash(table: pa.Table) -> str:
    """Hash the labelled rows: sha256 over ``prediction_id|probability|label``.

    Every labelled row in table order, one row per line (hashed from Arrow's string buffers, never
    as Python strings).
    """
    probability = pc.cast(table["probability"], pa.string()).fill_null("-")
    lines = pc.binary_join_element_wise(
        pc.cast(table["prediction_id"], pa.string()), probability, table["label"], "|"
    )
    # A newline before each line: the rows' bytes lie back to back in each chunk's data
    # buffer, and the stream is the text of the lines once its leading newline is skipped.
    rows = pc.binary_join_element_wise("", lines, "\n")
    digest, skip = hashlib.sha256(), 1
    width = np.int64 if pa.types.is_large_string(rows.type) else np.int32
    for chunk in rows.chunks:
        if len(chunk):
            _, offsets, data = chunk.buffers()
            first, last = np.frombuffer(offsets, width)[[chunk.offset, chunk.offset + len(chunk)]]
            digest.update(memoryview(data)[int(first) + skip : int(last)])
            skip = 0
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class Evidence:
    """The matured, scored predictions of one scorer as of T, as arrays, with their counts."""

    labels: FloatArray
    prob: FloatArray
    months: np.ndarray
    counts: Counts
    model_versions: list[str]
    snapshot_sha256: str
    as_of: dt.datetime
    segments: pa.Array  # MAP<string, string> of segment attributes, one per usable prediction
    recording_lag_days: dict[str, float] = field(default_factory=dict)  # per event ("*": all)
    notes: list[str] = field(default_factory=list)

    def segment(self, attribute: str) -> pa.Array:
        """Return the value of one segment attribute per prediction (null where it is missing).

        An attribute no prediction carries is refused, naming the ones that exist (a typo
        would otherwise put every lead into one "(missing)" segment).
        """
        known = sorted(str(key) for key in pc.unique(self.segments.keys).to_pylist())
        if attribute not in known:
            raise AssayInputError(
                f"no prediction carries the segment attribute {attribute!r}"
                f"{closest(attribute, known)}; attributes in the ledger: "
                f"{', '.join(known) or 'none (ingest with --segment COLUMN)'}"
            )
        return pc.map_lookup(self.segments, pa.scalar(attribute), "first")


def _lag_notes(table: pa.Table, lag: RecordingLag) -> list[str]:
    """Per target event: which cohorts still wait for records, or that nothing was measured."""
    notes = []
    horizons = table.group_by("target_event").aggregate([("horizon_days", "max")])
    for event, horizon in sorted(zip(*horizons.to_pydict().values(), strict=True)):
        days = lag.for_event(event)
        if lag.fixed_days is None and event not in lag.days:
            notes.append(
                f"no recording lag measured for {event!r}: no outcome of it came with its own "
                "recorded_at, so a lead counts as negative as soon as its window closes"
            )
            continue
        if days == 0:
            continue
        source = (
            "set, not measured"
            if lag.fixed_days is not None
            else f"the {LAG_QUANTILE:.0%} quantile of {lag.measured[event]:,} measured"
        )
        since = lag.as_of - dt.timedelta(days=days + horizon)
        notes.append(
            f"cohorts scored after {since:%Y-%m-%d} are still receiving records: {event!r} "
            f"outcomes are recorded up to {days:.1f} days after they occur ({source}), so "
            "their leads stay pending until that wait has passed"
        )
    return notes


def _in_sample_note(in_sample: InSample, judged: int) -> str:
    dates = ", ".join(f"{cutoff:%Y-%m-%d}" for cutoff in in_sample.fitted_as_of)
    return (
        f"judged on {judged:,} leads scored after the calibrator was fitted on {dates}; "
        f"{in_sample.leads:,} in-sample leads excluded"
    )


def _nothing_to_judge(scorer: str, result: LabelSet, hidden: EvidenceWarning | None) -> str:
    """Why a scorer has no evidence as of T, in words."""
    in_sample, as_of = result.in_sample, result.as_of.isoformat()
    if hidden is not None and result.table.num_rows == 0:
        return (
            f"scorer {scorer!r} has no predictions visible as of {as_of}: {hidden.count:,} "
            f"row(s) that happened by then were loaded later ({hidden.example}); load history "
            "with `assay ingest predictions --backfill` (and `assay ingest outcomes "
            "--backfill`), which marks it as loaded after the fact in every report"
        )
    if in_sample is not None and result.table.num_rows == 0:
        dates = ", ".join(f"{cutoff:%Y-%m-%d}" for cutoff in in_sample.fitted_as_of)
        return (
            f"scorer {scorer!r} is judged only on leads scored after its calibrator was fitted "
            f"on {dates}, and all {in_sample.leads:,} of its leads as of {as_of} are in-sample "
            "(the calibrator learned from their outcomes); apply the calibrator to leads scored "
            "later and audit once they mature"
        )
    held = f"; {in_sample.leads:,} in-sample leads excluded" if in_sample else ""
    return (
        f"scorer {scorer!r} has no matured, scored predictions as of {as_of} "
        f"({result.counts.pending} pending{held}); choose a later as-of"
    )


def evidence(
    ledger: LabelSource,
    *,
    scorer: str,
    as_of: dt.datetime | str | None = None,
    model_version: str | None = None,
    policy: str = "first",
    recording_lag_days: float | None = None,
) -> Evidence:
    """Labels as of T reduced to what calibration may use (``Ledger.judged_labels``).

    Only matured predictions count: a lead's window must have closed and its target event's
    recording lag L passed, s + h + L ≤ T (L measured from the ledger, or
    ``recording_lag_days``). Early positives of open windows would bias observed rates upward
    and negatives whose conversion is still on its way to the CRM would bias them downward, so
    both wait with the rest of their cohort. A derived scorer is judged only on leads scored
    after its calibrator's fit cut-off. Abstentions and scores without a probability (points,
    ranks) are counted, not used.
    """
    ledger.require_scorer(scorer)
    result = ledger.judged_labels(
        as_of=as_of, scorer=scorer, model_version=model_version, policy=policy,
        recording_lag_days=recording_lag_days,
    )  # fmt: skip
    table = result.table
    scored = pc.invert(table["abstained"])
    resolved = pc.and_(scored, table["matured"])
    usable = table.filter(pc.and_(resolved, pc.is_valid(table["probability"])))
    labels = np.asarray(pc.equal(usable["label"], "positive"), dtype=np.float64)
    warnings = ledger.evidence_warnings(as_of=result.as_of, scorer=scorer)
    if len(labels) == 0:
        hidden = next((w for w in warnings if w.kind == "hidden_history"), None)
        raise AssayInputError(_nothing_to_judge(scorer, result, hidden))
    history = ledger.backfilled(as_of=result.as_of, scorer=scorer)
    months = np.asarray(usable["scored_at"].to_numpy(zero_copy_only=False))
    counts = Counts(
        resolved=_count(resolved),
        positives=int(labels.sum()),
        pending=_count(pc.and_(scored, pc.invert(table["matured"]))),
        abstained=result.counts.abstained,
        unscored=_count(resolved) - usable.num_rows,
        unmatched_outcomes=result.counts.unmatched_outcomes,
        in_sample=0 if result.in_sample is None else result.in_sample.leads,
        backfilled=0 if history is None else history.predictions,
    )
    notes = [*map(str, warnings), *([str(history)] if history else [])]
    notes += _lag_notes(table, result.recording_lag)
    if result.in_sample is not None:
        notes.append(_in_sample_note(result.in_sample, table.num_rows))
    return Evidence(
        labels=labels,
        prob=np.asarray(usable["probability"].to_numpy(), dtype=np.float64),
        months=months.astype("datetime64[M]").astype(str),
        counts=counts,
        model_versions=sorted({v for v in table["model_version"].to_pylist() if v is not None}),
        snapshot_sha256=snapshot_hash(table),
        as_of=result.as_of,
        segments=usable["segments"].combine_chunks(),
        recording_lag_days=result.recording_lag.to_dict(),
        notes=notes,
    )


def audit(
    ledger: LabelSource,
    *,
    scorer: str,
    as_of: dt.datetime | str | None = None,
    model_version: str | None = None,
    policy: str = "first",
    config: AuditConfig | None = None,
) -> Audit:
    """Audit one scorer from the ledger as of ``as_of`` (default: now, recorded in the result)."""
    config = config or AuditConfig()
    found = evidence(
        ledger, scorer=scorer, as_of=as_of, model_version=model_version, policy=policy,
        recording_lag_days=config.recording_lag_days,
    )  # fmt: skip
    reproducibility = {
        "snapshot_sha256": found.snapshot_sha256,
        "ledger": str(ledger.path),
        "as_of": found.as_of.isoformat(),
        "policy": policy,
        "scorer": scorer,
        "model_version": model_version,
        "recording_lag_days": found.recording_lag_days,
    }
    segment_values = None if config.segment_by is None else found.segment(config.segment_by)
    built = _build(
        scorer, found.labels, found.prob, found.months, found.counts, found.model_versions,
        reproducibility, config, segment_values,
    )  # fmt: skip
    return replace(built, notes=found.notes)
