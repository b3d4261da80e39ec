"""assay serve: the API docs load nothing from another host, and each request logs one line.

The line (``assay.service.access_log``) names the method, the path without its query string,
the status, the rows the request carried, the milliseconds and the key's public id, and never
the key's secret.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from assay.service.access_log import AccessLog
from assay.service.app import create_app
from assay.service.keys import KeyStore
from assay.service.store import DuckDBStore

LINE = re.compile(
    r"(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) rows=(?P<rows>\d+|-) "
    r"ms=(?P<ms>\d+\.\d) key=(?P<key>[0-9a-f]{12}|-)"
)


class Assets(HTMLParser):
    """Every URL a page loads by itself: script sources and link hrefs."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[TestClient, KeyStore]]:
    keys, store = KeyStore(tmp_path / "keys.sqlite"), DuckDBStore(tmp_path)
    yield TestClient(create_app(store, keys)), keys
    store.close()


def rows(n: int) -> bytes:
    return b"\n".join(
        orjson.dumps(
            {
                "prediction_id": f"p-{i}",
                "entity_id": f"lead-{i}",
                "scorer": "vendor-a",
                "score": 0.25,
                "scored_at": "2024-03-01T12:00:00Z",
                "horizon_days": 30,
                "target_event": "won",
            }
        )
        for i in range(n)
    )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_every_asset_from_the_server(
    service: tuple[TestClient, KeyStore], page: str
) -> None:
    client, _ = service
    answer = client.get(page)
    assert answer.status_code == 200
    parser = Assets()
    parser.feed(answer.text)
    assert any(url.endswith(".js") for url in parser.urls)
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert not re.search(r"(https?:)?//[\w.-]+\.(net|com|org|io)/", answer.text)  # no CDN


def test_swagger_ui_reads_openapi_3_1(service: tuple[TestClient, KeyStore]) -> None:
    """The document is OpenAPI 3.1, which Swagger UI 4 refuses ("no valid version field").

    Swagger UI 5 carries the OpenAPI 3.1 JSON Schema dialect; Swagger UI 4.15 does not.
    """
    client, _ = service
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    page = client.get("/docs").text
    [script] = re.findall(r'src="([^"]+swagger-ui-bundle\.js)"', page)
    assert "spec.openapis.org/oas/3.1/dialect" in client.get(script).text


def test_one_line_per_request_with_the_key_id_and_never_the_secret(
    service: tuple[TestClient, KeyStore], caplog: pytest.LogCaptureFixture
) -> None:
    client, keys = service
    token, key = keys.create("acme", ["predictions:write", "reports:read"])
    secret = token.rsplit("_", 1)[1]
    caplog.set_level(logging.INFO, logger="assay.access")
    bearer = {"Authorization": f"Bearer {token}"}
    ingest = {**bearer, "Content-Type": "application/x-ndjson"}
    answers = [
        client.post("/v1/predictions?note=private", content=rows(7), headers=ingest),
        client.post("/v1/predictions", content=rows(7), headers=ingest),  # the same: a replay
        client.get("/v1/status", headers=bearer),
        client.get("/v1/status", headers={"Authorization": f"Bearer {token[:-2]}xx"}),
        client.get("/v1/health"),
        client.get("/v1/%0Aforged 200 line"),
    ]
    assert [a.status_code for a in answers] == [201, 200, 200, 401, 200, 404]
    lines = [r.getMessage() for r in caplog.records if r.name == "assay.access"]
    assert len(lines) == len(answers)
    fields = [LINE.fullmatch(line) for line in lines]
    assert all(fields), lines
    seen = [(m["method"], m["path"], int(m["status"]), m["rows"], m["key"]) for m in fields if m]
    assert seen == [
        ("POST", "/v1/predictions", 201, "7", key.key_id),
        ("POST", "/v1/predictions", 200, "7", key.key_id),
        ("GET", "/v1/status", 200, "-", key.key_id),
        ("GET", "/v1/status", 401, "-", "-"),
        ("GET", "/v1/health", 200, "-", "-"),
        ("GET", "/v1/%0Aforged%20200%20line", 404, "-", "-"),
    ]
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for private in (secret, token, "Bearer", "private"):
        assert private not in logged


def test_a_request_the_app_fails_on_is_logged_as_500(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    async def nothing() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def ignore(message: Any) -> None:
        return None

    scope = {"type": "http", "method": "GET", "path": "/v1/audit", "query_string": b"x=1"}
    caplog.set_level(logging.INFO, logger="assay.access")
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(AccessLog(broken)(scope, nothing, ignore))
    [line] = [r.getMessage() for r in caplog.records if r.name == "assay.access"]
    found = LINE.fullmatch(line)
    assert found and (found["path"], found["status"]) == ("/v1/audit", "500")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration  # a real `assay serve` process
def test_assay_serve_prints_one_line_per_request_on_stderr(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-c", "from assay.cli.main import app; app()",
            "serve", "--port", str(port), "--store", f"duckdb:{tmp_path}",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline, answered = time.monotonic() + 60, 0
        while time.monotonic() < deadline and not answered:
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code
            except httpx.HTTPError:
                time.sleep(0.1)
        assert answered == 200
        assert httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=5).status_code == 401
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=60)
    lines = stderr.splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
    assert re.fullmatch(stamp + r"GET /v1/health 200 rows=- ms=\d+\.\d key=-", lines[0]), stderr
    assert re.fullmatch(stamp + r"GET /v1/status 401 rows=- ms=\d+\.\d key=-", lines[-1]), stderr
    assert len(lines) == 2  # one line each: uvicorn's own access log is off
