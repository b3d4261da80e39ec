"""Registered models: formats checked without running artefact code, frozen versions, listing."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from tests.model_fixtures import FEATURES, fitted_pipeline, lead_frame, onnx_bytes, skops_bytes
from typer.testing import CliRunner

from assay._validation import AssayInputError
from assay.cli.main import app
from assay.ledger import Ledger
from assay.models.formats import (
    TRUSTED_TYPES,
    audit_artefact,
    detect_format,
    load_model,
)
from assay.models.registry import get_model, list_models, parse_model_ref, register_model
from assay.service.app import create_app
from assay.service.keys import KeyStore
from assay.service.store import DuckDBStore
from assay.stats.recalibration import PlattCalibrator

NOW = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)
MARKER = "assay-models-marker.txt"


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return fitted_pipeline(seed=0)


@pytest.fixture(scope="module")
def saved(pipe: Pipeline) -> bytes:
    """The pipeline's skops bytes, dumped once (each dump differs: object ids, zip times)."""
    return skops_bytes(pipe)


@pytest.fixture(scope="module")
def leads() -> tuple[object, pa.Table]:
    """1,000 leads as a DataFrame and as the table their JSON records parse back into."""
    frame = lead_frame(1_000, seed=11)[list(FEATURES)]
    records = [json.loads(json.dumps(row)) for row in frame.to_dict(orient="records")]
    return frame, pa.Table.from_pylist(records)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.duckdb")


def _touch(values: object) -> object:
    """Writes a file when called: proof of whether an artefact's code ran."""
    Path(MARKER).write_text("artefact code ran")
    return values


def test_skops_pipeline_scores_exactly_as_predict_proba(
    ledger: Ledger, pipe: Pipeline, saved: bytes, leads: tuple[object, pa.Table]
) -> None:
    frame, table = leads
    assert table.schema.field("visits").type == pa.int64()  # JSON gave integers back
    record = register_model(ledger, "lead", "1", saved, now=NOW)
    assert record.format == "skops" and record.details["features"] == list(FEATURES)
    assert record.fingerprint == hashlib.sha256(saved).hexdigest()
    _, model = get_model(ledger, "lead", "1")
    expected = pipe.predict_proba(frame)[:, 1]
    assert model.features == FEATURES
    np.testing.assert_array_equal(model.predict(table), expected)  # bit-identical
    assert model.predict(table).dtype == np.float64


def test_onnx_twin_agrees_within_float32(
    ledger: Ledger, pipe: Pipeline, leads: tuple[object, pa.Table]
) -> None:
    frame, table = leads
    record = register_model(ledger, "lead-onnx", "1", onnx_bytes(pipe))
    assert record.format == "onnx" and record.details["output"] == "probabilities"
    _, model = get_model(ledger, "lead-onnx", "1")
    difference = np.abs(model.predict(table) - pipe.predict_proba(frame)[:, 1])
    assert difference.max() < 1e-6


def test_a_version_is_frozen(ledger: Ledger, saved: bytes) -> None:
    first = register_model(ledger, "lead", "1", saved, now=NOW)
    head = ledger.chain_head()
    again = register_model(ledger, "lead", "1", saved)
    assert again == first and ledger.chain_head() == head  # no-op: no new batch
    other = skops_bytes(fitted_pipeline(seed=1))
    with pytest.raises(AssayInputError) as refused:
        register_model(ledger, "lead", "1", other)
    assert first.fingerprint in str(refused.value)
    assert hashlib.sha256(other).hexdigest() in str(refused.value)
    assert ledger.chain_head() == head and len(list_models(ledger)) == 1


@pytest.mark.parametrize(
    ("func", "named"),
    [(_touch, f"{__name__}._touch"), (np.log1p, "numpy.log1p")],
    ids=["own-function", "numpy-function"],
)
def test_untrusted_types_are_refused_and_no_artefact_code_runs(
    ledger: Ledger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    func: object,
    named: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    frame = lead_frame(200, seed=3)
    numeric = list(FEATURES[:6])
    model = make_pipeline(FunctionTransformer(func), StandardScaler(), DummyClassifier())
    model.fit(frame[numeric], frame["converted"])
    Path(MARKER).unlink(missing_ok=True)  # fitting called it; only what follows counts
    data = skops_bytes(model)
    with pytest.raises(AssayInputError, match=f"outside the trusted list: {named}") as refused:
        register_model(ledger, "evil", "1", data)
    assert f"--trust {named}" in str(refused.value)
    with pytest.raises(AssayInputError, match=named):  # refused at load too
        load_model(data, "skops", {"features": numeric})
    assert not Path(MARKER).exists() and list_models(ledger) == []
    assert ledger.chain_head().batches == 0
    # the registrant may trust it explicitly; still nothing runs until it predicts
    register_model(ledger, "evil", "1", data, trusted=[named])
    _, loaded = get_model(ledger, "evil", "1")
    assert not Path(MARKER).exists()
    loaded.predict(pa.Table.from_pandas(frame[numeric], preserve_index=False))
    assert Path(MARKER).exists() == (func is _touch)  # the marker does detect a call


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib", "model.bin"])
def test_pickle_is_refused_with_advice(tmp_path: Path, ledger: Ledger, name: str) -> None:
    import pickle

    path = tmp_path / name
    path.write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(AssayInputError, match=r"pickle.*skops\.io\.dump"):
        register_model(ledger, "lead", "1", path)


def test_detect_format(pipe: Pipeline) -> None:
    calibrator = PlattCalibrator().fit([0.2, 0.4, 0.6, 0.8], [0, 0, 1, 1]).to_json().encode()
    assert detect_format(skops_bytes(pipe), "m.bin") == "skops"
    assert detect_format(onnx_bytes(pipe), "m.bin") == "onnx"
    assert detect_format(calibrator, "c") == "calibrator"
    with pytest.raises(AssayInputError, match="cannot tell the format"):
        detect_format(b"hello", "m.bin")


def test_calibrator_json_is_a_model_of_the_score(ledger: Ledger) -> None:
    rng = np.random.default_rng(4)
    p = rng.uniform(0.01, 0.99, 500)
    calibrator = PlattCalibrator().fit(p, (rng.random(500) < p**1.5).astype(int))
    register_model(ledger, "platt", "1", calibrator.to_json().encode())
    _, model = get_model(ledger, "platt", "1")
    assert model.features == ("score",)
    scores = pa.table({"score": pa.array(p[:50])})
    np.testing.assert_array_equal(model.predict(scores), calibrator.predict_proba(p[:50])[:, 1])
    with pytest.raises(AssayInputError, match="missing: score"):
        model.predict(pa.table({"x": pa.array(p[:5])}))


def test_onnx_with_one_tensor_needs_its_column_order(ledger: Ledger) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    frame = lead_frame(500, seed=5)
    numeric = list(FEATURES[:6])
    x = frame[numeric].to_numpy(np.float32)
    model = LogisticRegression(max_iter=1_000).fit(x, frame["converted"])
    data = to_onnx(model, x[:1], options={"zipmap": False}).SerializeToString()
    with pytest.raises(AssayInputError, match="--features"):
        register_model(ledger, "flat", "1", data)
    register_model(ledger, "flat", "1", data, features=numeric)
    _, loaded = get_model(ledger, "flat", "1")
    table = pa.Table.from_pandas(frame[numeric], preserve_index=False)
    difference = np.abs(loaded.predict(table) - model.predict_proba(x)[:, 1])
    assert difference.max() < 1e-6


def test_seed_convention_sets_every_random_state(ledger: Ledger) -> None:
    frame = lead_frame(400, seed=6)
    numeric = list(FEATURES[:6])
    model = make_pipeline(StandardScaler(), DummyClassifier(strategy="stratified"))
    model.fit(frame[numeric], frame["converted"])
    register_model(ledger, "coin", "1", skops_bytes(model))
    _, loaded = get_model(ledger, "coin", "1")
    table = pa.Table.from_pandas(frame[numeric], preserve_index=False)
    seeded = loaded.predict(table, seed=7)
    np.testing.assert_array_equal(loaded.predict(table, seed=7), seeded)
    assert not np.array_equal(loaded.predict(table, seed=8), seeded)
    # None: the artefact's own random_state (None), so two calls differ
    assert not np.array_equal(loaded.predict(table), loaded.predict(table))


def test_an_edited_artefact_fails_verify_naming_the_models_batch(
    ledger: Ledger, pipe: Pipeline
) -> None:
    record = register_model(ledger, "lead", "1", skops_bytes(pipe))
    assert ledger.verify().ok
    ledger.con.execute(
        "UPDATE artefacts SET bytes = ? WHERE fingerprint = ?",
        [skops_bytes(fitted_pipeline(seed=2)), record.fingerprint],
    )
    result = ledger.verify()
    assert not result.ok and result.first_bad_batch == 1
    assert "(models)" in (result.problem or "") and "lead@1" in (result.problem or "")
    with pytest.raises(AssayInputError, match="no longer hashes"):
        get_model(ledger, "lead", "1")


def test_list_models_round_trip(ledger: Ledger, pipe: Pipeline) -> None:
    assert list_models(ledger) == []
    register_model(ledger, "lead", "2", skops_bytes(pipe), now=NOW)
    register_model(ledger, "lead", "3", onnx_bytes(pipe), now=NOW + dt.timedelta(days=1))
    found = list_models(ledger)
    assert [(r.name, r.version, r.format) for r in found] == [
        ("lead", "2", "skops"),
        ("lead", "3", "onnx"),
    ]
    assert [r.registered_at for r in found] == [NOW, NOW + dt.timedelta(days=1)]
    assert found[1].fingerprint == hashlib.sha256(onnx_bytes(pipe)).hexdigest()
    assert found[0].to_dict()["registered_at"] == "2024-06-01T12:00:00.000000Z"


@pytest.mark.parametrize("bad", ["", "a@b", "two words", "tab\there", "x" * 201, "bell\x07"])
def test_names_are_checked(ledger: Ledger, pipe: Pipeline, bad: str) -> None:
    with pytest.raises(AssayInputError, match="model name"):
        register_model(ledger, bad, "1", skops_bytes(pipe))


def test_parse_model_ref() -> None:
    assert parse_model_ref("lead-model@2024.06") == ("lead-model", "2024.06")
    for bad in ("lead-model", "a@b@c", "@1", "a@"):
        with pytest.raises(AssayInputError):
            parse_model_ref(bad)


def test_trusted_types_name_real_objects() -> None:
    """Every default-trusted path resolves (catches a library moving a class)."""
    for path in TRUSTED_TYPES:
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path


def test_audit_reports_the_extra_types_a_tree_model_needs() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = lead_frame(500, seed=8)
    numeric = list(FEATURES[:6])
    model = HistGradientBoostingClassifier(max_iter=5).fit(frame[numeric], frame["converted"])
    details = audit_artefact(skops_bytes(model), "skops")
    assert details["features"] == numeric
    assert "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" in details["trusted"]


def test_cli_register_and_list(tmp_path: Path, pipe: Pipeline) -> None:
    artefact = tmp_path / "lead.skops"
    artefact.write_bytes(skops_bytes(pipe))
    fingerprint = hashlib.sha256(artefact.read_bytes()).hexdigest()
    ledger = str(tmp_path / "cli.duckdb")
    runner = CliRunner()
    done = runner.invoke(
        app, ["models", "register", "lead", "1", str(artefact), "--ledger", ledger]
    )
    assert done.exit_code == 0, done.output
    assert f"lead@1: skops, fingerprint {fingerprint}" in done.output
    assert "batch 1" in done.output
    again = runner.invoke(
        app, ["models", "register", "lead", "1", str(artefact), "--ledger", ledger]
    )
    assert again.exit_code == 0 and "no-op" in again.output
    shown = runner.invoke(app, ["models", "list", "--ledger", ledger])
    assert shown.exit_code == 0 and fingerprint[:16] in shown.output
    assert fingerprint[16:] not in shown.output
    listed = json.loads(runner.invoke(app, ["models", "list", "--ledger", ledger, "--json"]).output)
    assert listed[0]["fingerprint"] == fingerprint and listed[0]["format"] == "skops"
    pickled = tmp_path / "lead.pkl"
    pickled.write_bytes(b"\x80\x05N.")
    refused = runner.invoke(
        app, ["models", "register", "lead", "2", str(pickled), "--ledger", ledger]
    )
    assert refused.exit_code == 1 and "pickle" in refused.output


def test_service_lists_models_with_a_read_key(tmp_path: Path, pipe: Pipeline) -> None:
    (tmp_path / "workspaces").mkdir()
    with Ledger(tmp_path / "workspaces" / "acme.duckdb") as workspace:
        record = register_model(workspace, "lead", "1", skops_bytes(pipe), now=NOW)
    keys = KeyStore(tmp_path / "keys.sqlite")
    store = DuckDBStore(tmp_path)
    reader, _ = keys.create("acme", ["reports:read"])
    writer, _ = keys.create("acme", ["predictions:write"])
    other, _ = keys.create("other", ["reports:read"])
    try:
        with TestClient(create_app(store, keys)) as client:
            answer = client.get("/v1/models", headers={"Authorization": f"Bearer {reader}"})
            assert answer.status_code == 200
            assert answer.json() == [record.to_dict()]
            assert answer.json()[0]["fingerprint"] == record.fingerprint
            denied = client.get("/v1/models", headers={"Authorization": f"Bearer {writer}"})
            assert denied.status_code == 403
            elsewhere = client.get("/v1/models", headers={"Authorization": f"Bearer {other}"})
            assert elsewhere.json() == []
    finally:
        store.close()
