"""The report's charts: nothing but data over the plotting area, one unit per quantity, small
SVG whatever the number of leads, long series drawn from their envelope, byte-stable output."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
from tests.conftest import FastPosteriorSettings, beta_scores

import assay.stats.calibration
from assay.audit.charts import funnel_limits
from assay.audit.monitor import Monitor, MonitorSummary, monitor_chart, monthly_rows
from assay.audit.scorer import AuditConfig, audit_arrays
from assay.report import plots
from assay.report.plots import MAX_DRAWN_POINTS, downsample_envelope
from assay.stats.compare import compare_arrays
from assay.stats.segments import segment_rates

LIMIT_BYTES = 150_000
DAY_US = 86_400_000_000
START_US = 1_262_304_000_000_000  # 2010-01-01
PERCENT = r"^−?\d+(\.\d+)?%$"
POINTS = r"^\d+(\.\d+)? pts$"
COUNT = r"^−?\d{1,3}(,\d{3})*$"
MONTH = r"^[A-Z][a-z]{2} \d{4}$"
HOSTILE = "$\\alpha$ vendor \u202e with a very long name that keeps going and going"


def _monitor(n: int, seed: int, days: int = 365) -> MonitorSummary:
    """A monitor fed ``n`` leads maturing over ``days``; the second half over-promises."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < np.where(np.arange(n) < n // 2, p, 0.6 * p)).astype(np.int64)
    times = START_US + np.sort(rng.integers(0, days * DAY_US, n))
    monitor = Monitor(scorer="sim")
    path = monitor.update_arrays(y, p, times_us=times)
    return MonitorSummary(monitor, path, monthly_rows(path), monitor_chart(path))


def _audit(n: int, seed: int):  # type: ignore[no-untyped-def]
    """An over-promising audit over 8 scoring months with a target precision of 50%."""
    y, p = beta_scores(n, seed, exponent=1.3)
    months = np.datetime64("2024-01-01") + np.sort(np.random.default_rng(seed).integers(0, 240, n))
    return audit_arrays(y, p, scored_at=months, config=AuditConfig(target_precision=0.5))


@pytest.fixture(scope="module")
def inputs():  # type: ignore[no-untyped-def]
    """Everything each chart draws, small: an audit, segments, a comparison and a monitor."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assay.stats.calibration, "PosteriorSettings", FastPosteriorSettings)
        audit = _audit(4000, seed=3)
        rng = np.random.default_rng(5)
        sizes = rng.integers(40, 400, 25)
        rates = rng.uniform(0.2, 0.3, 25)
        rates[7] = 0.9  # one segment far outside the limits
        y = np.concatenate([rng.random(n) < r for n, r in zip(sizes, rates, strict=True)])
        labels = np.repeat([f"segment {i:02d}" for i in range(25)], sizes)
        segments = segment_rates(y.astype(np.int64), labels)
        y2, p2 = beta_scores(1500, seed=9)
        comparison = compare_arrays(y2, {"plain": p2, HOSTILE: np.minimum(1.4 * p2, 1)})
    grid = np.linspace(0, 1, 51)
    return SimpleNamespace(
        audit=audit,
        segments=segments,
        funnel=funnel_limits(segments),
        comparison=comparison,
        monitor=_monitor(5000, seed=4),
        truth=(grid, grid),
    )


CHARTS = {
    "reliability": lambda d: plots.reliability_diagram(d.audit.charts.reliability, d.truth),
    "corp": lambda d: plots.corp_diagram(
        d.audit.charts.corp, "Brier 0.1 = MCB 0 − DSC 0 + UNC 0.1"
    ),
    "cohorts": lambda d: plots.cohort_chart(d.audit),
    "decisions": lambda d: plots.decision_charts(d.audit),
    "funnel": lambda d: plots.funnel_plot(d.segments, d.funnel),
    "interval": lambda d: plots.ece_interval_plot(d.comparison),
    "meter": lambda d: plots.evidence_meter(d.monitor),
    "gap": lambda d: plots.cumulative_gap(d.monitor),
}
#: Per chart: (axes number, "x" or "y", what every tick label there looks like).
TICKS = {
    "reliability": [(0, "y", PERCENT), (1, "x", PERCENT), (1, "y", COUNT)],
    "corp": [(0, "x", PERCENT), (0, "y", PERCENT)],
    "cohorts": [(0, "x", MONTH), (0, "y", POINTS)],
    "decisions": [(0, "x", PERCENT), (0, "y", PERCENT), (1, "x", PERCENT), (1, "y", PERCENT)],
    "funnel": [(0, "x", COUNT), (0, "y", PERCENT)],
    "interval": [(0, "x", POINTS)],
    "meter": [(0, "x", MONTH)],
    "gap": [(0, "x", MONTH), (0, "y", COUNT)],
}


@pytest.fixture
def drawn(monkeypatch):  # type: ignore[no-untyped-def]
    """The figures the charts draw, kept as they are written out."""
    figures = []
    written = plots.to_svg

    def keep(figure):  # type: ignore[no-untyped-def]
        figures.append(figure)
        return written(figure)

    monkeypatch.setattr(plots, "to_svg", keep)
    return figures


def _shared_area(a, b) -> float:  # type: ignore[no-untyped-def]
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def _tick_labels(axis, which: str) -> list[str]:  # type: ignore[no-untyped-def]
    labels = axis.get_xticklabels() if which == "x" else axis.get_yticklabels()
    return [t.get_text() for t in labels if t.get_visible() and t.get_text()]


def _words(figure):  # type: ignore[no-untyped-def]
    """Every visible text that is not a data label: titles, axis and tick labels, legends."""
    from matplotlib.text import Annotation, Text

    for axis in figure.axes:
        texts = [t for t in axis.get_children() if isinstance(t, Text)]  # titles, notes
        texts = [t for t in texts if not isinstance(t, Annotation)]
        texts += [axis.xaxis.label, axis.yaxis.label, *axis.get_xticklabels()]
        texts += axis.get_yticklabels()
        legend = axis.get_legend()
        if legend is not None:
            texts += [*legend.get_texts(), legend.get_title()]
        yield from (t for t in texts if t.get_visible() and t.get_text())


@pytest.mark.parametrize("name", list(CHARTS))
def test_nothing_but_data_over_the_plotting_area(name, inputs, drawn):
    svg = CHARTS[name](inputs)
    (figure,) = drawn
    frames = [axis.get_window_extent() for axis in figure.axes]
    legends = [axis.get_legend() for axis in figure.axes if axis.get_legend() is not None]
    boxes = [legend.get_window_extent() for legend in legends]
    boxes += [text.get_window_extent() for text in _words(figure)]
    assert len(boxes) > 4
    for box in boxes:
        for frame in frames:
            assert _shared_area(box, frame) == 0, (name, box, frame)
    for i, a in enumerate(boxes[: len(legends)]):
        assert all(_shared_area(a, b) == 0 for b in boxes[i + 1 : len(legends)])
    if legends:  # the ids the page's browser test finds the legend and the axes by
        assert 'id="legend_1"' in svg and 'id="axes_1"' in svg and 'id="patch_2"' in svg


@pytest.mark.parametrize("name", list(CHARTS))
def test_one_unit_per_quantity_on_the_axes(name, inputs, drawn):
    CHARTS[name](inputs)
    (figure,) = drawn
    for number, which, pattern in TICKS[name]:
        labels = _tick_labels(figure.axes[number], which)
        assert len(labels) >= 2, (name, number, which)
        assert all(re.match(pattern, label) for label in labels), (name, which, labels)


def test_evidence_axis_writes_e_values_for_people(inputs, drawn):
    plots.evidence_meter(inputs.monitor)
    labels = _tick_labels(drawn[0].axes[0], "y")
    assert {"0.01", "1", "100", "10⁴"} <= set(labels), labels


def test_funnel_names_the_segments_worth_it_without_overlap(inputs, drawn):
    from matplotlib.text import Annotation

    plots.funnel_plot(inputs.segments, inputs.funnel)
    axis = drawn[0].axes[0]
    names = [t for t in axis.texts if isinstance(t, Annotation)]
    rows = inputs.segments.rows
    largest = {r.segment for r in sorted(rows, key=lambda r: -r.n)[: plots.FUNNEL_LARGEST]}
    upper = np.interp([r.n for r in rows], inputs.funnel.n, inputs.funnel.upper_95)
    lower = np.interp([r.n for r in rows], inputs.funnel.n, inputs.funnel.lower_95)
    outside = {r.segment for r, lo, hi in zip(rows, lower, upper, strict=True)
               if not lo <= r.raw_rate <= hi}  # fmt: skip
    shown = {t.get_text() for t in names}
    assert "segment 07" in outside and "segment 07" in shown
    assert shown <= outside | largest and len(shown) < len(rows)
    frame = axis.get_window_extent()
    boxes = [t.get_window_extent() for t in names]
    for i, box in enumerate(boxes):
        assert _shared_area(box, frame) == pytest.approx(box.width * box.height)
        assert all(_shared_area(box, other) == 0 for other in boxes[i + 1 :])


def test_downsample_envelope_keeps_every_extreme_in_order():
    rng = np.random.default_rng(0)
    n = 100_003
    x = np.cumsum(rng.integers(1, 5, n))
    walk, noise = np.cumsum(rng.normal(size=n)), rng.normal(size=n)
    walk[31_337], noise[77_777] = 1e6, -1e6  # an alarm spike of one point, each way
    kept_x, kept_walk, kept_noise = downsample_envelope(x, walk, noise)
    assert len(kept_x) <= MAX_DRAWN_POINTS
    assert np.all(np.diff(kept_x) > 0)
    at = np.searchsorted(x, kept_x)  # a subsequence of the points, each whole
    assert np.array_equal(x[at], kept_x)
    assert np.array_equal(walk[at], kept_walk) and np.array_equal(noise[at], kept_noise)
    assert at[0] == 0 and at[-1] == n - 1
    assert {31_337, 77_777} <= set(at)
    for whole, kept in ((walk, kept_walk), (noise, kept_noise)):
        assert kept.max() == whole.max() and kept.min() == whole.min()
    # Every bucket's extremes: the envelope of any stretch between kept points matches.
    bucket = -(-n // (MAX_DRAWN_POINTS // 6))
    for start in range(0, n, bucket):
        inside = (at >= start) & (at < start + bucket)
        assert kept_walk[inside].max() == walk[start : start + bucket].max()
        assert kept_noise[inside].min() == noise[start : start + bucket].min()


def test_downsample_envelope_leaves_short_series_alone():
    x, y = np.arange(10.0), np.arange(10.0) ** 2
    kept_x, kept_y = downsample_envelope(x, y, max_points=10)
    assert kept_x is x and kept_y is y
    assert len(downsample_envelope(x, y, max_points=4)[0]) <= 4
    with pytest.raises(ValueError, match="at least 4"):
        downsample_envelope(x, y, max_points=3)


def _vertices(svg: str, group: str) -> list[int]:
    """Vertices of each path drawn in the SVG groups whose id starts with ``group``."""
    found = re.findall(rf'<g id="{group}[^"]*">\s*<path d="([^"]*)"', svg)
    return [len(re.findall(r"[ML] ", d)) for d in found]


def test_charts_stay_small_at_a_hundred_thousand_leads():
    n = 100_000
    summary = _monitor(n, seed=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assay.stats.calibration, "PosteriorSettings", FastPosteriorSettings)
        audit = _audit(n, seed=2)
    assert len(audit.decisions.risk_coverage.coverage) > 10 * MAX_DRAWN_POINTS
    charts = {
        "meter": plots.evidence_meter(summary),
        "gap": plots.cumulative_gap(summary),
        "reliability": plots.reliability_diagram(audit.charts.reliability),
        "corp": plots.corp_diagram(audit.charts.corp, "Brier"),
        "cohorts": plots.cohort_chart(audit),
        "decisions": plots.decision_charts(audit),
    }
    for name, svg in charts.items():
        assert svg is not None and len(svg.encode()) < LIMIT_BYTES, name
    for name in ("meter", "gap", "decisions"):
        drawn = _vertices(charts[name], "line2d")
        assert drawn and max(drawn) <= MAX_DRAWN_POINTS, (name, drawn)
    assert len(summary.chart.gap) == n  # drawn from fewer points, computed on all
    for d in re.findall(r' d="([^"]*)"', charts["gap"]):
        assert not re.search(r"\.\d{3}", d)  # coordinates to 0.01 pt


def test_cohort_chart_is_none_when_no_month_has_a_posterior(fast_posterior):
    y, p = beta_scores(300, seed=1)
    months = np.datetime64("2024-01-01") + np.arange(300) // 2  # 5 months of ≤ 62 leads
    audit = audit_arrays(y, p, scored_at=months)
    assert len(audit.cohorts) == 5 and all(c.median is None for c in audit.cohorts)
    assert plots.cohort_chart(audit) is None


def test_month_and_day_ticks_of_the_monitor():
    ticks, labels = plots._date_ticks(START_US, START_US + 400 * DAY_US)
    assert labels[0] == "Feb 2010" and len(labels) <= plots.DATE_TICKS
    assert ticks[0] == START_US + 31 * DAY_US
    ticks, labels = plots._date_ticks(START_US + DAY_US // 2, START_US + 20 * DAY_US)
    assert labels[0] == "2 Jan 2010" and ticks[0] == START_US + DAY_US
    assert plots._date_ticks(START_US + 5, START_US + 9)[1] == ["1 Jan 2010"]


def test_same_inputs_same_bytes_from_any_thread(inputs):
    names = ["funnel", "meter", "reliability", "interval"]
    alone = [CHARTS[name](inputs) for name in names]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda name: CHARTS[name](inputs), names * 2))
    assert together == alone * 2


def test_a_monitor_fed_without_times_counts_leads_on_its_x_axis(drawn):
    y, p = beta_scores(3000, seed=2)
    monitor = Monitor(scorer="sim")
    path = monitor.update_arrays(y, p)
    plots.cumulative_gap(MonitorSummary(monitor, path, [], monitor_chart(path)))
    labels = _tick_labels(drawn[0].axes[0], "x")
    assert len(labels) >= 2 and all(re.match(COUNT, label) for label in labels), labels
    assert "3,000" in labels or "2,500" in labels
