"""One report, built once: every scorer's audit, their comparison and their standing monitors.

:func:`build_report` is the one seam every face calls — ``assay report`` and ``assay verify``
(the CLI), ``GET /v1/audit`` and ``GET /v1/report.html`` (the service) and ``assay demo`` — so
they show the same sections for the same ledger:

* an :class:`~assay.audit.scorer.Audit` per scorer: calibration with its posterior, buckets,
  monthly cohorts, decisions when a target precision is set, segments when a segment attribute
  is set, and every series the report draws (:mod:`assay.audit.charts`);
* with two scorers or more (all model versions), their comparison on the leads they all scored
  (:func:`assay.stats.compare.compare`) with each scorer's reliability diagram on that common
  set (:class:`ComparisonView`);
* per scorer, each monitor whose state the ledger keeps (``assay monitor``, ``assay demo``),
  replayed from the ledger to the as-of (:func:`assay.audit.monitor.replay_summary`);
* per scorer, in its reproducibility record, the share of its predictions with stored inputs
  and a bounded, seeded re-run of them through their registered models
  (:func:`assay.models.replay.replay_record`);
* per honest scorer ``VENDOR~honest`` audited with its vendor, the raw score and its honest
  version side by side on the leads both judged, and the share of served honest scores that
  abstained (:mod:`assay.audit.honest`; the comparison of the pair, the report's own when it
  compares exactly these two).

**Once each.** A scorer's labels are read once (:class:`ReportLabels`): its audit and the
comparison share them, with the report's recording lag. Each (scorer, cohort) posterior runs
once: the comparison takes a scorer's calibration on its own leads from its audit (when they are
the same leads: one emission per lead, all model versions) and runs a posterior only on the
common set; the comparison's diagrams use a Jeffreys interval per bin, not another posterior.

Renderers (:mod:`assay.report`) take the :class:`Report` as it is: they draw, they do not
compute, and they never open the ledger.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError, to_utc
from assay.audit.answer import Answer, answers
from assay.audit.charts import ReliabilitySeries, binned_reliability
from assay.audit.honest import HonestScore, honest_pairs, honest_score
from assay.audit.monitor import Monitor, MonitorSummary, replay_summary
from assay.audit.scorer import Audit, AuditConfig, audit
from assay.models.replay import replay_record
from assay.stats.compare import Comparison, compare

if TYPE_CHECKING:
    from collections.abc import Sequence

    from assay.ledger import LabelSet, Ledger
    from assay.ledger.checks import Backfilled, EvidenceWarning
    from assay.ledger.integrity import ChainHead


def frozen_as_of(as_of: dt.datetime | str | None) -> dt.datetime:
    """Return ``as_of`` in UTC (default: now), refusing a time later than now.

    A report as of a time after it is made would change with the next ingest.
    """
    moment = to_utc(as_of)
    if moment > dt.datetime.now(dt.UTC):
        raise AssayInputError(
            f"as-of {moment.isoformat()} is later than now: a report as of a time after it is "
            "made changes with the next ingest, so it can be neither frozen nor verified"
        )
    return moment


@dataclass(frozen=True, eq=False)
class ComparisonView:
    """A comparison of scorers with what its page draws.

    Per scorer, the reliability diagram on the common set (audit bins, a Jeffreys interval per
    bin).
    """

    comparison: Comparison
    diagrams: dict[str, ReliabilitySeries]


def comparison_view(comparison: Comparison) -> ComparisonView:
    """Return the drawable view of ``comparison`` (no posterior runs here)."""
    diagrams = {
        name: binned_reliability(comparison.common_y, scores, comparison.credibility)
        for name, scores in comparison.common_scores.items()
    }
    return ComparisonView(comparison, diagrams)


@dataclass(frozen=True, eq=False)
class Report:
    """Everything one report shows, as of one time; renderers only draw it."""

    as_of: str  # ISO 8601, UTC
    audits: list[Audit]
    comparison: ComparisonView | None = None
    monitors: list[MonitorSummary] = field(default_factory=list)
    ledger_head: ChainHead | None = None  # the chain head of the ledger it was built from
    #: Why a section is missing, in words (e.g. scorers that share no lead are not compared).
    notes: list[str] = field(default_factory=list)
    #: Per audit (same order), the answer a reader acts on (:mod:`assay.audit.answer`).
    answers: list[Answer] = field(default_factory=list)
    #: Per honest scorer audited with its vendor, the two side by side (:mod:`assay.audit.honest`).
    honest: list[HonestScore] = field(default_factory=list)

    def monitors_of(self, scorer: str) -> list[MonitorSummary]:
        """Return the monitors of one scorer that replayed at least one matured lead."""
        return [m for m in self.monitors if m.monitor.scorer == scorer and len(m.path.times_us)]


class ReportLabels:
    """The ledger as one report reads it.

    Each scorer's judged labels are read once, with the report's recording lag, and shared by
    its audit and the comparison. Only reads.
    """

    def __init__(self, ledger: Ledger, recording_lag_days: float | None) -> None:
        self.ledger = ledger
        self.path = ledger.path
        self.recording_lag_days = recording_lag_days
        self._read: dict[tuple[Any, ...], LabelSet] = {}

    def judged_labels(
        self,
        *,
        as_of: dt.datetime | str | None = None,
        scorer: str | None = None,
        model_version: str | None = None,
        policy: str = "first",
        recording_lag_days: float | None = None,
    ) -> LabelSet:
        """Return :meth:`Ledger.judged_labels` with the report's recording lag.

        Read once per call shape (a caller's own ``recording_lag_days`` gives way to the
        report's).
        """
        key = (to_utc(as_of), scorer, model_version, policy)
        if key not in self._read:
            self._read[key] = self.ledger.judged_labels(
                as_of=key[0], scorer=scorer, model_version=model_version, policy=policy,
                recording_lag_days=self.recording_lag_days,
            )  # fmt: skip
        return self._read[key]

    def scorers(self) -> list[str]:
        """Return the ledger's scorers (:meth:`Ledger.scorers`)."""
        return self.ledger.scorers()

    def require_scorer(self, name: str) -> None:
        """Refuse a scorer the ledger does not hold (:meth:`Ledger.require_scorer`)."""
        self.ledger.require_scorer(name)

    def evidence_warnings(
        self, *, as_of: dt.datetime | str | None = None, scorer: str | None = None
    ) -> list[EvidenceWarning]:
        """Return the ledger's evidence warnings (:meth:`Ledger.evidence_warnings`)."""
        return self.ledger.evidence_warnings(as_of=as_of, scorer=scorer)

    def backfilled(
        self, *, as_of: dt.datetime | str | None = None, scorer: str | None = None
    ) -> Backfilled | None:
        """Return the ledger's backfilled predictions, if any (:meth:`Ledger.backfilled`)."""
        return self.ledger.backfilled(as_of=as_of, scorer=scorer)

    def usable(self, as_of: dt.datetime, scorer: str, policy: str) -> pa.Table:
        """Return the scorer's matured, scored leads with a probability (what an audit judges)."""
        table = self.judged_labels(as_of=as_of, scorer=scorer, policy=policy).table
        keep = pc.and_(
            pc.and_(table["matured"], pc.invert(table["abstained"])),
            pc.is_valid(table["probability"]),
        )
        return table.filter(keep).select(["entity_id"])


def stored_monitors(
    ledger: Ledger, scorers: Sequence[str], model_version: str | None
) -> list[Monitor]:
    """Return fresh monitors with the settings of every state the ledger keeps.

    One per state kept for ``scorers`` (and ``model_version``), in scorer order then key order;
    their states are rebuilt by replay.
    """
    found: dict[str, list[Monitor]] = {name: [] for name in scorers}
    for text in ledger.monitor_states():
        body = json.loads(text)
        if body.get("scorer") in found and body.get("model_version") == model_version:
            found[body["scorer"]].append(Monitor.from_dict(body))  # replayed from scratch
    return [monitor for name in scorers for monitor in found[name]]


def _comparison(
    labels: ReportLabels, audits: list[Audit], moment: dt.datetime, policy: str,
    config: AuditConfig,
) -> tuple[ComparisonView | None, list[str]]:  # fmt: skip
    """Compare the scorers on their common leads, or say why they are not compared."""
    names = [a.scorer for a in audits]
    leads = [labels.usable(moment, name, policy) for name in names]
    common = leads[0]["entity_id"]
    for other in leads[1:]:
        common = common.filter(pc.is_in(common, value_set=other["entity_id"]))
    if len(common) == 0:
        return None, [
            f"scorers {', '.join(names)} are not compared: no matured lead as of "
            f"{moment.isoformat()} was scored by every one of them"
        ]
    # A scorer's own leads are its audit's leads when each lead holds one emission.
    own = (
        {a.scorer: a.calibration for a in audits}
        if policy != "all"
        and all(pc.count_distinct(t["entity_id"]).as_py() == t.num_rows for t in leads)
        else None
    )
    result = compare(
        labels, scorers=names, as_of=moment, policy=policy, segment_by=config.segment_by,
        credibility=config.credibility, tolerance=config.tolerance, seed=config.seed,
        calibrations=own,
    )  # fmt: skip
    return comparison_view(result), []


def _honest(
    labels: ReportLabels, audits: list[Audit], view: ComparisonView | None,
    moment: dt.datetime, policy: str, config: AuditConfig,
) -> list[HonestScore]:  # fmt: skip
    """Each honest scorer beside its vendor, on the comparison of the two.

    The report's comparison when it compares exactly these two scorers, else the same seam
    (:func:`_comparison`) run on the pair.
    """
    found = []
    for raw, honest in honest_pairs(audits):
        pair = {raw.scorer, honest.scorer}
        pair_view: ComparisonView | None = view
        why: list[str] = []
        if view is None or {s.scorer for s in view.comparison.common} != pair:
            pair_view, why = _comparison(labels, [raw, honest], moment, policy, config)
        found.append(honest_score(labels.ledger, raw, honest, pair_view, why, moment))
    return found


def _with_replay(
    found: Audit, ledger: Ledger, moment: dt.datetime, model_version: str | None, seed: int
) -> Audit:
    """Add the scorer's replay summary to its reproducibility record (``replay``).

    The share of its predictions with stored inputs, and a seeded replay of at most
    :data:`assay.models.replay.REPORT_SAMPLE` predictions per registered model version
    (:func:`assay.models.replay.replay_record`), so ``assay verify`` re-derives it.
    """
    summary = replay_record(
        ledger, scorer=found.scorer, as_of=moment, model_version=model_version, seed=seed
    )
    return replace(found, reproducibility={**found.reproducibility, "replay": summary})


@dataclass(frozen=True)
class ReplayRecord:
    """A reproducibility record's ``replay`` summary, as the renderers say it.

    ``record`` is the JSON-safe summary :func:`assay.models.replay.replay_record` returns.
    """

    record: dict[str, Any]

    def sentences(self) -> list[str]:
        """Return the summary in sentences: the replayable share, then each version's re-run.

        The share is predictions with stored inputs of all predictions as of the report; then
        one sentence per replayed model version, or the note saying why none was.
        """
        record = self.record
        if "predictions" not in record:
            return [str(record.get("note", ""))]
        total, with_inputs = record["predictions"], record["with_inputs"]
        share = f" ({with_inputs / total:.0%})" if total else ""
        said = [f"{with_inputs:,} of {total:,} predictions{share} have their inputs stored"]
        if "note" in record:
            return [*said, str(record["note"])]
        return [*said, *(_replayed(v, record) for v in record["versions"])]


def _replayed(version: dict[str, Any], record: dict[str, Any]) -> str:
    """Say one model version's re-run: how many, and identical, within tolerance or different."""
    v = version
    if v["different"]:
        largest = v["largest_difference"]  # None: a stored or recomputed probability is missing
        gap = "a missing probability" if largest is None else f"{largest:.3g}"
        result = (
            f"{v['identical']:,} identical, {v['within_tolerance']:,} within "
            f"±{record['tolerance']:g}, {v['different']:,} DIFFERENT (largest |Δ| {gap}; "
            f"first: {', '.join(v['first_different'])})"
        )
    elif v["within_tolerance"]:
        result = (
            f"{v['identical']:,} identical, {v['within_tolerance']:,} within "
            f"±{record['tolerance']:g}"
        )
    else:
        result = "all identical"
    return (
        f"model version {v['model_version']} ({v['format']} artefact "
        f"{v['fingerprint'][:16]}…): {v['replayed']:,} of {v['replayable']:,} replayed "
        f"(seed {record['sample_seed']}), {result}"
    )


def build_report(
    ledger: Ledger,
    *,
    as_of: dt.datetime | str | None = None,
    scorers: Sequence[str] | None = None,
    model_version: str | None = None,
    policy: str = "first",
    config: AuditConfig | None = None,
    compare_scorers: bool = True,
    monitors: Sequence[Monitor] | None = None,
) -> Report:
    """Build the full report of ``scorers``, each part once (module docstring).

    ``scorers`` defaults to all that have a matured, scored prediction by the as-of (the others
    are named in a note; all of them when none has one); ``as_of`` defaults to now and is never
    later than now (:func:`frozen_as_of`).

    ``compare_scorers=False`` leaves the comparison out; ``monitors`` replaces the monitors
    the ledger keeps (``assay verify`` replays the ones a report recorded).
    """
    config = config or AuditConfig()
    moment = frozen_as_of(as_of)
    names = list(scorers) if scorers else ledger.scorers()
    if not names:
        raise AssayInputError("the ledger holds no predictions yet; ingest some first")
    labels = ReportLabels(ledger, config.recording_lag_days)
    waiting: list[str] = []
    if not scorers:  # by default, a scorer with nothing matured yet waits (named in a note)
        waiting = [n for n in names if labels.usable(moment, n, policy).num_rows == 0]
        names = [n for n in names if n not in waiting] or names
        waiting = [n for n in waiting if n not in names]
    audits = [
        _with_replay(
            audit(
                labels,
                scorer=name,
                as_of=moment,
                model_version=model_version,
                policy=policy,
                config=config,
            ),
            ledger,
            moment,
            model_version,
            config.seed,
        )
        for name in names
    ]
    view: ComparisonView | None = None
    notes: list[str] = []
    if compare_scorers and len(names) > 1:
        if model_version is None:
            view, notes = _comparison(labels, audits, moment, policy, config)
        else:
            notes = [
                f"scorers {', '.join(names)} are not compared: a comparison reads every model "
                f"version, and this report audits model version {model_version!r} only"
            ]
    notes += [
        f"scorer {name} is not audited yet: none of its predictions has matured as of "
        f"{moment:%Y-%m-%d} (name it with --scorer to see what is pending)"
        for name in waiting
    ]
    chosen = stored_monitors(ledger, names, model_version) if monitors is None else monitors
    return Report(
        as_of=moment.isoformat(),
        audits=audits,
        comparison=view,
        monitors=[replay_summary(m, ledger, as_of=moment) for m in chosen],
        ledger_head=ledger.chain_head(),
        notes=notes,
        answers=answers(audits, None if view is None else view.comparison.common),
        honest=_honest(labels, audits, view, moment, policy, config),
    )
