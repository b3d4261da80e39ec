"""assay serve under load on 127.0.0.1: ingest throughput and latency; the honest score's latency.

Four client threads each post 8 batches of 10,000 predictions (NDJSON, distinct ids) to a
server process on a DuckDB store, then on a PostgreSQL store (a throwaway cluster with fsync
on, when Debian's server binaries are installed); every reply must be 201. Reported: rows/s
over the wall time of the whole run, and the p50/p99 of the per-batch latency. Beside it, the
same rows ingested by the library in-process (``Ledger.ingest_predictions`` on Arrow) — the
cost of the HTTP layer is the ratio. Target on this machine (DuckDB): ≥ 100,000 rows/s and
p99 < 1 s; PostgreSQL is reported, not targeted.

``POST /v1/score`` (issue 20): a workspace holds a vendor's 20,000 matured leads (over-confident,
5% base rate, two regions); one client posts 1,000 new leads (NDJSON, derived ids, so every
request records 1,000 new predictions) to a server process on a DuckDB store, 5 warm-up
requests (the first builds the honest map; later ones reuse it, as a server does within its
freshness window) then 50 timed ones, one after another; every reply must be 201. Reported:
p50, p95 and p99 of the request latency against the target p99 ≤ 100 ms, beside the library
call (``score_honestly`` on the same ledger afterwards, in-process, no HTTP) on 50 new batches.
The server checkpoints its ledger when writes pause (:mod:`assay.service.checkpoints`); the
library call keeps DuckDB's own threshold, so its tail holds the checkpoints a burst triggers.
"""

from __future__ import annotations

import datetime as dt
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
import pyarrow as pa
from rich.console import Console
from rich.table import Table
from tests.pgcluster import PostgresCluster, postgres_bin

from assay.ledger import Ledger
from assay.service.batches import parse_ndjson
from assay.service.keys import KeyStore

CLIENTS, BATCHES, ROWS = 4, 8, 10_000
#: POST /v1/score: history, leads per request, warm-up and timed requests, the p99 target (s).
HISTORY, LEADS, WARMUP, REQUESTS, SCORE_TARGET = 20_000, 1_000, 5, 50, 0.100
SCORE_START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


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


def _vendor_history(path: Path) -> None:
    """Write a ledger holding the vendor's HISTORY leads of January 2024, all matured."""
    from tests.honest_sim import matured_tables, vendor

    rng = np.random.default_rng(0)
    score, _, outcome = vendor("over", 0.05, rng)(HISTORY)
    predictions, outcomes = matured_tables(
        [f"h{i}" for i in range(HISTORY)], score, outcome, SCORE_START,
        region=rng.choice(["emea", "amer"], HISTORY).tolist(),
    )  # fmt: skip
    path.parent.mkdir(parents=True)
    with Ledger(path) as ledger:
        ledger.ingest_predictions(predictions, segments=["region"], now=SCORE_START)
        ledger.ingest_outcomes(outcomes, now=SCORE_START + dt.timedelta(days=6))


def _new_leads(index: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(1_000 + index)
    return [
        {"entity_id": f"new-{index}-{i}", "score": float(s), "segments": {"region": r}}
        for i, (s, r) in enumerate(
            zip(rng.beta(1, 12, LEADS), rng.choice(["emea", "amer"], LEADS), strict=True)
        )
    ]


def _score_latencies(root: Path) -> tuple[list[float], list[float]]:
    """Seconds per POST /v1/score (timed requests), then per library call on the same ledger."""
    from assay.models.honest import score_honestly

    store = root / "score"
    ledger_path = store / "workspaces" / "bench.duckdb"
    _vendor_history(ledger_path)
    keys = KeyStore(root / "score-keys.sqlite")
    token, _ = keys.create("bench", ["scores:write"])
    keys.close()
    port = _port()
    server = _serve(f"duckdb:{store}", root / "score-keys.sqlite", port)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    url = f"http://127.0.0.1:{port}/v1/score?scorer=vendor&segment_by=region"
    bodies = [b"\n".join(map(orjson.dumps, _new_leads(k))) for k in range(WARMUP + REQUESTS)]
    latencies = []
    try:
        with httpx.Client(timeout=120) as http:
            for k, body in enumerate(bodies):
                started = time.perf_counter()
                reply = http.post(url, content=body, headers=headers)
                if k >= WARMUP:
                    latencies.append(time.perf_counter() - started)
                if reply.status_code != 201:
                    raise RuntimeError(f"{reply.status_code}: {reply.text[:200]}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    library = []
    with Ledger(ledger_path) as ledger:
        for k in range(REQUESTS):
            leads = _new_leads(10_000 + k)
            table = pa.table({
                "entity_id": [lead["entity_id"] for lead in leads],
                "score": [lead["score"] for lead in leads],
                "region": [lead["segments"]["region"] for lead in leads],  # type: ignore[index]
            })  # fmt: skip
            started = time.perf_counter()
            score_honestly(ledger, "vendor", table, fresh_for=dt.timedelta(minutes=10))
            library.append(time.perf_counter() - started)
    return latencies, library


def run_score(console: Console) -> None:
    """Print the POST /v1/score latency table and its verdict against the p99 target."""
    with tempfile.TemporaryDirectory() as directory:
        latencies, library = _score_latencies(Path(directory))
    table = Table(
        title=f"POST /v1/score: {LEADS:,} leads per request, {REQUESTS} requests after "
        f"{WARMUP} warm-up, map of {HISTORY:,} matured leads"
    )
    for column in ("path", "p50 ms", "p95 ms", "p99 ms", "target p99", "verdict"):
        table.add_column(column, justify="right")
    for name, times in (
        ("assay serve, DuckDB store, loopback", latencies),
        ("library score_honestly, no HTTP", library),
    ):
        p50, p95, p99 = 1000 * np.percentile(times, [50, 95, 99])
        verdict = "met" if p99 <= 1000 * SCORE_TARGET else "MISSED"
        table.add_row(
            name, f"{p50:.0f}", f"{p95:.0f}", f"{p99:.0f}", f"≤ {1000 * SCORE_TARGET:.0f} ms",
            verdict if times is latencies else "",
        )  # fmt: skip
    console.print(table)


def run(console: Console) -> None:
    run_ingest(console)
    run_score(console)


def run_ingest(console: Console) -> None:
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


if __name__ == "__main__":  # python -m benchmarks.bench_service [ingest|score]
    cases = {"ingest": run_ingest, "score": run_score}
    chosen = [cases[name] for name in sys.argv[1:]] or [run]
    for case in chosen:
        case(Console(width=120))
