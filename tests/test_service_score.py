"""POST /v1/score: the honest score served over HTTP, recorded, replayable; refusals write nothing.

The workspace holds a vendor's history (leads scored in 2024, outcomes recorded then, so every
lead has matured); each request builds the honest map from it, or reuses it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from tests.honest_sim import vendor_history

from assay.ledger import Ledger
from assay.models.honest import latest_map
from assay.models.registry import list_models
from assay.models.replay import replay
from assay.service.app import create_app
from assay.service.keys import KeyStore
from assay.service.pgstore import PostgresStore
from assay.service.scoring import MAX_LEADS
from assay.service.store import DuckDBStore
from assay.stats.honest import HonestMap

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NDJSON = {"Content-Type": "application/x-ndjson"}
HISTORY = 6_000
DAY = dt.timedelta(days=1)


def leads(
    n: int, seed: int, *, ids: bool = True, scored_at: str | None = None
) -> list[dict[str, Any]]:
    """``n`` new leads: raw scores over the whole range (some beyond the evidence), a region."""
    rng = np.random.default_rng(seed)
    return [
        {
            **({"prediction_id": f"new-{seed}-{i}"} if ids else {}),
            **({"scored_at": scored_at} if scored_at else {}),
            "entity_id": f"lead-{seed}-{i}",
            "score": float(rng.uniform(0, 1)),
            "segments": {"region": ["emea", "amer"][i % 2]},
        }
        for i in range(n)
    ]


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows)


def seed(root: Path, predictions: pa.Table, outcomes: pa.Table, at: dt.datetime) -> None:
    """Write the workspace ``acme``'s ledger (the store opens it later): rows recorded ``at``."""
    (root / "workspaces").mkdir(parents=True, exist_ok=True)
    with Ledger(root / "workspaces" / "acme.duckdb") as ledger:
        segments = ["region"] if "region" in predictions.column_names else []
        ledger.ingest_predictions(predictions, segments=segments, now=at)
        ledger.ingest_outcomes(outcomes, now=at)


class Scoring:
    """A TestClient on a DuckDB store whose workspace ``acme`` holds the vendor's history."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.keys = KeyStore(root / "keys.sqlite")
        self.store = DuckDBStore(root)
        self.client = TestClient(create_app(self.store, self.keys))

    def key(self, scopes: list[str], **kw: Any) -> dict[str, str]:
        token, _ = self.keys.create("acme", scopes, **kw)
        return {"Authorization": f"Bearer {token}"}

    def score(
        self, body: bytes, key: dict[str, str], query: str = "scorer=vendor", **head: str
    ) -> Any:
        return self.client.post(
            f"/v1/score?{query}", content=body, headers={**NDJSON, **key, **head}
        )

    def read(self, task: Callable[[Ledger], Any]) -> Any:
        return asyncio.run(self.store.read("acme", task))

    def written(self) -> tuple[int, int]:
        """Batches and registered models in the workspace's ledger."""

        def count(ledger: Ledger) -> tuple[int, int]:
            batches = ledger.con.execute("SELECT count(*) FROM batches").fetchall()[0][0]
            return int(batches), len(list_models(ledger))

        return self.read(count)


@pytest.fixture(scope="module")
def history() -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray, list[str]]:
    return vendor_history("h", HISTORY, START, seed=1)


@pytest.fixture
def scoring(tmp_path: Path, history: tuple[Any, ...]) -> Iterator[Scoring]:
    seed(tmp_path, history[0], history[1], START + 40 * DAY)
    service = Scoring(tmp_path)
    with service.client:
        yield service
    service.store.close()


def _bits(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], np.float64).view(np.int64)


# ---------------------------------------------------------------- scopes
def test_the_score_needs_its_scope_and_a_vendor_key_scores_only_its_vendor(
    scoring: Scoring,
) -> None:
    body = ndjson(leads(20, seed=2))
    before = scoring.written()
    writer = scoring.key(["predictions:write", "outcomes:write", "reports:read"])
    refused = scoring.score(body, writer)
    assert refused.status_code == 403 and "scores:write" in refused.json()["error"]
    other = scoring.key(["scores:write"], scorer="other-vendor")
    refused = scoring.score(body, other)
    assert refused.status_code == 403 and "'other-vendor'" in refused.json()["error"]
    assert scoring.written() == before  # a refusal writes nothing
    own = scoring.score(body, scoring.key(["scores:write"], scorer="vendor"))
    assert own.status_code == 201 and own.json()["scorer"] == "vendor~honest"
    admin = scoring.score(ndjson(leads(20, seed=3)), scoring.key(["admin"]))
    assert admin.status_code == 201
    assert admin.json()["map_version"] == own.json()["map_version"]  # the fresh map, reused
    assert admin.json()["new_leads"] == 0 and own.json()["new_leads"] == HISTORY


def test_the_scores_scope_is_listed_and_granted_by_admin(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys.sqlite")
    _, key = keys.create("acme", ["scores:write", "reports:read"])
    assert key.scopes == ("scores:write", "reports:read")
    assert key.allows("scores:write") and not key.allows("predictions:write")
    _, admin = keys.create("acme", ["admin"])
    assert admin.allows("scores:write")


# ---------------------------------------------------------------- served = recorded
def test_a_thousand_leads_served_equal_the_recorded_predictions_and_replay(
    scoring: Scoring, history: tuple[Any, ...], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="assay.access")
    sent = leads(1_000, seed=4)
    key = scoring.key(["scores:write"])
    answer = scoring.score(ndjson(sent), key, "scorer=vendor&segment_by=region")
    assert answer.status_code == 201, answer.text
    assert str(scoring.root) not in answer.text  # no server path in the answer
    served = answer.json()
    version = served["map_version"]
    assert served["map"] == f"vendor~honest@{version}" and served["new_leads"] == HISTORY
    got = served["leads"]
    assert [g["entity_id"] for g in got] == [s["entity_id"] for s in sent]
    assert [g["prediction_id"] for g in got] == [s["prediction_id"] + "~honest" for s in sent]
    statuses = [g["status"].partition(":")[0] for g in got]
    assert served["counts"] == {s: statuses.count(s) for s in ("ok", "not yet", "out of range")}
    assert sum(served["counts"].values()) == 1_000 and served["counts"]["ok"] > 500
    assert served["counts"]["out of range"] > 0  # raw scores above what the vendor ever gave

    # independent reference: the map fitted on the vendor's history directly (all matured)
    _, _, score, won, region = history
    reference = HonestMap.fit(score, won, region, segment_key="region")
    assert reference.version_name == version
    expected = reference.predict(
        [s["score"] for s in sent], [s["segments"]["region"] for s in sent]
    )
    for name, values in zip(("probability", "lower", "upper"), expected[:3], strict=True):
        assert np.array_equal(_bits([g[name] for g in got]), _bits(list(values))), name
    assert [g["status"] for g in got] == list(expected.status)

    def recorded(ledger: Ledger) -> dict[str, Any]:
        rows = ledger.con.execute(
            "SELECT prediction_id, model_version, score, abstained FROM predictions "
            "WHERE scorer = 'vendor~honest'"
        ).fetchall()
        stored = latest_map(ledger, "vendor")
        assert stored is not None
        return {
            "rows": {r[0]: r[1:] for r in rows},
            "version": stored.record.version,
            "replay": replay(ledger, scorer="vendor~honest").to_dict(),
        }

    found = scoring.read(recorded)
    assert found["version"] == version and len(found["rows"]) == 1_000
    for lead in got:
        model_version, value, abstained = found["rows"][lead["prediction_id"]]
        assert model_version == version
        if lead["status"] == "ok":
            assert not abstained and _bits([value]) == _bits([lead["probability"]])
        else:
            assert abstained and value is None
    assert found["replay"]["verdict"] == (
        "reproduced: 1,000 predictions replayed, all identical"
    ), found["replay"]
    lines = [r.getMessage() for r in caplog.records if r.name == "assay.access"]
    assert any(
        re.match(r"POST /v1/score 201 rows=1000 ms=\d+\.\d key=[0-9a-f]{12}$", x) for x in lines
    )


def test_the_same_leads_as_csv_are_already_recorded_and_answered_alike(scoring: Scoring) -> None:
    """Cells padded with blanks are read as the ledger reads them (trimmed): the same leads."""
    key = scoring.key(["scores:write"])
    sent = leads(50, seed=5, scored_at="2025-06-01T09:00:00Z")  # the same rows: no conflict
    first = scoring.score(ndjson(sent), key)
    assert first.status_code == 201
    csv = "prediction_id,entity_id,score,scored_at,segment:region\n" + "".join(
        f" {s['prediction_id']} ,{s['entity_id']}  , {s['score']!r} ,{s['scored_at']},"
        f"{s['segments']['region']}\n"
        for s in sent
    )
    again = scoring.client.post(
        "/v1/score?scorer=vendor", content=csv.encode(), headers={**key, "Content-Type": "text/csv"}
    )
    assert again.status_code == 200 and again.json()["receipt"]["noop"]
    assert again.json()["leads"] == first.json()["leads"]


def test_an_idempotency_key_replays_the_answer_and_records_once(scoring: Scoring) -> None:
    key = scoring.key(["scores:write"])
    body = ndjson(leads(30, seed=6, ids=False))  # derived ids: a new request records anew
    first = scoring.score(body, key, **{"Idempotency-Key": "run-1"})
    replayed = scoring.score(body, key, **{"Idempotency-Key": "run-1"})
    assert first.status_code == replayed.status_code == 201
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == first.json()
    count = scoring.read(
        lambda ledger: ledger.con.execute(
            "SELECT count(*) FROM predictions WHERE scorer = 'vendor~honest'"
        ).fetchall()[0][0]
    )
    assert count == 30


# ---------------------------------------------------------------- refusals write nothing
def test_bad_leads_are_refused_naming_row_and_field_and_nothing_is_written(
    scoring: Scoring,
) -> None:
    key = scoring.key(["scores:write"])
    sent = leads(12, seed=7)
    sent[3]["score"] = 1.7
    del sent[8]["entity_id"]
    sent[10]["score"] = "high"
    refused = scoring.score(ndjson(sent), key)
    assert refused.status_code == 422
    bad = refused.json()["bad_rows"]
    assert [(b["row"], b["field"], b["value"]) for b in bad] == [
        (4, "score", "1.7"),
        (9, "entity_id", ""),
        (11, "score", "high"),
    ]
    assert "[0, 1]" in bad[0]["reason"] and "empty" in bad[1]["reason"]
    assert scoring.written() == (2, 0)  # the history's two batches; no map was built
    percent = scoring.score(ndjson(leads(3, seed=8)), key, "scorer=vendor&score_kind=percent")
    assert percent.status_code == 201  # 0-100 raw scores: 0.4 is 0.4%


def test_a_request_names_what_is_missing_or_unknown(scoring: Scoring) -> None:
    key = scoring.key(["scores:write"])
    unknown = scoring.score(ndjson(leads(3, seed=9)), key, "scorer=vendr")
    assert unknown.status_code == 404
    assert "did you mean 'vendor'?" in unknown.json()["error"]
    bound = scoring.key(["scores:write"], scorer="vendr")
    quiet = scoring.score(ndjson(leads(3, seed=9)), bound, "scorer=vendr")
    assert quiet.status_code == 404 and "vendor" not in quiet.json()["error"].replace("vendr", "")
    extra = [{**lead, "scorer": "x"} for lead in leads(2, seed=9)]
    refused = scoring.score(ndjson(extra), key)
    assert refused.status_code == 422 and refused.json()["bad_rows"][0]["field"] == "scorer"
    assert "allowed: prediction_id, entity_id, score," in refused.json()["bad_rows"][0]["reason"]
    admin = scoring.key(["admin"])
    for path in ("score?scorer=vendor", "predictions"):  # a CSV segment named like a field
        clash = scoring.client.post(
            f"/v1/{path}", content=b"entity_id,score,segment:score\na,0.2,x\n",
            headers={**admin, "Content-Type": "text/csv"},
        )  # fmt: skip
        assert clash.status_code == 422, path
        assert clash.json()["bad_rows"][0]["field"] == "segment:score"
    first = scoring.score(ndjson(leads(5, seed=10)), key, "scorer=vendor&segment_by=region")
    assert first.status_code == 201
    unsegmented = [{k: v for k, v in lead.items() if k != "segments"} for lead in leads(2, 11)]
    refused = scoring.score(ndjson(unsegmented), key)
    assert refused.status_code == 422 and "segmented by 'region'" in refused.json()["error"]
    assert scoring.written()[1] == 1  # one map version
    after = scoring.written()
    over = scoring.score(ndjson(leads(MAX_LEADS + 1, seed=12)), key)
    assert over.status_code == 413 and "at most 10,000 rows" in over.json()["error"]
    assert scoring.written() == after


def test_no_matured_outcomes_is_not_yet_and_writes_nothing(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    recent = pa.table({
        "prediction_id": ["r1", "r2"], "entity_id": ["r1", "r2"], "scorer": ["vendor"] * 2,
        "score": [0.2, 0.4], "scored_at": [now - DAY] * 2, "horizon_days": [30] * 2,
        "target_event": ["won"] * 2,
    })  # fmt: skip
    won = pa.table({"entity_id": ["r1"], "event": ["won"], "occurred_at": [now - DAY / 2]})
    seed(tmp_path, recent, won, now)  # a conversion, but no window has closed yet
    service = Scoring(tmp_path)
    with service.client:
        before = service.written()
        refused = service.score(ndjson(leads(5, seed=14)), service.key(["scores:write"]))
        assert refused.status_code == 409
        assert refused.json()["error"].startswith("not yet: no matured outcomes")
        assert service.written() == before
    service.store.close()


@pytest.mark.integration
def test_the_postgres_store_cannot_serve_the_honest_score(postgres: Any, tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys.sqlite")
    store = PostgresStore(postgres.fresh_database())
    token, _ = keys.create("acme", ["scores:write"])
    with TestClient(create_app(store, keys)) as client:
        answer = client.post(
            "/v1/score?scorer=vendor", content=ndjson(leads(3, seed=15)),
            headers={**NDJSON, "Authorization": f"Bearer {token}"},
        )  # fmt: skip
    store.close()
    assert answer.status_code == 501 and "model registry" in answer.json()["error"]
