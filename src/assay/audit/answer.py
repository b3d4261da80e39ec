"""The answer a RevOps lead acts on, per scorer, in plain words.

Which way the score is wrong and by how much, how well it ranks, and the next step with the
exact command.

Every word comes from numbers the audit already computed (no statistic is fitted here):

* **Direction**, by the levels of the calibration hierarchy the verdict found decisive
  (:mod:`assay.stats.verdict`), in this order: observed/expected below its band
  "over-promises", above "under-promises"; else the calibration slope below its band
  "over-confident", above "under-confident"; else the ECE above its tolerance "misses by X pts".
* **Size**: the audit bin where the gap in that direction is largest, weighted by evidence
  (|observed − promised| · √n over the bins that are not thin — the bin the verdict's reason
  names too), told as "leads it scores 80.6–81.8% convert at 16.1–19.2%" (the bin's score range
  and the credible interval of its observed rate), then the whole: conversions promised (Σp)
  against conversions that happened.
* **Ranking**, from the AUC, labelled after Hosmer & Lemeshow's rule of thumb [1]_ with its
  lowest band split off: below 0.6 "barely better than chance", 0.6–0.7 "weakly", 0.7–0.8
  "acceptably", 0.8–0.9 "well", from 0.9 "very well"; on thin data "not judged yet". When the
  ends of the AUC's interval (the comparison's bootstrap on the same leads, else Hanley–McNeil,
  :func:`assay.stats.metrics.scores.auc_interval`) fall in other bands, the answer says so.
* **Next step**: miscalibrated — recalibrate on the team's own outcomes and re-audit on leads
  scored after the fix, automate nothing yet (``assay recalibrate``); calibrated — keep the
  monitor running (``assay monitor``), automate above the certified threshold when the report
  certified one; not yet — wait for the outcomes it names and re-run (``assay report``).

References
----------
.. [1] D. W. Hosmer and S. Lemeshow, *Applied Logistic Regression*, 2nd ed., Wiley, 2000,
   §5.2.4 (AUC 0.7–0.8 acceptable, 0.8–0.9 excellent, ≥ 0.9 outstanding discrimination).
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from assay.stats.metrics.scores import auc_interval
from assay.stats.verdict import thin_data_reason

if TYPE_CHECKING:
    from assay.audit.scorer import Audit, Bucket
    from assay.stats.compare import ScorerSummary
    from assay.stats.posterior import CalibrationPosterior

#: (lowest AUC, label), highest first (module docstring).
RANKING_LABELS = (
    (0.9, "very well"),
    (0.8, "well"),
    (0.7, "acceptably"),
    (0.6, "weakly"),
    (float("-inf"), "barely better than chance"),
)
NOT_JUDGED = "not judged yet"


@dataclass(frozen=True)
class Answer:
    """One scorer's answer, in plain words (module docstring)."""

    scorer: str
    verdict: str  # "calibrated" | "miscalibrated" | "not yet"
    #: One sentence with the direction and size, e.g. "Over-promises: leads it scores
    #: 78–80% convert at 15–18% (1,885 leads); it promised 9,966 conversions and 2,781 happened."
    sentence: str
    #: Short direction for tables: "over-promises", "under-promises", "over-confident",
    #: "under-confident", "misses by X pts", "within tolerance" or "—" (not yet).
    direction: str
    #: The ranking judgement in words with the AUC, e.g. "ranks leads barely better than chance
    #: (AUC 0.521)"; ``ranking_label`` alone is "barely better than chance".
    ranking: str
    ranking_label: str
    #: The next step in words, and the exact shell command (stored names shell-quoted).
    action: str
    command: str
    #: Scores of exactly 0 or 1 the outcomes contradicted: "promised 100%: 655 leads, 93.7%
    #: converted" (empty when none).
    extremes: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, in field order."""
        return asdict(self)


def reason_detail(verdict: str, reason: str) -> str:
    """Return ``reason`` without its leading verdict word, for a line that already shows it.

    "miscalibrated: it over-promises …" under the heading MISCALIBRATED reads "it over-promises
    …"; a reason that does not start with the verdict is returned as it is.
    """
    for prefix in (f"{verdict}: ", f"{verdict} — ", f"{verdict} "):
        if reason.startswith(prefix):
            return reason[len(prefix) :]
    return reason


def _share(value: float, digits: int) -> str:
    return f"{100 * value:.{digits}f}"


def _range(lower: float, upper: float) -> str:
    """Write a range of rates in percent with one decimal ("78.3–80.1%")."""
    return f"{_share(lower, 1)}–{_share(upper, 1)}%"


def _count(value: float) -> str:
    """Write conversions: whole above 100, one decimal below (a promise of 4.2 conversions)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}".removesuffix(".0")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _direction(posterior: CalibrationPosterior, probability: float) -> str:
    """Return the first decisive level's direction (module docstring), or "" when none is."""
    ratio, slope, ece = posterior.ratio, posterior.slope, posterior.ece
    if ratio.prob_below >= probability:
        return "over-promises"
    if ratio.prob_above >= probability:
        return "under-promises"
    if slope is not None and slope.prob_below >= probability:
        return "over-confident"
    if slope is not None and slope.prob_above >= probability:
        return "under-confident"
    if 1 - ece.prob_within_tolerance >= probability:
        return f"misses by {100 * ece.median:.1f} pts"
    return ""


def _worst_bin(bins: list[Bucket], sign: int) -> Bucket | None:
    """Return the audit bin with the largest |gap|·√n in the direction ``sign`` (0: either)."""
    rows = [b for b in bins if not b.thin and b.gap is not None and b.n > 0]
    if sign:
        rows = [b for b in rows if (b.gap or 0.0) * sign > 0]
    if not rows:
        return None
    return max(rows, key=lambda b: abs(b.gap or 0.0) * math.sqrt(b.n))


def _where(bucket: Bucket | None) -> str:
    if bucket is None or bucket.rate_lower is None or bucket.rate_upper is None:
        return ""
    return (
        f"leads it scores {_range(bucket.lower, bucket.upper)} convert at "
        f"{_range(bucket.rate_lower, bucket.rate_upper)} ({_plural(bucket.n, 'lead')}); "
    )


def _promise(audit: Audit) -> str:
    """Write the conversions promised (Σp) against those that happened, over resolved leads."""
    resolved = audit.counts.resolved
    promised = float(audit.calibration.stats.sum_p.sum())
    happened = int(audit.counts.positives)
    times = f" ({happened / promised:.2f}× the promise)" if promised > 0 else ""
    return (
        f"over all {_plural(resolved, 'resolved lead')} it promised {_count(promised)} "
        f"conversions and {happened:,} happened{times}"
    )


_SIGN = {"over-promises": -1, "under-promises": 1}
_LEAD = {
    "over-promises": "Over-promises",
    "under-promises": "Under-promises",
    "over-confident": "Over-confident: its high scores are too high and its low scores too low",
    "under-confident": "Under-confident: its scores are bunched too close together",
}


def _sentence(audit: Audit, direction: str) -> str:
    report = audit.calibration
    posterior = report.levels
    if report.verdict == "miscalibrated" and posterior is not None:
        lead = _LEAD.get(direction, f"Misses its promises by {100 * posterior.ece.median:.1f} pts")
        where = _where(_worst_bin(audit.audit_bins, _SIGN.get(direction, 0)))
        return f"{lead}: {where}{_promise(audit)}."
    if report.verdict == "calibrated" and posterior is not None:
        ratio, ece = posterior.ratio, posterior.ece
        return (
            f"Keeps its promises: {_promise(audit)} (interval {ratio.lower:.2f}–"
            f"{ratio.upper:.2f}×); its typical gap is {100 * ece.median:.1f} pts, within the "
            f"{100 * ece.tolerance:.1f} pts allowed."
        )
    thin = thin_data_reason(report.n, round(report.positives))
    if thin is not None:
        return (
            f"Insufficient data: {reason_detail('not yet', thin)}. So far, "
            f"{_promise(audit)}: too few to tell."
        )
    more = (
        f"; roughly {report.more_leads:,} more matured leads would settle it"
        if report.more_leads
        else ""
    )
    return f"The evidence cannot tell yet: {_promise(audit)}{more}."


def _label(auc: float) -> str:
    return next(words for floor, words in RANKING_LABELS if auc >= floor)


def _ranking(audit: Audit, summary: ScorerSummary | None) -> tuple[str, str]:
    """Return the ranking sentence and label; both ends of the AUC's interval when they differ."""
    auc = audit.scores.get("auc")
    report = audit.calibration
    if auc is None:
        return "ranking not measurable: every resolved lead had the same outcome", NOT_JUDGED
    if thin_data_reason(report.n, round(report.positives)) is not None:
        return f"ranking not judged yet (AUC {auc:.3f} on too few outcomes)", NOT_JUDGED
    if (
        summary is not None
        and summary.n == audit.counts.resolved  # the comparison's leads are the audit's
        and summary.auc_lower is not None
        and summary.auc_upper is not None
    ):
        lower, upper = summary.auc_lower, summary.auc_upper
    else:
        positives = round(report.positives)
        lower, upper = auc_interval(auc, positives, report.n - positives, report.credibility)
    numbers = f"AUC {auc:.3f}, {report.credibility:.0%} interval {lower:.3f}–{upper:.3f}"
    label, low, high = _label(auc), _label(lower), _label(upper)
    if low == high:
        return f"ranks leads {label} ({numbers})", label
    return (
        f"ranks leads {label}, though the evidence allows anything from {low} to {high} "
        f"({numbers})",
        f"{label} (could be {low} to {high})",
    )


def _file_name(scorer: str) -> str:
    """Return a calibrator file name safe in any shell and file system, from the scorer's name."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", scorer).strip("-.") or "scorer"
    return f"calibrator-{stem[:60]}.json"


def _command(audit: Audit, *words: str) -> str:
    ledger = audit.reproducibility.get("ledger")
    where = ["--ledger", str(ledger)] if ledger else []
    return shlex.join(["assay", *words[:1], *where, "--scorer", audit.scorer, *words[1:]])


def _action(audit: Audit, ranking_label: str) -> tuple[str, str]:
    report = audit.calibration
    if report.verdict == "miscalibrated":
        action = (
            "Do not read its scores as probabilities or automate on them yet: recalibrate it on "
            "your own matured outcomes, then re-audit it on leads scored after the fix."
        )
        if ranking_label.startswith(RANKING_LABELS[-1][1]):
            action += (
                " Recalibration fixes the promised rates, not the ranking: this score barely "
                "separates converters from the rest, so do not prioritise leads by it either."
            )
        return action, _command(audit, "recalibrate", "--out", _file_name(audit.scorer))
    if report.verdict == "calibrated":
        threshold = None if audit.decisions is None else audit.decisions.threshold
        fire = (
            f" An automated action may fire on its own at scores ≥ {threshold.threshold:.2%}"
            f" (precision ≥ {threshold.target_precision:.0%} with probability "
            f"{1 - threshold.delta:.0%})."
            if threshold is not None and threshold.threshold is not None
            else ""
        )
        action = (
            "Its scores can be read as probabilities; keep its monitor running as outcomes "
            f"arrive.{fire}"
        )
        return action, _command(audit, "monitor")
    wait = (
        f"roughly {report.more_leads:,} more matured leads"
        if report.more_leads
        else "more matured outcomes"
    )
    action = (
        f"Do not act on its scores as probabilities yet: wait for {wait}, then re-run the report."
    )
    return action, _command(audit, "report")


def answer_for(audit: Audit, summary: ScorerSummary | None = None) -> Answer:
    """Return the answer for one audit (module docstring).

    ``summary`` (the scorer's row in a comparison, when the report has one) adds the AUC's
    bootstrap interval.
    """
    report = audit.calibration
    found = "" if report.levels is None else _direction(report.levels, report.probability)
    direction = {"calibrated": "within tolerance", "not yet": "—"}.get(report.verdict, found)
    ranking, label = _ranking(audit, summary)
    action, command = _action(audit, label)
    return Answer(
        scorer=audit.scorer,
        verdict=report.verdict,
        sentence=_sentence(audit, found),
        direction=direction or "—",
        ranking=ranking,
        ranking_label=label,
        action=action,
        command=command,
        extremes=[e.sentence() for e in report.extremes if e.contradicted],
    )


def answers(audits: list[Audit], summaries: list[ScorerSummary] | None = None) -> list[Answer]:
    """Return the answer of every audit, in order, with the comparison's rows when given."""
    by_name = {s.scorer: s for s in summaries or []}
    return [answer_for(a, by_name.get(a.scorer)) for a in audits]
