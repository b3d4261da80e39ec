"""Where the service keeps each workspace's ledger: the ``Store`` protocol and its DuckDB store.

The DuckDB store gives every workspace its own ledger file (``<root>/workspaces/<name>.duckdb``),
so one workspace's rows cannot be reached through another's key. The server process owns the
files. Every write — ingest, served honest scores, receipts, exports — runs on **one writer
thread** fed by a queue (a single-worker executor), because DuckDB transactions on cursors
opened per request race when a client retries a batch; reads run on a small pool of threads,
each on its own cursor of the same database, so an audit does not hold up ingest.
A ledger's write-ahead log is folded into its file once writes pause
(:mod:`assay.service.checkpoints`), not inside the request whose commit fills it.

**Threads.** Each workspace's DuckDB runs its queries on :func:`query_threads` threads, half
the machine's cores (at least one), not DuckDB's default of all of them: the service runs
requests side by side (the writer, the readers, the event loop parsing bodies), so a query's
own parallelism mostly contends with them. On this project's 2-core benchmark machine one
thread made ``POST /v1/score`` about 10 ms faster at the median (of ~85 ms) and kept HTTP
ingest throughput, while a report over 10^6 predictions took 5.2 s instead of 3.5 s
(``threads=`` of :class:`DuckDBStore`, ``assay serve --query-threads``, to choose otherwise).

Receipts (by body sha256) and ``Idempotency-Key`` responses live in SQLite beside the keys.
Every acknowledged batch is committed before its receipt is written, so after a crash a resend
of the same body finds its rows present and writes nothing new. An ``Idempotency-Key`` is
scoped to the API key that sent it: the first request *claims* it (one atomic insert, so two
requests racing with one key cannot both run), its response is stored when it completes, and a
claim that never completed (the server died) may be taken over after
:data:`STALE_CLAIM_SECONDS`.

Read tasks get a ledger whose ``path`` is the workspace's name: nothing computed from it can
show where the server keeps its files.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import time
import weakref
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from assay.ledger import IngestReceipt, Ledger
from assay.service.checkpoints import IDLE_SECONDS, IdleCheckpoints

if TYPE_CHECKING:
    from collections.abc import Callable

    from assay.service.batches import Batch

T = TypeVar("T")

#: Receipts by body hash and stored responses by (API key, Idempotency-Key) (``{binary}``: the
#: database's byte type), shared by both stores. ``status`` 0 is a claim still running.
#: (The ``idempotency`` table of earlier versions, keyed by workspace alone, is left unused.)
STATE_TABLES = """
CREATE TABLE IF NOT EXISTS receipts (
    workspace TEXT NOT NULL, kind TEXT NOT NULL, body_sha256 TEXT NOT NULL,
    receipt TEXT NOT NULL, PRIMARY KEY (workspace, kind, body_sha256)
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    workspace TEXT NOT NULL, key_id TEXT NOT NULL, key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL, status INTEGER NOT NULL, body {binary} NOT NULL,
    claimed_at BIGINT NOT NULL, PRIMARY KEY (workspace, key_id, key)
);
"""
#: A claim this old that never completed (its server died) may be taken over.
STALE_CLAIM_SECONDS = 15 * 60
#: Claim an Idempotency-Key (new, or taking over a stale claim); placeholders are ``?``.
CLAIM = """
INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, 0, ?, ?)
ON CONFLICT (workspace, key_id, key) DO UPDATE
SET request_sha256 = excluded.request_sha256, claimed_at = excluded.claimed_at
WHERE idempotency_keys.status = 0 AND idempotency_keys.claimed_at < ?
"""
LOOKUP = (
    "SELECT request_sha256, status, body FROM idempotency_keys "
    "WHERE workspace = ? AND key_id = ? AND key = ?"
)
REMEMBER = (
    "UPDATE idempotency_keys SET status = ?, body = ? "
    "WHERE workspace = ? AND key_id = ? AND key = ? AND status = 0"
)
RELEASE = (
    "DELETE FROM idempotency_keys WHERE workspace = ? AND key_id = ? AND key = ? AND status = 0"
)


class Unsupported(Exception):
    """The store cannot do what was asked (the service answers 501 with the reason)."""


class Store(Protocol):
    """What the HTTP layer needs from storage, whatever the database."""

    async def ingest(self, workspace: str, kind: str, batch: Batch) -> IngestReceipt:
        """Write ``batch`` as ``kind`` rows of the workspace, all or nothing."""
        ...

    async def write(self, workspace: str, task: Callable[[Ledger], T]) -> T:
        """Run ``task`` on the workspace's ledger where it may write (models, predictions).

        Raises :class:`Unsupported` on a store that cannot run ledger code that writes.
        """
        ...

    async def read(self, workspace: str, task: Callable[[Ledger], T]) -> T:
        """Run ``task`` on a ledger holding the workspace's rows; return its result."""
        ...

    async def export(self, workspace: str) -> dict[str, Any]:
        """Write the workspace's tables as Parquet under :attr:`export_root`; name the files."""
        ...

    def receipt(self, workspace: str, kind: str, body_sha256: str) -> str | None:
        """Return the receipt stored for a body with this sha256, or None."""
        ...

    def save_receipt(self, workspace: str, kind: str, body_sha256: str, receipt: str) -> None:
        """Keep the receipt of a body (the first one stored for its sha256 stays)."""
        ...

    def claim(
        self, workspace: str, key_id: str, key: str, request_sha256: str
    ) -> tuple[str, int, bytes] | None:
        """Claim ``key`` for API key ``key_id``: None when claimed now, else what it holds.

        What it holds: the request's sha256, the status (0 while running) and the stored
        response.
        """
        ...

    def remember(self, workspace: str, key_id: str, key: str, status: int, body: bytes) -> None:
        """Store the response of a claimed key."""
        ...

    def release(self, workspace: str, key_id: str, key: str) -> None:
        """Give up a claim whose request ended without a response to keep."""
        ...

    #: Where :meth:`export` writes; the paths it returns are relative to it.
    export_root: Path

    def close(self) -> None:
        """Finish queued work, then release the database (graceful shutdown)."""
        ...


def query_threads() -> int:
    """Return the DuckDB threads of a served workspace by default: half the cores, at least one."""
    return max(1, (os.cpu_count() or 1) // 2)


class DuckDBStore:
    """Per-workspace DuckDB ledgers under ``root``, one writer thread, a few reader threads.

    ``threads``: DuckDB's threads per workspace database (None: :func:`query_threads`).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        readers: int = 2,
        idle_checkpoint: float = IDLE_SECONDS,
        threads: int | None = None,
    ) -> None:
        self.root = Path(root)
        self._threads = query_threads() if threads is None else threads
        (self.root / "workspaces").mkdir(parents=True, exist_ok=True)
        self._ledgers: dict[str, Ledger] = {}
        self._writer: Executor = ThreadPoolExecutor(1, thread_name_prefix="assay-writer")
        self._readers: Executor = ThreadPoolExecutor(readers, thread_name_prefix="assay-reader")
        self._checkpoints = IdleCheckpoints(self._writer, idle_checkpoint)
        # a store dropped without close() stops its checkpoint thread (which holds the ledgers)
        self._stop_checkpoints = weakref.finalize(self, self._checkpoints.close)
        self._state = sqlite3.connect(
            self.root / "state.sqlite", check_same_thread=False, isolation_level=None
        )
        self._state.execute("PRAGMA journal_mode=WAL")
        self._state.executescript(STATE_TABLES.format(binary="BLOB"))
        self.export_root = self.root / "exports"

    # ------------------------------------------------------------------ the writer thread
    def _ledger(self, workspace: str) -> Ledger:
        """Return the workspace's ledger (opened on first use); on the writer thread only."""
        if workspace not in self._ledgers:
            ledger = Ledger(self.root / "workspaces" / f"{workspace}.duckdb")
            ledger.con.execute(f"SET threads = {int(self._threads)}")
            IdleCheckpoints.prepare(ledger.con)
            self._ledgers[workspace] = ledger
            self._checkpoints.written(workspace, ledger.con)  # opening may have migrated it
        return self._ledgers[workspace]

    def _writing(self, workspace: str, task: Callable[[Ledger], T]) -> T:
        """Run ``task`` on the workspace's ledger; on the writer thread only.

        The ledger is then checkpointed at the next pause, also when the task fails: it may
        have committed before failing.
        """
        ledger = self._ledger(workspace)
        try:
            return task(ledger)
        finally:
            self._checkpoints.written(workspace, ledger.con)

    async def _on(self, executor: Executor, task: Callable[[], T]) -> T:
        return await asyncio.wrap_future(executor.submit(task))

    async def ingest(self, workspace: str, kind: str, batch: Batch) -> IngestReceipt:
        """Write ``batch`` into the workspace's ledger on the writer thread, all or nothing."""

        def write(ledger: Ledger) -> IngestReceipt:
            if kind == "predictions":
                return ledger.ingest_predictions(batch.table, segments=batch.segments)
            return ledger.ingest_outcomes(batch.table)

        return await self._on(self._writer, lambda: self._writing(workspace, write))

    async def write(self, workspace: str, task: Callable[[Ledger], T]) -> T:
        """Run ``task`` on the writer thread, on the workspace's ledger (writes queue there)."""
        return await self._on(self._writer, lambda: self._writing(workspace, task))

    async def read(self, workspace: str, task: Callable[[Ledger], T]) -> T:
        """Run ``task`` on a reader thread, on the workspace's ledger through its own cursor."""
        ledger = await self._on(self._writer, lambda: self._ledger(workspace))
        return await self._on(self._readers, lambda: _with_reader(ledger, workspace, task))

    async def export(self, workspace: str) -> dict[str, Any]:
        """Write the ledger's tables as Parquet under a timestamped directory of the workspace."""

        def write() -> dict[str, Any]:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            target = self.export_root / workspace / stamp
            target.mkdir(parents=True)
            con = self._ledger(workspace).con
            files = {}
            for table in ("predictions", "outcomes", "batches"):
                path = target / f"{table}.parquet"
                con.execute(f"COPY {table} TO '{path}' (FORMAT parquet)")
                rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
                files[table] = {"path": relative(path, self.export_root), "rows": int(rows)}
            return {"directory": relative(target, self.export_root), "files": files}

        return await self._on(self._writer, write)

    # ------------------------------------------------------------------ receipts, idempotency
    def receipt(self, workspace: str, kind: str, body_sha256: str) -> str | None:
        """Return the receipt stored for a body with this sha256, or None."""
        row = self._state.execute(
            "SELECT receipt FROM receipts WHERE workspace = ? AND kind = ? AND body_sha256 = ?",
            (workspace, kind, body_sha256),
        ).fetchone()
        return None if row is None else str(row[0])

    def save_receipt(self, workspace: str, kind: str, body_sha256: str, receipt: str) -> None:
        """Keep the receipt of a body (the first one stored for its sha256 stays)."""
        self._state.execute(
            "INSERT OR IGNORE INTO receipts VALUES (?, ?, ?, ?)",
            (workspace, kind, body_sha256, receipt),
        )

    def claim(
        self, workspace: str, key_id: str, key: str, request_sha256: str
    ) -> tuple[str, int, bytes] | None:
        """Claim ``key`` for ``key_id`` (a stale unanswered claim is taken over); see Store."""
        now = int(time.time())
        cursor = self._state.execute(
            CLAIM, (workspace, key_id, key, request_sha256, b"", now, now - STALE_CLAIM_SECONDS)
        )
        if cursor.rowcount == 1:
            return None
        row = self._state.execute(LOOKUP, (workspace, key_id, key)).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), bytes(row[2]))

    def remember(self, workspace: str, key_id: str, key: str, status: int, body: bytes) -> None:
        """Store the response of a claimed key."""
        self._state.execute(REMEMBER, (status, body, workspace, key_id, key))

    def release(self, workspace: str, key_id: str, key: str) -> None:
        """Give up a claim whose request ended without a response to keep."""
        self._state.execute(RELEASE, (workspace, key_id, key))

    def close(self) -> None:
        """Finish queued work, then close every ledger (graceful shutdown)."""
        self._readers.shutdown(wait=True)
        self._stop_checkpoints()
        self._writer.shutdown(wait=True)
        for ledger in self._ledgers.values():
            ledger.close()
        self._state.close()


def _with_reader(ledger: Ledger, workspace: str, task: Callable[[Ledger], T]) -> T:
    reader = ledger.reader()
    reader.path = Path(workspace)  # what reports may show: the workspace, not a server path
    try:
        return task(reader)
    finally:
        reader.close()


def relative(path: Path, root: Path) -> str:
    """``path`` as answers show it: relative to ``root`` (never a server's absolute path)."""
    return path.relative_to(root).as_posix()
