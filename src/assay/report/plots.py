"""Charts for the report: the series the audit layer computed, drawn as byte-stable inline SVG.

Nothing here computes a statistic, reads a lead or opens the ledger: each function places the
series of :mod:`assay.audit.charts` (and :class:`assay.audit.monitor.MonitorChart`) on axes.

No global state: each chart is a :class:`matplotlib.figure.Figure` on its own SVG canvas
(:class:`matplotlib.backends.backend_svg.FigureCanvasSVG`), so no backend is chosen for the
process, and matplotlib is imported on the first chart, not with this module. :data:`STYLE`
applies inside an ``rc_context`` held under a lock (rcParams are process-wide; the service
draws from worker threads).

Byte stability: a fixed ``svg.hashsalt``, no date in the metadata, text kept as text
(``svg.fonttype = "none"``), and the Agg-free SVG backend.

Layout: a chart whose text is fixed (axis labels, numbers, dates) has fixed margins and is drawn
once; a chart that shows stored text (scorer names, segment labels) of any length is cropped to
what it draws (``bbox_inches="tight"``, a second drawing pass).

Stored text (scorer names, segment labels) is drawn through
:func:`assay.report.safe_text.plot_text`, never as mathtext.
"""

from __future__ import annotations

import io
import re
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from assay.report.safe_text import plot_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from matplotlib.figure import Figure

    from assay.audit.charts import ReliabilitySeries, StepSeries
    from assay.audit.monitor import MonitorChart, MonitorSummary
    from assay.audit.scorer import Audit
    from assay.stats.compare import Comparison
    from assay.stats.segments import FunnelLimits, SegmentRates

STYLE: Any = {  # matplotlib types rcParams keys as literals
    "svg.hashsalt": "assay",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
INK, ACCENT, MUTED, BAND = "#1f2933", "#c2410c", "#9aa5b1", "#fbd5c0"
#: A curve known in a simulation: its score grid and the true probability there.
TrueCurve = tuple[np.ndarray, np.ndarray]

#: The monitor's charts: dates on the x axis, slanted.
MONITOR_MARGINS = {"left": 0.1, "right": 0.98, "bottom": 0.22, "top": 0.96}

_DRAWING = threading.Lock()


def to_svg(figure: Figure, *, tight: bool = True) -> str:
    """Return the figure as an SVG string without the XML prolog, ready to inline.

    ``tight``: cropped to what it draws.
    """
    buffer = io.StringIO()
    crop = "tight" if tight else None
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches=crop)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # Inline SVG in HTML needs neither the RDF metadata block nor namespace declarations;
    # dropping them leaves the report without a single URL, not even an inert one.
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text, count=0)


def draw(
    size: tuple[float, float],
    paint: Callable[[Figure], None],
    margins: dict[str, float] | None = None,
) -> str:
    """Draw a new figure of ``size`` inches, painted by ``paint``, as inline SVG.

    The figure has its own SVG canvas and is painted under :data:`STYLE`: with ``margins``
    (``Figure.subplots_adjust`` keywords) at that size, else cropped to what it draws (module
    docstring).
    """
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with _DRAWING, matplotlib.rc_context(STYLE):
        figure = Figure(figsize=size)
        FigureCanvasSVG(figure)
        paint(figure)
        if margins is not None:
            figure.subplots_adjust(**margins)
        return to_svg(figure, tight=margins is None)


def reliability_diagram(series: ReliabilitySeries, true_curve: TrueCurve | None = None) -> str:
    """Draw the observed rate against the mean score per bin, with its band.

    With the diagonal and the score histogram; ``true_curve`` (known in simulations) is drawn
    too.
    """

    def paint(figure: Figure) -> None:
        top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
        limit = series.reach
        top.plot(
            [0, 1], [0, 1], color=MUTED, linestyle="--", linewidth=1, label="perfect calibration"
        )
        if series.lower is not None and series.upper is not None:
            top.fill_between(series.mean_score, series.lower, series.upper, color=BAND,
                             alpha=0.9, label=series.band)  # fmt: skip
        top.plot(series.mean_score, series.observed, marker="o", color=ACCENT, linewidth=1.5,
                 label="observed rate per bin")  # fmt: skip
        if true_curve is not None:
            grid, truth = true_curve
            top.plot(grid, truth, color=INK, linewidth=1, label="true curve (simulation)")
        top.set_ylabel("observed conversion rate")
        top.set_xlim(0, limit)
        top.set_ylim(0, limit)
        top.legend(loc="upper left", frameon=False)  # after every labelled artist
        edges = np.linspace(0.0, limit, len(series.histogram) + 1)
        bottom.stairs(series.histogram, edges, fill=True, color=MUTED)
        bottom.set_xlabel("score (promised probability)")
        bottom.set_ylabel("leads")

    return draw((5.2, 5.0), paint, {"left": 0.14, "right": 0.97, "bottom": 0.1, "top": 0.98,
                                    "hspace": 0.08})  # fmt: skip


def corp_diagram(curve: StepSeries, decomposition: str) -> str:
    """Draw the CORP reliability curve with the score decomposition written on it.

    The curve is the PAV-recalibrated probability against the score.
    """

    def paint(figure: Figure) -> None:
        axis = figure.subplots()
        axis.plot([0, 1], [0, 1], color=MUTED, linestyle="--", linewidth=1)
        axis.step(curve.x, curve.y, where="post", color=INK, linewidth=1.5)
        axis.text(0.02, 0.95, decomposition, transform=axis.transAxes, va="top")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_xlabel("score")
        axis.set_ylabel("recalibrated probability (PAV)")

    return draw((5.2, 4.0), paint, {"left": 0.14, "right": 0.97, "bottom": 0.12, "top": 0.97})


def cohort_chart(audit: Audit) -> str:
    """ECE per scoring month with its credible interval and the tolerance line."""
    cohorts = [c for c in audit.cohorts if c.median is not None]
    colours = [
        {"calibrated": "#15803d", "miscalibrated": ACCENT}.get(c.verdict, MUTED) for c in cohorts
    ]

    def paint(figure: Figure) -> None:
        axis = figure.subplots()
        if cohorts:
            x = np.arange(len(cohorts))
            median = np.array([c.median for c in cohorts])
            below = median - np.array([c.lower for c in cohorts])
            above = np.array([c.upper for c in cohorts]) - median
            axis.errorbar(x, median, yerr=[below, above], fmt="none", ecolor=MUTED)
            axis.scatter(x, median, c=colours, zorder=3)
            axis.set_xticks(x, [c.month for c in cohorts], rotation=60, ha="right")
        axis.axhline(audit.charts.ece_limit, color=INK, linestyle=":", linewidth=1)
        axis.set_ylabel("ECE (posterior median)")
        axis.set_ylim(bottom=0)

    return draw((7.0, 3.0), paint, {"left": 0.1, "right": 0.98, "bottom": 0.27, "top": 0.96})


def decision_charts(audit: Audit) -> str:
    """Risk–coverage (acting on the top-scored leads first) and the net-benefit decision curve."""
    decisions = audit.decisions
    assert decisions is not None

    def paint(figure: Figure) -> None:
        left, right = figure.subplots(1, 2)
        curve = decisions.risk_coverage
        left.step(curve.coverage, curve.risk, where="post", color=INK, linewidth=1.5)
        certified = decisions.threshold.threshold
        covered = audit.charts.certified_coverage
        if certified is not None and covered is not None:
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

    return draw((9.0, 3.4), paint, {"left": 0.07, "right": 0.98, "bottom": 0.15, "top": 0.96,
                                    "wspace": 0.25})  # fmt: skip


def funnel_plot(rates: SegmentRates, limits: FunnelLimits) -> str:
    """Raw segment rates against size with 95% and 99.8% limits around the reference."""
    from matplotlib.ticker import NullFormatter, StrMethodFormatter

    def paint(figure: Figure) -> None:
        axis = figure.subplots()
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
        # Plain numbers (1,000), not the log axis' default mathtext (10³): clearer, and
        # typesetting mathtext is most of this chart's drawing time.
        axis.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        axis.xaxis.set_minor_formatter(NullFormatter())
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

    return draw((7.0, 3.6), paint)


def ece_interval_plot(comparison: Comparison) -> str:
    """ECE per scorer on the common leads with its credible interval."""
    summaries = comparison.common

    def paint(figure: Figure) -> None:
        axis = figure.subplots()
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

    return draw((6.0, 0.5 + 0.45 * len(summaries)), paint)


def _dates(chart: MonitorChart) -> np.ndarray:
    """Return the maturity dates of the leads (the x axis of the monitor's charts)."""
    return chart.times_us.astype("datetime64[us]")


def evidence_meter(summary: MonitorSummary) -> str:
    """Draw the audit e-value (log scale) over maturity time with the 1/α alarm line.

    With the drift detector D and its threshold.
    """
    chart, config = summary.chart, summary.monitor.config

    def paint(figure: Figure) -> None:
        axis = figure.subplots()
        when = _dates(chart)
        axis.plot(when, chart.log10_e, color=INK, linewidth=1.2, label="audit E")
        axis.plot(when, chart.log10_drift, color=MUTED, linewidth=0.8, label="drift D")
        alarm, drift = 1 / config.alpha, config.drift_threshold
        axis.axhline(np.log10(alarm), color=ACCENT, linestyle="--", linewidth=1,
                     label=f"alarm 1/α = {alarm:.0f}")  # fmt: skip
        axis.axhline(np.log10(drift), color=MUTED, linestyle=":", linewidth=1,
                     label=f"drift alarm {drift:.0f}")  # fmt: skip
        top = max(4.0, float(np.max(chart.log10_e, initial=0.0)))
        axis.set_ylim(-3, min(top, 12.0) + 0.5)
        axis.set_ylabel("log₁₀ evidence")
        axis.legend(frameon=False, fontsize=8, loc="upper left")
        figure.autofmt_xdate()

    return draw((7.0, 3.0), paint, MONITOR_MARGINS)


def cumulative_gap(summary: MonitorSummary) -> str:
    """Draw the cumulative expected minus observed conversions over maturity time.

    Inside the band a calibrated score stays in pointwise.
    """
    chart = summary.chart

    def paint(figure: Figure) -> None:
        axis = figure.subplots()
        when = _dates(chart)
        axis.fill_between(when, -chart.band, chart.band, color=BAND, linewidth=0,
                          label="calibrated ±1.96 sd")  # fmt: skip
        axis.plot(when, chart.gap, color=INK, linewidth=1.2, label="expected − observed")
        axis.axhline(0, color=MUTED, linewidth=0.8)
        axis.set_ylabel("conversions")
        axis.legend(frameon=False, fontsize=8, loc="upper left")
        figure.autofmt_xdate()

    return draw((7.0, 3.0), paint, MONITOR_MARGINS)
