"""assay serve as a real process on 127.0.0.1: crashes lose no acknowledged batch, and a
bounded load test (4 clients, 10,000-row batches) stops by itself with every row stored."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from assay.ledger import Ledger
from assay.service.keys import KeyStore

pytestmark = pytest.mark.integration  # a real server process

SERVE = "from assay.cli.main import app; app()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``assay serve`` in a subprocess on a fixed port and store."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *options: str) -> None:
        """Start the server (``options``: more ``assay serve`` options) and wait for it."""
        args = [
            "serve",
            "--port",
            str(self.port),
            "--store",
            f"duckdb:{self.root}",
            "--rate",
            "1000",
            *options,
        ]
        # The server's log goes to a file: an unread pipe would block it once its access log
        # (a line per request) filled the pipe's buffer.
        with open(self.root / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVE, *args], stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start within 60 s")

    def stop(self, sig: int) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    found = Server(tmp_path)
    yield found
    if found.process is not None and found.process.poll() is None:
        found.stop(signal.SIGKILL)


def batch(index: int, size: int) -> bytes:
    return b"\n".join(
        orjson.dumps(
            {
                "prediction_id": f"b{index}-{i}",
                "entity_id": f"lead-{index}-{i}",
                "scorer": "vendor-a",
                "score": (i % 97) / 97,
                "scored_at": "2024-03-01T12:00:00Z",
                "horizon_days": 30,
                "target_event": "won",
            }
        )
        for i in range(size)
    )


def token(root: Path) -> str:
    keys = KeyStore(root / "keys.sqlite")
    value, _ = keys.create("acme", ["predictions:write", "reports:read"])
    keys.close()
    return value


def stored_rows(server: Server, headers: dict[str, str]) -> int:
    status = httpx.get(f"{server.url}/v1/status", headers=headers, timeout=30).json()
    return sum(s["rows"] for s in status["scorers"])


@pytest.mark.slow
def test_sigkill_twice_then_sigterm_loses_no_acknowledged_batch(server: Server) -> None:
    size, total = 2_000, 30
    headers = {
        "Authorization": f"Bearer {token(server.root)}",
        "Content-Type": "application/x-ndjson",
    }
    acknowledged: set[int] = set()
    done = threading.Event()

    def send_all() -> None:
        for index in range(total):
            while not done.is_set():
                try:
                    reply = httpx.post(
                        f"{server.url}/v1/predictions",
                        content=batch(index, size),
                        headers=headers,
                        timeout=30,
                    )
                except httpx.HTTPError:
                    time.sleep(0.05)  # the server is down: retry the same batch
                    continue
                assert reply.status_code in (200, 201), reply.text
                acknowledged.add(index)
                break

    server.start()
    sender = threading.Thread(target=send_all)
    sender.start()
    for crash in (6, 14):
        while len(acknowledged) < crash:
            time.sleep(0.01)
        server.stop(signal.SIGKILL)
        seen = set(acknowledged)
        server.start()
        rows = stored_rows(server, headers)
        assert rows % size == 0, f"a half batch survived the crash: {rows} rows"
        assert rows >= len(seen) * size  # every acknowledged batch is there
    sender.join(timeout=300)
    done.set()
    assert acknowledged == set(range(total))
    assert server.stop(signal.SIGTERM) == 0  # graceful: queued batches finish, files close
    server.start()
    for index in range(total):  # resend everything: nothing new, nothing lost
        reply = httpx.post(
            f"{server.url}/v1/predictions", content=batch(index, size), headers=headers, timeout=30
        )
        assert reply.status_code == 200
    assert stored_rows(server, headers) == size * total
    server.stop(signal.SIGTERM)
    with Ledger(server.root / "workspaces" / "acme.duckdb", read_only=True) as ledger:
        assert ledger.verify().ok


def test_bounded_load_four_clients_of_ten_thousand_row_batches(server: Server) -> None:
    size, per_client, clients = 10_000, 2, 4
    headers = {
        "Authorization": f"Bearer {token(server.root)}",
        "Content-Type": "application/x-ndjson",
    }
    server.start()
    codes: list[int] = []

    def client(number: int) -> None:
        with httpx.Client(timeout=120) as http:
            for k in range(per_client):
                body = batch(number * per_client + k, size)
                codes.append(
                    http.post(
                        f"{server.url}/v1/predictions", content=body, headers=headers
                    ).status_code
                )

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert codes == [201] * (clients * per_client)
    assert stored_rows(server, headers) == size * per_client * clients
    assert server.stop(signal.SIGTERM) == 0
    assert os.path.exists(server.root / "workspaces" / "acme.duckdb")
