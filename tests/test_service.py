"""assay serve: ingest semantics, keys and scopes, and the OWASP API Security Top 10 (2023)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from assay.audit.scorer import AuditConfig, audit, evidence
from assay.ledger import Ledger
from assay.service.app import Settings, create_app
from assay.service.batches import MAX_ROWS, parse_ndjson
from assay.service.keys import KeyStore
from assay.service.pgstore import PostgresStore
from assay.service.store import DuckDBStore, Store
from assay.stats.segments import segment_rates
from assay.stats.tolerance import Tolerance

# plumbing: audits here default to coarse posterior grids (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("fast_posterior")

WRITE = ["predictions:write", "outcomes:write"]
NDJSON = "application/x-ndjson"


def prediction_rows(
    n: int, *, scorer: str = "vendor-a", start: int = 0, seed: int = 0
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "prediction_id": f"{scorer}-{i}",
            "entity_id": f"lead-{i}",
            "scorer": scorer,
            "score": round(float(rng.beta(2, 5)), 4),
            "scored_at": f"2024-0{1 + i % 3}-{1 + i % 27:02d}T10:00:00Z",
            "horizon_days": 30,
            "target_event": "won",
            "segments": {"industry": ["retail", "saas"][i % 2]},
        }
        for i in range(start, start + n)
    ]


def ndjson(rows: list[Any]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows)


class Service:
    """A TestClient on a fresh store, with helpers to mint keys."""

    def __init__(
        self, root: Path, settings: Settings | None = None, store: Store | None = None
    ) -> None:
        self.keys = KeyStore(root / "keys.sqlite")
        self.store = store or DuckDBStore(root)
        self.client = TestClient(create_app(self.store, self.keys, settings))
        self.root = root

    def key(
        self, workspace: str = "acme", scopes: list[str] | None = None, **kw: Any
    ) -> dict[str, str]:
        token, _ = self.keys.create(workspace, scopes or [*WRITE, "reports:read"], **kw)
        return {"Authorization": f"Bearer {token}"}

    def post(
        self, kind: str, body: bytes, headers: dict[str, str], content_type: str = NDJSON
    ) -> Any:
        return self.client.post(
            f"/v1/{kind}", content=body, headers={**headers, "Content-Type": content_type}
        )

    def rows(self, workspace: str, table: str = "predictions") -> int:
        result = self.client.get("/v1/status", headers=self.key(workspace, ["reports:read"])).json()
        if table == "outcomes":
            return int(result["outcomes"])
        return sum(s["rows"] for s in result["scorers"])


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """The same behavioural suite on both stores."""
    store: Store | None = None
    if request.param == "postgres":
        cluster = request.getfixturevalue("postgres")
        store = PostgresStore(cluster.fresh_database())
    svc = Service(tmp_path, store=store)
    with svc.client:
        yield svc
    svc.store.close()


# ---------------------------------------------------------------- ingest semantics
def test_batch_receipt_resend_and_frozen_conflict(service: Service) -> None:
    key = service.key()
    rows = prediction_rows(50)
    first = service.post("predictions", ndjson(rows), key)
    assert first.status_code == 201
    assert first.json()["rows_new"] == 50 and first.json()["batch_id"] == 1
    again = service.post("predictions", ndjson(rows), key)
    assert again.status_code == 200 and again.json() == first.json()
    changed = [dict(r) for r in rows]
    changed[7]["score"] = 0.99
    conflict = service.post("predictions", ndjson(changed), key)
    assert conflict.status_code == 409
    [bad] = conflict.json()["bad_rows"]
    assert (bad["row"], bad["field"], bad["value"]) == (8, "prediction_id", "vendor-a-7")
    assert bad["reason"].startswith(
        "frozen: prediction_id is already in the ledger with different content"
    )  # (the DuckDB ledger also names the fields that differ)
    assert bad["reason"].endswith("corrections are new predictions with their own id")
    assert service.rows("acme") == 50


def test_a_bad_row_refuses_the_whole_batch_with_every_reason(service: Service) -> None:
    key = service.key()
    rows = prediction_rows(20)
    rows[3]["score"] = 1.7
    rows[11]["scored_at"] = "2024-01-05T10:00:00"  # no zone
    rows[15]["horizon_days"] = "soon"
    result = service.post("predictions", ndjson(rows), key)
    assert result.status_code == 422
    where = {(b["row"], b["field"]) for b in result.json()["bad_rows"]}
    assert where == {(4, "score"), (12, "scored_at"), (16, "horizon_days")}
    assert service.rows("acme") == 0


def test_csv_upload_and_outcomes(service: Service) -> None:
    key = service.key()
    csv = b"prediction_id,entity_id,scorer,score,scored_at,horizon_days,target_event,"
    csv += b"segment:industry\n"
    csv += b"c1,lead-1,vendor-a,0.4,2024-01-02T00:00:00Z,30,won,retail\n"
    csv += b"c2,lead-2,vendor-a,0.2,2024-01-03T00:00:00Z,30,won,saas\n"
    assert service.post("predictions", csv, key, "text/csv").status_code == 201
    outcome = {"entity_id": "lead-1", "event": "won", "occurred_at": "2024-01-10T00:00:00Z"}
    assert service.post("outcomes", ndjson([outcome]), key).status_code == 201
    assert service.rows("acme") == 2 and service.rows("acme", "outcomes") == 1


def test_idempotency_key_replays_the_stored_response(service: Service) -> None:
    key = service.key()
    body = ndjson(prediction_rows(5))
    headers = {**key, "Idempotency-Key": "batch-2024-01-01"}
    first = service.post("predictions", body, headers)
    replay = service.post("predictions", body, headers)
    assert first.status_code == replay.status_code == 201
    assert replay.content == first.content
    other = service.post("predictions", ndjson(prediction_rows(5, start=5)), headers)
    assert other.status_code == 422 and "different request" in other.json()["error"]


def test_reads_match_the_library_on_the_same_rows(service: Service, tmp_path: Path) -> None:
    key = service.key()
    rows = prediction_rows(600, seed=3)
    rng = np.random.default_rng(4)
    won = [r for r in rows if rng.random() < r["score"]]
    outcomes = [
        {
            "entity_id": r["entity_id"],
            "event": "won",
            "occurred_at": r["scored_at"].replace("10:00", "12:00"),
        }
        for r in won
    ]
    assert service.post("predictions", ndjson(rows), key).status_code == 201
    assert service.post("outcomes", ndjson(outcomes), key).status_code == 201
    # The server stamps recorded_at with its own clock, and a report is frozen (as of a time
    # no later than now): the reads are as of just after the ingest, the mirror's rows
    # recorded then too.
    moment = dt.datetime.now(dt.UTC)
    as_of = moment.isoformat()
    served = service.client.get("/v1/audit", params={"as_of": as_of}, headers=key).json()
    assert served["audits"][0]["reproducibility"]["ledger"] == "acme"  # no server path
    mirror = Ledger(tmp_path / "mirror.duckdb")
    mirror.ingest_predictions(
        parse_ndjson(ndjson(rows), "predictions").table, segments=["industry"], now=moment
    )
    mirror.ingest_outcomes(parse_ndjson(ndjson(outcomes), "outcomes").table, now=moment)
    local = audit(mirror, scorer="vendor-a", as_of=as_of)
    found = evidence(mirror, scorer="vendor-a", as_of=as_of)
    expected_segments = segment_rates(found.labels, found.segment("industry")).to_dict()
    mirror.close()
    assert served["audits"][0]["calibration"]["ece_plugin"] == pytest.approx(
        local.calibration.ece, rel=1e-12
    )
    assert served["audits"][0]["calibration"]["verdict"] == local.calibration.verdict
    segments = service.client.get(
        "/v1/segments", params={"by": "industry", "as_of": as_of}, headers=key
    )
    assert segments.status_code == 200
    as_json = orjson.dumps(expected_segments, option=orjson.OPT_SERIALIZE_NUMPY)
    assert segments.json()["scorers"]["vendor-a"] == orjson.loads(as_json)
    threshold = service.client.get(
        "/v1/threshold", params={"target_precision": 0.3, "as_of": as_of}, headers=key
    )
    assert threshold.status_code == 200
    html = service.client.get("/v1/report.html", params={"as_of": as_of}, headers=key)
    assert html.status_code == 200 and "vendor-a" in html.text and "http" not in html.text.lower()
    # The tolerance travels: the same verdict as the library under the same tolerance, stated.
    loose = "ratio=4,slope=4,curve=1,cap=0.5"
    served = service.client.get(
        "/v1/audit", params={"as_of": as_of, "tolerance": loose}, headers=key
    ).json()
    config = AuditConfig(tolerance=Tolerance.parse(loose))
    with Ledger(tmp_path / "mirror.duckdb") as reopened:
        expected = audit(reopened, scorer="vendor-a", as_of=as_of, config=config)
    assert served["audits"][0]["calibration"]["verdict"] == expected.calibration.verdict
    assert "within 0.25–4.00" in served["audits"][0]["calibration"]["tolerance_words"]
    refused = service.client.get("/v1/audit", params={"tolerance": "ratio:2"}, headers=key)
    assert refused.status_code == 422 and "KEY=NUMBER" in refused.text


# ---------------------------------------------------------------- keys
def test_only_the_hash_of_a_secret_is_stored_and_revocation_is_immediate(service: Service) -> None:
    token, record = service.keys.create("acme", ["reports:read"])
    secret = token.split("_", 2)[2]
    dump = "\n".join(sqlite3.connect(service.root / "keys.sqlite").iterdump())
    assert secret not in dump and record.key_id in dump
    rotated, _ = service.keys.create("acme", ["reports:read"])
    for live in (token, rotated):  # two live keys at once: rotation
        assert (
            service.client.get(
                "/v1/status", headers={"Authorization": f"Bearer {live}"}
            ).status_code
            == 200
        )
    KeyStore(service.root / "keys.sqlite").revoke(record.key_id)  # another process's handle
    assert (
        service.client.get("/v1/status", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    assert (
        service.client.get("/v1/status", headers={"Authorization": f"Bearer {rotated}"}).status_code
        == 200
    )


# ---------------------------------------------------------------- OWASP API Security Top 10 (2023)
def test_api1_object_level_authorization_workspaces_never_mix(service: Service) -> None:
    acme, globex = service.key("acme"), service.key("globex")
    assert (
        service.post(
            "predictions", ndjson(prediction_rows(10, scorer="acme-model")), acme
        ).status_code
        == 201
    )
    status = service.client.get("/v1/status", headers=globex).json()
    assert status["workspace"] == "globex" and status["scorers"] == []
    # the workspace comes from the key: a path, query or body naming another one changes nothing
    assert (
        service.client.get("/v1/status", params={"workspace": "acme"}, headers=globex).json()[
            "scorers"
        ]
        == []
    )
    audit_other = service.client.get("/v1/audit", params={"scorer": "acme-model"}, headers=globex)
    assert audit_other.status_code == 422 and "acme" not in audit_other.text.replace(
        "acme-model", ""
    )


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ak_nothex000000_" + "a" * 43,
        "Basic dXNlcjpwYXNz",
        "Bearer ak_123",
    ],
)
def test_api2_broken_authentication_is_refused(service: Service, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    result = service.client.get("/v1/status", headers=headers)
    assert result.status_code == 401 and result.headers["www-authenticate"] == "Bearer"


def test_api2_a_wrong_secret_for_a_real_id_is_refused(service: Service) -> None:
    token, _ = service.keys.create("acme", ["reports:read"])
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert (
        service.client.get("/v1/status", headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )


@pytest.mark.parametrize(
    "field, value",
    [
        ("recorded_at", "2020-01-01T00:00:00Z"),
        ("batch_id", 1),
        ("row_hash", "x"),
        ("workspace", "globex"),
    ],
)
def test_api3_mass_assignment_of_server_owned_fields_is_refused(
    service: Service, field: str, value: Any
) -> None:
    rows = prediction_rows(3)
    rows[1][field] = value
    result = service.post("predictions", ndjson(rows), service.key())
    assert result.status_code == 422
    assert (
        result.json()["bad_rows"][0]["row"] == 2 and result.json()["bad_rows"][0]["field"] == field
    )
    assert service.rows("acme") == 0


def test_api4_resource_limits(tmp_path: Path) -> None:
    svc = Service(tmp_path, Settings(rate_per_second=1.0, burst=3))
    with svc.client:
        key = svc.key()
        too_many = b"\n".join([b'{"entity_id": "x"}'] * (MAX_ROWS + 1))
        assert svc.post("predictions", too_many, key).status_code == 413
        huge = {"Content-Length": str(40 * 1024 * 1024)}
        assert (
            svc.client.post(
                "/v1/predictions", content=b"x", headers={**key, **huge, "Content-Type": NDJSON}
            ).status_code
            == 413
        )
        limited = svc.client.get("/v1/health")
        assert limited.status_code == 200
        codes = [svc.client.get("/v1/status", headers=key).status_code for _ in range(4)]
        assert (
            codes[-1] == 429 and "retry-after" in svc.client.get("/v1/status", headers=key).headers
        )


def test_api5_function_level_authorization_scopes(service: Service) -> None:
    reader = service.key(scopes=["reports:read"])
    writer = service.key(scopes=["predictions:write"])
    assert service.post("predictions", ndjson(prediction_rows(2)), reader).status_code == 403
    assert (
        service.post(
            "outcomes",
            ndjson([{"entity_id": "a", "event": "won", "occurred_at": "2024-01-01T00:00:00Z"}]),
            writer,
        ).status_code
        == 403
    )
    assert service.client.get("/v1/status", headers=writer).status_code == 403
    assert service.client.post("/v1/export", headers=reader).status_code == 403
    admin = service.key(scopes=["admin"])
    assert service.post("predictions", ndjson(prediction_rows(4)), admin).status_code == 201
    exported = service.client.post("/v1/export", headers=admin)
    assert exported.status_code == 201 and exported.json()["files"]["predictions"]["rows"] == 4


def test_a_vendor_key_writes_only_its_own_scorer(service: Service) -> None:
    vendor = service.key(scopes=["predictions:write"], scorer="vendor-a")
    mixed = prediction_rows(3) + prediction_rows(2, scorer="vendor-b")
    result = service.post("predictions", ndjson(mixed), vendor)
    assert result.status_code == 403 and [b["row"] for b in result.json()["bad_rows"]] == [4, 5]
    assert service.post("predictions", ndjson(prediction_rows(3)), vendor).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        b"null",
        b"[]",
        b"123",
        b'"text"',
        b"{",
        b'{"score": {"nested": 1}}',
        b"\xff\xfe",
        b"NaN",
        b"",
    ],
)
def test_api8_malformed_bodies_get_a_4xx_never_a_crash(service: Service, body: bytes) -> None:
    result = service.post("predictions", body, service.key())
    assert 400 <= result.status_code < 500
    assert "Traceback" not in result.text and str(service.root) not in result.text
    assert service.client.get("/v1/health").status_code == 200


def test_unsupported_media_type(service: Service) -> None:
    result = service.post(
        "predictions", ndjson(prediction_rows(1)), service.key(), "application/xml"
    )
    assert result.status_code == 415


@pytest.mark.integration
def test_postgres_rows_are_isolated_by_row_level_security_and_chain_like_duckdb(
    postgres: Any, tmp_path: Path
) -> None:
    import psycopg

    dsn = postgres.fresh_database()
    svc = Service(tmp_path, store=PostgresStore(dsn))
    with svc.client:
        acme = svc.key("acme", [*WRITE, "reports:read", "admin"])
        for start in (0, 40):
            body = ndjson(prediction_rows(40, start=start))
            assert svc.post("predictions", body, acme).status_code == 201
        outcome = {"entity_id": "lead-3", "event": "won", "occurred_at": "2024-01-04T10:00:00Z"}
        assert svc.post("outcomes", ndjson([outcome]), acme).status_code == 201
        exported = svc.client.post("/v1/export", headers=acme).json()
    svc.store.close()
    with psycopg.connect(dsn) as con:
        assert con.execute("SELECT count(*) FROM predictions").fetchone() == (0,)  # no workspace
        con.execute("SELECT set_config('assay.workspace', 'globex', false)")
        assert con.execute("SELECT count(*) FROM predictions").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute(
                "INSERT INTO batches VALUES ('acme', 99, 'x', '', '', '', 0, now(), '', '', '')"
            )
        con.rollback()
        con.execute("SELECT set_config('assay.workspace', 'acme', false)")
        assert con.execute("SELECT count(*) FROM predictions").fetchone() == (80,)
    # the batches, digests and chain written by PostgreSQL verify under the DuckDB ledger's rules
    rebuilt = Ledger(tmp_path / "rebuilt.duckdb")
    for table in ("predictions", "outcomes", "batches"):
        path = svc.store.export_root / exported["files"][table]["path"]  # relative
        rebuilt.con.execute(f"INSERT INTO {table} SELECT * FROM read_parquet('{path}')")
    assert rebuilt.verify().ok and rebuilt.verify().batches == 3
    rebuilt.con.execute("UPDATE predictions SET score = 0.5 WHERE prediction_id = 'vendor-a-7'")
    assert rebuilt.verify().first_bad_batch == 1
    rebuilt.close()


def test_keys_command_line_creates_lists_and_revokes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from assay.cli.main import app

    store = ["--store", f"duckdb:{tmp_path}"]
    runner = CliRunner()
    made = runner.invoke(
        app, ["keys", "create", "--workspace", "acme", "--scope", "reports:read", *store]
    )
    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    key_id = token.split("_")[1]
    assert KeyStore(tmp_path / "keys.sqlite").authenticate(token) is not None
    listed = runner.invoke(app, ["keys", "list", *store])
    assert key_id in listed.output and token.split("_", 2)[2] not in listed.output
    assert runner.invoke(app, ["keys", "revoke", key_id, *store]).exit_code == 0
    assert KeyStore(tmp_path / "keys.sqlite").authenticate(token) is None
    refused = runner.invoke(
        app, ["keys", "create", "--workspace", "Bad Name", "--scope", "admin", *store]
    )
    assert refused.exit_code != 0 and "workspace" in refused.output
