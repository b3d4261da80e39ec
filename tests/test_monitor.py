"""The anytime-valid monitor: identities, exact martingale property, null and change streams,
label delay through the ledger, and byte-for-byte replay."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json

import numpy as np
import pyarrow as pa
import pytest
from scipy.special import expit, logit

import assay
from assay import AssayInputError
from assay.audit.monitor import MIN_LEADS, Monitor
from assay.ledger import Ledger
from assay.stats.eprocess import (
    GATED,
    StreamConfig,
    StreamState,
    audit_log_e,
    consume,
    log_likelihood_ratio,
    logit_of,
    null_band,
)
from assay.stats.simulate import simulate_scores

UTC = pa.timestamp("us", tz="UTC")
DAY_US = 86_400_000_000


def test_likelihood_ratio_identity():
    rng = np.random.default_rng(0)
    p, q = rng.uniform(0.01, 0.99, 10_000), rng.uniform(0.01, 0.99, 10_000)
    y = (rng.random(10_000) < 0.3).astype(float)
    direct = np.where(y == 1, q / p, (1 - q) / (1 - p))
    np.testing.assert_allclose(
        np.exp(log_likelihood_ratio(y, logit(p), logit(q))), direct, rtol=1e-13
    )


def _enumerate(
    config: StreamConfig, p: np.ndarray, truth: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every outcome vector's probability under ``truth`` (default p) and its final log-e
    vector (depth-first, so outcome vectors sharing a prefix share its computation)."""
    r = p if truth is None else truth
    weights, finals = [], []

    def branch(state: StreamState, weight: float, t: int) -> None:
        if t == len(p):
            weights.append(weight)
            finals.append(state.log_e)
            return
        for outcome in (0.0, 1.0):
            child = copy.deepcopy(state)
            consume(child, config, np.array([outcome]), p[t : t + 1], np.array([t]))
            branch(child, weight * (r[t] if outcome else 1 - r[t]), t + 1)

    branch(StreamState(), 1.0, 0)
    return np.array(weights), np.array(finals)


@pytest.mark.slow
def test_every_component_is_an_exact_martingale_by_enumeration():
    """Σ_y P(y) E_12(y) = 1 over all 4,096 outcome vectors, with every bettor refitting after
    every lead and no gate closed, so each bet really depends on the past."""
    p = np.linspace(0.08, 0.85, 12)
    # A tolerance of (almost) zero: the null is exact calibration and E is a martingale.
    config = StreamConfig(window=12, refit_every=1, min_fit=3, gate_z=0.0, slope_gate=0.0,
                          shrinkage=2.0, ratio=1 + 1e-12, slope=1 + 1e-12)  # fmt: skip
    weights, finals = _enumerate(config, p)
    assert len(weights) == 4096 and weights.sum() == pytest.approx(1.0, abs=1e-12)
    for row in range(finals.shape[1]):
        assert weights @ np.exp(finals[:, row]) == pytest.approx(1.0, abs=1e-9), row
    audit = np.exp(audit_log_e(finals.T))
    assert weights @ audit == pytest.approx(1.0, abs=1e-9)
    # The refitted bettors did bet (the test is not vacuous) ...
    assert np.ptp(finals[:, GATED]) > 1.0
    # ... and a plug-in that peeks at the current lead's outcome breaks the identity.
    peeking = []
    for bits in itertools.product((0.0, 1.0), repeat=len(p)):
        y = np.array(bits)
        x = logit(p)
        shift = np.array([np.log((y[: t + 1].sum() + 1) / (t + 2 - y[: t + 1].sum()))
                          - np.mean(x[: t + 1]) for t in range(len(p))])  # fmt: skip
        peeking.append(np.exp(log_likelihood_ratio(y, x, x + shift).sum()))
    assert weights @ np.array(peeking) > 1.05


@pytest.mark.slow
@pytest.mark.parametrize("edge", ["centre", "upper", "lower"])
def test_within_tolerance_every_component_is_a_supermartingale(edge):
    """The composite null "calibrated within tolerance": for truths anywhere in the band (its
    centre, its upper or its lower edge at every lead) Σ_y P(y) E_12(y) ≤ 1, exactly."""
    p = np.linspace(0.08, 0.85, 12)
    config = StreamConfig(window=12, refit_every=1, min_fit=3, gate_z=0.0, slope_gate=0.0,
                          shrinkage=2.0)  # fmt: skip
    x = logit_of(p)
    centres = np.array([x[0]] + [x[:t].mean() for t in range(1, len(x))])
    low, high = np.array([null_band(x[t : t + 1], centres[t], config) for t in range(len(x))])[
        :, :, 0
    ].T
    truth = {"centre": p, "upper": expit(np.minimum(high, 30)), "lower": expit(low)}[edge]
    weights, finals = _enumerate(config, p, truth)
    for row in range(finals.shape[1]):
        assert weights @ np.exp(finals[:, row]) <= 1.0 + 1e-12, row
    assert weights @ np.exp(audit_log_e(finals.T)) <= 1.0 + 1e-12


def _stream(seed: int, n: int = 10_000, change_at: int | None = None):
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    truth = p.copy()
    if change_at is not None:
        truth[change_at:] = p[change_at:] ** 1.5
    return (rng.random(n) < truth).astype(float), p


def _lead_stream(seed: int, n: int, base: float = 0.05):
    """Calibrated leads shaped like lead scoring: y, p and the truth (here p = truth)."""
    leads = simulate_scores(n, base, seed=seed)
    return leads.y, leads.score, leads.truth


@pytest.mark.slow
def test_calibrated_streams_rarely_alarm_and_never_contradict_the_report():
    """200 calibrated streams of 20,000 leads at a 5% base rate: alarms in ≤ α, and never an
    alarm on leads the report calls calibrated."""
    alarms = contradictions = 0
    for seed in range(200):
        y, p, _ = _lead_stream(seed, 20_000)
        monitor = Monitor(scorer="sim")
        monitor.update_arrays(y, p)
        alarmed = monitor.verdict in ("miscalibrated", "drifted")
        alarms += alarmed
        if alarmed:
            verdict = assay.calibration_from_stats(assay.BinStats.from_arrays(y, p)).verdict
            contradictions += verdict == "calibrated"
    print(f"calibrated streams: {alarms}/200 alarms, {contradictions} contradict the report")
    assert alarms <= 0.05 * 200
    assert contradictions == 0


@pytest.mark.slow
def test_within_tolerance_does_not_alarm():
    """O/E = 1.1 (the score promises 1/1.1 of the truth): inside the tolerance, no alarm."""
    alarms = 0
    for seed in range(20):
        y, _, truth = _lead_stream(500 + seed, 20_000)
        monitor = Monitor(scorer="sim")
        monitor.update_arrays(y, truth / 1.1)
        alarms += monitor.verdict != "no evidence of miscalibration"
    print(f"O/E = 1.1: {alarms}/20 alarms")
    assert alarms == 0


@pytest.mark.slow
def test_a_change_to_twice_the_promise_is_caught():
    """From lead 5,001 the truth is twice the score (O/E = 2): caught, dated, called drifted."""
    audit_delays, drift_delays, verdicts = [], [], []
    for seed in range(40):
        y, p, truth = _lead_stream(10_000 + seed, 20_000)
        p = p.copy()
        p[5000:] = truth[5000:] / 2
        monitor = Monitor(scorer="sim")
        monitor.update_arrays(y, p)
        audit, drift = monitor.state.audit_alarm, monitor.state.drift_alarm
        verdicts.append(monitor.verdict)
        if audit is not None and audit["lead"] > 5000:
            audit_delays.append(audit["lead"] - 5000)
        if drift is not None and drift["lead"] > 5000:
            drift_delays.append(drift["lead"] - 5000)
    print(
        f"O/E 1 → 2 at lead 5,000 (base 5%): audit caught {len(audit_delays)}/40, median delay "
        f"{np.median(audit_delays):.0f} leads; drift caught {len(drift_delays)}/40, median "
        f"delay {np.median(drift_delays):.0f}; verdicts {sorted(set(verdicts))}"
    )
    assert len(audit_delays) >= 36
    assert verdicts.count("drifted") >= 30


def test_splitting_the_stream_never_changes_a_byte():
    y, p = _stream(3, n=3000, change_at=1500)
    whole = Monitor(scorer="sim")
    whole.update_arrays(y, p, times_us=np.arange(1, 3001))
    pieces = Monitor(scorer="sim")
    cuts = [0, 1, 7, 25, 26, 499, 1200, 1201, 2999, 3000]
    for a, b in itertools.pairwise(cuts):
        pieces.update_arrays(y[a:b], p[a:b], times_us=np.arange(a + 1, b + 1))
    assert pieces.to_json() == whole.to_json()
    restored = Monitor.from_dict(json.loads(whole.to_json()))
    assert restored.to_json() == whole.to_json()


def test_state_is_constant_in_size():
    sizes = []
    for n in (2000, 8000):
        y, p = _stream(4, n=n)
        monitor = Monitor(scorer="sim")
        monitor.update_arrays(y, p)
        sizes.append(len(monitor.to_json()))
    assert abs(sizes[1] - sizes[0]) < 0.05 * sizes[0]


def test_verdicts_in_words():
    monitor = Monitor(scorer="sim")
    y, p = _stream(5, n=60)
    monitor.update_arrays(y, p)
    assert monitor.verdict == "not yet"
    assert f"at least {MIN_LEADS}" in monitor.reason
    y, p = _stream(6, n=3000)
    calm = Monitor(scorer="sim")
    calm.update_arrays(y, p)
    assert calm.verdict == "no evidence of miscalibration"
    assert "calibrated" not in calm.verdict.replace("miscalibrated", "")
    rng = np.random.default_rng(7)
    p = rng.beta(2, 5, 3000)
    y = (rng.random(3000) < expit(logit(p) - 0.8)).astype(float)  # over-promising score
    bad = Monitor(scorer="sim")
    bad.update_arrays(y, p)
    assert bad.verdict == "miscalibrated"  # wrong from the first lead: not "drifted"
    assert bad.reason.startswith("miscalibrated from the start: outside tolerance with evidence E")
    assert "1970" not in bad.reason and "lead " in bad.reason  # arrays: no epoch dates


def test_bad_input_is_refused():
    with pytest.raises(AssayInputError, match="alpha"):
        Monitor(scorer="x", alpha=1.5)
    with pytest.raises(AssayInputError, match="labels must be 0 or 1"):
        Monitor(scorer="x").update_arrays([0, 2], [0.1, 0.2])


# ---------------------------------------------------------------------- through the ledger
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _stream_ledger(path, seed: int, *, n: int = 1500, days: int = 360, late_share: float = 0.0):
    """Calibrated leads over ``days``; conversions occur up to 80 days after scoring (horizon
    90) and are recorded on occurrence, or (a ``late_share`` of them) 120 days later."""
    rng = np.random.default_rng(seed)
    scored = np.sort(rng.uniform(0, days, n))
    p = np.round(rng.beta(2, 5, n), 4)
    converted = rng.random(n) < p
    occurred = scored + rng.uniform(0, 80, n)
    recorded = occurred + np.where(rng.random(n) < late_share, 120.0, 0.0)
    now = START + dt.timedelta(days=days + 400)

    def stamp(day: np.ndarray) -> pa.Array:
        start = np.datetime64("2024-01-01T00:00:00", "us")
        return pa.array(start + (day * DAY_US).astype("timedelta64[us]"), UTC)

    ledger = Ledger(path)
    ledger.ingest_predictions(
        pa.table({
            "prediction_id": [f"p{i}" for i in range(n)], "entity_id": [f"e{i}" for i in range(n)],
            "scorer": ["vendor"] * n, "model_version": ["v1"] * n, "score": p,
            "scored_at": stamp(scored), "recorded_at": stamp(scored),
            "horizon_days": pa.array(np.full(n, 90, np.int32)), "target_event": ["won"] * n,
        }),
        now=now,
    )  # fmt: skip
    won = np.flatnonzero(converted)
    ledger.ingest_outcomes(
        pa.table({
            "entity_id": [f"e{i}" for i in won], "event": ["won"] * len(won),
            "occurred_at": stamp(occurred[won]), "recorded_at": stamp(recorded[won]),
        }),
        now=now,
    )  # fmt: skip
    return ledger, scored, p


def test_replay_equals_weekly_updates_and_pending_leads_wait(tmp_path):
    ledger, scored, _ = _stream_ledger(tmp_path / "stream.duckdb", 1, late_share=0.2)
    with ledger:
        weekly = Monitor(scorer="vendor", grace_days=3)
        consumed = 0
        for week in range(1, 70):
            as_of = START + dt.timedelta(weeks=week)
            path = weekly.update(ledger, as_of=as_of)
            consumed += len(path.times_us)
            # only leads whose 90 + 3 days have passed are ever consumed
            matured = np.sum(scored + 93 <= week * 7)
            assert weekly.matured == consumed == matured
        replayed = Monitor(scorer="vendor", grace_days=3)
        replayed.replay(ledger, as_of=START + dt.timedelta(weeks=69))
        assert replayed.to_json() == weekly.to_json()
        assert weekly.late_flips > 0  # outcomes recorded after maturity are counted ...
        labels_now = ledger.labels(scorer="vendor", as_of=START + dt.timedelta(weeks=69))
        matured_now = labels_now.table.filter(labels_now.table["matured"])
        positives_now = sum(label == "positive" for label in matured_now["label"].to_pylist())
        path = replayed.replay(ledger, as_of=START + dt.timedelta(weeks=69))
        # ... but never change the process: each lead keeps its label as of its maturity
        assert int(path.outcome.sum()) == positives_now - weekly.late_flips
        with pytest.raises(AssayInputError, match="before this monitor's last update"):
            weekly.update(ledger, as_of=START)
        with pytest.raises(AssayInputError, match="in the future"):
            weekly.update(ledger, as_of=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))


@pytest.mark.slow
def test_label_delay_keeps_the_false_alarm_rate(tmp_path):
    """Weekly updates on calibrated streams with a 90-day horizon: the monitor (matured leads
    only) stays quiet, while treating still-pending leads as negatives alarms on nearly all."""
    honest = naive = 0
    streams = 12
    for seed in range(streams):
        ledger, scored, p = _stream_ledger(tmp_path / f"s{seed}.duckdb", 100 + seed)
        with ledger:
            monitor = Monitor(scorer="vendor")
            wrong = Monitor(scorer="vendor")
            for week in range(1, 52):
                as_of = START + dt.timedelta(weeks=week)
                monitor.update(ledger, as_of=as_of)
                fresh = (scored > (week - 1) * 7) & (scored <= week * 7)
                if fresh.any():  # this week's leads, labelled now: pending counts as negative
                    labels = ledger.labels(scorer="vendor", as_of=as_of).table
                    positive = {
                        pid for pid, label in zip(
                            labels["prediction_id"].to_pylist(), labels["label"].to_pylist(),
                            strict=True,
                        ) if label == "positive"
                    }  # fmt: skip
                    ids = np.flatnonzero(fresh)
                    wrong.update_arrays([f"p{i}" in positive for i in ids], p[ids])
            honest += monitor.state.audit_alarm is not None
            naive += wrong.state.audit_alarm is not None
    print(f"label delay: monitor alarms {honest}/{streams}, pending-as-negative {naive}/{streams}")
    assert honest <= 2
    assert naive >= streams - 2


@pytest.mark.usefixtures("fast_posterior")  # plumbing (tests/conftest.py)
def test_cli_monitor_continues_its_stored_state_and_the_report_shows_it(tmp_path):
    from typer.testing import CliRunner

    from assay.audit.document import verify_document
    from assay.audit.monitor import monitor_summary
    from assay.audit.report import Report, build_report
    from assay.cli.main import app
    from assay.report.html import render_html

    path = tmp_path / "stream.duckdb"
    _stream_ledger(path, 2)[0].close()
    runner = CliRunner()
    base = ["monitor", "--ledger", str(path), "--scorer", "vendor"]
    first = runner.invoke(app, [*base, "--as-of", "2024-07-01T00:00:00Z"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, [*base, "--as-of", "2025-03-01T00:00:00Z"])
    assert second.exit_code == 0, second.output
    assert "evidence E = " in second.output and "new)" in second.output
    earlier = runner.invoke(app, [*base, "--as-of", "2024-08-01T00:00:00Z"])
    assert earlier.exit_code == 1 and "replay" in earlier.output
    with Ledger(path) as ledger:
        key = Monitor(scorer="vendor").key
        incremental = ledger.monitor_state(key)
    rebuilt = runner.invoke(app, [*base, "--as-of", "2025-03-01T00:00:00Z", "--replay"])
    assert rebuilt.exit_code == 0, rebuilt.output
    as_of = "2025-03-01T00:00:00+00:00"
    with Ledger(path) as ledger:
        assert ledger.monitor_state(key) == incremental
        summary = monitor_summary(ledger, scorer="vendor", as_of=as_of)
        assert summary.monitor.to_json() == incremental
        assert sum(row.leads for row in summary.months) == summary.monitor.matured
        assert sum(row.observed for row in summary.months) == int(summary.path.outcome.sum())
        # The drawn gap is the running sum of expected minus observed conversions.
        gap = np.cumsum(summary.path.probability) - np.cumsum(summary.path.outcome)
        np.testing.assert_allclose(summary.chart.gap, gap, atol=1e-9)
        html = render_html(Report(as_of=as_of, audits=[], monitors=[summary]))
        assert "Standing evidence" not in html  # no audit for the scorer, no section
        # The report finds the stored monitor itself and replays it to the same state.
        report = build_report(ledger, as_of=as_of)
    assert [m.monitor.to_json() for m in report.monitors] == [incremental]
    html, js = tmp_path / "report.html", tmp_path / "report.json"
    shown = runner.invoke(
        app, ["report", "--ledger", str(path), "--as-of", as_of, "--html", str(html),
              "--json", str(js)],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "evidence E = " in shown.output and "new)" not in shown.output
    assert "Standing evidence" in html.read_text() and "Evidence meter" in html.read_text()
    document = json.loads(js.read_text())
    assert document["monitors"][0]["monitor"] == json.loads(incremental)
    verified = runner.invoke(app, ["verify", str(js), "--ledger", str(path)])
    assert verified.exit_code == 0 and "identical" in verified.output, verified.output
    with Ledger(path, read_only=True) as ledger:
        assert verify_document(document, ledger) == []
        document["monitors"][0]["months"][0]["observed"] += 1
        assert verify_document(document, ledger) == [
            f"monitors[0].months[0].observed: recorded "
            f"{document['monitors'][0]['months'][0]['observed']}, now "
            f"{document['monitors'][0]['months'][0]['observed'] - 1}"
        ]
