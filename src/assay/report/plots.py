"""Charts for the report: matplotlib figures rendered to byte-stable inline SVG.

Byte stability: a fixed ``svg.hashsalt``, no date in the metadata, text kept as text
(``svg.fonttype = "none"``), and the Agg-free SVG backend.

Stored text (scorer names, segment labels) is drawn through
:func:`assay.report.safe_text.plot_text`, never as mathtext.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("svg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from assay.audit.monitor import MonitorSummary
from assay.audit.scorer import Audit
from assay.report.safe_text import plot_text
from assay.stats.compare import Comparison
from assay.stats.isotonic import isotonic_fit
from assay.stats.segments import SegmentRates, funnel_limits

STYLE: Any = {  # matplotlib types rcParams keys as literals
    "svg.hashsalt": "assay",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
INK, ACCENT, MUTED, BAND = "#1f2933", "#c2410c", "#9aa5b1", "#fbd5c0"


def to_svg(figure: Figure) -> str:
    """The figure as an SVG string without the XML prolog, ready to inline."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # Inline SVG in HTML needs neither the RDF metadata block nor namespace declarations;
    # dropping them leaves the report without a single URL, not even an inert one.
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text, count=0)


def reliability_diagram(
    audit: Audit, true_curve: Callable[[np.ndarray], np.ndarray] | None = None
) -> str:
    """Observed rate vs mean score per audit bin with posterior bands, the diagonal and a
    histogram; ``true_curve`` (score → true probability, known in simulations) is drawn too."""
    with plt.rc_context(STYLE):
        figure, (top, bottom) = plt.subplots(
            2, 1, figsize=(5.2, 5.0), sharex=True, gridspec_kw={"height_ratios": [4, 1]}
        )
        report = audit.calibration
        stats = report.stats
        keep = stats.nonempty
        mean_p = stats.mean_prob[keep]
        top.plot(
            [0, 1], [0, 1], color=MUTED, linestyle="--", linewidth=1, label="perfect calibration"
        )
        if report.posterior is not None:
            lower = report.posterior.rate_lower[keep]
            upper = report.posterior.rate_upper[keep]
            top.fill_between(mean_p, lower, upper, color=BAND, step=None, alpha=0.9,
                             label=f"{report.credibility:.0%} credible band")  # fmt: skip
        top.plot(mean_p, stats.observed_rate[keep], marker="o", color=ACCENT, linewidth=1.5,
                 label="observed rate per bin")  # fmt: skip
        if true_curve is not None:
            grid = np.linspace(0, 1, 201)
            top.plot(
                grid, true_curve(grid), color=INK, linewidth=1, label="true curve (simulation)"
            )
        top.set_ylabel("observed conversion rate")
        # Zoom to where the scores and rates are, keeping the origin and the diagonal.
        reach = [float(np.quantile(audit.y_prob, 0.995)), float(np.nanmax(stats.observed_rate))]
        if report.posterior is not None:
            reach.append(float(np.nanmax(report.posterior.rate_upper)))
        limit = min(1.0, 1.1 * max(reach))
        top.set_xlim(0, limit)
        top.set_ylim(0, limit)
        top.legend(loc="upper left", frameon=False)  # after every labelled artist
        bottom.hist(audit.y_prob, bins=50, range=(0, limit), color=MUTED)
        bottom.set_xlabel("score (promised probability)")
        bottom.set_ylabel("leads")
        return to_svg(figure)


def corp_diagram(audit: Audit) -> str:
    """The CORP reliability curve: PAV-recalibrated probability against the score."""
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(5.2, 4.0))
        _, (scores, fitted) = isotonic_fit(audit.y_prob, audit.y_true)
        axis.plot([0, 1], [0, 1], color=MUTED, linestyle="--", linewidth=1)
        axis.step(scores, fitted, where="post", color=INK, linewidth=1.5)
        corp = audit.corp
        decomposition = (
            f"Brier {corp.score:.4f} = MCB {corp.mcb:.4f} − DSC {corp.dsc:.4f} + UNC {corp.unc:.4f}"
        )
        axis.text(0.02, 0.95, decomposition, transform=axis.transAxes, va="top")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_xlabel("score")
        axis.set_ylabel("recalibrated probability (PAV)")
        return to_svg(figure)


def cohort_chart(audit: Audit) -> str:
    """ECE per scoring month with its credible interval and the tolerance line."""
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(7.0, 3.0))
        cohorts = [c for c in audit.cohorts if c.median is not None]
        x = np.arange(len(cohorts))
        if cohorts:
            median = np.array([c.median for c in cohorts])
            lower = np.array([c.lower for c in cohorts])
            upper = np.array([c.upper for c in cohorts])
            colours = [
                {"calibrated": "#15803d", "miscalibrated": ACCENT}.get(c.verdict, MUTED)
                for c in cohorts
            ]
            axis.errorbar(
                x, median, yerr=[median - lower, upper - median], fmt="none", ecolor=MUTED
            )
            axis.scatter(x, median, c=colours, zorder=3)
            axis.set_xticks(x, [c.month for c in cohorts], rotation=60, ha="right")
        limit = audit.calibration.tolerance.curve_limit(audit.calibration.mean_score)
        axis.axhline(limit, color=INK, linestyle=":", linewidth=1)
        axis.set_ylabel("ECE (posterior median)")
        axis.set_ylim(bottom=0)
        return to_svg(figure)


def decision_charts(audit: Audit) -> str:
    """Risk–coverage (acting on the top-scored leads first) and the net-benefit decision curve."""
    decisions = audit.decisions
    assert decisions is not None
    with plt.rc_context(STYLE):
        figure, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.4))
        curve = decisions.risk_coverage
        left.step(curve.coverage, curve.risk, where="post", color=INK, linewidth=1.5)
        certified = decisions.threshold.threshold
        if certified is not None:
            covered = float(np.mean(audit.y_prob >= certified))
            left.axvline(covered, color=ACCENT, linestyle="--", linewidth=1,
                         label=f"certified threshold {certified:.3g}")  # fmt: skip
            left.legend(loc="lower right", frameon=False)
        left.axhline(1 - decisions.threshold.target_precision, color=MUTED, linestyle=":")
        left.set_xlabel("coverage (share of leads acted on, best first)")
        left.set_ylabel("risk (share not converting)")
        left.set_xlim(0, 1)
        left.set_ylim(0, 1)
        benefit = decisions.net_benefit
        right.plot(
            benefit.thresholds, benefit.model, color=ACCENT, linewidth=1.5, label="this score"
        )
        right.plot(
            benefit.thresholds, benefit.treat_all, color=MUTED, linestyle="--", label="act on all"
        )
        right.plot(
            benefit.thresholds, benefit.treat_none, color=INK, linewidth=0.8, label="act on none"
        )
        top = max(float(np.max(benefit.model)), float(np.max(benefit.treat_all)), 0.01)
        right.set_ylim(-0.1 * top, 1.1 * top)
        right.set_xlabel("threshold probability (break-even cost / value)")
        right.set_ylabel("net benefit per lead")
        right.legend(loc="upper right", frameon=False)
        figure.tight_layout()
        return to_svg(figure)


def funnel_plot(rates: SegmentRates) -> str:
    """Raw segment rates against size with 95% and 99.8% limits around the reference."""
    limits = funnel_limits(rates)
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(7.0, 3.6))
        axis.plot(
            limits.n, limits.lower_95, color=MUTED, linestyle="--", linewidth=1, label="95% limits"
        )
        axis.plot(limits.n, limits.upper_95, color=MUTED, linestyle="--", linewidth=1)
        axis.plot(
            limits.n, limits.lower_998, color=INK, linestyle=":", linewidth=1, label="99.8% limits"
        )
        axis.plot(limits.n, limits.upper_998, color=INK, linestyle=":", linewidth=1)
        axis.axhline(rates.reference, color=INK, linewidth=0.8)
        sizes = [r.n for r in rates.rows]
        axis.scatter(sizes, [r.raw_rate for r in rates.rows], color=ACCENT, zorder=3, s=18)
        for row in rates.rows:
            axis.annotate(plot_text(row.segment), (row.n, row.raw_rate), fontsize=7, xytext=(3, 3),
                          textcoords="offset points")  # fmt: skip
        axis.set_xscale("log")
        axis.set_xlabel("leads in segment (log scale)")
        axis.set_ylabel("raw conversion rate")
        note = (
            f" (over-dispersion φ = {limits.overdispersion:.1f}: limits widened)"
            if limits.adjusted
            else ""
        )
        axis.legend(
            loc="upper right", frameon=False, title=f"reference {rates.reference:.1%}{note}"
        )
        return to_svg(figure)


def ece_interval_plot(comparison: Comparison) -> str:
    """ECE per scorer on the common leads with its credible interval."""
    with plt.rc_context(STYLE):
        summaries = comparison.common
        figure, axis = plt.subplots(figsize=(6.0, 0.5 + 0.45 * len(summaries)))
        y = np.arange(len(summaries))
        ece = np.array([s.ece for s in summaries])
        lower = np.array([s.ece if s.ece_lower is None else s.ece_lower for s in summaries])
        upper = np.array([s.ece if s.ece_upper is None else s.ece_upper for s in summaries])
        axis.errorbar(ece, y, xerr=[np.maximum(ece - lower, 0), np.maximum(upper - ece, 0)],
                      fmt="o", color=ACCENT, ecolor=MUTED, capsize=3)  # fmt: skip
        axis.set_yticks(y, [plot_text(s.scorer) for s in summaries])
        axis.set_xlabel(
            f"ECE on {comparison.n_common:,} common leads ({comparison.credibility:.0%} interval)"
        )
        axis.set_xlim(left=0)
        return to_svg(figure)


def _maturity_dates(summary: MonitorSummary) -> np.ndarray:
    return summary.path.times_us.astype("datetime64[us]")


def evidence_meter(summary: MonitorSummary) -> str:
    """The audit e-value (log scale) over maturity time with the 1/α alarm line, and the
    drift detector D with its threshold."""
    monitor, path = summary.monitor, summary.path
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(7.0, 3.0))
        when = _maturity_dates(summary)
        axis.plot(when, path.log_e / np.log(10), color=INK, linewidth=1.2, label="audit E")
        axis.plot(when, path.log_drift / np.log(10), color=MUTED, linewidth=0.8, label="drift D")
        alarm, drift = 1 / monitor.config.alpha, monitor.config.drift_threshold
        axis.axhline(np.log10(alarm), color=ACCENT, linestyle="--", linewidth=1,
                     label=f"alarm 1/α = {alarm:.0f}")  # fmt: skip
        axis.axhline(np.log10(drift), color=MUTED, linestyle=":", linewidth=1,
                     label=f"drift alarm {drift:.0f}")  # fmt: skip
        top = max(4.0, float(np.max(path.log_e, initial=0.0)) / np.log(10))
        axis.set_ylim(-3, min(top, 12.0) + 0.5)
        axis.set_ylabel("log₁₀ evidence")
        axis.legend(frameon=False, fontsize=8, loc="upper left")
        figure.autofmt_xdate()
        return to_svg(figure)


def cumulative_gap(summary: MonitorSummary) -> str:
    """Cumulative expected minus observed conversions over maturity time, with the ±1.96 sd
    band a calibrated score stays inside pointwise (sd² = Σ p(1 − p))."""
    path = summary.path
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(7.0, 3.0))
        when = _maturity_dates(summary)
        gap = np.cumsum(path.probability - path.outcome)
        band = 1.96 * np.sqrt(np.cumsum(path.probability * (1 - path.probability)))
        axis.fill_between(when, -band, band, color=BAND, linewidth=0, label="calibrated ±1.96 sd")
        axis.plot(when, gap, color=INK, linewidth=1.2, label="expected − observed")
        axis.axhline(0, color=MUTED, linewidth=0.8)
        axis.set_ylabel("conversions")
        axis.legend(frameon=False, fontsize=8, loc="upper left")
        figure.autofmt_xdate()
        return to_svg(figure)
