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

Layout: legends and notes sit outside the plotting area (above the axes, or in the title), so
only data is drawn over it; each chart is cropped to what it draws (``bbox_inches="tight"``),
whatever the length of its text.

Units, the same as the tables': rates, probabilities and scores in percent (``20%``), the
calibration error in percentage points (``pts``), counts with thousands separators, months and
days as in :mod:`assay.report.formatting` (``Jan 2010``, ``5 Jan 2010``).

Size: a long series (the monitor's one point per lead, a risk–coverage curve with one point per
distinct score) is drawn from at most :data:`MAX_DRAWN_POINTS` of its points
(:func:`downsample_envelope`, which keeps every bucket's extremes), and path coordinates are
written to 0.01 pt, so a chart stays small whatever the number of leads.

Stored text (scorer names, segment labels) is drawn through
:func:`assay.report.safe_text.plot_text`, never as mathtext.
"""

from __future__ import annotations

import io
import re
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from assay.report.formatting import count, month, pct, utc_date
from assay.report.safe_text import plot_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

    from assay.audit.charts import ReliabilitySeries, StepSeries
    from assay.audit.monitor import MonitorSummary
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
    "axes.titlesize": 8,
    "axes.titlelocation": "left",
    "legend.fontsize": 8,
    "legend.frameon": False,
}
INK, ACCENT, MUTED, BAND, GOOD = "#1f2933", "#c2410c", "#9aa5b1", "#fbd5c0", "#15803d"
#: A curve known in a simulation: its score grid and the true probability there.
TrueCurve = tuple[np.ndarray, np.ndarray]
#: Most points a long series is drawn from (:func:`downsample_envelope`).
MAX_DRAWN_POINTS = 1000
#: Most date ticks on a monitor's chart.
DATE_TICKS = 7
#: The funnel plot names its segments outside the 95% limits and this many of the largest.
FUNNEL_LARGEST = 6
#: Where a segment's label may sit around its point (offset in points, alignment), in order.
_LABEL_PLACES = (
    ((4, 3), "left", "bottom"),
    ((4, -3), "left", "top"),
    ((-4, 3), "right", "bottom"),
    ((-4, -3), "right", "top"),
)
#: The cohort chart's colour per verdict, in the legend's order.
_VERDICT_COLOURS = {"calibrated": GOOD, "miscalibrated": ACCENT, "not yet": MUTED}
_COORDINATE = re.compile(r"-?\d+\.\d+")
_PATH_DATA = re.compile(r' d="([^"]*)"')
_MINUS = "\N{MINUS SIGN}"

_DRAWING = threading.Lock()


def downsample_envelope(
    x: np.ndarray, *ys: np.ndarray, max_points: int = MAX_DRAWN_POINTS
) -> tuple[np.ndarray, ...]:
    """Return ``(x, *ys)`` at no more than ``max_points`` of their points, keeping the shape.

    The points are cut into buckets of consecutive points; from each bucket the first, the
    last and, for every series in ``ys``, the point of its minimum and of its maximum are kept,
    in their order (a min–max envelope: a spike of one point is never lost). The kept points
    are a subsequence, so a monotone ``x`` stays monotone; a series of at most ``max_points``
    points is returned as it is. For drawing only: the series computed are not changed.

    Parameters
    ----------
    x : ndarray
        The abscissae, one per point.
    *ys : ndarray
        Series of the same length as ``x``.
    max_points : int
        Most points returned; at least 2 + 2 · len(ys).

    Returns
    -------
    tuple of ndarray
        ``x`` and each of ``ys`` at the kept points.
    """
    n = len(x)
    if n <= max_points:
        return (x, *ys)
    buckets = max_points // (2 + 2 * len(ys))
    if buckets < 1:
        raise ValueError(f"max_points must be at least {2 + 2 * len(ys)}, not {max_points}")
    size = -(-n // buckets)
    starts = np.arange(0, n, size)
    keep = np.zeros(n, dtype=bool)
    keep[starts] = True
    keep[np.minimum(starts + size, n) - 1] = True
    for y in ys:
        # Padding repeats the last point, so an extreme found in the padding is the last point.
        rows = np.pad(np.asarray(y), (0, len(starts) * size - n), mode="edge").reshape(-1, size)
        for extreme in (rows.argmin(axis=1), rows.argmax(axis=1)):
            keep[np.minimum(starts + extreme, n - 1)] = True
    return (x[keep], *(np.asarray(y)[keep] for y in ys))


def _round_coordinates(match: re.Match[str]) -> str:
    value = f"{float(match[0]):.2f}".rstrip("0").rstrip(".")
    return "0" if value == "-0" else value


def to_svg(figure: Figure) -> str:
    """Return the figure, cropped to what it draws, as an SVG string ready to inline.

    Without the XML prolog, metadata or namespace declarations; path coordinates to 0.01 pt.
    """
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # Inline SVG in HTML needs neither the RDF metadata block nor namespace declarations;
    # dropping them leaves the report without a single URL, not even an inert one.
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text, count=0)
    return _PATH_DATA.sub(lambda m: f' d="{_COORDINATE.sub(_round_coordinates, m[1])}"', text)


def draw(size: tuple[float, float], paint: Callable[[Figure], None]) -> str:
    """Draw a new figure of ``size`` inches, painted by ``paint``, as inline SVG.

    The figure has its own SVG canvas and is painted under :data:`STYLE`, then cropped to what
    it draws (module docstring).
    """
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with _DRAWING, matplotlib.rc_context(STYLE):
        # At the SVG backend's 72 dpi from the start, so what paint measures is what is drawn.
        figure = Figure(figsize=size, dpi=72)
        FigureCanvasSVG(figure)
        paint(figure)
        return to_svg(figure)


def _signed(label: str) -> str:
    """Write a tick label's minus as the typographic minus sign, as matplotlib does."""
    return label.replace("-", _MINUS)


def _hundredfold(value: float) -> float:
    """Return 100 · ``value`` without a tick's rounding noise (``5.5e-15`` is ``0``, not ``-0``)."""
    return round(100 * value, 6) + 0.0


def _legend_above(axis: Axes, ncols: int, **options: Any) -> None:
    """Put the axes' legend above them, left-aligned: outside the plotting area."""
    axis.legend(loc="lower left", bbox_to_anchor=(0.0, 1.02), ncols=ncols, borderaxespad=0.0,
                alignment="left", **options)  # fmt: skip


def _percent(*axes: Axis) -> None:
    """Label rates, probabilities and scores in percent, no more decimals than a tick has.

    ``20%``, ``2.5%``; a :class:`~matplotlib.ticker.PercentFormatter` would write every tick
    of an axis with the same decimals (``20.0%``).
    """
    from matplotlib.ticker import FuncFormatter

    for axis in axes:
        axis.set_major_formatter(
            FuncFormatter(lambda value, _: _signed(f"{_hundredfold(value):g}%"))
        )


def _counts(axis: Axis) -> None:
    """Label counts with thousands separators (``1,000``), at whole numbers on a linear axis."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if axis.get_scale() == "linear":
        axis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))
    axis.set_major_formatter(FuncFormatter(lambda value, _: _signed(count(round(value)))))


def _points(axis: Axis) -> None:
    """Label a calibration error (a difference of rates) in percentage points (``2 pts``)."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(
        FuncFormatter(lambda value, _: _signed(f"{_hundredfold(value):g} pts"))
    )


def reliability_diagram(series: ReliabilitySeries, true_curve: TrueCurve | None = None) -> str:
    """Draw the observed rate against the mean score per bin, with its band.

    With the diagonal and the score histogram; ``true_curve`` (known in simulations) is drawn
    too.
    """

    def paint(figure: Figure) -> None:
        top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
        figure.subplots_adjust(hspace=0.08)
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
        _percent(top.xaxis, top.yaxis)
        _legend_above(top, 2)  # after every labelled artist
        edges = np.linspace(0.0, limit, len(series.histogram) + 1)
        bottom.stairs(series.histogram, edges, fill=True, color=MUTED)
        bottom.set_xlabel("score (promised probability)")
        bottom.set_ylabel("leads")
        _counts(bottom.yaxis)

    return draw((5.2, 5.0), paint)


def corp_diagram(curve: StepSeries, decomposition: str) -> str:
    """Draw the CORP reliability curve with the score decomposition as its title.

    The curve is the PAV-recalibrated probability against the score.
    """

    def paint(figure: Figure) -> None:
        axis = figure.subplots()
        axis.plot([0, 1], [0, 1], color=MUTED, linestyle="--", linewidth=1)
        axis.step(curve.x, curve.y, where="post", color=INK, linewidth=1.5)
        axis.set_title(decomposition)
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        _percent(axis.xaxis, axis.yaxis)
        axis.set_xlabel("score")
        axis.set_ylabel("recalibrated probability (PAV)")

    return draw((5.2, 4.0), paint)


def cohort_chart(audit: Audit) -> str | None:
    """ECE per scoring month with its credible interval and the tolerance line.

    None when no month has a posterior: there is nothing to draw.
    """
    cohorts = [c for c in audit.cohorts if c.median is not None]
    if not cohorts:
        return None
    limit = audit.charts.ece_limit

    def paint(figure: Figure) -> None:
        axis = figure.subplots()
        x = np.arange(len(cohorts))
        median = np.array([c.median for c in cohorts])
        below = median - np.array([c.lower for c in cohorts])
        above = np.array([c.upper for c in cohorts]) - median
        axis.errorbar(x, median, yerr=[below, above], fmt="none", ecolor=MUTED)
        verdicts = np.array([c.verdict for c in cohorts])
        for verdict in dict.fromkeys([*_VERDICT_COLOURS, *verdicts]):  # legend order, any other
            mine = verdicts == verdict
            if mine.any():
                axis.scatter(x[mine], median[mine], color=_VERDICT_COLOURS.get(verdict, MUTED),
                             zorder=3, label=verdict)  # fmt: skip
        axis.axhline(limit, color=INK, linestyle=":", linewidth=1,
                     label=f"tolerated ECE {100 * limit:.1f} pts")  # fmt: skip
        axis.set_xticks(x, [month(c.month) for c in cohorts], rotation=60, ha="right")
        axis.set_ylabel("calibration error, ECE\n(posterior median, interval)")
        axis.set_ylim(bottom=0)
        _points(axis.yaxis)
        _legend_above(axis, 2)

    return draw((7.0, 3.0), paint)


def decision_charts(audit: Audit) -> str:
    """Risk–coverage (acting on the top-scored leads first) and the net-benefit decision curve."""
    decisions = audit.decisions
    assert decisions is not None

    def paint(figure: Figure) -> None:
        left, right = figure.subplots(1, 2)
        figure.subplots_adjust(wspace=0.45)
        curve = decisions.risk_coverage
        coverage, risk = downsample_envelope(curve.coverage, curve.risk)
        left.step(coverage, risk, where="post", color=INK, linewidth=1.5)
        left.axhline(1 - decisions.threshold.target_precision, color=MUTED, linestyle=":",
                     label="risk the target precision allows")  # fmt: skip
        certified = decisions.threshold.threshold
        covered = audit.charts.certified_coverage
        if certified is not None and covered is not None:
            left.axvline(covered, color=ACCENT, linestyle="--", linewidth=1,
                         label=f"certified threshold: score ≥ {pct(certified)}")  # fmt: skip
        left.set_xlabel("coverage (share of leads acted on, best first)")
        left.set_ylabel("risk (share not converting)")
        left.set_xlim(0, 1)
        left.set_ylim(0, 1)
        _percent(left.xaxis, left.yaxis)
        _legend_above(left, 1)
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
        right.set_ylabel("net benefit (share of leads)")
        _percent(right.xaxis, right.yaxis)
        _legend_above(right, 3)

    return draw((9.0, 3.4), paint)


def _inside(box: Bbox, frame: Bbox) -> bool:
    across = frame.x0 <= box.x0 <= box.x1 <= frame.x1
    return bool(across and frame.y0 <= box.y0 <= box.y1 <= frame.y1)


def _label_segments(axis: Axes, rates: SegmentRates, limits: FunnelLimits) -> None:
    """Name the segments worth a name, none over another name or point, all inside the axes.

    Worth a name: outside the 95% limits (farthest first), then the :data:`FUNNEL_LARGEST`
    largest. A name goes at the first place around its point (:data:`_LABEL_PLACES`) where it
    overlaps nothing already there; with no such place it is left out (the table lists every
    segment).
    """
    rows = rates.rows
    sizes = np.array([r.n for r in rows], dtype=np.float64)
    raw = np.array([r.raw_rate for r in rows])
    # How far past the 95% limits drawn at its size each point lies (≤ 0: inside).
    past = np.maximum(
        raw - np.interp(sizes, limits.n, limits.upper_95),
        np.interp(sizes, limits.n, limits.lower_95) - raw,
    )
    outside = [i for i in np.argsort(-past, kind="stable") if past[i] > 0]
    largest = np.argsort(-sizes, kind="stable")[:FUNNEL_LARGEST]
    wanted = list(dict.fromkeys([*outside, *largest]))
    from matplotlib.transforms import Bbox

    # Fix the limits autoscaling would set at drawing time, so positions measured now hold.
    axis.set(xlim=axis.get_xlim(), ylim=axis.get_ylim())
    frame = axis.get_window_extent()
    centres = axis.transData.transform(np.column_stack([sizes, raw]))
    radius = 3.0 * axis.figure.dpi / 72  # a marker's half width (2.1 pt) and a margin
    taken = [Bbox.from_bounds(cx - radius, cy - radius, 2 * radius, 2 * radius)
             for cx, cy in centres]  # fmt: skip
    for i in wanted:
        for offset, ha, va in _LABEL_PLACES:
            label = axis.annotate(plot_text(rows[i].segment), (sizes[i], raw[i]), xytext=offset,
                                  textcoords="offset points", ha=ha, va=va, fontsize=7)  # fmt: skip
            box = label.get_window_extent()
            if _inside(box, frame) and not any(box.overlaps(other) for other in taken):
                taken.append(box)
                break
            label.remove()


def funnel_plot(rates: SegmentRates, limits: FunnelLimits) -> str:
    """Raw segment rates against size with 95% and 99.8% limits around the reference."""
    from matplotlib.ticker import NullFormatter

    def paint(figure: Figure) -> None:
        axis = figure.subplots()
        sizes = [r.n for r in rates.rows]
        axis.scatter(sizes, [r.raw_rate for r in rates.rows], color=ACCENT, zorder=3, s=18,
                     label="segment (raw rate)")  # fmt: skip
        axis.axhline(rates.reference, color=INK, linewidth=0.8,
                     label=f"reference {pct(rates.reference)}")  # fmt: skip
        axis.plot(
            limits.n, limits.lower_95, color=MUTED, linestyle="--", linewidth=1, label="95% limits"
        )
        axis.plot(limits.n, limits.upper_95, color=MUTED, linestyle="--", linewidth=1)
        axis.plot(
            limits.n, limits.lower_998, color=INK, linestyle=":", linewidth=1, label="99.8% limits"
        )
        axis.plot(limits.n, limits.upper_998, color=INK, linestyle=":", linewidth=1)
        axis.set_xscale("log")
        # Plain numbers (1,000), not the log axis' default mathtext (10³): clearer, and
        # typesetting mathtext is most of this chart's drawing time.
        _counts(axis.xaxis)
        axis.xaxis.set_minor_formatter(NullFormatter())
        _percent(axis.yaxis)
        axis.set_xlabel("leads in segment (log scale)")
        axis.set_ylabel("raw conversion rate")
        note = (
            f"limits widened for over-dispersion (φ = {limits.overdispersion:.1f})"
            if limits.adjusted
            else None
        )
        _legend_above(axis, 4, title=note)
        _label_segments(axis, rates, limits)

    return draw((7.0, 3.6), paint)


def ece_interval_plot(comparison: Comparison) -> str:
    """ECE per scorer on the common leads with its credible interval."""
    summaries = comparison.common
    height = 0.15 + 0.4 * len(summaries) + 0.6  # inches: margin, a row per scorer, the x axis

    def paint(figure: Figure) -> None:
        axis = figure.subplots()
        figure.subplots_adjust(bottom=0.6 / height, top=1 - 0.15 / height)
        y = np.arange(len(summaries))
        ece = np.array([s.ece for s in summaries])
        lower = np.array([s.ece if s.ece_lower is None else s.ece_lower for s in summaries])
        upper = np.array([s.ece if s.ece_upper is None else s.ece_upper for s in summaries])
        axis.errorbar(ece, y, xerr=[np.maximum(ece - lower, 0), np.maximum(upper - ece, 0)],
                      fmt="o", color=ACCENT, ecolor=MUTED, capsize=3)  # fmt: skip
        axis.set_yticks(y, [plot_text(s.scorer) for s in summaries])
        axis.set_xlabel(
            f"calibration error (ECE) on {count(comparison.n_common)} common leads "
            f"({comparison.credibility:.0%} interval)"
        )
        axis.set_xlim(left=0)
        _points(axis.xaxis)

    return draw((6.0, height), paint)


def _e_value_tick(log10: float, _: object) -> str:
    """Label a power of ten of the evidence: ``0.01``, ``1``, ``1,000``, ``10⁵``."""
    if log10 != round(log10):
        return ""
    if 0 <= log10 <= 3:
        return count(10**log10)
    if log10 < 0:
        return f"{10**log10:g}"
    return "10" + str(round(log10)).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _date_ticks(first_us: int, last_us: int) -> tuple[np.ndarray, list[str]]:
    """Return ticks (µs since the epoch) and labels for maturity dates from first to last.

    The month starts inside the span (``Jan 2010``), at most :data:`DATE_TICKS` of them at a
    fixed stride; within a span of fewer than three month starts, the days (``5 Jan 2010``);
    within a day, that day.
    """
    first, last = np.datetime64(first_us, "us"), np.datetime64(last_us, "us")
    months = np.arange(first.astype("datetime64[M]") + 1, last.astype("datetime64[M]") + 1)
    if len(months) >= 3:
        ticks = months[:: -(-len(months) // DATE_TICKS)]
        labels = [month(str(start)) for start in ticks]
    else:
        days = np.arange(first.astype("datetime64[D]") + 1, last.astype("datetime64[D]") + 1)
        ticks = days[:: -(-len(days) // DATE_TICKS)] if len(days) else np.array([first])
        labels = [utc_date(str(day.astype("datetime64[D]"))) for day in ticks]
    return ticks.astype("datetime64[us]").astype(np.int64), labels


def _maturity_axis(axis: Axes, summary: MonitorSummary) -> None:
    """Label the x axis of a monitor's chart: the leads' maturity.

    Dates when the monitor was fed from the ledger (:func:`_date_ticks`); lead numbers when it
    was fed arrays without times.
    """
    times = summary.chart.times_us
    if not summary.monitor.timed:
        _counts(axis.xaxis)
        axis.set_xlabel("matured leads")
    elif len(times):
        axis.set_xticks(*_date_ticks(int(times[0]), int(times[-1])))
        axis.set_xlabel("maturity date (UTC)")


def evidence_meter(summary: MonitorSummary) -> str:
    """Draw the audit e-value (log scale) over maturity time with the 1/α alarm line.

    With the drift detector D and its threshold.
    """
    chart, config = summary.chart, summary.monitor.config

    def paint(figure: Figure) -> None:
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        axis = figure.subplots()
        x, log10_e, log10_drift = downsample_envelope(
            chart.times_us, chart.log10_e, chart.log10_drift
        )
        _maturity_axis(axis, summary)
        axis.plot(x, log10_e, color=INK, linewidth=1.2, label="audit evidence E")
        axis.plot(x, log10_drift, color=MUTED, linewidth=0.8, label="drift detector D")
        alarm, drift = 1 / config.alpha, config.drift_threshold
        axis.axhline(np.log10(alarm), color=ACCENT, linestyle="--", linewidth=1,
                     label=f"alarm at E = 1/α = {count(alarm)}")  # fmt: skip
        axis.axhline(np.log10(drift), color=MUTED, linestyle=":", linewidth=1,
                     label=f"drift alarm at D = {count(drift)}")  # fmt: skip
        top = max(4.0, float(np.max(chart.log10_e, initial=0.0)))
        axis.set_ylim(-3, min(top, 12.0) + 0.5)
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        axis.yaxis.set_major_formatter(FuncFormatter(_e_value_tick))
        axis.set_ylabel("evidence (log scale)")
        _legend_above(axis, 2)

    return draw((7.0, 3.0), paint)


def cumulative_gap(summary: MonitorSummary) -> str:
    """Draw the cumulative expected minus observed conversions over maturity time.

    Inside the band a calibrated score stays in pointwise.
    """
    chart = summary.chart

    def paint(figure: Figure) -> None:
        axis = figure.subplots()
        x, gap, band = downsample_envelope(chart.times_us, chart.gap, chart.band)
        _maturity_axis(axis, summary)
        axis.fill_between(x, -band, band, color=BAND, linewidth=0,
                          label="where a calibrated score stays (±1.96 sd)")  # fmt: skip
        axis.plot(x, gap, color=INK, linewidth=1.2, label="expected − observed")
        axis.axhline(0, color=MUTED, linewidth=0.8)
        axis.set_ylabel("conversions")
        _counts(axis.yaxis)
        _legend_above(axis, 2)

    return draw((7.0, 3.0), paint)
