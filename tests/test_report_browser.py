"""The HTML report in real headless Chromium, as a reader opens it, at 1400 px and 400 px wide.

Three reports: the demo (two scorers on real bank-marketing calls, monitors, segments and a
decision target), a thin one (83 resolved leads: "not yet") and the small two-scorer ledger.
For each, and for the demo's comparison page, at both widths (900 px tall): the page never
scrolls sideways, no HTML element lies over a chart's plotting area, no chart legend lies over
a plotting area, the first answer sentence is on the first screen (at 1400 px every answer
is), nothing is requested from outside the file, and the page and its charts stay within their
weights.

The browser starts once for the module and each page is measured once (:func:`seen`); the tests
assert on what was measured.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from tests.conftest import build_small_ledger
from tests.test_report import CHROMIUM, CHROMIUM_FLAGS

from assay.audit.monitor import Monitor
from assay.audit.report import build_report
from assay.audit.scorer import AuditConfig
from assay.demo.build import DemoResult, build_demo
from assay.ledger import Ledger
from assay.report.html import render_html

pytestmark = pytest.mark.integration

AS_OF = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
WIDTHS = (1400, 400)
FOLD = 900
PAGE_LIMIT = 600 * 1024  # the demo page, bytes
CHART_LIMIT = 150 * 1024  # each inline SVG, bytes
REPORTS = ("demo", "thin", "two scorers")

#: Runs in the page: every measurement the tests assert on, in page (document) pixels.
MEASURE = """() => {
  const scroll = [window.scrollX, window.scrollY];
  const box = (e) => { const r = e.getBoundingClientRect();
    return {left: r.left + scroll[0], top: r.top + scroll[1], right: r.right + scroll[0],
            bottom: r.bottom + scroll[1], width: r.width, height: r.height}; };
  const meet = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5
                      && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                      + (e.className && typeof e.className === 'string' ? '.' + e.className : '');
  const plots = [], legends = [], sizes = [];
  document.querySelectorAll('svg').forEach((svg, k) => {
    sizes.push(new TextEncoder().encode(svg.outerHTML).length);
    svg.querySelectorAll('g[id^="axes_"]').forEach((axes) => {
      const background = axes.querySelector(':scope > g[id^="patch_"]:first-child');
      if (background) plots.push({svg, k, axes: axes.id, box: box(background)});
    });
  });
  for (const plot of plots) {
    plot.svg.querySelectorAll('g[id^="legend_"]').forEach((legend) => {
      if (meet(box(legend), plot.box)) {
        legends.push(`chart ${plot.k}: ${legend.id} over ${plot.axes}`);
      }
    });
  }
  const overlaps = [];
  const elements = [...document.body.querySelectorAll('*')]
    .filter((e) => !(e instanceof SVGElement));
  for (const e of elements) {
    // Skip what is not drawn (the inside of a closed <details> is laid out, not painted).
    if (!e.checkVisibility({visibilityProperty: true})) continue;
    const r = box(e);
    if (r.width === 0 || r.height === 0) continue;
    for (const plot of plots) {
      if (!e.contains(plot.svg) && meet(r, plot.box)) {
        overlaps.push(`${name(e)} over chart ${plot.k} ${plot.axes}`);
      }
    }
  }
  const answers = [...document.querySelectorAll('.answer')].map(box);
  const sentence = document.querySelector('.answer .sentence');
  let first = null;
  if (sentence) {
    const r = sentence.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + Math.min(r.height, 20) / 2);
    first = {top: r.top + scroll[1], bottom: r.bottom + scroll[1], text: sentence.innerText,
             uncovered: hit !== null && sentence.contains(hit)};
  }
  return {scrollWidth: document.documentElement.scrollWidth,
          clientWidth: document.documentElement.clientWidth,
          legends, overlaps, sizes, answers, first, charts: plots.length};
}"""


# ---------------------------------------------------------------- the three reports
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """``assay demo``'s pages: built by the demo itself (real data, two scorers)."""
    return build_demo(tmp_path_factory.mktemp("browser") / "assay-demo")


def thin_ledger(path: Path, n: int = 83, pending: int = 9) -> Ledger:
    """One scorer with ``n`` resolved leads over Jan–Mar 2024 and ``pending`` still open."""
    rng = np.random.default_rng(83)
    total = n + pending
    start = np.datetime64("2024-01-01T00:00:00", "us")
    days = np.concatenate([np.sort(rng.uniform(0, 90, n)), rng.uniform(113, 120, pending)])
    scored = start + (days * 86_400e6).astype("timedelta64[us]")
    score = rng.beta(2, 5, total)
    converted = rng.random(total) < score
    ledger = Ledger(path)
    ledger.ingest_predictions(
        pa.table({
            "prediction_id": [f"thin-{i}" for i in range(total)],
            "entity_id": [f"lead-{i}" for i in range(total)],
            "scorer": ["thin"] * total, "model_version": ["m1"] * total,
            "score": np.round(score, 4),
            "scored_at": pa.array(scored, pa.timestamp("us", tz="UTC")),
            "recorded_at": pa.array(scored, pa.timestamp("us", tz="UTC")),
            "horizon_days": pa.array(np.full(total, 14, np.int32)),
            "target_event": ["won"] * total,
        }),
        now=AS_OF,
    )  # fmt: skip
    won = np.flatnonzero(converted[:n])  # the pending leads have not converted yet
    occurred = scored[won] + (rng.uniform(0, 10, len(won)) * 86_400e6).astype("timedelta64[us]")
    ledger.ingest_outcomes(
        pa.table({
            "entity_id": [f"lead-{i}" for i in won], "event": ["won"] * len(won),
            "occurred_at": pa.array(occurred, pa.timestamp("us", tz="UTC")),
            "recorded_at": pa.array(occurred, pa.timestamp("us", tz="UTC")),
        }),
        now=AS_OF,
    )  # fmt: skip
    return ledger


@pytest.fixture(scope="module")
def thin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """83 resolved leads, a decision target and a monitor: every section says "not yet"."""
    directory = tmp_path_factory.mktemp("thin")
    with thin_ledger(directory / "thin.duckdb") as ledger:
        report = build_report(
            ledger, as_of=AS_OF, config=AuditConfig(target_precision=0.5),
            monitors=[Monitor(scorer="thin")],
        )  # fmt: skip
    (audit,) = report.audits
    assert (audit.counts.resolved, audit.verdict) == (83, "not yet")
    page = directory / "report.html"
    page.write_text(render_html(report))
    return page


@pytest.fixture(scope="module")
def two_scorers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small ledger: "alpha" calibrated, "beta" over-promising, compared."""
    directory = tmp_path_factory.mktemp("two")
    with build_small_ledger(directory / "small.duckdb") as ledger:
        report = build_report(ledger, as_of=AS_OF, config=AuditConfig(target_precision=0.3))
    assert report.comparison is not None and len(report.answers) == 2
    page = directory / "report.html"
    page.write_text(render_html(report))
    return page


# ---------------------------------------------------------------- one browser, each page once
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def seen(browser: Any, request: pytest.FixtureRequest) -> Callable[[str, int], dict[str, Any]]:
    """Open a report at a width (once) and return what :data:`MEASURE` found, plus the
    requests that left the file, the errors and the page's size."""
    pages: dict[str, Callable[[], Path]] = {
        "demo": lambda: request.getfixturevalue("demo").html,
        "demo comparison": lambda: request.getfixturevalue("demo").compare_html,
        "thin": lambda: request.getfixturevalue("thin"),
        "two scorers": lambda: request.getfixturevalue("two_scorers"),
    }
    measured: dict[tuple[str, int], dict[str, Any]] = {}

    def look(report: str, width: int) -> dict[str, Any]:
        if (report, width) not in measured:
            path = pages[report]()
            page = browser.new_page(viewport={"width": width, "height": FOLD})
            outside: list[str] = []
            errors: list[str] = []
            page.on(
                "request",
                lambda r: None if r.url.startswith(("file://", "data:")) else outside.append(r.url),
            )
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            found = page.evaluate(MEASURE)
            sentence = page.locator(".answer .sentence")
            found["visible"] = sentence.count() > 0 and sentence.first.is_visible()
            page.close()
            found.update(outside=outside, errors=errors, bytes=path.stat().st_size)
            measured[report, width] = found
        return measured[report, width]

    return look


CASES = [pytest.param(r, w, id=f"{r}-{w}px") for r in REPORTS for w in WIDTHS]
#: The reports and the demo's comparison page (which has no answers).
PAGES = [*CASES, *(pytest.param("demo comparison", w, id=f"comparison-{w}px") for w in WIDTHS)]


# ---------------------------------------------------------------- what a reader sees
@pytest.mark.parametrize(("report", "width"), PAGES)
def test_the_page_never_scrolls_sideways(seen, report, width):
    found = seen(report, width)
    assert found["scrollWidth"] <= found["clientWidth"] == width


@pytest.mark.parametrize(("report", "width"), PAGES)
def test_nothing_lies_over_a_plotting_area(seen, report, width):
    found = seen(report, width)
    assert found["charts"] > 0  # the check looked at plotting areas
    assert found["overlaps"] == []
    assert found["legends"] == []


@pytest.mark.parametrize(("report", "width"), CASES)
def test_the_answer_is_on_the_first_screen(seen, report, width):
    found = seen(report, width)
    first = found["first"]
    assert first is not None and found["visible"] and first["uncovered"]
    assert first["top"] < FOLD and first["text"].strip()
    if width == 1400:  # every scorer's answer, whole, above the fold
        assert found["answers"] and all(box["bottom"] <= FOLD for box in found["answers"])


@pytest.mark.parametrize(("report", "width"), PAGES)
def test_nothing_is_requested_from_outside_the_file(seen, report, width):
    found = seen(report, width)
    assert found["outside"] == []
    assert found["errors"] == []


@pytest.mark.parametrize("report", [*REPORTS, "demo comparison"])
def test_page_and_chart_weights(seen, report):
    found = seen(report, WIDTHS[0])
    assert found["sizes"] and max(found["sizes"]) <= CHART_LIMIT, found["sizes"]
    if report == "demo":
        assert found["bytes"] <= PAGE_LIMIT


#: Runs in a page: plants a box over a plotting area, a legend over it, and a line too wide.
PLANT = """() => {
  const svg = [...document.querySelectorAll('svg')]
    .find((s) => s.querySelector('g[id^="legend_"]'));
  const area = svg.querySelector('g[id^="axes_"] > g[id^="patch_"]:first-child')
    .getBoundingClientRect();
  const cover = document.createElement('div');
  cover.style.cssText = `position: absolute; left: ${area.left + window.scrollX + 10}px; `
    + `top: ${area.top + window.scrollY + 10}px; width: 20px; height: 20px`;
  document.body.appendChild(cover);
  const legend = svg.querySelector('g[id^="legend_"]');
  const from = legend.getBoundingClientRect();
  const scale = svg.viewBox.baseVal.width / svg.getBoundingClientRect().width;
  const dx = (area.left + area.width / 2 - from.left - from.width / 2) * scale;
  const dy = (area.top + area.height / 2 - from.top - from.height / 2) * scale;
  legend.setAttribute('transform', `translate(${dx} ${dy})`);
  const wide = document.createElement('pre');
  wide.style.whiteSpace = 'pre';
  wide.textContent = 'x'.repeat(500);
  document.body.appendChild(wide);
}"""


def test_the_checks_find_what_they_look_for(browser, two_scorers):
    """Planted faults are found: the measurements above can fail."""
    page = browser.new_page(viewport={"width": 1400, "height": FOLD})
    page.goto(two_scorers.as_uri())
    page.evaluate(PLANT)
    found = page.evaluate(MEASURE)
    page.close()
    assert any(o.startswith("div over chart") for o in found["overlaps"]), found["overlaps"]
    assert found["legends"], "the moved legend was not found over its plotting area"
    assert found["scrollWidth"] > found["clientWidth"]
