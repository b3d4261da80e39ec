"""Issue 21: stored text is data, never markup (Rich, matplotlib mathtext, HTML, CSV).

A ledger whose scorer names, model version, entity ids, target event, segment values and source
file name are hostile must be shown literally by every command, with invisible bidi and control
characters made visible, and the errors CSV a failed ingest writes must not hold formulas.
"""

from __future__ import annotations

import csv
import datetime as dt
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

import assay.cli.ledger
import assay.cli.main
from assay.cli.main import app
from assay.ledger import Ledger

# plumbing: audits here default to coarse posterior grids (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("fast_posterior")

AS_OF = "2024-05-01T00:00:00+00:00"
NOW = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
UTC = pa.timestamp("us", tz="UTC")

CLOSE = "[/]"
LINK = "[link=https://evil.example]x[/link]"
MATH_BAD = r"$\cmd$"  # unknown mathtext command: matplotlib raises while drawing it
MATH = r"$\frac{1}{0}$"  # valid mathtext: would be drawn as a fraction, not as this text
RLO = "\u202eevil"  # right-to-left override: "live" would read "evil" reversed
FORMULA = '=HYPERLINK("http://x")'
SCORERS = (CLOSE, LINK, f"{MATH_BAD} {RLO}")
SEGMENTS = (CLOSE, LINK, MATH_BAD, MATH, RLO, FORMULA)
SOURCE = "[red]outcomes.parquet"  # an opening tag would colour (and hide) itself
OSC8 = "\x1b]8;"  # a terminal hyperlink
SGR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A 600-lead ledger: three hostile scorers score the same leads, six hostile segments."""
    directory = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(21)
    n = 600
    start = np.datetime64("2024-01-01T00:00:00", "us")
    scored = start + (np.sort(rng.uniform(0, 100, n)) * 86_400e6).astype("timedelta64[us]")
    truth = rng.beta(2, 5, n)
    entities = [f"{FORMULA}{CLOSE}{RLO}-{i}" for i in range(n)]
    segment = [SEGMENTS[i % len(SEGMENTS)] for i in range(n)]
    path = directory / "hostile.duckdb"
    with Ledger(path) as ledger:
        for k, name in enumerate(SCORERS):
            ledger.ingest_predictions(
                pa.table(
                    {
                        "prediction_id": [f"{k}-{i}" for i in range(n)],
                        "entity_id": entities,
                        "scorer": [name] * n,
                        "model_version": [f"{LINK}{MATH_BAD}"] * n,
                        "score": np.round(np.clip(truth * (1 + 0.3 * k), 0, 1), 4),
                        "scored_at": pa.array(scored, UTC),
                        "recorded_at": pa.array(scored, UTC),
                        "horizon_days": pa.array(np.full(n, 14, np.int32)),
                        "target_event": [f"{CLOSE}won"] * n,
                        "kind": segment,
                    }
                ),
                segments=("kind",),
                now=NOW,
            )
        won = np.flatnonzero(rng.random(n) < truth)
        occurred = scored[won] + (rng.uniform(0, 10, len(won)) * 86_400e6).astype("timedelta64[us]")
        outcomes = directory / SOURCE
        pq.write_table(
            pa.table(
                {
                    "entity_id": [entities[i] for i in won],
                    "event": [f"{CLOSE}won"] * len(won),
                    "occurred_at": pa.array(occurred, UTC),
                    "recorded_at": pa.array(occurred, UTC),
                }
            ),
            outcomes,
        )
        ledger.ingest_outcomes(outcomes, now=NOW)
    return path


@pytest.fixture
def terminal():  # type: ignore[no-untyped-def]
    """A console that renders like a real colour terminal (so links would be live)."""
    return Console(force_terminal=True, color_system="truecolor", width=400)


def _run(monkeypatch, console, arguments):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(assay.cli.main, "console", console)
    monkeypatch.setattr(assay.cli.ledger, "console", console)
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, (result.output, result.exception)
    raw = result.output
    assert OSC8 not in raw, "a stored [link=…] became a live terminal link"
    assert "\u202e" not in raw, "a bidi control reached the terminal raw"
    return SGR.sub("", raw)


def test_ledger_status_shows_hostile_names_literally(hostile, monkeypatch, terminal):
    shown = _run(monkeypatch, terminal, ["ledger", "status", "--ledger", str(hostile)])
    assert CLOSE in shown and LINK in shown
    assert f"{MATH_BAD} <U+202E>evil" in shown
    assert SOURCE in shown  # the last batch's source file, not a red "outcomes.parquet"


def test_report_with_segments_prints_and_charts_hostile_text(
    hostile, monkeypatch, terminal, tmp_path
):
    html = tmp_path / "report.html"
    shown = _run(
        monkeypatch, terminal,
        ["report", "--ledger", str(hostile), "--as-of", AS_OF, "--segment-by", "kind",
         "--html", str(html)],
    )  # fmt: skip
    for name in (CLOSE, LINK, f"{MATH_BAD} <U+202E>evil"):
        assert f"scorer {name}" in shown
    page = html.read_text()
    assert "\u202e" not in page
    assert "&lt;U+202E&gt;evil" in page
    assert "&lt;U+202E&gt;evil" in page.split("<h2", 2)[1]  # the scorer heading
    funnels = [svg for svg in re.findall(r"<svg.*?</svg>", page, re.DOTALL) if MATH in svg]
    assert funnels, "the segment labels are not drawn as literal text"
    assert all(MATH_BAD in svg and "&lt;U+202E&gt;evil" in svg for svg in funnels)
    assert "=hyperlink(&#34;http://x&#34;)" in page  # segment labels are casefolded


def test_a_stored_link_is_never_a_live_terminal_link(hostile, monkeypatch, terminal):
    shown = _run(
        monkeypatch,
        terminal,
        ["report", "--ledger", str(hostile), "--as-of", AS_OF, "--scorer", LINK],
    )
    assert f"scorer {LINK}" in shown


def test_charts_draw_hostile_text_literally(hostile):
    from assay.audit.report import build_report
    from assay.audit.scorer import AuditConfig
    from assay.report.html import render_comparison_html, render_html

    with Ledger(hostile, read_only=True) as ledger:
        report = build_report(ledger, as_of=AS_OF, config=AuditConfig(segment_by="kind"))
    html = render_html(report)  # raised ValueError drawing $\cmd$
    funnel = next(svg for svg in re.findall(r"<svg.*?</svg>", html, re.DOTALL) if MATH in svg)
    assert MATH_BAD in funnel and "&lt;U+202E&gt;evil" in funnel
    assert report.comparison is not None
    page = render_comparison_html(report.comparison, as_of=AS_OF)
    for shown in (html, page):  # the report's comparison section and the comparison page
        assert f"{MATH_BAD} &lt;U+202E&gt;evil" in shown and "\u202e" not in shown


def test_segments_command_shows_hostile_segments_literally(hostile, monkeypatch, terminal):
    shown = _run(
        monkeypatch, terminal,
        ["segments", "--ledger", str(hostile), "--as-of", AS_OF, "--by", "kind",
         "--scorer", CLOSE, "--scorer", LINK],
    )  # fmt: skip
    assert f"scorer {CLOSE}: conversion by kind" in shown
    assert f"scorer {LINK}: conversion by kind" in shown
    for label in (CLOSE, LINK, MATH_BAD, MATH, "<U+202E>evil", FORMULA.lower()):
        assert f"│ {label} " in shown, label


def test_compare_prints_and_charts_hostile_scorers(hostile, monkeypatch, terminal, tmp_path):
    html = tmp_path / "compare.html"
    shown = _run(
        monkeypatch, terminal,
        ["compare", "--ledger", str(hostile), "--as-of", AS_OF, "--html", str(html)],
    )  # fmt: skip
    for name in (CLOSE, LINK, f"{MATH_BAD} <U+202E>evil"):
        assert f"│ {name} " in shown, name
    assert f"{CLOSE} vs {LINK}" in shown
    page = html.read_text()
    assert "\u202e" not in page
    interval = next(svg for svg in re.findall(r"<svg.*?</svg>", page, re.DOTALL) if LINK in svg)
    assert f"{MATH_BAD} &lt;U+202E&gt;evil" in interval


def test_verify_differences_are_printed_literally(hostile, monkeypatch, terminal, tmp_path):
    report = tmp_path / "report.json"
    runner = CliRunner()
    made = runner.invoke(
        app, ["report", "--ledger", str(hostile), "--as-of", AS_OF, "--scorer", CLOSE,
              "--json", str(report)],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    report.write_text(report.read_text().replace('"scorer": "[/]"', f'"scorer": "{LINK}"', 1))
    monkeypatch.setattr(assay.cli.main, "console", terminal)
    result = runner.invoke(app, ["verify", str(report), "--ledger", str(hostile)])
    assert result.exit_code == 1, (result.output, result.exception)
    assert OSC8 not in result.output
    assert f"recorded '{LINK}', now '{CLOSE}'" in SGR.sub("", result.output)


def test_errors_csv_neutralises_formulas(tmp_path):
    bad = tmp_path / "bad.csv"
    payloads = [
        '=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3+cmd|' /C calc'!A0",
        "\t=1+1", "\r=1+1",
    ]  # fmt: skip
    rows = [
        ["entity_id", "scorer", "score", "scored_at", "horizon_days", "target_event"],
        *[[f"e{i}", "v", "0.5", p, "30", "won"] for i, p in enumerate(payloads)],
        ["n", "v", "-0.5", "2024-01-01T00:00:00Z", "30", "won"],
    ]
    with bad.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result = CliRunner().invoke(
        app, ["ingest", "predictions", str(bad), "--ledger", str(tmp_path / "x.duckdb")]
    )
    assert result.exit_code == 1, result.output
    with (tmp_path / "bad.csv.errors.csv").open(newline="") as handle:
        written = list(csv.DictReader(handle))
    values = {int(row["row"]): row["value"] for row in written if row["column"] == "scored_at"}
    for number, payload in enumerate(payloads, start=1):
        # the reader may strip the cell's surrounding whitespace; either way it is quoted
        assert values[number][:1] == "'", values[number]
        assert values[number][1:].strip() == payload.strip()
    assert {row["value"] for row in written if row["row"] == "7"} == {"-0.5"}  # not a formula
    for row in written:
        for cell in row.values():
            assert not cell or (cell[0] not in "=+@\t\r" and not re.match(r"-(?![0-9.])", cell))


def test_visible_controls_and_terminal_text():
    from assay.report.safe_text import terminal_text, visible_controls

    assert visible_controls("a\u202eb\u2066c\x1b[31md\x00\u200b\ne") == (
        "a<U+202E>b<U+2066>c<U+001B>[31md<U+0000><U+200B><U+000A>e"
    )
    assert visible_controls("plain, ünïcode and 中文") == "plain, ünïcode and 中文"
    text = terminal_text(f"{LINK} :smile: \x1b]8;;http://x\x1b\\")
    assert text.plain == f"{LINK} :smile: <U+001B>]8;;http://x<U+001B>\\"
    assert not text.spans


def test_plot_text_renders_literally():
    from assay.report.plots import draw
    from assay.report.safe_text import plot_text

    def paint(figure):  # type: ignore[no-untyped-def]
        axis = figure.subplots()
        for i, value in enumerate((MATH_BAD, MATH, r"\$x$", "$5 and $6", RLO)):
            axis.text(0.1, 0.1 * i, plot_text(value))

    svg = draw((6.4, 4.8), paint)  # raises ValueError on unescaped $\cmd$
    for shown in (MATH_BAD, MATH, r"\$x$", "$5 and $6", "&lt;U+202E&gt;evil"):
        assert shown in svg, shown


def test_csv_cell_rule():
    from assay.report.safe_text import csv_cell

    for formula in ("=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "-", "-cmd", "-.5e"):
        assert csv_cell(formula) == f"'{formula}", formula
    for number in ("-0.5", "-3", "-.5", "-1e-3", "-2.5E+10"):
        assert csv_cell(number) == number
    assert csv_cell("plain") == "plain" and csv_cell("") == "" and csv_cell(7) == 7
