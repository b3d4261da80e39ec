"""The audit report: golden numbers, a self-contained HTML file, a real browser, and verify."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from tests.conftest import beta_scores, build_small_ledger
from tests.fixtures.make_golden_report import AS_OF, golden
from typer.testing import CliRunner

from assay.audit.answer import reason_detail
from assay.audit.document import dumps, report_document, verify_document
from assay.audit.report import build_report
from assay.audit.scorer import AuditConfig, audit_arrays
from assay.cli.main import app
from assay.ledger import Ledger
from assay.report.html import render_html

FIXTURES = Path(__file__).parent / "fixtures"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def assert_close(expected, actual, path="$"):
    """Same structure and strings; numbers equal to 1e-9 relative (platform rounding)."""
    if isinstance(expected, dict):
        assert set(expected) == set(actual), path
        for key in expected:
            assert_close(expected[key], actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(expected) == len(actual), path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_close(e, a, f"{path}[{i}]")
    elif isinstance(expected, float) and isinstance(actual, float):
        assert math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12), (path, expected, actual)
    else:
        assert expected == actual, (path, expected, actual)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "small.duckdb"
    ledger = build_small_ledger(path)
    report = build_report(ledger, as_of=AS_OF)
    ledger.close()
    return path, report


def test_json_equals_the_committed_expectation():
    expected = json.loads((FIXTURES / "golden_report.json").read_text())
    assert_close(expected, json.loads(json.dumps(golden())))


def test_audit_counts_and_verdicts(small):
    _, report = small
    alpha, beta = report.audits
    assert alpha.counts.resolved + alpha.counts.pending == 800
    assert alpha.counts.pending > 0
    assert beta.verdict == "miscalibrated"
    assert alpha.verdict != "miscalibrated"
    assert [c.month for c in alpha.cohorts] == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert sum(c.n for c in alpha.cohorts) == alpha.counts.resolved
    assert len(alpha.reproducibility["snapshot_sha256"]) == 64


def test_html_is_self_contained_and_shows_the_numbers(small):
    _, report = small
    html = render_html(report)
    beta = report.audits[1]
    assert report.comparison is not None and "Scorers compared on the same leads" in html
    pair = report.comparison.comparison.pairs[0]
    assert f"{pair.prob_a_lower_ece:.3f}" in html
    # The banner shows the verdict word once, then the reason without it.
    assert reason_detail(beta.verdict, beta.calibration.reason) in html.replace("&#39;", "'")
    assert f"{100 * beta.calibration.ece:.1f} pts" in html
    assert f"{100 * beta.calibration.noise_floor.median:.1f} pts" in html
    assert "not yet — insufficient data" in html or all(not b.thin for b in beta.deciles)
    assert "http" not in html
    assert "<script" not in html
    assert not re.search(r'(src|href)="(?!#)', html)


def test_report_bytes_are_reproducible(small):
    path, report = small
    assert render_html(report) == render_html(report)
    with Ledger(path, read_only=True) as ledger:
        again = build_report(ledger, as_of=AS_OF)
    assert render_html(again) == render_html(report)
    assert dumps(report_document(again)) == dumps(report_document(report))


def test_verify_passes_fresh_and_fails_after_a_changed_score(small, tmp_path):
    path, report = small
    copy = tmp_path / "copy.duckdb"
    shutil.copy(path, copy)
    document = json.loads(dumps(report_document(report)))
    assert {"ledger_head", "comparison"} <= set(document)
    runner = CliRunner()
    report_json = tmp_path / "report.json"
    report_json.write_text(json.dumps(document))
    fresh = runner.invoke(app, ["verify", str(report_json), "--ledger", str(copy)])
    assert fresh.exit_code == 0, fresh.output
    assert "identical" in fresh.output
    import duckdb

    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE predictions SET probability = 0.97 WHERE prediction_id = 'beta-10'")
    refused = runner.invoke(app, ["verify", str(report_json), "--ledger", str(copy)])
    assert refused.exit_code == 1 and "no longer holds the history" in refused.output
    # Without a head to anchor, the recomputation itself finds the changed score.
    del document["ledger_head"]
    with Ledger(copy, read_only=True) as ledger:
        differences = verify_document(document, ledger)
    assert any("audits[1].reproducibility.snapshot_sha256" in d for d in differences)
    assert any(d.startswith("comparison.") for d in differences)
    report_json.write_text(json.dumps(document))
    changed = runner.invoke(app, ["verify", str(report_json), "--ledger", str(copy)])
    assert changed.exit_code == 1 and "numbers differ" in changed.output


def test_cli_report_writes_html_and_json(small, tmp_path):
    path, _ = small
    runner = CliRunner()
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    arguments = ["report", "--ledger", str(path), "--as-of", AS_OF, "--html", str(html)]
    result = runner.invoke(app, [*arguments, "--json", str(js)])
    assert result.exit_code == 0, result.output
    assert "MISCALIBRATED" in result.output and "Leaderboard on" in result.output
    document = json.loads(js.read_text())
    assert document["schema_version"] == 1
    assert [s["scorer"] for s in document["comparison"]["common"]] == ["alpha", "beta"]
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert "Scorers compared on the same leads" in html.read_text()
    verified = runner.invoke(app, ["verify", str(js), "--ledger", str(path)])
    assert verified.exit_code == 0 and "identical" in verified.output, verified.output


def test_cli_tolerance_changes_the_verdict_and_is_recorded(small, tmp_path):
    path, _ = small
    runner = CliRunner()
    js = tmp_path / "loose.json"
    loose = "ratio=2,slope=3,curve=1,cap=0.5"
    arguments = ["report", "--ledger", str(path), "--as-of", AS_OF, "--scorer", "beta"]
    strict = runner.invoke(app, arguments)
    relaxed = runner.invoke(app, [*arguments, "--tolerance", loose, "--json", str(js)])
    assert strict.exit_code == 0 and relaxed.exit_code == 0, relaxed.output
    assert "MISCALIBRATED" in strict.output and "over-promises" in strict.output
    assert "MISCALIBRATED" not in relaxed.output
    assert "observed/expected conversions within 0.50–2.00" in relaxed.output
    recorded = json.loads(js.read_text())["audits"][0]["reproducibility"]["config"]["tolerance"]
    assert recorded["ratio"] == 2.0 and recorded["curve_cap"] == 0.5
    verified = runner.invoke(app, ["verify", str(js), "--ledger", str(path)])
    assert verified.exit_code == 0, verified.output  # the tolerance re-runs from the JSON
    wrong = runner.invoke(app, [*arguments, "--tolerance", "ratio:2"])
    assert wrong.exit_code == 1 and "KEY=NUMBER" in wrong.output
    assert "Traceback" not in wrong.output


def test_typos_name_what_exists(small):
    path, _ = small
    runner = CliRunner()
    scorer = runner.invoke(app, ["report", "--ledger", str(path), "--scorer", "alpah"])
    said = " ".join(scorer.output.split())  # Rich wraps lines
    assert scorer.exit_code == 1
    assert "no scorer 'alpah' (did you mean 'alpha'?); scorers: alpha, beta" in said
    by = runner.invoke(app, ["segments", "--ledger", str(path), "--by", "industri"])
    assert by.exit_code == 1
    assert "attributes in the ledger: none (ingest with --segment COLUMN)" in " ".join(
        by.output.split()
    )


def test_audit_arrays_matches_calibration():
    y, p = beta_scores(2000, 3, 1.3)
    result = audit_arrays(y, p, config=AuditConfig(seed=2))
    from assay import calibration

    assert result.calibration.to_dict() == calibration(y, p, seed=2).to_dict()
    assert sum(b.n for b in result.deciles) == 2000


@pytest.mark.integration
def test_synthetic_demo_recovers_the_known_truth(tmp_path):
    from assay.demo.build import build_synthetic_demo

    result = build_synthetic_demo(tmp_path / "demo", n=3000)
    verdicts = {a.scorer: a.verdict for a in result.report.audits}
    assert verdicts["vendor-b"] == "miscalibrated"
    assert verdicts["vendor-a"] != "miscalibrated"
    html = result.html.read_text()
    assert "true curve (simulation)" in html
    # Early converters of leads whose window is still open are not counted, so the calibrated
    # vendor's promised and observed rates agree on the matured leads.
    vendor_a = next(a for a in result.report.audits if a.scorer == "vendor-a")
    assert abs(vendor_a.scores["mean_score"] - vendor_a.scores["base_rate"]) < 0.02
    assert vendor_a.counts.pending > 0


@pytest.mark.integration
def test_report_in_a_real_browser(small, tmp_path):
    """Headless Chromium loads the file: no console error, no request leaves it, verdict shown."""
    from playwright.sync_api import sync_playwright

    _, report = small
    page_path = tmp_path / "report.html"
    page_path.write_text(render_html(report))
    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "request",
            lambda r: None if r.url.startswith(("file://", "data:")) else outside.append(r.url),
        )
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        banner = page.locator(".banner").nth(1)
        assert banner.is_visible()
        assert "miscalibrated" in banner.inner_text().lower()
        assert page.locator("svg").count() >= 4
        browser.close()
    assert errors == []
    assert outside == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_min_cohort_decides_which_months_are_judged(monkeypatch):
    """A month under ``AuditConfig.min_cohort`` resolved predictions is reported (its counts
    and plug-in ECE), not judged: "not yet", and no posterior runs for it."""
    import numpy as np

    import assay.stats.calibration as calibration_module
    from assay import calibration

    y, p = beta_scores(1500, 5)
    months = np.repeat(["2024-01-15", "2024-02-15", "2024-03-15"], [900, 450, 150])
    runs: list[int] = []
    posterior = calibration_module.calibration_posterior

    def counted(stats, **options):
        runs.append(stats.total_count)
        return posterior(stats, **options)

    monkeypatch.setattr(calibration_module, "calibration_posterior", counted)
    result = audit_arrays(y, p, scored_at=months, config=AuditConfig(min_cohort=400))
    assert sorted(runs) == [450, 900, 1500]  # the whole set and the two judged months
    cohorts = {c.month: c for c in result.cohorts}
    assert [cohorts[m].n for m in ("2024-01", "2024-02", "2024-03")] == [900, 450, 150]
    assert cohorts["2024-02"].median is not None
    march = cohorts["2024-03"]
    assert (march.verdict, march.median, march.lower, march.upper) == ("not yet", None, None, None)
    assert march.reason == "not yet: only 150 resolved predictions; at least 400 are needed"
    assert march.positives == int(y[1350:].sum())
    assert march.ece == calibration(y[1350:], p[1350:]).ece  # the same bins, the same number
    # With no minimum, every month the statistics can judge (100 rows, 10 of each) is judged.
    loose = audit_arrays(y, p, scored_at=months, config=AuditConfig(min_cohort=0))
    assert {c.month: c.median is not None for c in loose.cohorts} == {
        "2024-01": True, "2024-02": True, "2024-03": True,
    }  # fmt: skip


def test_snapshot_hash_is_the_sha256_of_the_lines():
    """Hashed from Arrow buffers, it equals the definition on any chunking, slice or text."""
    import hashlib

    import numpy as np
    import pyarrow as pa

    from assay.audit.scorer import snapshot_hash

    rng = np.random.default_rng(3)
    n = 500
    table = pa.table({
        "prediction_id": [f"p-{i}-ü\u202e|" for i in range(n)],
        "probability": pa.array([None if i % 7 == 0 else float(rng.random()) for i in range(n)]),
        "label": rng.choice(["positive", "negative"], n).tolist(),
    })  # fmt: skip

    def defined(t: pa.Table) -> str:
        rows = zip(*(t[c].to_pylist() for c in t.column_names), strict=True)
        lines = [
            f"{i}|{'-' if p is None else pa.scalar(p).cast(pa.string())}|{y}" for i, p, y in rows
        ]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    pieces = pa.concat_tables([table.slice(0, 100), table.slice(100, 0), table.slice(100)])
    for shown in (table, pieces, table.slice(1, 250), table.slice(0, 1), table.slice(0, 0)):
        assert snapshot_hash(shown) == defined(shown)
