"""assay serve under load on 127.0.0.1: ingest throughput and per-batch latency.

Four client threads each post 8 batches of 10,000 predictions (NDJSON, distinct ids) to a
server process on a DuckDB store, then on a PostgreSQL store (a throwaway cluster with fsync
on, when Debian's server binaries are installed); every reply must be 201. Reported: rows/s
over the wall time of the whole run, and the p50/p99 of the per-batch latency. Beside it, the
same rows ingested by the library in-process (``Ledger.ingest_predictions`` on Arrow) — the
cost of the HTTP layer is the ratio. Target on this machine (DuckDB): ≥ 100,000 rows/s and
p99 < 1 s; PostgreSQL is reported, not targeted.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
from rich.console import Console
from rich.table import Table
from tests.pgcluster import PostgresCluster, postgres_bin

from assay.ledger import Ledger
from assay.service.batches import parse_ndjson
from assay.service.keys import KeyStore

CLIENTS, BATCHES, ROWS = 4, 8, 10_000


def _body(index: int) -> bytes:
    return b"\n".join(
        orjson.dumps(
            {
                "prediction_id": f"b{index}-{i}", "entity_id": f"lead-{index}-{i}",
                "scorer": "vendor-a", "score": (i % 997) / 997,
                "scored_at": "2024-03-01T12:00:00Z", "horizon_days": 30, "target_event": "won",
            }
        )
        for i in range(ROWS)
    )  # fmt: skip


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(store: str, keys: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", "from assay.cli.main import app; app()", "serve",
         "--port", str(port), "--store", store, "--keys", str(keys), "--rate", "1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def _load(port: int, token: str, bodies: list[bytes]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}

    def client(number: int) -> None:
        with httpx.Client(timeout=120) as http:
            for k in range(BATCHES):
                started = time.perf_counter()
                reply = http.post(
                    f"http://127.0.0.1:{port}/v1/predictions",
                    content=bodies[number * BATCHES + k], headers=headers,
                )  # fmt: skip
                latencies.append(time.perf_counter() - started)
                if reply.status_code != 201:
                    raise RuntimeError(f"{reply.status_code}: {reply.text[:200]}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies


def _measure(store: str, root: Path, bodies: list[bytes]) -> tuple[float, list[float]]:
    keys = KeyStore(root / "keys.sqlite")
    token, _ = keys.create("bench", ["predictions:write"])
    keys.close()
    port = _port()
    server = _serve(store, root / "keys.sqlite", port)
    try:
        return _load(port, token, bodies)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def run(console: Console) -> None:
    bodies = [_body(i) for i in range(CLIENTS * BATCHES)]
    rows = CLIENTS * BATCHES * ROWS
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        results["DuckDB store"] = _measure(f"duckdb:{root / 'store'}", root, bodies)
        bin_dir = postgres_bin()
        if bin_dir is not None:
            cluster = PostgresCluster(bin_dir, fsync=True)
            try:
                dsn = cluster.fresh_database()
                results["PostgreSQL store (fsync on)"] = _measure(dsn, root / "pg", bodies)
            finally:
                cluster.stop()
        ledger = Ledger(root / "library.duckdb")
        tables = [parse_ndjson(b, "predictions").table for b in bodies]
        started = time.perf_counter()
        for table in tables:
            ledger.ingest_predictions(table)
        library = time.perf_counter() - started
        ledger.close()
    table = Table(title=f"Ingest over HTTP: {CLIENTS} clients × {BATCHES} batches × {ROWS:,} rows")
    for column in ("path", "rows/s", "p50 batch s", "p99 batch s", "vs library"):
        table.add_column(column, justify="right")
    for name, (wall, latencies) in results.items():
        p50, p99 = np.percentile(latencies, [50, 99])
        table.add_row(
            f"assay serve, {name}, loopback", f"{rows / wall:,.0f}", f"{p50:.3f}",
            f"{p99:.3f}", f"{library / wall:.2f}×",
        )  # fmt: skip
    table.add_row("library ingest, one thread, no HTTP", f"{rows / library:,.0f}", "", "", "1.00×")
    console.print(table)


if __name__ == "__main__":
    run(Console(width=120))
