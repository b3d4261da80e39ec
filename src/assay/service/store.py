"""Where the service keeps each workspace's ledger: the ``Store`` protocol and its DuckDB store.

The DuckDB store gives every workspace its own ledger file (``<root>/workspaces/<name>.duckdb``),
so one workspace's rows cannot be reached through another's key. The server process owns the
files. Every write — ingest, receipts, exports — runs on **one writer thread** fed by a
queue (a single-worker executor), because DuckDB transactions on cursors opened per request
race when a client retries a batch; reads run on a small pool of threads, each on its own
cursor of the same database, so an audit does not hold up ingest.

Receipts (by body sha256) and ``Idempotency-Key`` responses live in SQLite beside the keys.
Every acknowledged batch is committed before its receipt is written, so after a crash a resend
of the same body finds its rows present and writes nothing new.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from assay.ledger import IngestReceipt, Ledger
from assay.service.batches import Batch

T = TypeVar("T")

#: Receipts by body hash and stored responses by Idempotency-Key (``{binary}``: the
#: database's byte type), shared by both stores.
STATE_TABLES = """
CREATE TABLE IF NOT EXISTS receipts (
    workspace TEXT NOT NULL, kind TEXT NOT NULL, body_sha256 TEXT NOT NULL,
    receipt TEXT NOT NULL, PRIMARY KEY (workspace, kind, body_sha256)
);
CREATE TABLE IF NOT EXISTS idempotency (
    workspace TEXT NOT NULL, key TEXT NOT NULL, request_sha256 TEXT NOT NULL,
    status INTEGER NOT NULL, body {binary} NOT NULL, PRIMARY KEY (workspace, key)
);
"""


class Store(Protocol):
    """What the HTTP layer needs from storage, whatever the database."""

    async def ingest(self, workspace: str, kind: str, batch: Batch) -> IngestReceipt: ...

    async def read(self, workspace: str, task: Callable[[Ledger], T]) -> T: ...

    async def export(self, workspace: str) -> dict[str, Any]: ...

    def receipt(self, workspace: str, kind: str, body_sha256: str) -> str | None: ...

    def save_receipt(self, workspace: str, kind: str, body_sha256: str, receipt: str) -> None: ...

    def replay(self, workspace: str, key: str) -> tuple[str, int, bytes] | None: ...

    def remember(
        self, workspace: str, key: str, request_sha256: str, status: int, body: bytes
    ) -> None: ...

    def close(self) -> None: ...


class DuckDBStore:
    """Per-workspace DuckDB ledgers under ``root``, one writer thread, a few reader threads."""

    def __init__(self, root: str | Path, *, readers: int = 2) -> None:
        self.root = Path(root)
        (self.root / "workspaces").mkdir(parents=True, exist_ok=True)
        self._ledgers: dict[str, Ledger] = {}
        self._writer: Executor = ThreadPoolExecutor(1, thread_name_prefix="assay-writer")
        self._readers: Executor = ThreadPoolExecutor(readers, thread_name_prefix="assay-reader")
        self._state = sqlite3.connect(
            self.root / "state.sqlite", check_same_thread=False, isolation_level=None
        )
        self._state.execute("PRAGMA journal_mode=WAL")
        self._state.executescript(STATE_TABLES.format(binary="BLOB"))

    # ------------------------------------------------------------------ the writer thread
    def _ledger(self, workspace: str) -> Ledger:
        """The workspace's ledger (opened on first use); called on the writer thread only."""
        if workspace not in self._ledgers:
            self._ledgers[workspace] = Ledger(self.root / "workspaces" / f"{workspace}.duckdb")
        return self._ledgers[workspace]

    async def _on(self, executor: Executor, task: Callable[[], T]) -> T:
        return await asyncio.wrap_future(executor.submit(task))

    async def ingest(self, workspace: str, kind: str, batch: Batch) -> IngestReceipt:
        def write() -> IngestReceipt:
            ledger = self._ledger(workspace)
            if kind == "predictions":
                return ledger.ingest_predictions(batch.table, segments=batch.segments)
            return ledger.ingest_outcomes(batch.table)

        return await self._on(self._writer, write)

    async def read(self, workspace: str, task: Callable[[Ledger], T]) -> T:
        ledger = await self._on(self._writer, lambda: self._ledger(workspace))
        return await self._on(self._readers, lambda: _with_reader(ledger, task))

    async def export(self, workspace: str) -> dict[str, Any]:
        def write() -> dict[str, Any]:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            target = self.root / "exports" / workspace / stamp
            target.mkdir(parents=True)
            con = self._ledger(workspace).con
            files = {}
            for table in ("predictions", "outcomes", "batches"):
                path = target / f"{table}.parquet"
                con.execute(f"COPY {table} TO '{path}' (FORMAT parquet)")
                rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
                files[table] = {"path": str(path), "rows": int(rows)}
            return {"directory": str(target), "files": files}

        return await self._on(self._writer, write)

    # ------------------------------------------------------------------ receipts, idempotency
    def receipt(self, workspace: str, kind: str, body_sha256: str) -> str | None:
        row = self._state.execute(
            "SELECT receipt FROM receipts WHERE workspace = ? AND kind = ? AND body_sha256 = ?",
            (workspace, kind, body_sha256),
        ).fetchone()
        return None if row is None else str(row[0])

    def save_receipt(self, workspace: str, kind: str, body_sha256: str, receipt: str) -> None:
        self._state.execute(
            "INSERT OR IGNORE INTO receipts VALUES (?, ?, ?, ?)",
            (workspace, kind, body_sha256, receipt),
        )

    def replay(self, workspace: str, key: str) -> tuple[str, int, bytes] | None:
        row = self._state.execute(
            "SELECT request_sha256, status, body FROM idempotency WHERE workspace = ? AND key = ?",
            (workspace, key),
        ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), bytes(row[2]))

    def remember(
        self, workspace: str, key: str, request_sha256: str, status: int, body: bytes
    ) -> None:
        self._state.execute(
            "INSERT OR IGNORE INTO idempotency VALUES (?, ?, ?, ?, ?)",
            (workspace, key, request_sha256, status, body),
        )

    def close(self) -> None:
        """Finish queued work, then close every ledger (graceful shutdown)."""
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        for ledger in self._ledgers.values():
            ledger.close()
        self._state.close()


def _with_reader(ledger: Ledger, task: Callable[[Ledger], T]) -> T:
    reader = ledger.reader()
    try:
        return task(reader)
    finally:
        reader.close()
