"""The self-contained HTML report (Jinja2; charts inlined as SVG, no network, no scripts).

The pages draw a :class:`assay.audit.report.Report` (or its comparison) as it is: every number
and series was computed in the audit layer, so rendering opens no ledger and fits nothing.

**Order.** The first screen is the answer a reader acts on: with several scorers a summary
table (verdict, calibration error, direction, ranking, certified threshold, honesty), then per
scorer its verdict, the sentence saying which way and how far the score is wrong, how well it
ranks, and the next step with its exact command (:class:`assay.audit.answer.Answer`). The
evidence follows, each part once: per scorer the cards, one bucket table (the audit bins
folded), the charts, the months, the monitor and the decision threshold; the segment table
once for the report when every scorer saw the same segments; the comparison; and how to
re-verify the report, with the ledger's fingerprint and a readable reproducibility record.

**Words.** Numbers are written by :mod:`assay.report.formatting` (one unit per quantity);
each statistic carries the gloss and definition of :mod:`assay.report.glossary`
(:func:`explain`).

Every ``{{ … }}`` value passes :func:`_finalize` (stored text gets its invisible controls made
visible, :func:`assay.report.safe_text.html_text`) before autoescaping; HTML built here in Python
escapes stored text with ``escape(html_text(…))``.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

import assay
from assay.audit.answer import Answer, reason_detail
from assay.report import formatting as fmt
from assay.report import plots
from assay.report.glossary import GLOSSARY
from assay.report.safe_text import html_text

if TYPE_CHECKING:  # what is drawn
    from assay.audit.honest import HonestScore, Side
    from assay.audit.monitor import MonitorSummary
    from assay.audit.report import ComparisonView, Report
    from assay.audit.scorer import Audit, Bucket
    from assay.report.plots import TrueCurve
    from assay.stats.compare import ScorerSummary
    from assay.stats.segments import SegmentRates

#: What a place with nothing to draw says instead of empty axes.
NOT_ENOUGH = "not enough data yet"


def _text(value: object) -> Markup:
    """Return stored or computed text escaped for HTML built here."""
    return escape(html_text(value))


def _wrap(table: str) -> Markup:
    """Put a table in its own horizontally scrolling box (the page never scrolls sideways)."""
    return Markup(f'<div class="table-wrap">{table}</div>')


def _number(value: float | None, digits: int) -> str:
    """Write a plain number, ``∞`` for an infinite one (a log loss after a wrong 0 or 1)."""
    return "∞" if value is not None and math.isinf(value) else fmt.decimal(value, digits)


def explain(key: str) -> Markup:
    """Return a statistic's gloss with its definition and reference folded (:data:`GLOSSARY`)."""
    term = GLOSSARY[key]
    return Markup(
        '<p class="gloss">{gloss}</p><details class="define"><summary>{name}: definition'
        '</summary><p>{definition}</p><p class="ref">Reference: {reference}</p></details>'
    ).format(gloss=term.gloss, name=term.name, definition=term.definition, reference=term.reference)


def verdict_class(verdict: str) -> str:
    """Return the CSS class colouring a verdict word (good, bad or wait)."""
    if verdict in ("calibrated", "certified", "no evidence of miscalibration"):
        return "good"
    if verdict in ("miscalibrated", "drifted", "cannot reach"):
        return "bad"
    return "wait"


def _bucket_table(rows: list[Bucket]) -> Markup:
    lines = [
        "<table><thead><tr><th>score bucket</th><th>leads</th><th>promised</th>"
        "<th>observed</th><th>interval (Jeffreys)</th><th>gap</th></tr></thead><tbody>"
    ]
    for row in rows:
        if row.n == 0:
            continue
        cells = (
            f"<td>{fmt.pct_range(row.lower, row.upper)}</td><td>{fmt.count(row.n)}</td>"
            f"<td>{fmt.pct(row.mean_score)}</td>"
        )
        if row.thin:
            lines.append(f'<tr>{cells}<td class="thin" colspan="3">{NOT_ENOUGH}</td></tr>')
            continue
        lines.append(
            f"<tr>{cells}<td>{fmt.pct(row.observed_rate)}</td>"
            f"<td>{fmt.pct_range(row.rate_lower, row.rate_upper)}</td>"
            f"<td>{fmt.signed_pts(row.gap)}</td></tr>"
        )
    lines.append("</tbody></table>")
    return _wrap("".join(lines))


def _leaderboard(rows: list[ScorerSummary]) -> Markup:
    head = (
        "<table><thead><tr><th>scorer</th><th>leads</th><th>calibration error (plug-in)</th>"
        "<th>verdict</th><th>Brier</th><th>log loss</th><th>AUC</th><th>slope</th>"
        "<th>abstains</th><th>abstains on thin / rest</th></tr></thead><tbody>"
    )
    body = []
    for s in rows:
        error, auc = _error_and_auc(s)
        body.append(
            f"<tr><td>{_text(s.scorer)}</td><td>{fmt.count(s.n)}</td><td>{error}</td>"
            f'<td class="{verdict_class(s.verdict)}">{_text(s.verdict)}</td>'
            f"<td>{_number(s.brier, 4)}</td><td>{_number(s.log_loss, 4)}</td><td>{auc}</td>"
            f"<td>{fmt.decimal(s.slope, 2)}</td><td>{fmt.pct(s.abstention_rate)}</td>"
            f"<td>{_honesty(s)}</td></tr>"
        )
    return _wrap(head + "".join(body) + "</tbody></table>")


def _honesty(summary: ScorerSummary | None) -> str:
    """Write abstention on thin-evidence leads vs the rest ("—" without segments)."""
    if summary is None or (summary.abstention_thin is None and summary.abstention_rest is None):
        return fmt.MISSING
    if summary.abstention_thin is None:
        return f"{fmt.pct(summary.abstention_rest)} (no thin segments)"
    return f"{fmt.pct(summary.abstention_thin)} / {fmt.pct(summary.abstention_rest)}"


def _sentence_html(text: str) -> Markup:
    """Return assay's own sentence escaped, with human dates and raised powers of ten."""
    return Markup(fmt.powers_html(str(_text(fmt.human_dates(text)))))


def _monitor_view(summary: MonitorSummary) -> dict[str, Any]:
    monitor = summary.monitor
    return {
        "verdict": monitor.verdict,
        "reason": _sentence_html(reason_detail(monitor.verdict, monitor.reason)),
        "e_value": Markup(fmt.e_value_html(monitor.log_e_value)),
        "threshold": fmt.decimal(1 / monitor.config.alpha, 0),
        "matured": monitor.matured,
        "late_flips": monitor.late_flips,
        "alpha": monitor.config.alpha,
        "drift_threshold": monitor.config.drift_threshold,
        "months": summary.months,
        "meter": Markup(plots.evidence_meter(summary)),
        "gap": Markup(plots.cumulative_gap(summary)),
    }


def _decomposition(audit: Audit) -> str:
    corp = audit.corp
    return f"Brier {corp.score:.4f} = MCB {corp.mcb:.4f} − DSC {corp.dsc:.4f} + UNC {corp.unc:.4f}"


def _plain(value: Any) -> str:
    """Write a recorded setting in words: "—" for None, key: value pairs for a mapping."""
    if value is None:
        return fmt.MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{key.replace('_', ' ')}: {_plain(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_plain(item) for item in value) or fmt.MISSING
    return str(value)


#: How the reproducibility record names its keys; a key not listed reads with spaces for "_".
_RECORD_NAMES = {
    "snapshot_sha256": "snapshot SHA-256",
    "as_of": "as of",
    "policy": "prediction per lead",
    "model_version": "model version",
    "recording_lag_days": "recording lag (days)",
    "assay_version": "assay version",
}
_CODE_KEYS = frozenset({"snapshot_sha256", "ledger"})


def _record(repro: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Return the reproducibility record as (name, value, is code) rows, config key by key."""
    from assay.audit.report import ReplayRecord

    rows: list[tuple[str, str, bool]] = []
    for key, value in repro.items():
        if key == "config" and isinstance(value, dict):
            rows += [(f"config: {k.replace('_', ' ')}", _plain(v), False) for k, v in value.items()]
            continue
        if key == "replay" and isinstance(value, dict):
            said = ReplayRecord(value).sentences()
            rows += [
                ("replayable" if i == 0 else "replay", text, False) for i, text in enumerate(said)
            ]
            continue
        if key == "model_version" and value is None:
            shown = "all"
        elif key == "as_of" and isinstance(value, str):
            shown = fmt.utc_time(value)
        elif key == "recording_lag_days" and isinstance(value, dict):
            shown = ", ".join(f"{event}: {days:.1f}" for event, days in value.items())
        else:
            shown = _plain(value)
        rows.append((_RECORD_NAMES.get(key, key.replace("_", " ")), shown, key in _CODE_KEYS))
    return rows


def _answer(report: Report, index: int, audit: Audit) -> Answer:
    """Return the audit's answer; without one, its verdict and reason (no step to take)."""
    if index < len(report.answers):
        return report.answers[index]
    calibration = audit.calibration
    return Answer(
        scorer=audit.scorer,
        verdict=calibration.verdict,
        sentence=reason_detail(calibration.verdict, calibration.reason),
        direction=fmt.MISSING,
        ranking="",
        ranking_label="",
        action="",
        command="",
        extremes=[],
    )


def _error(audit: Audit) -> str:
    """Write the calibration error and interval in points (plug-in without a posterior)."""
    posterior = audit.calibration.posterior
    if posterior is None:
        return f"{fmt.pts(audit.calibration.ece)} (plug-in)"
    return f"{fmt.pts(posterior.median)} ({fmt.pts_range(posterior.lower, posterior.upper)})"


def _threshold(audit: Audit) -> str:
    if audit.decisions is None:
        return fmt.MISSING
    threshold = audit.decisions.threshold
    if threshold.threshold is None:
        return threshold.verdict
    return f"score ≥ {fmt.pct(threshold.threshold)}"


def _summary_row(audit: Audit, answer: Answer, summary: ScorerSummary | None) -> dict[str, str]:
    auc = audit.scores.get("auc")
    ranking = fmt.decimal(auc, 3)
    if answer.ranking_label:
        ranking += f" · {answer.ranking_label}"
    return {
        "verdict": answer.verdict,
        "error": _error(audit),
        "direction": answer.direction,
        "ranking": ranking,
        "threshold": _threshold(audit),
        "honesty": _honesty(summary),
    }


def _same_segments(audits: list[Audit]) -> SegmentRates | None:
    """Return the segment rates every audit shares (None when they differ or are missing)."""
    first = audits[0].segments if audits else None
    if first is None:
        return None
    shown = first.to_dict()
    return first if all(a.segments and a.segments.to_dict() == shown for a in audits) else None


@dataclass(frozen=True)
class _Segments:
    """One segment section: the rates, whose leads they are (None: every scorer's), the chart."""

    rates: SegmentRates
    scorer: str | None
    segment_by: str | None
    funnel: Markup | None
    overdispersion: float | None
    widened: bool


def _segments(audit: Audit, scorer: str | None) -> _Segments | None:
    rates, limits = audit.segments, audit.charts.funnel
    if rates is None:
        return None
    return _Segments(
        rates=rates,
        scorer=scorer,
        segment_by=audit.reproducibility["config"].get("segment_by"),
        funnel=None if limits is None else Markup(plots.funnel_plot(rates, limits)),
        overdispersion=None if limits is None else limits.overdispersion,
        widened=bool(limits and limits.adjusted),
    )


def _view(
    audit: Audit,
    answer: Answer,
    true_curve: TrueCurve | None,
    monitors: list[MonitorSummary],
    segments: _Segments | None,
) -> dict[str, Any]:
    report = audit.calibration
    charts = audit.charts
    cohorts = plots.cohort_chart(audit) if audit.cohorts else None
    return {
        "scorer": audit.scorer,
        "answer": answer,
        "verdict": report.verdict,
        "reason": _sentence_html(reason_detail(report.verdict, report.reason)),
        "ece": report.ece,
        "posterior": report.posterior,
        "levels": report.levels,
        "tolerance_words": report.tolerance_words,
        "credibility": report.credibility,
        "noise": report.noise_floor,
        "scores": audit.scores,
        "counts": audit.counts,
        "notes": [_sentence_html(note) for note in audit.notes],
        "model_versions": audit.model_versions,
        "deciles": audit.deciles,
        "audit_bins": audit.audit_bins,
        "n_bins": report.stats.n_bins,
        "cohorts": audit.cohorts,
        "charts": {
            "reliability": Markup(plots.reliability_diagram(charts.reliability, true_curve)),
            "corp": Markup(plots.corp_diagram(charts.corp, _decomposition(audit))),
            "cohorts": None if cohorts is None else Markup(cohorts),
            "decisions": Markup(plots.decision_charts(audit)) if audit.decisions else None,
        },
        "corp": audit.corp,
        "monitors": [_monitor_view(m) for m in monitors],
        "decisions": audit.decisions,
        "segments": segments,
        "record": _record(audit.reproducibility),
    }


def _error_and_auc(s: ScorerSummary) -> tuple[str, str]:
    """Return a scorer summary's calibration error and AUC, each with its interval if any."""
    error = fmt.pts(s.ece)
    if s.ece_lower is not None:
        error += f" ({fmt.pts_range(s.ece_lower, s.ece_upper)})"
    auc = fmt.decimal(s.auc, 3)
    if s.auc_lower is not None:
        auc += f" ({fmt.decimal_range(s.auc_lower, s.auc_upper, 3)})"
    return error, auc


def _side_cells(side: Side) -> list[str]:
    """One score's column of the side-by-side table, in :data:`_SIDE_ROWS` order."""
    s = side.summary
    error, auc = _error_and_auc(s)
    return [
        s.verdict, error, fmt.decimal(side.observed_expected, 2), fmt.pct(side.expected_rate),
        auc, _number(s.brier, 4),
    ]  # fmt: skip


#: The rows of the side-by-side table of the honest score, raw score and honest score.
_SIDE_ROWS = (
    "verdict",
    "calibration error, plug-in (interval)",
    "observed / expected conversions",
    "promised conversion rate",
    "AUC (interval)",
    "Brier score",
)


def _honest_view(honest: HonestScore) -> dict[str, Any]:
    """Return what the honest score's section draws: summary, the two side by side, served."""
    rows = []
    if honest.raw is not None and honest.honest is not None:
        rows = list(
            zip(_SIDE_ROWS, _side_cells(honest.raw), _side_cells(honest.honest), strict=True)
        )
    view = honest.view
    return {
        "h": honest,
        "sentences": [_sentence_html(f"{sentence}.") for sentence in honest.sentences()],
        "rows": rows,
        "served": [
            (
                v.map_version or fmt.MISSING,
                fmt.MISSING if v.built_as_of is None else fmt.utc_time(v.built_as_of),
                fmt.count(v.served),
                fmt.count(v.abstained),
                fmt.pct(v.abstained / v.served),
            )
            for v in honest.served
        ],
        "diagrams": []
        if view is None
        else [
            (name, Markup(plots.reliability_diagram(view.diagrams[name])))
            for name in (honest.vendor, honest.scorer)
        ],
    }


def _verify(report: Report, json_path: str | None) -> dict[str, Any] | None:
    """Return how to re-verify the report: command, chain head, each audit's snapshot.

    ``json_path``: where the report's JSON was written, when it was (else ``report.json``).
    """
    if not report.audits:
        return None
    ledger = report.audits[0].reproducibility.get("ledger")
    document = json_path or "report.json"
    words = ["assay", "verify", document, *(["--ledger", str(ledger)] if ledger else [])]
    head = report.ledger_head
    return {
        "json_written": json_path is not None,
        "command": shlex.join(words),
        "batches": None if head is None else head.batches,
        "chain_hash": None if head is None else head.chain_hash,
        "snapshots": [(a.scorer, a.reproducibility.get("snapshot_sha256")) for a in report.audits],
    }


def _helpers() -> dict[str, Any]:
    """Return the template's formatters and builders (the same on every page)."""
    return {
        "fmt": fmt,
        "glossary": GLOSSARY,
        "explain": explain,
        "verdict_class": verdict_class,
        "detail": reason_detail,
        "leaderboard": _leaderboard,
        "bucket_table": _bucket_table,
        "number": _number,
        "not_enough": NOT_ENOUGH,
    }


def _finalize(value: Any) -> Any:
    """Template output: text (not HTML assay built, which is ``Markup``) with visible controls."""
    return html_text(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("assay.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(
    report: Report,
    *,
    true_curves: dict[str, TrueCurve] | None = None,
    json_path: str | None = None,
) -> str:
    """Render the HTML report (module docstring for its order).

    ``true_curves`` (score grid and true probability per scorer) is drawn beside the estimate,
    only for simulations; ``json_path``, where the report's JSON was written, goes into the
    re-verify command.
    """
    audits = report.audits
    answers = [_answer(report, i, a) for i, a in enumerate(audits)]
    shared = _same_segments(audits) if len(audits) > 1 else None
    common = {} if report.comparison is None else {
        s.scorer: s for s in report.comparison.comparison.common
    }  # fmt: skip
    views = [
        _view(
            a,
            answer,
            (true_curves or {}).get(a.scorer),
            report.monitors_of(a.scorer),
            None if shared is not None else _segments(a, a.scorer if len(audits) > 1 else None),
        )
        for a, answer in zip(audits, answers, strict=True)
    ]
    summary = [
        _summary_row(a, answer, common.get(a.scorer))
        for a, answer in zip(audits, answers, strict=True)
    ]
    thin = audits[0].reproducibility["config"]["thin_bucket"] if audits else 30
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=", ".join(a.scorer for a in audits),
            version=assay.__version__,
            as_of=report.as_of,
            audits=views,
            summary=summary if len(audits) > 1 else [],
            decisions=any(a.decisions is not None for a in audits),
            honesty=bool(common),
            segments=None if shared is None else _segments(audits[0], None),
            comparison=None if report.comparison is None else _comparison_view(report.comparison),
            honest=[_honest_view(h) for h in report.honest],
            verify=_verify(report, json_path),
            notes=[_sentence_html(note) for note in report.notes],
            thin=thin,
            **_helpers(),
        )
    )


def _comparison_view(view: ComparisonView) -> dict[str, Any]:
    comparison = view.comparison
    return {
        "c": comparison,
        "names": list(view.diagrams),
        "interval_plot": Markup(plots.ece_interval_plot(comparison)),
        "diagrams": [
            (name, Markup(plots.reliability_diagram(series)))
            for name, series in view.diagrams.items()
        ],
    }


def render_comparison_html(view: ComparisonView, *, as_of: str) -> str:
    """Render the side-by-side comparison page (self-contained, like the report)."""
    return (
        _environment()
        .get_template("compare.html.j2")
        .render(
            **_comparison_view(view),
            version=assay.__version__,
            as_of=as_of,
            **_helpers(),
        )
    )
