"""Score through the ledger and replay: every score re-runs from its frozen inputs.

The logistic pipeline and its ONNX twin (``tests/model_fixtures.py``) score 10,000 leads each
from a CSV; replaying them recomputes every probability bit for bit, and the stored ones agree
with the pipeline's own ``predict_proba`` on the leads (an independent reference). A pipeline
ending in ``DummyClassifier(strategy="stratified")`` draws at random: scored without a seed its
replay differs (and names the ids), scored with ``--seed 7`` it reproduces.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline
from tests.model_fixtures import FEATURES, fitted_pipeline, lead_frame, onnx_bytes, skops_bytes
from typer.testing import CliRunner

from assay._validation import AssayInputError
from assay.cli.main import app
from assay.ledger import Ledger
from assay.models.registry import register_model
from assay.models.replay import compare_probabilities, replay
from assay.models.scoring import score_leads

pytest.importorskip("skops")
pytest.importorskip("onnxruntime")

N = 10_000
REGISTERED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
FIRST = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
SECOND = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
DEFAULTS = {"horizon_days": 90, "target_event": "won"}


def _leads(n: int, seed: int, prefix: str) -> pd.DataFrame:
    frame = lead_frame(n, seed).drop(columns="converted")
    frame.insert(0, "entity_id", [f"{prefix}-{i:05d}" for i in range(n)])
    return frame


def _stratified(seed: int = 0) -> Pipeline:
    pipe = fitted_pipeline(seed, n=500)
    frame = lead_frame(500, seed)
    columns = pipe.named_steps["columns"]
    model = Pipeline([("columns", columns), ("model", DummyClassifier(strategy="stratified"))])
    return model.fit(frame[list(FEATURES)], frame["converted"])


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A ledger: the pipeline (skops) and its ONNX twin each score the same 10,000 leads."""
    root = tmp_path_factory.mktemp("replay")
    pipe = fitted_pipeline()
    leads = _leads(N, 1, "lead")
    csv = root / "leads.csv"
    leads.to_csv(csv, index=False)
    path = root / "ledger.duckdb"
    with Ledger(path) as ledger:
        register_model(ledger, "leads", "1", skops_bytes(pipe), now=REGISTERED)
        register_model(ledger, "leads-onnx", "1", onnx_bytes(pipe), now=REGISTERED)
        receipts = [
            score_leads(ledger, ref, csv, defaults=DEFAULTS, now=FIRST)
            for ref in ("leads@1", "leads-onnx@1")
        ]
    return {"root": root, "path": path, "pipe": pipe, "leads": leads, "receipts": receipts}


def test_scores_are_the_pipelines_own_probabilities(scored: dict[str, Any]) -> None:
    """The stored score of each lead is predict_proba on the leads as written (CSV round trip)."""
    assert [r.rows_new for r in scored["receipts"]] == [N, N]
    expected = scored["pipe"].predict_proba(scored["leads"][list(FEATURES)])[:, 1]
    with Ledger(scored["path"], read_only=True) as ledger:
        rows = ledger.con.execute(
            "SELECT scorer, entity_id, probability, model_version, seed, input_hash "
            "FROM predictions ORDER BY scorer, entity_id"
        ).df()
        stored_inputs = ledger.con.execute("SELECT count(*) FROM inputs").fetchall()[0][0]
    skops = rows[rows.scorer == "leads"]
    onnx = rows[rows.scorer == "leads-onnx"]
    np.testing.assert_array_equal(skops.probability.to_numpy(), expected)  # bit for bit
    np.testing.assert_allclose(onnx.probability.to_numpy(), expected, atol=1e-5)  # float32
    assert set(rows.model_version) == {"1"} and rows.seed.isna().all()
    # both models read the same features: one record per distinct lead, shared
    assert stored_inputs == N
    assert (skops.input_hash.to_numpy() == onnx.input_hash.to_numpy()).all()


def test_replaying_everything_is_identical(scored: dict[str, Any]) -> None:
    with Ledger(scored["path"], read_only=True) as ledger:
        result = replay(ledger)
    assert [(v.scorer, v.replayed, v.identical, v.different) for v in result.versions] == [
        ("leads", N, N, 0),
        ("leads-onnx", N, N, 0),
    ]
    assert result.ok and result.unreplayable == []
    assert all(len(v.fingerprint) == 64 for v in result.versions)
    shown = CliRunner().invoke(app, ["replay", "--ledger", str(scored["path"])])
    assert shown.exit_code == 0, shown.output
    assert "reproduced: 20,000 predictions replayed, all identical" in shown.output


def test_sample_and_as_of_restrict_what_is_replayed(scored: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "two.duckdb"
    shutil.copy(scored["path"], path)
    later = _leads(300, 2, "later")
    with Ledger(path) as ledger:
        score_leads(ledger, "leads@1", later, defaults=DEFAULTS, now=SECOND)
        everything = replay(ledger, scorer="leads")
        sampled = replay(ledger, scorer="leads", sample=250, seed=3, as_of=SECOND)
        again = replay(ledger, scorer="leads", sample=250, seed=3, as_of=SECOND)
        before = replay(ledger, scorer="leads", as_of=SECOND - dt.timedelta(days=1))
        unregistered = replay(ledger, as_of=REGISTERED - dt.timedelta(days=1))
    assert everything.versions[0].replayed == N + 300
    assert (sampled.versions[0].replayed, sampled.versions[0].replayable) == (250, N + 300)
    assert sampled.to_dict() == again.to_dict()  # the same sample for the same seed
    assert before.versions[0].replayed == N
    # before the models were registered (and any score recorded): nothing to replay
    assert unregistered.versions == [] and unregistered.unreplayable == []


def test_an_unlogged_seed_is_a_difference_and_a_logged_one_reproduces(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dummy.duckdb"
    leads = _leads(400, 4, "d")
    with Ledger(path) as ledger:
        data = skops_bytes(_stratified())
        register_model(ledger, "coin", "1", data, now=REGISTERED)
        register_model(ledger, "coin-seeded", "1", data, now=REGISTERED)
        score_leads(ledger, "coin@1", leads, defaults=DEFAULTS, now=FIRST)
        score_leads(ledger, "coin-seeded@1", leads, seed=7, defaults=DEFAULTS, now=FIRST)
        unseeded = replay(ledger, scorer="coin")
        seeded = replay(ledger, scorer="coin-seeded")
        ids = ledger.con.execute(
            "SELECT prediction_id FROM predictions WHERE scorer = 'coin' ORDER BY prediction_id"
        ).fetchall()
    found = unseeded.versions[0]
    assert found.different > 0 and not unseeded.ok
    assert found.identical + found.within_tolerance + found.different == 400
    assert found.largest_difference == 1.0  # the stratified dummy answers 0 or 1
    assert list(found.first_different) == sorted(found.first_different)
    assert set(found.first_different) <= {row[0] for row in ids}
    assert len(found.first_different) == min(10, found.different)
    assert seeded.ok and seeded.versions[0].identical == 400
    shown = CliRunner().invoke(app, ["replay", "--ledger", str(path), "--scorer", "coin"])
    assert shown.exit_code == 1, shown.output
    assert "DIFFERENT" in shown.output
    assert any(row[0] in shown.output for row in ids)  # a fresh draw: other ids, but named
    ok = CliRunner().invoke(app, ["replay", "--ledger", str(path), "--scorer", "coin-seeded"])
    assert ok.exit_code == 0, ok.output


def test_cli_scores_with_a_seed_and_bad_input_exits_2(tmp_path: Path) -> None:
    path, csv = tmp_path / "cli.duckdb", tmp_path / "leads.csv"
    _leads(50, 5, "c").to_csv(csv, index=False)
    with Ledger(path) as ledger:
        register_model(ledger, "coin", "1", skops_bytes(_stratified()), now=REGISTERED)
    scored = CliRunner().invoke(
        app,
        ["score", "--model", "coin@1", str(csv), "--ledger", str(path), "--seed", "7",
         "--default", "horizon_days=90", "--default", "target_event=won"],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert "batch" in scored.output and "50 new predictions rows" in scored.output
    shown = CliRunner().invoke(app, ["replay", "--ledger", str(path)])
    assert shown.exit_code == 0, shown.output
    unknown = CliRunner().invoke(app, ["replay", "--ledger", str(path), "--scorer", "nobody"])
    assert unknown.exit_code == 2 and "nobody" in unknown.output


def test_a_lead_file_missing_a_feature_is_refused_naming_it(scored: dict[str, Any]) -> None:
    leads = _leads(20, 6, "m").drop(columns=["visits", "channel"])
    with Ledger(":memory:") as ledger:
        register_model(ledger, "leads", "1", skops_bytes(scored["pipe"]))
        with pytest.raises(AssayInputError, match=r"lack 2 column.*leads@1 reads: visits, channel"):
            score_leads(ledger, "leads@1", leads, defaults=DEFAULTS)
        assert ledger.con.execute("SELECT count(*) FROM predictions").fetchall()[0][0] == 0


def test_compare_probabilities_counts_each_kind() -> None:
    stored = np.array([0.5, 0.25, 0.1, 0.3, np.nan, 0.0])
    again = np.array([0.5, 0.25 + 1e-12, 0.1 + 1e-3, 0.3, 0.2, -0.0])
    found = compare_probabilities(stored, again, tolerance=1e-9)
    # -0.0 is not bitwise 0.0, but within any tolerance; a missing side is a difference
    assert (found.identical, found.within_tolerance, found.different) == (2, 2, 2)
    assert found.largest_difference == np.inf
    assert found.differs.tolist() == [False, False, True, False, True, False]
    with pytest.raises(AssayInputError, match="3 probabilities for 2 rows"):
        compare_probabilities(np.zeros(2), np.zeros(3))


def test_service_replay_needs_admin_and_matches_python(
    scored: dict[str, Any], tmp_path: Path
) -> None:
    from tests.test_service import Service

    (tmp_path / "workspaces").mkdir()
    shutil.copy(scored["path"], tmp_path / "workspaces" / "acme.duckdb")
    service = Service(tmp_path)
    body = {"scorer": "leads-onnx", "sample": 500, "seed": 1}
    with service.client:
        refused = service.client.post(
            "/v1/replay", json=body, headers=service.key(scopes=["reports:read"])
        )
        answer = service.client.post("/v1/replay", json=body, headers=service.key(scopes=["admin"]))
        too_many = service.client.post(
            "/v1/replay", json={"sample": 10_001}, headers=service.key(scopes=["admin"])
        )
        garbled = service.client.post(
            "/v1/replay", content=b"{nope", headers=service.key(scopes=["admin"])
        )
    assert refused.status_code == 403
    assert answer.status_code == 200, answer.text
    assert too_many.status_code == 422 and "sample" in too_many.json()["error"]
    assert garbled.status_code == 422 and "error" in garbled.json()
    with Ledger(scored["path"], read_only=True) as ledger:
        expected = replay(ledger, scorer="leads-onnx", sample=500, seed=1)
    served = answer.json()
    assert served["versions"] == expected.to_dict()["versions"]
    assert (served["replayed"], served["different"]) == (500, 0)


def test_the_report_carries_the_replay_summary_and_verify_rederives_it(
    scored: dict[str, Any], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    shown = CliRunner().invoke(
        app,
        ["report", "--ledger", str(scored["path"]), "--json", str(report), "--scorer", "leads",
         "--html", str(tmp_path / "report.html"),
         "--as-of", "2024-06-01T00:00:00Z"],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "inputs: 10,000 of 10,000 predictions (100%) have their inputs stored" in shown.output
    html = (tmp_path / "report.html").read_text()
    assert "<dt>replayable</dt><dd>10,000 of 10,000 predictions (100%)" in html
    assert "replayed (seed 0), all identical" in html
    document = json.loads(report.read_text())
    record = document["audits"][0]["reproducibility"]["replay"]
    assert (record["predictions"], record["with_inputs"]) == (N, N)
    [version] = record["versions"]
    assert (version["replayed"], version["identical"], version["replayable"]) == (2_000, 2_000, N)
    verified = CliRunner().invoke(app, ["verify", str(report), "--ledger", str(scored["path"])])
    assert verified.exit_code == 0, verified.output
    version["identical"] = 1_999
    version["different"] = 1
    report.write_text(json.dumps(document))
    edited = CliRunner().invoke(app, ["verify", str(report), "--ledger", str(scored["path"])])
    assert edited.exit_code == 1
    assert "reproducibility.replay.versions[0].identical" in edited.output


def test_the_report_says_a_difference_with_every_count_and_a_readable_largest_gap() -> None:
    from assay.audit.report import ReplayRecord

    version = {
        "model_version": "1", "format": "skops", "fingerprint": "ab" * 32, "replayable": 400,
        "replayed": 400, "identical": 200, "within_tolerance": 3, "different": 197,
        "largest_difference": 0.123456789012345, "first_different": ["a", "b"],
    }  # fmt: skip
    record = {"predictions": 400, "with_inputs": 400, "tolerance": 1e-9, "sample_seed": 0}
    said = ReplayRecord({**record, "versions": [version]}).sentences()[1]
    assert "200 identical, 3 within ±1e-09, 197 DIFFERENT (largest |Δ| 0.123; first: a, b)" in said
    missing = ReplayRecord({**record, "versions": [{**version, "largest_difference": None}]})
    assert "largest |Δ| a missing probability" in missing.sentences()[1]
    assert "None" not in missing.sentences()[1]


def test_an_unknown_model_version_is_bad_input_naming_the_known_ones(
    scored: dict[str, Any],
) -> None:
    path = str(scored["path"])
    shown = CliRunner().invoke(app, ["replay", "--ledger", path, "--model-version", "9"])
    assert shown.exit_code == 2, shown.output  # not 0: nothing replayed is no reproduction
    assert "no prediction has model version '9'; versions: 1" in shown.output
    scoped = ["replay", "--ledger", path, "--scorer", "leads", "--model-version", "9"]
    assert "of scorer 'leads'" in CliRunner().invoke(app, scoped).output
    known = ["replay", "--ledger", path, "--scorer", "leads", "--model-version", "1",
             "--sample", "50"]  # fmt: skip
    assert CliRunner().invoke(app, known).exit_code == 0


def test_the_readmes_prove_a_score_example_runs_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_readme import README, python_blocks

    text = README.read_text()
    start = text.index("## Prove a score")
    [block] = [b for b in python_blocks(text[start:]) if "score_leads(" in b.code][:1]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}  # its own: a reader copies this section alone
    exec(compile(block.code, "README.md (Prove a score)", "exec"), namespace)
    assert namespace["result"].verdict() == (
        "reproduced: 2,000 predictions replayed, all identical"
    )


def test_replaying_nothing_exits_3_not_0(tmp_path: Path) -> None:
    """A vendor's black-box scores (no inputs, no model) replay nothing: no proof, no pass."""
    path = tmp_path / "vendor.duckdb"
    leads = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(30)],
            "entity_id": [f"lead-{i}" for i in range(30)],
            "score": np.linspace(0.05, 0.95, 30),
            "scored_at": "2025-03-01T09:00:00Z",
        }
    )
    with Ledger(path) as ledger:
        ledger.ingest_predictions(
            leads, defaults={"scorer": "vendor", "horizon_days": 90, "target_event": "won"}
        )
    shown = CliRunner().invoke(app, ["replay", "--ledger", str(path)])
    assert shown.exit_code == 3, shown.output
    assert "nothing replayed" in shown.output and "30 predictions not replayable" in shown.output


def test_scoring_keeps_a_typed_copy_that_is_the_records_read_back(
    scored: dict[str, Any], tmp_path: Path
) -> None:
    """Each scoring batch keeps the frame it scored as its typed input copy: the same bytes for
    the same leads scored again elsewhere, and, over two batches whose ids interleave, row for
    row what the stored records parse into (the reference)."""
    from assay.ledger.inputs import records_frame

    path = tmp_path / "copies.duckdb"
    shutil.copy(scored["path"], path)
    with Ledger(path) as ledger:
        score_leads(ledger, "leads@1", _leads(300, 2, "later"), defaults=DEFAULTS, now=SECOND)
        copies = ledger.con.execute(
            "SELECT frame_sha256 FROM batches WHERE kind = 'predictions' ORDER BY batch_id"
        ).fetchall()
        stored = ledger.con.execute("SELECT count(*) FROM input_frames").fetchall()[0][0]
        rows, copy = ledger.replay_inputs(scorer="leads")
        reference = ledger.prediction_inputs(scorer="leads")
        result = replay(ledger, scorer="leads")
        assert ledger.verify().ok
    with Ledger(tmp_path / "again.duckdb") as again:
        register_model(again, "leads", "1", skops_bytes(scored["pipe"]), now=REGISTERED)
        score_leads(again, "leads@1", scored["root"] / "leads.csv", defaults=DEFAULTS, now=FIRST)
        rescored = again.con.execute("SELECT frame_sha256 FROM batches WHERE kind = 'predictions'")
        assert rescored.fetchall() == copies[:1]  # deterministic bytes
    assert None not in {c[0] for c in copies} and stored == len(set(copies)) == 3
    assert copy is not None and rows["record"].null_count == rows.num_rows == N + 300
    assert rows["prediction_id"].equals(reference["prediction_id"])
    positions = rows["copy_row"].to_numpy()
    assert not np.array_equal(positions, np.arange(N + 300))  # the two batches interleave
    assert copy.take(positions).equals(records_frame(reference["record"]))
    assert result.ok and result.versions[0].identical == N + 300


def test_one_seed_in_two_scoring_calls_replays_each_call_as_drawn(tmp_path: Path) -> None:
    """A model drawing at random per row, scored twice with the same seed: each call drew
    from the seed afresh, so each batch is re-run alone (together, the second batch's rows
    would take the draws after the first's)."""
    with Ledger(tmp_path / "coin.duckdb") as ledger:
        register_model(ledger, "coin", "1", skops_bytes(_stratified()), now=REGISTERED)
        for n, seed, prefix in ((300, 4, "a"), (200, 5, "b")):
            score_leads(ledger, "coin@1", _leads(n, seed, prefix), seed=7, defaults=DEFAULTS,
                        now=FIRST)  # fmt: skip
        rows, _ = ledger.replay_inputs(scorer="coin")
        result = replay(ledger, scorer="coin")
    assert len(rows["batch_id"].unique()) == 2
    assert result.ok and result.versions[0].identical == 500


def test_a_version_mixing_copied_and_ingested_inputs_replays_each_batch_as_scored(
    scored: dict[str, Any], tmp_path: Path
) -> None:
    """Predictions of the same model version ingested with --inputs (no copy) beside a scoring
    batch: each batch is re-run as it was scored (the copy whole, the ingested rows parsed
    from their records, in id order) and lands bit for bit. Re-run together, the last scoring
    row would sit past the copy's 10,000 rows, where a BLAS kernel may round it differently."""
    path = tmp_path / "mixed.duckdb"
    shutil.copy(scored["path"], path)
    extra = _leads(50, 3, "vendor")
    extra["prediction_id"] = extra["entity_id"]  # scored below in the order of their ids
    extra["score"] = scored["pipe"].predict_proba(extra[list(FEATURES)])[:, 1]
    extra["scorer"], extra["model_version"] = "leads", "1"
    extra["scored_at"] = SECOND.isoformat()
    with Ledger(path) as ledger:
        ledger.ingest_predictions(extra, defaults=DEFAULTS, inputs=list(FEATURES), now=SECOND)
        rows, copy = ledger.replay_inputs(scorer="leads")
        result = replay(ledger, scorer="leads")
    assert copy is not None
    assert (rows["copy_row"].null_count, rows["record"].null_count) == (50, N)
    assert result.ok and result.versions[0].identical == N + 50


def test_a_loaded_model_is_kept_per_thread() -> None:
    import threading

    from assay.models.registry import get_model

    with Ledger(":memory:") as ledger:
        register_model(ledger, "leads", "1", skops_bytes(fitted_pipeline(n=500)), now=REGISTERED)
        first, again = get_model(ledger, "leads", "1")[1], get_model(ledger, "leads", "1")[1]
        other: list[Any] = []
        reader = ledger.reader()
        thread = threading.Thread(target=lambda: other.append(get_model(reader, "leads", "1")[1]))
        thread.start()
        thread.join()
    assert first is again and other[0] is not first
