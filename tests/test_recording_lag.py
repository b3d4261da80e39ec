"""The recording lag: measured from the ledger, waited for by the audit and the monitor.

Simulated CRMs score 3,000 leads over a year with a perfectly calibrated score (base rate about
7%) and record each conversion 30–90 days after it occurs (60-day horizon). Counting a lead
negative as soon as its window closes reads every late record as a missed conversion.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest

from assay.audit.monitor import Monitor
from assay.audit.scorer import audit, evidence
from assay.ledger import Ledger

UTC = pa.timestamp("us", tz="UTC")
DAY_US = 86_400_000_000
START = np.datetime64("2023-01-01T00:00:00", "us")
HORIZON = 60
AS_OF_DAY = 395  # 30 days after the last lead is scored


@dataclass
class Crm:
    """A simulated ledger and the truth behind it (times in µs since START)."""

    ledger: Ledger
    as_of: dt.datetime
    scored: np.ndarray
    p: np.ndarray
    converted: np.ndarray
    occurred: np.ndarray
    recorded: np.ndarray


def _us(days: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(days) * DAY_US).astype(np.int64)


def _stamp(us: np.ndarray) -> pa.Array:
    return pa.array(START + us.astype("timedelta64[us]"), UTC)


def _moment(us: int) -> dt.datetime:
    return dt.datetime(2023, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(us))


def simulate(seed: int, *, n: int = 3000, path: str = ":memory:") -> Crm:
    """Calibrated leads; each conversion occurs inside its window and is recorded 30–90 days
    later; a 'demo' event is recorded within 2 days (it must not move the 'won' lag). Only the
    outcomes recorded by the as-of are in the ledger, ingested at the as-of."""
    rng = np.random.default_rng(seed)
    scored = _us(np.sort(rng.uniform(0, 365, n)))
    p = np.round(rng.beta(0.8, 10, n), 4)
    converted = rng.random(n) < p
    occurred = scored + _us(rng.uniform(0, HORIZON, n))
    recorded = occurred + _us(rng.uniform(30, 90, n))
    as_of_us = AS_OF_DAY * DAY_US
    as_of = _moment(as_of_us)
    ledger = Ledger(path)
    ids = [f"e{i}" for i in range(n)]
    ledger.ingest_predictions(
        pa.table({
            "prediction_id": [f"p{i}" for i in range(n)], "entity_id": ids,
            "scorer": ["vendor"] * n, "score": p, "scored_at": _stamp(scored),
            "recorded_at": _stamp(scored), "horizon_days": pa.array(np.full(n, HORIZON, np.int32)),
            "target_event": ["won"] * n,
        }),
        now=as_of,
    )  # fmt: skip
    demo = rng.random(n) < 0.3
    demo_at = scored + _us(rng.uniform(0, 10, n))
    demo_recorded = demo_at + _us(rng.uniform(0, 2, n))
    won = np.flatnonzero(converted & (recorded <= as_of_us))
    shown = np.flatnonzero(demo & (demo_recorded <= as_of_us))
    ledger.ingest_outcomes(
        pa.table({
            "entity_id": [ids[i] for i in np.concatenate([won, shown])],
            "event": ["won"] * len(won) + ["demo"] * len(shown),
            "occurred_at": _stamp(np.concatenate([occurred[won], demo_at[shown]])),
            "recorded_at": _stamp(np.concatenate([recorded[won], demo_recorded[shown]])),
        }),
        now=as_of,
    )  # fmt: skip
    return Crm(ledger, as_of, scored, p, converted, occurred, recorded)


def measured_lags(crm: Crm) -> np.ndarray:
    """The 'won' lags (days) the ledger can see as of T, from the simulation itself."""
    visible = crm.converted & (crm.recorded <= AS_OF_DAY * DAY_US)
    return (crm.recorded[visible] - crm.occurred[visible]) / DAY_US


def gap(found) -> float:  # type: ignore[no-untyped-def]
    """Observed minus promised conversion rate of the audit's evidence."""
    return float(found.labels.mean() - found.prob.mean())


@pytest.mark.slow
def test_thirty_calibrated_ledgers_with_a_30_to_90_day_recording_lag():
    """The audit (default: measured lag) is unbiased and the monitor stays quiet on every
    ledger; without the wait both read the lag as miscalibration.

    Print the table: ``pytest tests/test_recording_lag.py -q -s -k thirty``.
    """
    rows = []
    for seed in range(30):
        crm = simulate(1000 + seed)
        with crm.ledger as ledger:
            waited = evidence(ledger, scorer="vendor", as_of=crm.as_of)
            plain = evidence(ledger, scorer="vendor", as_of=crm.as_of, recording_lag_days=0)
            monitor = Monitor(scorer="vendor")
            monitor.update(ledger, as_of=crm.as_of)
            unwaited = Monitor(scorer="vendor", grace_days=0)
            unwaited.update(ledger, as_of=crm.as_of)
            rows.append(
                (
                    seed, waited.recording_lag_days["won"], len(waited.labels), gap(waited),
                    len(plain.labels), gap(plain), monitor.matured,
                    monitor.state.audit_alarm is None and monitor.state.drift_alarm is None,
                    unwaited.state.audit_alarm is None and unwaited.state.drift_alarm is None,
                )
            )  # fmt: skip
    table = np.array([row[1:] for row in rows], dtype=float)
    print(
        "\nseed  lag(d)  judged  obs-prom | no wait: judged  obs-prom | monitor: leads  quiet"
        "  quiet without wait"
    )
    for seed, lag, n, g, n0, g0, leads, quiet, quiet0 in rows:
        print(
            f"{seed:4d}  {lag:6.1f}  {n:6d}  {g:+.4f}  |        {n0:6d}   {g0:+.4f}  |  "
            f"     {leads:6d}  {'yes' if quiet else 'NO':>5}  {'yes' if quiet0 else 'NO':>5}"
        )
    waited_gap, plain_gap = table[:, 2], table[:, 4]
    print(
        f"measured lag: obs-prom mean {waited_gap.mean():+.4f}, sd {waited_gap.std(ddof=1):.4f} "
        f"[{waited_gap.min():+.4f}, {waited_gap.max():+.4f}]; monitor quiet on "
        f"{int(table[:, 6].sum())}/30\n"
        f"no wait:      obs-prom mean {plain_gap.mean():+.4f}, sd {plain_gap.std(ddof=1):.4f} "
        f"[{plain_gap.min():+.4f}, {plain_gap.max():+.4f}]; monitor quiet on "
        f"{int(table[:, 7].sum())}/30"
    )
    assert abs(waited_gap.mean()) <= 0.005
    assert table[:, 6].all(), "the monitor alarmed on a calibrated score"
    assert plain_gap.mean() < -0.005 and table[:, 7].sum() <= 15  # the bias it removes


def test_the_measured_lag_is_the_99th_percentile_of_the_visible_lags():
    crm = simulate(7)
    with crm.ledger as ledger:
        lag = ledger.recording_lag(as_of=crm.as_of)
        lags = measured_lags(crm)
        assert lag.measured["won"] == len(lags)
        assert lag.days["won"] == pytest.approx(np.quantile(lags, 0.99), abs=1e-9)
        assert lag.days["demo"] < 2  # per event: the quick 'demo' records do not mix in
        assert lag.defaulted == 0
        earlier = crm.as_of - dt.timedelta(days=120)  # only what was recorded by then
        cutoff = (AS_OF_DAY - 120) * DAY_US
        visible = crm.converted & (crm.recorded <= cutoff)
        then = (crm.recorded[visible] - crm.occurred[visible]) / DAY_US
        assert ledger.recording_lag(as_of=earlier).days["won"] == pytest.approx(
            np.quantile(then, 0.99), abs=1e-9
        )


def test_outcomes_without_their_own_recorded_at_do_not_measure_the_lag():
    """History loaded after the fact gets the ingest time as recorded_at: a year-long "lag"
    that says when the file was loaded. Neither a missing column nor empty cells count."""
    crm = simulate(8)
    with crm.ledger as ledger:
        before = ledger.recording_lag(as_of=crm.as_of)
        old = [f"old{i}" for i in range(300)]
        occurred = _stamp(_us(np.linspace(-700, -400, 300)))
        ledger.ingest_outcomes(
            pa.table({"entity_id": old, "event": ["won"] * 300, "occurred_at": occurred}),
            now=crm.as_of,
        )
        cells = pa.array([None] * 299 + [crm.as_of - dt.timedelta(days=1)], UTC)
        ledger.ingest_outcomes(
            pa.table({
                "entity_id": [f"x{i}" for i in range(300)], "event": ["won"] * 300,
                "occurred_at": occurred, "recorded_at": cells,
            }),
            now=crm.as_of + dt.timedelta(seconds=1),
        )  # fmt: skip
        after = ledger.recording_lag(as_of=crm.as_of + dt.timedelta(seconds=1))
        assert after.defaulted == 599
        assert after.measured["won"] == before.measured["won"] + 1  # the one dated cell
        assert after.days["won"] < before.days["won"] + 5
        assert ledger.verify().ok


def test_labels_wait_for_the_lag_exactly_as_the_rule_says():
    """The ledger's judged labels against the rule written out on the simulated truth:
    matured iff s + h + L ≤ T, positive iff the conversion was recorded by T."""
    crm = simulate(9, n=1500)
    with crm.ledger as ledger:
        judged = ledger.judged_labels(as_of=crm.as_of, scorer="vendor")
        lag_us = int(np.ceil(judged.recording_lag.days["won"] * DAY_US))
        t = AS_OF_DAY * DAY_US
        matured = crm.scored + HORIZON * DAY_US + lag_us <= t
        positive = crm.converted & (crm.recorded <= t)
        table = judged.table
        order = np.array([int(pid[1:]) for pid in table["prediction_id"].to_pylist()])
        np.testing.assert_array_equal(table["matured"].to_numpy(), matured[order])
        expected = np.where(positive, "positive", np.where(matured, "negative", "pending"))
        assert table["label"].to_pylist() == expected[order].tolist()
        plain = ledger.labels(as_of=crm.as_of, scorer="vendor").table  # DESIGN §6: no wait
        assert plain["matured"].to_numpy().sum() > matured.sum()


def test_the_audit_reports_the_lag_and_which_cohorts_still_receive_records():
    crm = simulate(10, n=1500)
    with crm.ledger as ledger:
        result = audit(ledger, scorer="vendor", as_of=crm.as_of)
        lag = result.reproducibility["recording_lag_days"]["won"]
        assert 85 < lag < 90
        since = crm.as_of - dt.timedelta(days=lag + HORIZON)
        # the simulated CRM also records "demo" events and was loaded after the fact: both
        # are said first (assay.ledger.checks); the lag note follows
        assert result.notes[0].startswith("470 outcomes have an event that is no prediction")
        assert result.notes[1].startswith("1,500 predictions were loaded after the fact")
        assert result.notes[2:] == [
            f"cohorts scored after {since:%Y-%m-%d} are still receiving records: 'won' outcomes "
            f"are recorded up to {lag:.1f} days after they occur (the 99% quantile of "
            f"{ledger.recording_lag(as_of=crm.as_of).measured['won']:,} measured), so their "
            "leads stay pending until that wait has passed"
        ]
        assert result.to_dict()["notes"] == result.notes
        fixed = evidence(ledger, scorer="vendor", as_of=crm.as_of, recording_lag_days=10)
        assert fixed.recording_lag_days == {"*": 10.0} and "set, not measured" in fixed.notes[2]


def _stopping_times(crm: Crm) -> dict[str, int]:
    """m = min{t ≥ c : t − c ≥ L(t)} per lead by brute force over the lag's steps (µs)."""
    visible = crm.converted
    recorded, lags = crm.recorded[visible], crm.recorded[visible] - crm.occurred[visible]
    steps = np.unique(recorded)
    level = [int(np.ceil(np.quantile(lags[recorded <= s], 0.99))) for s in steps]
    ends = np.append(steps[1:], np.iinfo(np.int64).max)
    out = {}
    for i, closes in enumerate(crm.scored + HORIZON * DAY_US):
        for start, lag, end in zip(steps, level, ends, strict=True):
            m = max(int(start), int(closes) + lag)
            if m < end:
                out[f"p{i}"] = m
                break
    return out


def test_the_monitor_waits_the_lag_measured_when_each_lead_matures():
    crm = simulate(11, n=600)
    with crm.ledger as ledger:
        leads = ledger.matured_leads(
            scorer="vendor", model_version=None, since=None, until=crm.as_of, grace=None
        )
        got = dict(
            zip(leads["prediction_id"].to_pylist(), leads["matures_us"].to_pylist(), strict=True)
        )
        epoch = int((START - np.datetime64("1970-01-01T00:00:00", "us")).astype(np.int64))
        want = {
            pid: epoch + m for pid, m in _stopping_times(crm).items() if m <= AS_OF_DAY * DAY_US
        }
        assert got.keys() == want.keys()
        assert max(abs(got[pid] - want[pid]) for pid in got) <= 1  # numpy vs DuckDB rounding


def test_measured_grace_gives_the_same_stream_for_any_update_schedule():
    crm = simulate(12, n=1500)
    with crm.ledger as ledger:
        monthly = Monitor(scorer="vendor")
        for month in range(1, 14):
            monthly.update(ledger, as_of=_moment(month * 30 * DAY_US))
        monthly.update(ledger, as_of=crm.as_of)
        replayed = Monitor(scorer="vendor")
        replayed.replay(ledger, as_of=crm.as_of)
        assert monthly.to_json() == replayed.to_json()
        assert Monitor.from_dict(replayed.to_dict()).grace_days is None
