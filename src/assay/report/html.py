"""The self-contained HTML report (Jinja2; charts inlined as SVG, no network, no scripts).

The pages draw a :class:`assay.audit.report.Report` (or its comparison) as it is: every number
and series was computed in the audit layer, so rendering opens no ledger and fits nothing.

Every ``{{ … }}`` value passes :func:`_finalize` (stored text gets its invisible controls made
visible, :func:`assay.report.safe_text.html_text`) before autoescaping; HTML built here in Python
escapes stored text with ``escape(html_text(…))``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

import assay
from assay.report import plots
from assay.report.safe_text import html_text

if TYPE_CHECKING:  # what is drawn
    from assay.audit.monitor import MonitorSummary
    from assay.audit.report import ComparisonView, Report
    from assay.audit.scorer import Audit, Bucket
    from assay.report.plots import TrueCurve


def _pts(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _pct0(value: float) -> str:
    return f"{100 * value:.0f}%"


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _bucket_table(rows: list[Bucket]) -> Markup:
    lines = [
        "<table><thead><tr><th>score bucket</th><th>leads</th><th>promised</th>"
        "<th>observed</th><th>credible interval</th><th>gap (pts)</th></tr></thead><tbody>"
    ]
    for row in rows:
        if row.n == 0:
            continue
        bucket = f"{_pct(row.lower)} – {_pct(row.upper)}"
        if row.thin:
            lines.append(
                f"<tr><td>{bucket}</td><td>{row.n}</td><td>{_pct(row.mean_score)}</td>"
                '<td class="thin" colspan="3">not yet — insufficient data</td></tr>'
            )
            continue
        gap = "—" if row.gap is None else f"{100 * row.gap:+.1f}"
        lines.append(
            f"<tr><td>{bucket}</td><td>{row.n}</td><td>{_pct(row.mean_score)}</td>"
            f"<td>{_pct(row.observed_rate)}</td>"
            f"<td>{_pct(row.rate_lower)} – {_pct(row.rate_upper)}</td><td>{gap}</td></tr>"
        )
    lines.append("</tbody></table>")
    return Markup("".join(lines))


def _monitor_view(summary: MonitorSummary) -> dict[str, Any]:
    monitor = summary.monitor
    return {
        "verdict": monitor.verdict,
        "reason": monitor.reason,
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


def _view(
    audit: Audit, true_curve: TrueCurve | None, monitors: list[MonitorSummary]
) -> dict[str, Any]:
    report = audit.calibration
    repro = audit.reproducibility
    charts = audit.charts
    return {
        "scorer": audit.scorer,
        "verdict": report.verdict,
        "reason": report.reason,
        "ece": report.ece,
        "posterior": report.posterior,
        "levels": report.levels,
        "tolerance_words": report.tolerance_words,
        "credibility": report.credibility,
        "noise": report.noise_floor,
        "scores": audit.scores,
        "counts": audit.counts,
        "notes": audit.notes,
        "model_versions": audit.model_versions,
        "deciles": audit.deciles,
        "audit_bins": audit.audit_bins,
        "n_bins": report.stats.n_bins,
        "cohorts": audit.cohorts,
        "charts": {
            "reliability": Markup(plots.reliability_diagram(charts.reliability, true_curve)),
            "corp": Markup(plots.corp_diagram(charts.corp, _decomposition(audit))),
            "cohorts": Markup(plots.cohort_chart(audit)) if audit.cohorts else "",
            "decisions": Markup(plots.decision_charts(audit)) if audit.decisions else "",
            "funnel": Markup(plots.funnel_plot(audit.segments, charts.funnel))
            if audit.segments and charts.funnel
            else "",
        },
        "monitors": [_monitor_view(m) for m in monitors],
        "segments": audit.segments,
        "segment_by": audit.reproducibility["config"].get("segment_by"),
        "decisions": audit.decisions,
        "repro_rows": [
            (key, json.dumps(value, sort_keys=True) if isinstance(value, dict) else value)
            for key, value in repro.items()
        ],
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


def render_html(report: Report, *, true_curves: dict[str, TrueCurve] | None = None) -> str:
    """Render the HTML report.

    Each scorer's audit with its monitors, then the comparison when the report has one
    (``true_curves``, score grid and true probability per scorer, only for simulations).
    """
    audits = report.audits
    template = _environment().get_template("report.html.j2")
    thin = audits[0].reproducibility["config"]["thin_bucket"] if audits else 30
    return template.render(
        title=", ".join(a.scorer for a in audits),
        version=assay.__version__,
        as_of=report.as_of,
        audits=[
            _view(a, (true_curves or {}).get(a.scorer), report.monitors_of(a.scorer))
            for a in audits
        ],
        comparison=None if report.comparison is None else _comparison_view(report.comparison),
        notes=report.notes,
        leaderboard=_leaderboard,
        thin=thin,
        pts=_pts,
        pct=_pct,
        pct0=_pct0,
        num=_num,
        bucket_table=_bucket_table,
    )


def _leaderboard(rows: list[Any]) -> Markup:
    head = (
        "<table><thead><tr><th>scorer</th><th>leads</th><th>ECE (pts)</th><th>interval</th>"
        "<th>verdict</th><th>Brier</th><th>log loss</th><th>AUC</th><th>AUC interval</th>"
        "<th>slope</th><th>abstains</th><th>on thin / rest</th></tr></thead><tbody>"
    )
    body = []
    for s in rows:
        interval = "—" if s.ece_lower is None else f"{_pts(s.ece_lower)}–{_pts(s.ece_upper)}"
        auc_interval = "—" if s.auc_lower is None else f"{s.auc_lower:.3f}–{s.auc_upper:.3f}"
        honesty = (
            "—"
            if s.abstention_thin is None and s.abstention_rest is None
            else (f"{_pct(s.abstention_thin)} / {_pct(s.abstention_rest)}")
        )
        body.append(
            f"<tr><td>{escape(html_text(s.scorer))}</td><td>{s.n}</td><td>{_pts(s.ece)}</td>"
            f"<td>{interval}</td>"
            f"<td>{escape(s.verdict)}</td><td>{s.brier:.4f}</td><td>{s.log_loss:.4f}</td>"
            f"<td>{_num(s.auc, 3)}</td><td>{auc_interval}</td><td>{_num(s.slope, 2)}</td>"
            f"<td>{_pct(s.abstention_rate)}</td><td>{honesty}</td></tr>"
        )
    return Markup(head + "".join(body) + "</tbody></table>")


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
            leaderboard=_leaderboard,
            pct0=_pct0,
        )
    )
