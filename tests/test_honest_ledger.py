"""The honest score served from a ledger: versions, records, replay, the hold-out, the CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.honest_sim import vendor_history
from typer.testing import CliRunner

from assay._validation import AssayInputError
from assay.cli.main import app
from assay.ledger import Ledger
from assay.models.honest import build_map, latest_map, score_honestly
from assay.models.registry import list_models
from assay.models.replay import replay
from assay.stats.honest import HonestMap

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def ledger(tmp_path: Path):  # type: ignore[no-untyped-def]
    """3,000 vendor leads scored in January 2024, matured by March (segments: region)."""
    store = Ledger(tmp_path / "honest.duckdb")
    predictions, outcomes, *_ = vendor_history("a", 3_000, START, 1)
    store.ingest_predictions(predictions, segments=["region"], now=START + 31 * DAY)
    store.ingest_outcomes(outcomes, now=START + 40 * DAY)
    yield store
    store.close()


def _new_leads(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "entity_id": [f"new{seed}-{i}" for i in range(n)],
        "score": np.round(rng.beta(2, 8, n), 4), "region": rng.choice(["emea", "amer"], n),
    })  # fmt: skip


def test_served_scores_are_recorded_as_the_honest_scorer(ledger: Ledger) -> None:
    served = score_honestly(ledger, "vendor", _new_leads(500, 2), segment_key="region",
                            now=START + 70 * DAY)  # fmt: skip
    version = served.version
    assert version.record.name == "vendor~honest" and version.map.version == 1
    assert version.map.evidence.total == 3_000 and version.new_leads == 3_000
    rows = ledger.con.sql(
        "SELECT prediction_id, probability, abstained, model_version FROM predictions "
        "WHERE scorer = 'vendor~honest' ORDER BY prediction_id"
    ).to_arrow_table()
    leads = served.leads.sort_by("prediction_id")
    assert rows.num_rows == 500
    assert set(rows["model_version"].to_pylist()) == {version.record.version}
    ok = pc.equal(leads["status"], "ok")
    np.testing.assert_array_equal(
        rows.filter(ok)["probability"].to_numpy(), leads.filter(ok)["probability"].to_numpy()
    )
    assert rows["abstained"].to_pylist() == pc.invert(ok).to_pylist()
    assert 0 < pc.sum(ok.cast(pa.int64())).as_py() < 500


def test_every_served_score_replays_from_its_map_version(ledger: Ledger) -> None:
    score_honestly(ledger, "vendor", _new_leads(300, 3), segment_key="region",
                   now=START + 70 * DAY)  # fmt: skip
    result = replay(ledger, scorer="vendor~honest")
    assert result.ok and result.replayed == 300, result.verdict()


def test_an_update_adds_only_the_newly_matured_leads_and_keeps_the_history(
    ledger: Ledger,
) -> None:
    first = build_map(ledger, "vendor", segment_key="region", now=START + 70 * DAY)
    assert build_map(ledger, "vendor", now=START + 71 * DAY).record == first.record  # none new
    predictions, outcomes, score, won, region = vendor_history("b", 2_000, START + 75 * DAY, 2)
    ledger.ingest_predictions(predictions, segments=["region"], now=START + 106 * DAY)
    ledger.ingest_outcomes(outcomes, now=START + 110 * DAY)
    second = build_map(ledger, "vendor", now=START + 220 * DAY)
    assert second.new_leads == 2_000 and second.map.version == 2
    assert second.map.history == (first.map.fingerprint,)
    refit = first.map.update(score, won, region)
    np.testing.assert_array_equal(second.map.table, refit.table)
    versions = [r.version for r in list_models(ledger) if r.name == "vendor~honest"]
    assert versions == [first.record.version, second.record.version]
    latest = latest_map(ledger, "vendor")
    assert latest is not None and latest.record == second.record


def test_a_map_built_within_fresh_for_is_reused(ledger: Ledger) -> None:
    first = build_map(ledger, "vendor", now=START + 70 * DAY)
    predictions, outcomes, *_ = vendor_history("c", 500, START + 75 * DAY, 3)
    ledger.ingest_predictions(predictions, now=START + 106 * DAY)
    ledger.ingest_outcomes(outcomes, now=START + 110 * DAY)
    later = START + 150 * DAY
    reused = build_map(ledger, "vendor", now=later, fresh_for=dt.timedelta(days=100))
    assert reused.record == first.record
    assert build_map(ledger, "vendor", now=later).map.version == 2


def test_the_honest_scorer_is_judged_only_on_outcomes_after_its_map(ledger: Ledger) -> None:
    """A lead served again after its outcome taught the map is in-sample; a new lead is not."""
    moment = START + 70 * DAY
    taught = ledger.con.sql("SELECT entity_id FROM outcomes ORDER BY entity_id LIMIT 2").fetchall()
    known = pa.table({"entity_id": [row[0] for row in taught], "score": [0.2, 0.3]})
    score_honestly(ledger, "vendor", known, now=moment)
    new = _new_leads(200, 5)
    score_honestly(ledger, "vendor", new, now=moment + DAY)
    hit = new["entity_id"].to_pylist()[:40]
    ledger.ingest_outcomes(
        pa.table({"entity_id": hit, "event": ["won"] * 40, "occurred_at": [moment + 5 * DAY] * 40}),
        now=moment + 6 * DAY,
    )
    labels = ledger.judged_labels(as_of=moment + 60 * DAY, scorer="vendor~honest")
    judged = set(labels.table["entity_id"].to_pylist())
    assert judged == set(new["entity_id"].to_pylist())
    assert labels.in_sample is not None and labels.in_sample.leads == 2


def test_bad_raw_scores_are_refused_naming_row_and_column(ledger: Ledger) -> None:
    bad = pa.table({"entity_id": ["x", "y"], "score": [0.2, 1.7]})
    with pytest.raises(AssayInputError, match=r"row 2, column score: 1.7 is not a probability"):
        score_honestly(ledger, "vendor", bad, now=START + 70 * DAY)
    assert ledger.con.sql(
        "SELECT count(*) FROM predictions WHERE scorer LIKE '%honest'"
    ).fetchall() == [(0,)]
    assert latest_map(ledger, "vendor") is None  # no map version was built for a refused file
    percent = pa.table({"entity_id": ["x"], "score": [20.0]})
    served = score_honestly(ledger, "vendor", percent, score_kind="percent", now=START + 70 * DAY)
    assert served.leads["raw_score"].to_pylist() == [0.2]


def test_a_vendor_without_matured_leads_is_not_yet(tmp_path: Path) -> None:
    with Ledger(tmp_path / "young.duckdb") as store:
        predictions, *_ = vendor_history("y", 100, START, 4)
        window = predictions.schema.get_field_index("horizon_days")
        predictions = predictions.set_column(window, "horizon_days", pa.array([90] * 100))
        store.ingest_predictions(predictions, now=START + 31 * DAY)
        with pytest.raises(AssayInputError, match="no matured leads yet"):
            build_map(store, "vendor", now=START + 32 * DAY)


def test_cli_serves_writes_the_csv_and_says_how_to_replay(ledger: Ledger, tmp_path: Path) -> None:
    path = Path(ledger.path)
    ledger.close()
    leads = tmp_path / "new.csv"
    _new_leads(40, 6).to_pandas().rename(columns={"score": "Lead Score"}).to_csv(leads, index=False)
    result = CliRunner().invoke(
        app,
        ["score", "--honest", "--scorer", "vendor", str(leads), "--score-column", "Lead Score",
         "--segment", "region", "--ledger", str(path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "honest map vendor~honest@v1-" in result.output
    assert "served 40 leads" in result.output
    assert "assay replay --scorer vendor~honest --model-version v1-" in result.output
    written = (tmp_path / "new.csv.honest.csv").read_text().splitlines()
    assert written[0].split(",")[:3] == ["entity_id", "prediction_id", "raw_score"]
    assert len(written) == 41
    mixed = CliRunner().invoke(
        app, ["score", "--honest", "--model", "m@1", str(leads), "--ledger", str(path)]
    )
    assert mixed.exit_code != 0 and "give one of them" in mixed.output


def test_the_stored_map_is_the_served_map(ledger: Ledger) -> None:
    version = build_map(ledger, "vendor", now=START + 70 * DAY)
    stored = latest_map(ledger, "vendor")
    assert stored is not None
    assert HonestMap.from_json(stored.map.to_json()).fingerprint == version.map.fingerprint
    assert stored.record.fingerprint == version.map.fingerprint  # sha256 of the JSON document
