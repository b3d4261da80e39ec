"""Derived scorers (a calibrator applied to a scorer) are judged only on leads they did not
learn from: leads scored after the as-of of the outcomes their calibrator was fitted on."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from assay import AssayInputError
from assay.audit.derive import apply_calibrator
from assay.audit.scorer import audit, evidence
from assay.cli.main import app
from assay.ledger import Ledger
from assay.stats.recalibration import (
    PlattCalibrator,
    VennAbersCalibrator,
    load_calibrator,
    recalibrate,
)

# plumbing: audits here default to coarse posterior grids (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("fast_posterior")

UTC = pa.timestamp("us", tz="UTC")
DAY_US = 86_400_000_000
FITTED = dt.datetime(2024, 5, 15, tzinfo=dt.UTC)  # the recalibration's as-of


def _leads(
    prefix: str, n: int, first_day: str, days: float, seed: int
) -> tuple[pa.Table, pa.Table]:
    """Over-promising leads (score 1.6 × the true rate), outcomes recorded when they occur."""
    rng = np.random.default_rng(seed)
    start = np.datetime64(f"{first_day}T00:00:00", "us")
    scored = start + (np.sort(rng.uniform(0, days, n)) * DAY_US).astype("timedelta64[us]")
    truth = rng.beta(2, 8, n)
    won = np.flatnonzero(rng.random(n) < truth)
    occurred = scored[won] + (rng.uniform(0, 14, len(won)) * DAY_US).astype("timedelta64[us]")
    predictions = pa.table({
        "prediction_id": [f"{prefix}{i}" for i in range(n)],
        "entity_id": [f"{prefix}-lead-{i}" for i in range(n)], "scorer": ["vendor"] * n,
        "score": np.round(np.minimum(1.6 * truth, 1), 4), "scored_at": pa.array(scored, UTC),
        "recorded_at": pa.array(scored, UTC), "horizon_days": pa.array(np.full(n, 21, np.int32)),
        "target_event": ["won"] * n,
    })  # fmt: skip
    outcomes = pa.table({
        "entity_id": [f"{prefix}-lead-{i}" for i in won], "event": ["won"] * len(won),
        "occurred_at": pa.array(occurred, UTC), "recorded_at": pa.array(occurred, UTC),
    })  # fmt: skip
    return predictions, outcomes


def _ingest(ledger: Ledger, tables: tuple[pa.Table, pa.Table], now: dt.datetime) -> None:
    ledger.ingest_predictions(tables[0], now=now)
    ledger.ingest_outcomes(tables[1], now=now)


@pytest.fixture
def ledger(tmp_path: Path):  # type: ignore[no-untyped-def]
    """800 leads scored Jan–Apr 2024, a Platt calibrator fitted on them as of May 15 and
    applied on May 16."""
    store = Ledger(tmp_path / "derived.duckdb")
    _ingest(store, _leads("a", 800, "2024-01-01", 110, seed=1), FITTED)
    found = evidence(store, scorer="vendor", as_of=FITTED)
    fit = recalibrate(found.labels, found.prob, method="platt", fitted_as_of=found.as_of)
    apply_calibrator(store, fit.calibrator, scorer="vendor", now=FITTED + dt.timedelta(days=1))
    yield store, fit.calibrator
    store.close()


def test_a_derived_scorer_is_never_audited_on_the_outcomes_it_was_fitted_on(ledger):
    store, _ = ledger
    later = FITTED + dt.timedelta(days=60)
    assert store.judged_labels(scorer="vendor+platt", as_of=later).table.num_rows == 0
    with pytest.raises(AssayInputError, match=r"all 800 of its leads .* are in-sample") as info:
        audit(store, scorer="vendor+platt", as_of=later)
    assert "fitted on 2024-05-15" in str(info.value)
    # The plain label rule still sees them: only what judges the scorer leaves them out.
    assert store.labels(scorer="vendor+platt", as_of=later).table.num_rows == 800
    assert audit(store, scorer="vendor", as_of=later).counts.in_sample == 0


def test_leads_scored_after_the_fit_are_the_ones_it_is_judged_on(ledger):
    store, calibrator = ledger
    fresh = _leads("b", 600, "2024-05-20", 70, seed=2)
    now = dt.datetime(2024, 8, 15, tzinfo=dt.UTC)
    _ingest(store, fresh, now)
    apply_calibrator(store, calibrator, scorer="vendor", now=now)  # maps the new leads
    as_of = dt.datetime(2024, 9, 15, tzinfo=dt.UTC)
    result = audit(store, scorer="vendor+platt", as_of=as_of)
    assert result.counts.resolved == 600 and result.counts.in_sample == 800
    assert result.notes[-1] == (
        "judged on 600 leads scored after the calibrator was fitted on 2024-05-15; "
        "800 in-sample leads excluded"
    )
    judged = store.judged_labels(scorer="vendor+platt", as_of=as_of).table
    assert sorted(judged["prediction_id"].to_pylist()) == sorted(f"b{i}+platt" for i in range(600))
    expected = calibrator.predict_proba(fresh[0]["score"].to_numpy())[:, 1]
    np.testing.assert_allclose(np.sort(result.y_prob), np.sort(expected))
    assert store.verify().ok


def test_a_lead_scored_before_the_fit_stays_in_sample_under_every_policy(ledger):
    store, calibrator = ledger
    again = pa.table({
        "prediction_id": ["rescored"], "entity_id": ["a-lead-3"], "scorer": ["vendor"],
        "score": [0.2], "scored_at": ["2024-06-01T00:00:00Z"],
        "recorded_at": ["2024-06-01T00:00:00Z"], "horizon_days": [21], "target_event": ["won"],
    })  # fmt: skip
    now = dt.datetime(2024, 6, 2, tzinfo=dt.UTC)
    store.ingest_predictions(again, now=now)
    apply_calibrator(store, calibrator, scorer="vendor", now=now)
    as_of = dt.datetime(2024, 8, 1, tzinfo=dt.UTC)
    for policy in ("first", "last", "all"):
        judged = store.judged_labels(scorer="vendor+platt", as_of=as_of, policy=policy)
        assert judged.table.num_rows == 0, policy
        assert judged.in_sample is not None and judged.in_sample.fitted_as_of == (FITTED,)


def test_judged_labels_of_every_scorer_leave_out_only_derived_in_sample_leads(ledger):
    store, _ = ledger
    judged = store.judged_labels(as_of=FITTED + dt.timedelta(days=30), policy="all")
    assert set(judged.table["scorer"].to_pylist()) == {"vendor"}
    assert judged.in_sample is not None and judged.in_sample.leads == 800


def test_the_fit_cut_off_is_in_the_calibrator_file_and_its_fingerprint():
    y = np.array([0, 1] * 50)
    p = np.linspace(0.05, 0.95, 100)
    fit = recalibrate(y, p, method="platt", fitted_as_of="2024-05-15T00:00:00Z")
    body = json.loads(fit.calibrator.to_json())
    assert body["version"] == 2 and body["fitted_as_of"] == "2024-05-15T00:00:00+00:00"
    loaded = load_calibrator(fit.calibrator.to_json())
    assert loaded.fitted_as_of_ == FITTED and loaded.fingerprint == fit.calibrator.fingerprint
    moved = {**body, "fitted_as_of": "2023-01-01T00:00:00+00:00"}  # make in-sample leads vanish
    with pytest.raises(AssayInputError, match="fingerprint does not match"):
        load_calibrator(json.dumps(moved))
    undated = PlattCalibrator().fit(p, y)  # as written before the cut-off was recorded
    old = json.loads(undated.to_json())
    assert old["version"] == 1 and "fitted_as_of" not in old
    unsigned = {k: old[k] for k in ("kind", "version", "params", "state")}
    assert (
        old["fingerprint"]
        == hashlib.sha256(json.dumps(unsigned, sort_keys=True).encode()).hexdigest()
    )
    assert load_calibrator(undated.to_json()).fitted_as_of_ is None


def test_a_calibrator_without_a_fit_cut_off_is_refused(ledger):
    store, _ = ledger
    undated = PlattCalibrator().fit(np.linspace(0.05, 0.95, 100), [0, 1] * 50)
    with pytest.raises(AssayInputError, match="does not record the as-of"):
        apply_calibrator(store, undated, scorer="vendor", now=FITTED + dt.timedelta(days=2))
    assert "vendor+platt" in store.scorers()  # the fixture's; nothing else was written


def test_venn_abers_is_named_vennabers_and_the_cut_off_is_tamper_evident(ledger):
    store, _ = ledger
    found = evidence(store, scorer="vendor", as_of=FITTED)
    venn = VennAbersCalibrator().fit(found.prob, found.labels)
    venn.fitted_as_of_ = FITTED
    apply_calibrator(store, venn, scorer="vendor", now=FITTED + dt.timedelta(days=2))
    assert "vendor+vennabers" in store.scorers()
    assert store.verify().ok
    store.con.execute("UPDATE derivations SET fitted_as_of = TIMESTAMPTZ '2020-01-01 00:00:00+00'")
    result = store.verify()
    assert not result.ok and "(derivations)" in str(result.problem)


def test_cli_recalibrate_records_its_as_of_and_apply_names_the_cut_off(tmp_path):
    path = tmp_path / "cli.duckdb"
    with Ledger(path) as store:
        _ingest(store, _leads("a", 800, "2024-01-01", 110, seed=3), FITTED)
    out = tmp_path / "calibrator.json"
    runner = CliRunner()
    fitted = runner.invoke(
        app, ["recalibrate", "--scorer", "vendor", "--out", str(out), "--method", "platt",
              "--as-of", "2024-05-15T00:00:00Z", "--ledger", str(path)],
    )  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    assert json.loads(out.read_text())["fitted_as_of"] == "2024-05-15T00:00:00+00:00"
    applied = runner.invoke(
        app, ["ingest", "apply-calibrator", str(out), "--scorer", "vendor", "--ledger", str(path)]
    )
    assert applied.exit_code == 0, applied.output
    assert "only on leads scored after 2024-05-15 00:00 UTC" in applied.output
    report = runner.invoke(app, ["report", "--scorer", "vendor+platt", "--ledger", str(path)])
    assert report.exit_code == 1 and "in-sample" in report.output


def test_every_method_is_named_as_the_cli_names_it_and_an_unknown_one_is_refused():
    from assay.audit.derive import method_name
    from assay.stats.recalibration import CALIBRATORS

    assert {method: method_name(kind()) for method, kind in CALIBRATORS.items()} == {
        "platt": "platt", "temperature": "temperature", "isotonic": "isotonic",
        "histogram": "histogram", "beta": "beta", "venn-abers": "vennabers",
    }  # fmt: skip

    class Tuned(VennAbersCalibrator):  # the class name would have been "+tuned"
        pass

    assert method_name(Tuned()) == "vennabers"
    with pytest.raises(AssayInputError, match="not a calibrator assay can record; use one of"):
        method_name(object())


def test_cli_venn_abers_calibrator_derives_scorer_vennabers(tmp_path):
    path = tmp_path / "venn.duckdb"
    with Ledger(path) as store:
        _ingest(store, _leads("a", 800, "2024-01-01", 110, seed=3), FITTED)
    out = tmp_path / "venn-abers.json"
    runner = CliRunner()
    fitted = runner.invoke(
        app, ["recalibrate", "--scorer", "vendor", "--out", str(out), "--method", "venn-abers",
              "--as-of", "2024-05-15T00:00:00Z", "--ledger", str(path)],
    )  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    applied = runner.invoke(
        app, ["ingest", "apply-calibrator", str(out), "--scorer", "vendor", "--ledger", str(path)]
    )
    assert applied.exit_code == 0, applied.output
    with Ledger(path, read_only=True) as store:
        assert store.scorers() == ["vendor", "vendor+vennabers"]
        ids = store.labels(scorer="vendor+vennabers", policy="all").table["prediction_id"]
    assert sorted(ids.to_pylist())[:2] == ["a0+vennabers", "a1+vennabers"]
