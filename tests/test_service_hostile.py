"""Issue 21, the service: a hostile review's findings, each one a test (on both stores where
the store matters). Nothing rewritten (values arrive as written), nothing lost (a key's
Idempotency-Key is its own), nobody slowed (limits on segments, columns, slow clients)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import signal
import socket
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests import test_service as shared
from tests.test_service import NDJSON, Service, ndjson, prediction_rows
from tests.test_service_process import Server, token

from assay.service.app import Settings
from assay.service.batches import (
    MAX_SEGMENT_NAME,
    MAX_SEGMENT_VALUE,
    MAX_SEGMENTS,
    BatchRejected,
    parse_ndjson,
)

# plumbing: audits here default to coarse posterior grids (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("fast_posterior")

#: The behavioural fixture of tests/test_service.py: a Service on DuckDB, then on PostgreSQL.
service = shared.service
CSV_HEADER = b"prediction_id,entity_id,scorer,score,scored_at,horizon_days,target_event"


def one(prediction_id: Any, **changes: Any) -> dict[str, Any]:
    row = {
        "prediction_id": prediction_id,
        "entity_id": "lead-1",
        "scorer": "vendor-a",
        "score": 0.25,
        "scored_at": "2024-01-02T00:00:00Z",
        "horizon_days": 30,
        "target_event": "won",
    }
    return {**row, **changes}


def big_json(rows: list[dict[str, Any]]) -> bytes:
    """NDJSON that may hold integers beyond 64 bits (orjson cannot write them)."""
    return "\n".join(json.dumps(r) for r in rows).encode()


def with_fields(fields: bytes) -> bytes:
    """A valid row's JSON with ``fields`` appended (a repeated name: the last one counts)."""
    return orjson.dumps(one("p1"))[:-1] + b", " + fields + b"}"


def assert_one_json_error(result: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """A 4xx (never a 5xx) whose body is one JSON object with a one-line ``error``."""
    assert 400 <= result.status_code < 500, (result.status_code, result.text[:300])
    if status is not None:
        assert result.status_code == status, result.text[:300]
    assert result.headers["content-type"].startswith("application/json")
    body = result.json()
    assert isinstance(body["error"], str) and body["error"] and "Traceback" not in result.text
    return body


# ---------------------------------------------------------------- 1. Idempotency-Key per key
def test_an_idempotency_key_belongs_to_the_api_key_that_used_it(service: Service) -> None:
    vendor_a = service.key(scopes=["predictions:write"], scorer="vendor-a")
    vendor_b = service.key(scopes=["predictions:write"], scorer="vendor-b")
    same = {"Idempotency-Key": "batch-2024-01-01"}
    first = service.post("predictions", ndjson(prediction_rows(3)), {**vendor_a, **same})
    assert first.status_code == 201
    rows_b = ndjson(prediction_rows(4, scorer="vendor-b"))
    other = service.post("predictions", rows_b, {**vendor_b, **same})
    assert other.status_code == 201, other.text  # B's batch is written, not A's receipt
    assert other.json()["rows_new"] == 4 and other.json() != first.json()
    assert service.rows("acme") == 7
    replay = service.post("predictions", ndjson(prediction_rows(3)), {**vendor_a, **same})
    assert replay.status_code == 201 and replay.content == first.content
    changed = service.post(
        "predictions", ndjson(prediction_rows(3, start=10)), {**vendor_a, **same}
    )
    error = assert_one_json_error(changed, 422)["error"]
    assert "Idempotency-Key" in error and "different" in error
    assert service.rows("acme") == 7


def test_different_bodies_sent_at_once_under_one_idempotency_key_write_one(
    service: Service,
) -> None:
    key = {**service.key(), "Idempotency-Key": "same-key", "Content-Type": NDJSON}
    bodies = [ndjson(prediction_rows(200, start=1000 * k)) for k in range(4)]

    def send(body: bytes) -> int:
        return int(service.client.post("/v1/predictions", content=body, headers=key).status_code)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(send, bodies))
    assert codes.count(201) == 1 and all(c in (201, 409, 422) for c in codes), codes
    assert service.rows("acme") == 200


# ---------------------------------------------------------------- 2. no server path in answers
def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_no_response_shows_a_server_path(service: Service) -> None:
    admin = service.key(scopes=["admin"])
    assert service.post("predictions", ndjson(prediction_rows(60)), admin).status_code == 201
    outcome = {"entity_id": "lead-1", "event": "won", "occurred_at": "2024-01-20T00:00:00Z"}
    assert service.post("outcomes", ndjson([outcome]), admin).status_code == 201
    as_of = {"as_of": "2030-01-01T00:00:00Z"}
    answers = [
        service.client.get("/v1/status", headers=admin),
        service.client.get("/v1/audit", params=as_of, headers=admin),
        service.client.get("/v1/segments", params={"by": "industry", **as_of}, headers=admin),
        service.client.get("/v1/threshold", params={"target_precision": 0.3}, headers=admin),
        service.client.get("/v1/compare", params=as_of, headers=admin),
        service.client.get("/v1/report.html", params=as_of, headers=admin),
        service.client.post("/v1/export", headers=admin),
        service.client.get("/v1/segments", params={"by": "nope"}, headers=admin),
        service.post("predictions", b"a,a\n1,2\n", admin, "text/csv"),
        service.post("predictions", b"{", admin),
    ]
    server_places = {str(service.root), tempfile.gettempdir(), str(Path.cwd())}
    for answer in answers:
        assert answer.status_code < 500, answer.text[:300]
        for place in server_places:
            assert place not in answer.text, (answer.request.url, place)
        if answer.headers["content-type"].startswith("application/json"):
            absolute = [s for s in _strings(answer.json()) if s.startswith("/")]
            assert absolute == [], (answer.request.url, absolute)
    exported = answers[6].json()
    assert exported["files"]["predictions"]["rows"] == 60
    assert (service.store.export_root / exported["files"]["predictions"]["path"]).is_file()


# ---------------------------------------------------------------- 3. CSV shapes, values as written
@pytest.mark.parametrize(
    "body, status, says",
    [
        (CSV_HEADER + b",scorer\np1,l1,vendor-a,0.2,2024-01-02T00:00:00Z,30,won,x\n", 422, "twice"),
        (CSV_HEADER + b"\np1,l\xe9,vendor-a,0.2,2024-01-02T00:00:00Z,30,won\n", 422, "UTF-8"),
        (CSV_HEADER + b"\np1,l1,vendor-a,0.2\np2,l2,vendor-a,0.3,x,y,z,extra\n", 422, "line 2"),
        (b"", 422, "empty"),
        (b"\n\n", 422, "empty"),
        (CSV_HEADER + b"\n", 422, "no rows"),
        (b"\xff\xfe" + CSV_HEADER, 422, "UTF-8"),
        (b"," * 120_000 + b"\n" + b"," * 120_000 + b"\n", 413, "2,000"),
        (b"x" * (300 * 1024), 413, "header"),
    ],
    ids=["duplicate", "latin-1", "ragged", "empty", "blank", "header-only", "utf-16", "wide",
         "long-header"],
)  # fmt: skip
def test_a_csv_that_is_no_table_is_a_4xx_with_one_clear_message(
    service: Service, body: bytes, status: int, says: str
) -> None:
    result = service.post("predictions", body, service.key(), "text/csv")
    error = assert_one_json_error(result, status)["error"]
    assert says in error and "\n" not in error
    assert service.client.get("/v1/health").status_code == 200


def test_ragged_csv_lines_are_each_listed(service: Service) -> None:
    body = CSV_HEADER + b"\np1,l1\np2,l2,vendor-a,0.2,2024-01-02T00:00:00Z,30,won\np3\n"
    result = assert_one_json_error(service.post("predictions", body, service.key(), "text/csv"))
    assert [b["row"] for b in result["bad_rows"]] == [1, 3]


def test_csv_values_arrive_exactly_as_written(service: Service) -> None:
    key = service.key()
    long_id = "123456789012345678901234567890"
    body = CSV_HEADER + b",segment:industry\n"
    body += b"0042,00017,vendor-a,0.25,2024-01-02T00:00:00Z,30,won,NA\n"
    body += f"{long_id},{long_id},vendor-a,0.5,2024-01-02T00:00:00Z,30,won,null\n".encode()
    assert service.post("predictions", body, key, "text/csv").status_code == 201
    # The same rows as JSON strings are the same content: a no-op, not new rows or a conflict.
    same = [
        one("0042", entity_id="00017", segments={"industry": "NA"}),
        one(long_id, entity_id=long_id, score=0.5, segments={"industry": "null"}),
    ]
    again = service.post("predictions", ndjson(same), key)
    assert again.status_code == 200 and again.json()["rows_already_present"] == 2, again.text
    by = service.client.get(
        "/v1/segments", params={"by": "industry", "as_of": "2030-01-01T00:00:00Z"}, headers=key
    )
    assert by.status_code == 200 and '"segment":"na"' in by.text  # (names lowercased)


def test_a_semicolon_csv_with_decimal_commas_is_read_and_said(service: Service) -> None:
    key = service.key()
    body = CSV_HEADER.replace(b",", b";") + b"\np1;l1;vendor-a;0,25;2024-01-02T00:00:00Z;30;won\n"
    result = service.post("predictions", body, key, "text/csv")
    assert result.status_code == 201, result.text
    assert any("semicolon" in note for note in result.json()["notes"])
    same = one("p1", entity_id="l1")  # 0,25 is 0.25
    assert service.post("predictions", ndjson([same]), key).status_code == 200


# ---------------------------------------------------------------- 4. NDJSON numbers as written
def test_integer_ids_beyond_64_bits_stay_distinct(service: Service) -> None:
    key = service.key()
    big = 2**64 + 1
    first = service.post("predictions", big_json([one(big)]), key)
    assert first.status_code == 201
    second = service.post("predictions", big_json([one(big + 1)]), key)
    assert second.status_code == 201 and second.json()["rows_new"] == 1, second.text
    three = [one(big + 10), one(big + 11), one(big + 12)]
    assert service.post("predictions", big_json(three), key).json()["rows_new"] == 3
    # written the same, the same prediction (whether a number or a string)
    assert service.post("predictions", ndjson([one(str(big))]), key).status_code == 200
    assert service.rows("acme") == 5


def test_numbers_keep_the_text_they_were_written_with(service: Service) -> None:
    key = service.key()
    written = b'{"prediction_id": 1.10, "entity_id": 7, "scorer": "vendor-a", "score": 0.250, '
    written += b'"scored_at": "2024-01-02T00:00:00Z", "horizon_days": 30, "target_event": "won", '
    written += b'"segments": {"tier": 2.50}}'
    assert service.post("predictions", written, key).status_code == 201
    # "1.1" is another id than "1.10"
    assert service.post("predictions", ndjson([one("1.1", entity_id="7")])
                        , key).json()["rows_new"] == 1  # fmt: skip
    same = one("1.10", entity_id="7", segments={"tier": "2.50"})
    assert service.post("predictions", ndjson([same]), key).status_code == 200


def test_a_seed_beyond_64_bits_is_refused_not_rounded(service: Service) -> None:
    result = service.post("predictions", big_json([one("p1", seed=2**64 + 5)]), service.key())
    bad = assert_one_json_error(result, 422)["bad_rows"]
    assert [(b["field"], b["value"]) for b in bad] == [("seed", str(2**64 + 5))]


@pytest.mark.parametrize(
    "fields, field",
    [
        (b'"score": true', "score"),
        (b'"score": false', "score"),
        (b'"horizon_days": true', "horizon_days"),
        (b'"prediction_id": false', "prediction_id"),
        (b'"score": NaN', "*"),
        (b'"score": Infinity', "*"),
        (b'"score": -Infinity', "*"),
        (b'"score": 1e999', "*"),
    ],
)
def test_booleans_and_non_finite_numbers_are_refused(
    service: Service, fields: bytes, field: str
) -> None:
    result = service.post("predictions", with_fields(fields), service.key())
    bad = assert_one_json_error(result, 422)["bad_rows"]
    assert [b["field"] for b in bad] == [field]
    assert service.rows("acme") == 0


def test_two_objects_on_one_line_are_not_two_rows(service: Service) -> None:
    body = orjson.dumps(one("p1")) + b", " + orjson.dumps(one("p2"))
    assert_one_json_error(service.post("predictions", body, service.key()), 422)


# ---------------------------------------------------------------- 5. segment limits, linear cost
def test_distinct_segment_names_per_batch_are_limited(service: Service) -> None:
    rows = [one(f"p{i}", segments={f"attribute-{i}": "x"}) for i in range(MAX_SEGMENTS + 1)]
    result = service.post("predictions", ndjson(rows), service.key())
    assert str(MAX_SEGMENTS) in assert_one_json_error(result, 413)["error"]
    columns = ",".join(f"segment:s{i}" for i in range(MAX_SEGMENTS + 1)).encode()
    body = CSV_HEADER + b"," + columns + b"\n" + b"p1,l1,vendor-a,0.2,2024-01-02T00:00:00Z,30,won"
    body += b",x" * (MAX_SEGMENTS + 1) + b"\n"
    result = service.post("predictions", body, service.key(), "text/csv")
    assert str(MAX_SEGMENTS) in assert_one_json_error(result, 413)["error"]
    at_limit = [one(f"p{i}", segments={f"attribute-{i}": "x"}) for i in range(MAX_SEGMENTS)]
    assert service.post("predictions", ndjson(at_limit), service.key()).status_code == 201


@pytest.mark.parametrize(
    "segments, reason",
    [
        ({"n" * (MAX_SEGMENT_NAME + 1): "x"}, f"{MAX_SEGMENT_NAME} characters"),
        ({"": "x"}, f"{MAX_SEGMENT_NAME} characters"),
        ({"industry": "v" * (MAX_SEGMENT_VALUE + 1)}, f"{MAX_SEGMENT_VALUE} characters"),
        ({"industry": {"nested": 1}}, "must map names to"),
        (["industry"], "must map names to"),
    ],
)
def test_segment_names_and_values_are_bounded(service: Service, segments: Any, reason: str) -> None:
    rows = [one("p1"), one("p2", segments=segments)]
    bad = assert_one_json_error(service.post("predictions", ndjson(rows), service.key()), 422)
    assert [b["row"] for b in bad["bad_rows"]] == [2]
    assert reason in bad["bad_rows"][0]["reason"]


def test_a_segment_name_per_row_costs_linear_memory() -> None:
    """A segment name per row was n² memory; the batch is refused within a linear ceiling
    (speed is measured in benchmarks/, not here)."""
    rows = 20_000
    body = b"\n".join(orjson.dumps(one(f"p{i}", segments={f"s{i}": "x"})) for i in range(rows))
    tracemalloc.start()
    with pytest.raises(BatchRejected) as refused:
        parse_ndjson(body, "predictions")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert refused.value.status == 413
    assert peak < 20 * len(body) + 50 * 2**20, peak


def test_unknown_fields_on_every_row_give_a_bounded_answer(service: Service) -> None:
    rows = [{**one(f"p{i}"), **{f"extra{k}": k for k in range(10)}} for i in range(500)]
    result = assert_one_json_error(service.post("predictions", ndjson(rows), service.key()), 422)
    assert len(result["bad_rows"]) <= 1000 and result["bad_rows_total"] == 5000


def test_nul_characters_are_refused_on_every_store(service: Service) -> None:
    for row in (one("p\x001"), one("p1", segments={"industry": "re\x00tail"})):
        result = service.post("predictions", ndjson([row]), service.key())
        assert "NUL" in assert_one_json_error(result, 422)["bad_rows"][0]["reason"]
    csv = CSV_HEADER + b"\np1,l\x001,vendor-a,0.2,2024-01-02T00:00:00Z,30,won\n"
    assert_one_json_error(service.post("predictions", csv, service.key(), "text/csv"), 422)
    assert service.client.get("/v1/status", headers=service.key()).status_code == 200


# ---------------------------------------------------------------- 7. Bearer only, declared
@pytest.mark.parametrize("form", ["{token}", "Token {token}", "Basic {token}", "Bearer  "])
def test_only_a_bearer_token_is_accepted(service: Service, form: str) -> None:
    token_value = service.key()["Authorization"].removeprefix("Bearer ")
    result = service.client.get(
        "/v1/status", headers={"Authorization": form.format(token=token_value)}
    )
    assert result.status_code == 401 and result.headers["www-authenticate"] == "Bearer"
    lower = service.client.get("/v1/status", headers={"Authorization": f"bearer {token_value}"})
    assert lower.status_code == 200  # the scheme name is case-insensitive (RFC 9110)


def test_openapi_declares_the_bearer_scheme_on_every_protected_operation(tmp_path: Path) -> None:
    svc = Service(tmp_path)
    document = svc.client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s == {**s, "type": "http", "scheme": "bearer"}]
    assert len(bearer) == 1
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            expected = [] if path == "/v1/health" else [{bearer[0]: []}]
            assert operation.get("security", []) == expected, (method, path)
    svc.store.close()


# ---------------------------------------------------------------- 8. malformed → 4xx
def test_a_horizon_beyond_32_bits_is_refused_and_the_workspace_stays_readable(
    service: Service,
) -> None:
    key = service.key(scopes=["predictions:write", "reports:read"])
    assert service.post("predictions", ndjson([one("p0")]), key).status_code == 201
    result = service.post("predictions", ndjson([one("p1", horizon_days=2**31)]), key)
    assert assert_one_json_error(result, 422)["bad_rows"][0]["field"] == "horizon_days"
    assert service.client.get("/v1/status", headers=key).status_code == 200
    assert service.client.get("/v1/report.html", headers=key).status_code == 200
    # a report of the future is refused like the CLI's, not computed on what is not yet known
    future = {"as_of": "2999-01-01T00:00:00Z"}
    refused = service.client.get("/v1/report.html", params=future, headers=key)
    assert "later than now" in assert_one_json_error(refused, 422)["error"]


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"prediction_id": "\\ud800"}', NDJSON),
        (b"[" * 5000 + b"]" * 5000, NDJSON),
        (with_fields(b'"segments": {"a": [1]}'), NDJSON),
        (with_fields(b'"segments": "retail"'), NDJSON),
        (with_fields(b'"segments": {"a\\u0000b": "x"}'), NDJSON),
        (with_fields(b'"scored_at": "99999-01-01T00:00:00Z"'), NDJSON),
        (with_fields(b'"scored_at": "2024-02-30T00:00:00Z"'), NDJSON),
        (with_fields(b'"score": "1e999"'), NDJSON),
        (with_fields(b'"score": ' + b"9" * 5000), NDJSON),
        (with_fields(b'"entity_id": "' + b"x" * 100_000 + b'"'), NDJSON),
        (b'{"score": "0.5", "score": 0.6', NDJSON),
        (b"\x00\x01\x02", NDJSON),
        (with_fields(b'"a": 1') + b"\r\n\r\n" + with_fields(b'"b": 2'), NDJSON),
        (b"prediction_id\n\x00\n", "text/csv"),
        (b'"unterminated\n1,2\n', "text/csv"),
        (CSV_HEADER + b"\n" + b"p,l,v,1e999,2024-01-02T00:00:00Z,30,won\n", "text/csv"),
        (CSV_HEADER + b",segment:\np,l,v,0.5,2024-01-02T00:00:00Z,30,won,x\n", "text/csv"),
    ],
)
def test_every_malformed_body_is_one_json_4xx(
    service: Service, body: bytes, content_type: str
) -> None:
    assert_one_json_error(service.post("predictions", body, service.key(), content_type))
    assert service.rows("acme") == 0


@pytest.mark.parametrize("as_of", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_an_as_of_at_the_end_of_time_is_a_422(service: Service, as_of: str) -> None:
    key = service.key()
    result = service.client.get("/v1/audit", params={"as_of": as_of}, headers=key)
    assert_one_json_error(result, 422)


# ---------------------------------------------------------------- 6. slow clients
def test_a_body_that_does_not_arrive_in_time_is_a_408(tmp_path: Path) -> None:
    svc = Service(tmp_path, Settings(body_timeout_seconds=0.3))
    app = svc.client.app
    token_value = svc.key()["Authorization"].encode()
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        first = True

        async def receive() -> dict[str, Any]:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b'{"entity_id"', "more_body": True}
            await asyncio.sleep(30)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "path": "/v1/predictions", "raw_path": b"/v1/predictions",
            "query_string": b"", "root_path": "", "scheme": "http",
            "headers": [(b"authorization", token_value), (b"content-type", NDJSON.encode())],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        await asyncio.wait_for(app(scope, receive, send), 5)

    started = time.monotonic()
    asyncio.run(run())
    assert time.monotonic() - started < 3
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in [(k.lower(), v) for k, v in sent[0]["headers"]]
    assert "error" in json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    svc.store.close()


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[Server]:
    found = Server(tmp_path)
    yield found
    if found.process is not None and found.process.poll() is None:
        found.stop(signal.SIGKILL)


@pytest.mark.integration
def test_slowloris_connections_are_closed_in_time_and_others_are_served(
    slow_server: Server,
) -> None:
    head_timeout, body_timeout, margin = 2.0, 2.0, 2.5
    bearer = token(slow_server.root)
    slow_server.start(
        "--head-timeout", str(head_timeout), "--body-timeout", str(body_timeout),
        "--keep-alive-timeout", "1",
    )  # fmt: skip
    heads = {
        "idle": b"",
        "head": b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        "body": (
            f"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\n"
            "Content-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n{"
        ).encode(),
        "huge-head": b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000,
    }
    sockets: list[tuple[str, socket.socket, float]] = []
    for _ in range(12):
        for kind, start in heads.items():
            conn = socket.create_connection(("127.0.0.1", slow_server.port))
            if start:
                with contextlib.suppress(OSError):
                    conn.sendall(start)
            conn.setblocking(False)
            sockets.append((kind, conn, time.monotonic()))
    closed: dict[int, float] = {}
    answers: dict[int, bytes] = {}
    served: list[float] = []
    deadline = time.monotonic() + max(head_timeout, body_timeout) + margin + 1
    while len(closed) < len(sockets) and time.monotonic() < deadline:
        if not served and time.monotonic() > deadline - margin - 2:
            asked = time.monotonic()
            reply = httpx.get(f"{slow_server.url}/v1/health", timeout=2)
            assert reply.status_code == 200
            served.append(time.monotonic() - asked)
        for index, (kind, conn, _) in enumerate(sockets):
            if index in closed:
                continue
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":
                closed[index] = time.monotonic()
                continue
            if data:
                answers[index] = answers.get(index, b"") + data
            if kind in ("head", "body"):
                try:
                    conn.send(b"a")  # one byte at a time, forever
                except BlockingIOError:
                    pass
                except OSError:
                    closed[index] = time.monotonic()
        time.sleep(0.2)
    for _, conn, _ in sockets:
        conn.close()
    open_still = [sockets[i][0] for i in range(len(sockets)) if i not in closed]
    assert open_still == [], f"{len(open_still)} slow connections still open: {open_still[:5]}"
    for index, (kind, _, opened) in enumerate(sockets):
        limit = body_timeout if kind == "body" else head_timeout
        assert closed[index] - opened < limit + margin, (kind, closed[index] - opened)
        if kind == "body":
            assert answers.get(index, b"").startswith(b"HTTP/1.1 408"), answers.get(index)
        if kind == "huge-head" and index in answers:  # (a reset may overtake the answer)
            assert answers[index].startswith(b"HTTP/1.1 431"), answers[index][:200]
    assert served and served[0] < 1.0
    assert httpx.get(f"{slow_server.url}/v1/health", timeout=2).status_code == 200
    assert slow_server.stop(signal.SIGTERM) == 0
