"""One house: renderers draw, they do not compute; one report seam; one posterior per cohort.

* The renderers (``assay.report.*``) import nothing from the ledger or the engine-side code and
  no fitting routine, and import matplotlib only when they draw; a built report renders with
  its ledger closed and every fitting routine and ledger door broken.
* ``assay report``, ``GET /v1/report.html`` and ``GET /v1/audit``, and ``assay demo`` build the
  report through :func:`assay.audit.report.build_report`: for the same ledger and settings they
  show the same sections and the same numbers.
* The posterior runs at most once per (scorer, cohort) in a report, and in its verification.
"""

from __future__ import annotations

import ast
import datetime as dt
import io
import json
import math
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from rich.console import Console
from tests.conftest import build_small_ledger
from typer.testing import CliRunner

import assay.stats.calibration as calibration_module
from assay.audit.document import dumps, report_document, verify_document
from assay.audit.report import build_report
from assay.cli.main import app
from assay.ledger import Ledger
from assay.report.html import render_comparison_html, render_html
from assay.report.terminal import print_report
from assay.stats.compare import compare

REPORT = Path(__file__).resolve().parents[1] / "src" / "assay" / "report"
#: Routines that fit, estimate or read evidence: the audit layer's work, never a renderer's.
FITTING = {
    "audit", "audit_arrays", "audit_charts", "audit_reliability", "binned_reliability",
    "build_report", "calibration", "calibration_from_stats", "calibration_posterior",
    "certify_threshold", "compare", "compare_arrays", "comparison_view", "corp_curve",
    "corp_decomposition", "evidence", "funnel_limits", "isotonic_fit", "jeffreys_interval",
    "monitor_chart", "monitor_summary", "net_benefit", "noise_floor", "recalibrate",
    "replay_summary", "risk_coverage", "segment_rates",
}  # fmt: skip
#: Functions a renderer may take from the audit layer: formatting, not computing.
FORMATTERS = {"format_e", "reason_detail"}
AS_OF = "2024-05-01T00:00:00+00:00"
NOW = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)  # when the small ledger was ingested
DEMO_AS_OF = "2024-09-01T00:00:00+00:00"
#: The settings ``assay demo`` reports with, as CLI options and as service query parameters.
DEMO_OPTIONS = {"target_precision": 0.5, "value": 200.0, "cost": 30.0, "segment_by": "industry"}


# ---------------------------------------------------------------- renderers draw
def _imports(path: Path) -> list[tuple[int, str, str | None, bool]]:
    """(line, module, name or None, at module level) of every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    top = {id(node) for node in tree.body}
    guarded = {  # under `if TYPE_CHECKING:`: never runs
        id(child)
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for child in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += [(node.lineno, node.module or "", a.name, id(node) in top) for a in node.names]
    return found


@pytest.mark.parametrize("path", sorted(REPORT.glob("*.py")), ids=lambda p: p.name)
def test_renderers_import_no_ledger_and_no_fitting_routine(path: Path) -> None:
    wrong = []
    for line, module, name, top in _imports(path):
        where = f"{path.name}:{line} imports {module}{'' if name is None else '.' + name}"
        if module.startswith(("assay.ledger", "assay.pushdown", "assay.service", "assay.cli")):
            wrong.append(f"{where}: a renderer never opens storage")
        if name in FITTING:
            wrong.append(f"{where}: a fitting routine")
        function = name is not None and not (name[0].isupper() or name in FORMATTERS)
        if module.startswith(("assay.stats", "assay.audit")) and function:
            wrong.append(f"{where}: renderers take the audit layer's objects, not functions")
        if module.startswith("matplotlib") and (top or module == "matplotlib.pyplot"):
            wrong.append(f"{where}: matplotlib loads when drawing, never pyplot")
    calls = [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "use"
        and getattr(node.func.value, "id", "") == "matplotlib"
    ]
    wrong += [f"{path.name}:{line} calls matplotlib.use: a global backend" for line in calls]
    assert not wrong, "\n".join(wrong)


def test_importing_the_renderers_loads_no_matplotlib() -> None:
    code = (
        "import sys, assay.report.plots, assay.report.html, assay.report.terminal\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "[]"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The synthetic demo: two vendors, segments, a decision target and stored monitors."""
    from assay.demo.build import build_synthetic_demo

    return build_synthetic_demo(tmp_path_factory.mktemp("seam") / "demo", n=2000)


def _headings(html: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", text) for _, text in re.findall(r"<h([23])[^>]*>(.*?)</h\1>", html)
    ]


@pytest.mark.integration  # builds the demo
def test_a_report_renders_with_its_ledger_gone_and_nothing_to_fit(demo, monkeypatch) -> None:
    report = demo.report
    assert report.comparison is not None and report.monitors

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("rendering computed a statistic or opened the ledger")

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "assay":
            for routine in FITTING & set(vars(module)):
                monkeypatch.setattr(module, routine, refuse)
    monkeypatch.setattr(duckdb, "connect", refuse)
    monkeypatch.setattr(Ledger, "__init__", refuse)
    html = render_html(report)
    page = render_comparison_html(report.comparison, as_of=report.as_of)
    screen = io.StringIO()
    print_report(Console(file=screen, width=200), report)
    headings = _headings(html)
    assert headings.count("Standing evidence: the anytime-valid monitor") == 2
    assert "Scorers compared on the same leads" in headings
    assert "Reliability diagrams (common set)" in _headings(page)
    # Per scorer 6 charts; the segments (the same leads for both) and their funnel once; the
    # comparison's 3.
    assert html.count("<svg") == 6 * 2 + 1 + 3
    assert "Leaderboard on" in screen.getvalue() and "evidence E =" in screen.getvalue()


@pytest.mark.integration  # builds the demo
def test_the_drawn_series_match_their_definitions(demo) -> None:
    """Spot checks of what the audit layer hands the renderers, against the evidence."""
    from assay.stats.isotonic import isotonic_fit

    audit = demo.report.audits[0]
    charts = audit.charts
    _, (scores, fitted) = isotonic_fit(audit.y_prob, audit.y_true)
    # The CORP step keeps only its knots: evaluating it anywhere gives the full PAV step.
    where = np.searchsorted(charts.corp.x, scores, side="right") - 1
    np.testing.assert_array_equal(charts.corp.y[where], fitted)
    assert len(charts.corp.x) < len(scores)
    series = charts.reliability
    assert series.histogram.sum() == np.sum(audit.y_prob <= series.reach)
    np.testing.assert_allclose(series.observed, [b.observed_rate for b in audit.audit_bins if b.n])
    assert audit.decisions is not None
    threshold = audit.decisions.threshold.threshold
    assert threshold is not None
    assert charts.certified_coverage == np.mean(audit.y_prob >= threshold)


# ---------------------------------------------------------------- one seam
def _normalised(document: dict[str, Any]) -> dict[str, Any]:
    """A report document with the ledger's location (which differs by face) taken out."""
    for item in document["audits"]:
        item["reproducibility"]["ledger"] = "-"
    for item in document["answers"]:  # the next-step command names the ledger
        item["command"] = item["command"].replace(item["command"].split()[3], "-")
    return document


@pytest.mark.integration  # builds the demo
def test_cli_service_and_demo_show_the_same_report(demo, tmp_path) -> None:
    from tests.test_service import Service

    html, js = tmp_path / "cli.html", tmp_path / "cli.json"
    options = [f"--{name.replace('_', '-')}={value}" for name, value in DEMO_OPTIONS.items()]
    shown = CliRunner().invoke(
        app, ["report", "--ledger", str(demo.ledger), "--as-of", DEMO_AS_OF, *options,
              "--html", str(html), "--json", str(js)],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    root = tmp_path / "service"
    (root / "workspaces").mkdir(parents=True)
    shutil.copy(demo.ledger, root / "workspaces" / "acme.duckdb")
    service = Service(root)
    key = service.key()
    params = {"as_of": DEMO_AS_OF, **DEMO_OPTIONS}
    served_html = service.client.get("/v1/report.html", params=params, headers=key)
    served_json = service.client.get("/v1/audit", params=params, headers=key)
    assert served_html.status_code == served_json.status_code == 200, served_json.text
    sections = _headings(demo.html.read_text())
    assert _headings(html.read_text()) == sections == _headings(served_html.text)
    for expected in (
        "Standing evidence: the anytime-valid monitor",
        "Scorers compared on the same leads",
        "Segments by “industry”: raw (optimistic) vs shrunken (action-ready) conversion rates",
        "When may an action fire on its own? (target precision 50%, δ = 0.05)",
    ):
        assert expected in sections, expected
    recorded = _normalised(json.loads(demo.json.read_text()))
    assert _normalised(json.loads(js.read_text())) == recorded
    assert _normalised(served_json.json()) == recorded
    assert served_json.json()["audits"][0]["reproducibility"]["ledger"] == "acme"


@pytest.mark.integration  # builds the demo
def test_a_report_as_of_the_future_is_refused_by_every_face(demo, tmp_path) -> None:
    from tests.test_service import Service

    later = "2999-01-01T00:00:00Z"
    shown = CliRunner().invoke(app, ["report", "--ledger", str(demo.ledger), "--as-of", later])
    assert shown.exit_code == 1 and "later than now" in shown.output
    root = tmp_path / "service"
    (root / "workspaces").mkdir(parents=True)
    shutil.copy(demo.ledger, root / "workspaces" / "acme.duckdb")
    service = Service(root)
    refused = service.client.get("/v1/audit", params={"as_of": later}, headers=service.key())
    assert refused.status_code == 422 and "later than now" in refused.json()["error"]


# ---------------------------------------------------------------- the posterior, once
@pytest.fixture
def three(tmp_path):  # type: ignore[no-untyped-def]
    """The small ledger, plus "gamma", which scores only the first 500 of its 800 leads."""
    ledger = build_small_ledger(tmp_path / "three.duckdb")
    alpha = ledger.labels(scorer="alpha", policy="all", as_of=AS_OF).table.slice(0, 500)
    rng = np.random.default_rng(7)
    scores = np.round(np.clip(alpha["probability"].to_numpy() + rng.normal(0, 0.05, 500), 0, 1), 4)
    ledger.ingest_predictions(
        pa.table({
            "prediction_id": [f"gamma-{i}" for i in range(500)],
            "entity_id": alpha["entity_id"], "scorer": ["gamma"] * 500,
            "score": scores, "scored_at": alpha["scored_at"], "recorded_at": alpha["scored_at"],
            "horizon_days": alpha["horizon_days"], "target_event": alpha["target_event"],
        }),
        now=NOW,
    )  # fmt: skip
    yield ledger
    ledger.close()


def _counting(monkeypatch) -> list[tuple[int, float, float]]:  # type: ignore[no-untyped-def]
    """Record (rows, conversions, Σp) of every posterior run: one (scorer, cohort) each."""
    runs: list[tuple[int, float, float]] = []
    posterior = calibration_module.calibration_posterior

    def counted(stats, **options):  # type: ignore[no-untyped-def]
        runs.append((stats.total_count, float(stats.sum_y.sum()), round(stats.sum_p.sum(), 9)))
        return posterior(stats, **options)

    monkeypatch.setattr(calibration_module, "calibration_posterior", counted)
    return runs


@pytest.mark.usefixtures("fast_posterior")  # plumbing (tests/conftest.py)
def test_the_posterior_runs_once_per_scorer_and_cohort(three, monkeypatch) -> None:
    runs = _counting(monkeypatch)
    report = build_report(three, as_of=AS_OF)
    assert report.comparison is not None
    comparison = report.comparison.comparison
    assert max(Counter(runs).values()) == 1, Counter(runs).most_common(3)
    # The audit's whole set and each judged month, and the common set where it differs.
    expected = sum(1 + sum(c.median is not None for c in a.cohorts) for a in report.audits)
    expected += sum(s.n != comparison.n_common for s in comparison.own)
    assert len(runs) == expected
    assert [s.n != comparison.n_common for s in comparison.own] == [True, True, False]
    for audit, own in zip(report.audits, comparison.own, strict=True):
        posterior = audit.calibration.posterior
        assert posterior is not None and own.n == len(audit.y_true)
        assert (own.ece, own.ece_lower, own.ece_upper) == (
            audit.calibration.ece,
            posterior.lower,
            posterior.upper,
        )  # the audit's own calibration, not a second posterior
    runs.clear()
    document = json.loads(dumps(report_document(report)))
    assert verify_document(document, three) == []
    assert max(Counter(runs).values()) == 1 and len(runs) == expected


def _close(expected: Any, actual: Any, path: str = "$") -> None:
    if isinstance(expected, dict):
        assert set(expected) == set(actual), path
        for key in expected:
            _close(expected[key], actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(expected) == len(actual), path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _close(e, a, f"{path}[{i}]")
    elif isinstance(expected, float) and isinstance(actual, float):
        assert math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12), (path, expected, actual)
    else:
        assert expected == actual, (path, expected, actual)


@pytest.mark.usefixtures("fast_posterior")  # plumbing (tests/conftest.py)
def test_the_reports_comparison_is_the_comparison(three) -> None:
    """Sharing labels and the audits' calibrations changes no number of the comparison."""
    report = build_report(three, as_of=AS_OF)
    assert report.comparison is not None
    _close(compare(three, as_of=AS_OF).to_dict(), report.comparison.comparison.to_dict())


@pytest.mark.usefixtures("fast_posterior")  # plumbing (tests/conftest.py)
def test_scorers_without_a_common_lead_are_reported_not_compared(tmp_path) -> None:
    ledger = build_small_ledger(tmp_path / "apart.duckdb")
    beta = ledger.labels(scorer="beta", policy="all", as_of=AS_OF).table
    table = pa.table({
        "entity_id": [f"other-{i}" for i in range(beta.num_rows)],
        "scorer": ["delta"] * beta.num_rows, "score": beta["probability"],
        "scored_at": beta["scored_at"], "recorded_at": beta["scored_at"],
        "horizon_days": beta["horizon_days"], "target_event": beta["target_event"],
    })  # fmt: skip
    ledger.ingest_predictions(table, now=NOW)
    report = build_report(ledger, as_of=AS_OF, scorers=["alpha", "delta"])
    ledger.close()
    assert report.comparison is None
    assert report.notes == [
        f"scorers alpha, delta are not compared: no matured lead as of {AS_OF} was scored "
        "by every one of them"
    ]
    assert report_document(report)["notes"] == report.notes
    # The page writes the as-of for people (UTC day), the JSON as ISO 8601.
    shown = "no matured lead as of 1 May 2024 was scored by every one of them"
    assert shown in render_html(report)


@pytest.mark.usefixtures("fast_posterior")  # plumbing (tests/conftest.py)
def test_one_model_version_is_audited_not_compared(tmp_path) -> None:
    ledger = build_small_ledger(tmp_path / "versions.duckdb")
    report = build_report(ledger, as_of=AS_OF, model_version="m1")
    ledger.close()
    assert [a.reproducibility["model_version"] for a in report.audits] == ["m1", "m1"]
    assert report.comparison is None and report.notes == [
        "scorers alpha, beta are not compared: a comparison reads every model version, and "
        "this report audits model version 'm1' only"
    ]
