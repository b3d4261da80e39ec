"""The DuckDB store folds a ledger's write-ahead log into its file once writes pause."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from tests.test_service import ndjson, prediction_rows

from assay.ledger import Ledger
from assay.service.batches import parse_ndjson
from assay.service.checkpoints import IdleCheckpoints
from assay.service.store import DuckDBStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _log_bytes(ledger: Path) -> int:
    wal = ledger.with_name(ledger.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0


def _eventually(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_the_log_is_folded_once_writes_pause_not_inside_the_write(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path, idle_checkpoint=0.5)
    path = tmp_path / "workspaces" / "acme.duckdb"
    try:
        for start in (0, 300):
            batch = parse_ndjson(ndjson(prediction_rows(300, start=start)), "predictions")
            asyncio.run(store.ingest("acme", "predictions", batch))
            assert _log_bytes(path) > 0  # committed to the log; no checkpoint inside the write
        threshold = asyncio.run(
            store.read("acme", lambda ledger: ledger.con.sql(
                "SELECT current_setting('checkpoint_threshold')").fetchall()[0][0])
        )  # fmt: skip
        assert threshold == "256.0 MiB"
        assert _eventually(lambda: _log_bytes(path) == 0)
    finally:
        store.close()
    with Ledger(path) as ledger:  # the rows are in the file, and the chain holds
        assert ledger.con.sql("SELECT count(*) FROM predictions").fetchall()[0][0] == 600
        assert ledger.verify().ok


class _Refusing:
    """A connection whose first CHECKPOINT fails, as DuckDB's does on an I/O error."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def execute(self, sql: str, *_: Any) -> None:
        assert sql == "CHECKPOINT"
        self.calls.append(time.monotonic())
        if len(self.calls) == 1:
            raise duckdb.IOException("disk full")


def test_a_failed_checkpoint_is_tried_again_after_the_next_pause() -> None:
    writer = ThreadPoolExecutor(1)
    checkpoints = IdleCheckpoints(writer, idle_seconds=0.2)
    con = _Refusing()
    try:
        written = time.monotonic()
        writer.submit(checkpoints.written, "acme", con).result()  # type: ignore[arg-type]
        assert _eventually(lambda: len(con.calls) == 2)
        first, second = con.calls
        assert first - written >= 0.2 and second - first >= 0.2  # each after a pause
        time.sleep(0.5)
        assert len(con.calls) == 2  # done: nothing more to fold until the next write
    finally:
        checkpoints.close()
        writer.shutdown()


def _refused_after_committing(ledger: Ledger) -> None:
    batch = parse_ndjson(ndjson(prediction_rows(300)), "predictions")
    ledger.ingest_predictions(batch.table, segments=batch.segments)
    raise ValueError("refused after a commit (a score request's 409 after a new map version)")


def test_a_write_that_fails_after_committing_is_folded_too(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path, idle_checkpoint=0.3)
    path = tmp_path / "workspaces" / "acme.duckdb"
    try:
        with pytest.raises(ValueError, match="refused after a commit"):
            asyncio.run(store.write("acme", _refused_after_committing))
        assert _log_bytes(path) > 0
        assert _eventually(lambda: _log_bytes(path) == 0)
    finally:
        store.close()


def _checkpoint_threads() -> int:
    return sum(t.name == "assay-checkpoints" for t in threading.enumerate())


def test_a_store_dropped_without_close_lets_go_of_its_ledgers(tmp_path: Path) -> None:
    others = _checkpoint_threads()  # other tests' stores may still be alive in this process
    store = DuckDBStore(tmp_path, idle_checkpoint=60)  # the write's checkpoint still pending
    batch = parse_ndjson(ndjson(prediction_rows(10)), "predictions")
    asyncio.run(store.ingest("acme", "predictions", batch))
    del store
    gc.collect()
    assert _eventually(lambda: _checkpoint_threads() <= others)
    opened = subprocess.run(  # another process may open the file: no lock is left behind
        [sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()",
         str(tmp_path / "workspaces" / "acme.duckdb")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr


@pytest.mark.parametrize(("threads", "want"), [(None, "default"), (3, 3)])
def test_a_workspace_queries_on_the_store_s_threads(
    tmp_path: Path, threads: int | None, want: int | str
) -> None:
    """Half the cores by default (requests run side by side), or what the store is given."""
    store = DuckDBStore(tmp_path, threads=threads)

    def setting(ledger: Ledger) -> int:
        return int(ledger.con.execute("SELECT current_setting('threads')").fetchall()[0][0])

    try:
        got = asyncio.run(store.write("w", setting))
    finally:
        store.close()
    assert got == (max(1, (os.cpu_count() or 1) // 2) if want == "default" else want)
