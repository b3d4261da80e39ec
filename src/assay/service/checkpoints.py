"""Checkpoint the service's DuckDB ledgers when writes pause, not inside a request.

DuckDB folds its write-ahead log into the database file (a *checkpoint*) on the commit that
takes the log past ``checkpoint_threshold`` (16 MB by default), and that commit's request
waits for it: about 150 ms on a 20,000-lead ledger, which made the p99 of ``POST /v1/score``
three times its median (``python -m benchmarks.bench_service score``). The DuckDB store
raises the threshold to :data:`WAL_CAP` and checkpoints each ledger it wrote once the writer
has been idle for :data:`IDLE_SECONDS`, on the writer thread: a request waits for a
checkpoint only when one is running as it arrives, or when writes go on without a pause
until the log reaches the cap. Nothing is less durable: a commit is in the log either way,
and the log is replayed when the ledger next opens (a longer log, a slower first open).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from concurrent.futures import Executor

#: The log size at which DuckDB checkpoints by itself, inside the commit that passes it.
WAL_CAP = "256MiB"
#: How long the writer must have been idle before the written ledgers are checkpointed.
IDLE_SECONDS = 1.0


class IdleCheckpoints:
    """Checkpoint the connections written to once writes pause, on the writer thread.

    A daemon thread waits until :data:`IDLE_SECONDS` (``idle_seconds``) have passed since
    the last :meth:`written`, then queues the checkpoints on ``writer``. A checkpoint that
    fails (a refusal while another transaction runs, an I/O error) is tried again after the
    next pause; the log keeps every commit meanwhile.
    """

    def __init__(self, writer: Executor, idle_seconds: float = IDLE_SECONDS) -> None:
        self._writer = writer
        self._idle = idle_seconds
        self._dirty: dict[str, duckdb.DuckDBPyConnection] = {}
        self._due = 0.0  # time.monotonic() at which the next checkpoint may run
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="assay-checkpoints", daemon=True)
        self._thread.start()

    @staticmethod
    def prepare(con: duckdb.DuckDBPyConnection) -> None:
        """Raise ``con``'s automatic checkpoint threshold to :data:`WAL_CAP`."""
        con.execute(f"SET checkpoint_threshold = '{WAL_CAP}'")

    def written(self, name: str, con: duckdb.DuckDBPyConnection) -> None:
        """Note that ``con`` (the ledger ``name``) was written to; on the writer thread."""
        self._dirty[name] = con
        self._due = time.monotonic() + self._idle
        self._wake.set()

    def close(self) -> None:
        """Stop the thread (a checkpoint it queued finishes first); forget the connections."""
        self._closing = True
        self._wake.set()
        self._thread.join()
        self._dirty.clear()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while not self._closing and (wait := self._due - time.monotonic()) > 0:
                time.sleep(min(wait, 0.1))
            if self._closing:
                return
            try:
                self._writer.submit(self._checkpoint).result()
            except RuntimeError:  # the writer has shut down
                return

    def _checkpoint(self) -> None:
        """Checkpoint every written connection, unless a write came in meanwhile."""
        if time.monotonic() < self._due:
            self._wake.set()  # wait for the next pause
            return
        for name, con in list(self._dirty.items()):
            try:
                con.execute("CHECKPOINT")
            except duckdb.Error:  # try again after the next pause
                self._due = time.monotonic() + self._idle
                self._wake.set()
            else:
                del self._dirty[name]
