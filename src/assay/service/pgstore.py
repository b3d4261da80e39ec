"""The PostgreSQL store: several writers, managed backups, row-level isolation (psycopg 3).

All workspaces share one schema; every row carries its ``workspace`` and row-level security
(forced, so it binds the owning role too) lets a transaction see only the workspace it set
with ``set_config('assay.workspace', …)``. Connect as a role that is not a superuser, or
PostgreSQL skips the policies.

The tables are the ledger's, from its one schema declaration
(:func:`assay.ledger.schema.postgres_ddl`), with the workspace in every row and key.

Ingest keeps the ledger's rules by running them, not restating them: the batch is first
ingested into a scratch in-memory DuckDB ledger (validation, in-batch duplicates, row hashes,
abstentions), then one PostgreSQL transaction, serialised per workspace by an advisory lock,
looks the batch's ids up through the primary key (never a scan of the ledger), refuses ids
that hold different content (409), and copies the new rows and their batch row. The batch is
chained by the ledger's own :func:`assay.ledger.integrity.append_batch`, run on the scratch
ledger (holding just the new rows, under the workspace's next batch number) after the
workspace's chain head — the same row hashes, batch digest and chain as the DuckDB ledger.

Reads copy the workspace's rows into an in-memory DuckDB ledger and run the same audit code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import psycopg
import pyarrow as pa
from psycopg.types.json import Jsonb

from assay.ledger import IngestReceipt, Ledger, LedgerIngestError
from assay.ledger.integrity import append_batch
from assay.ledger.parse import BadRow
from assay.ledger.schema import GENESIS_HASH, KINDS, TABLES, postgres_ddl
from assay.service.store import (
    CLAIM,
    LOOKUP,
    RELEASE,
    REMEMBER,
    STALE_CLAIM_SECONDS,
    STATE_TABLES,
    Unsupported,
    relative,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from assay.service.batches import Batch

T = TypeVar("T")

#: The ledger's tables the store keeps per workspace, in declaration order.
_SHARED = tuple(t.name for t in TABLES if t.shared)
_TABLES = (*_SHARED, "receipts", "idempotency_keys")
_SCHEMA = postgres_ddl() + STATE_TABLES.format(binary="BYTEA")
_POLICY = """
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE tablename = '{table}'
                 AND policyname = 'workspace_only') THEN
    CREATE POLICY workspace_only ON {table}
      USING (workspace = current_setting('assay.workspace', true))
      WITH CHECK (workspace = current_setting('assay.workspace', true));
  END IF;
END $$;
"""


class PostgresStore:
    """Every workspace in one PostgreSQL database, isolated by row-level security."""

    def __init__(self, dsn: str, *, readers: int = 2) -> None:
        self.dsn = dsn
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="assay-pg-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="assay-pg-reader")
        self._con = self._connect()
        self.export_root = Path(tempfile.gettempdir()) / "assay-exports"
        with self._con.transaction():
            self._con.execute(_SCHEMA)
            for table in _TABLES:
                self._con.execute(_POLICY.format(table=table))

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, options="-c timezone=UTC")

    @staticmethod
    def _scope(con: psycopg.Connection[Any], workspace: str) -> None:
        con.execute("SELECT set_config('assay.workspace', %s, true)", (workspace,))

    async def _on(self, executor: ThreadPoolExecutor, task: Callable[[], T]) -> T:
        return await asyncio.wrap_future(executor.submit(task))

    # ------------------------------------------------------------------ ingest
    async def ingest(self, workspace: str, kind: str, batch: Batch) -> IngestReceipt:
        """Validate ``batch`` in a scratch ledger, then append its new rows, all or nothing."""
        return await self._on(self._writer, lambda: self._ingest(workspace, kind, batch))

    def _ingest(self, workspace: str, kind: str, batch: Batch) -> IngestReceipt:
        now = dt.datetime.now(dt.UTC)
        with Ledger(":memory:") as scratch:  # the ledger's own validation and row hashes
            staged = (
                scratch.ingest_predictions(batch.table, segments=batch.segments, now=now)
                if kind == "predictions"
                else scratch.ingest_outcomes(batch.table, now=now)
            )
            # a batch's input records go first, as their own "inputs" batch (as in DuckDB)
            kinds = ("inputs", kind) if staged.inputs_new else (kind,)
            rows = {k: _scratch_rows(scratch, k) for k in kinds}
            with self._con.transaction():
                self._scope(self._con, workspace)
                self._con.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (workspace,))
                stored = {k: self._stored(workspace, k, rows[k], batch) for k in kinds}
                fresh = {
                    k: [i for i, key in enumerate(rows[k][KINDS[k][1]].to_pylist())
                        if key not in stored[k]]
                    for k in kinds
                }  # fmt: skip
                written: dict[str, dict[str, Any]] = {}

                def receipt() -> IngestReceipt:
                    ids = rows[kind].num_rows
                    return IngestReceipt(
                        kind, written.get(kind, {}).get("batch_id"), staged.rows,
                        len(fresh[kind]), ids - len(fresh[kind]), staged.file_sha256,
                        written.get(kind, {}).get("rows_sha256"), staged.abstentions,
                        backfill=staged.backfill, notes=staged.notes,
                        inputs_new=len(fresh.get("inputs", ())),
                        inputs_batch_id=written.get("inputs", {}).get("batch_id"),
                    )  # fmt: skip

                if not any(fresh.values()):
                    return receipt()
                batch_id, previous = self._next_batch(workspace)
                scratch.con.execute("DELETE FROM batches")
                for k in kinds:
                    if not fresh[k]:
                        continue
                    table_name, id_column, _, columns = KINDS[k]
                    # the scratch ledger keeps the new rows alone, as the workspace's next batch
                    scratch.con.execute(
                        f"DELETE FROM {table_name} WHERE list_contains(?, {id_column})",
                        [list(stored[k])],
                    )
                    scratch.con.execute(f"UPDATE {table_name} SET batch_id = ?", [batch_id])
                    row = append_batch(
                        scratch.con, kind=k, batch_id=batch_id, previous_hash=previous,
                        file_sha256=staged.file_sha256, source_name="<http>", ingested_at=now,
                        ingested_by="assay serve", backfill=staged.backfill,
                    )  # fmt: skip
                    self._copy(table_name, workspace, rows[k].take(fresh[k]), columns, batch_id)
                    names = ", ".join(["workspace", *row])
                    self._con.execute(
                        f"INSERT INTO batches ({names}) "
                        f"VALUES ({', '.join(['%s'] * (len(row) + 1))})",
                        (workspace, *row.values()),
                    )
                    written[k] = row
                    batch_id, previous = batch_id + 1, str(row["chain_hash"])
        return receipt()

    def _stored(self, workspace: str, kind: str, rows: pa.Table, batch: Batch) -> dict[str, str]:
        """Return the stored row hash of each of the batch's ids; refuse changed content (409)."""
        table_name, id_column, _, _ = KINDS[kind]
        ids, hashes = rows[id_column].to_pylist(), rows["row_hash"].to_pylist()
        stored = dict(
            self._con.execute(
                f"SELECT {id_column}, row_hash FROM {table_name} "
                f"WHERE workspace = %s AND {id_column} = ANY(%s)",
                (workspace, ids),
            ).fetchall()
        )
        conflicts = [i for i, h in zip(ids, hashes, strict=True) if stored.get(i, h) != h]
        if conflicts:
            raise LedgerIngestError(kind, self._frozen(batch, id_column, conflicts))
        return stored

    @staticmethod
    def _frozen(batch: Batch, id_column: str, conflicts: list[str]) -> list[BadRow]:
        names = batch.table.column_names
        order = batch.table[id_column].to_pylist() if id_column in names else []
        first = {value: number for number, value in reversed(list(enumerate(order, start=1)))}
        reason = (
            f"frozen: {id_column} is already in the ledger with different content; "
            "corrections are new predictions with their own id"
        )
        return [BadRow(first.get(i, 0), id_column, i, reason) for i in conflicts]

    def _next_batch(self, workspace: str) -> tuple[int, str]:
        row = self._con.execute(
            "SELECT batch_id, chain_hash FROM batches WHERE workspace = %s "
            "ORDER BY batch_id DESC LIMIT 1",
            (workspace,),
        ).fetchone()
        return (1, GENESIS_HASH) if row is None else (int(row[0]) + 1, str(row[1]))

    def _copy(
        self, table: str, workspace: str, rows: pa.Table, columns: tuple[str, ...], batch_id: int
    ) -> None:
        names = ["workspace", *columns, "batch_id", "row_hash"]
        data = {c: rows[c].to_pylist() for c in (*columns, "row_hash")}
        if "segments" in data:
            data["segments"] = [None if s is None else Jsonb(dict(s)) for s in data["segments"]]
        # COPY cannot write through row-level security: copy into a scratch table, then one
        # INSERT … SELECT that the policy's WITH CHECK inspects.
        self._con.execute(f"CREATE TEMP TABLE incoming_{table} (LIKE {table}) ON COMMIT DROP")
        with self._con.cursor().copy(
            f"COPY incoming_{table} ({', '.join(names)}) FROM STDIN"
        ) as copy:
            for k in range(rows.num_rows):
                copy.write_row(
                    (workspace, *(data[c][k] for c in columns), batch_id, data["row_hash"][k])
                )
        self._con.execute(f"INSERT INTO {table} SELECT * FROM incoming_{table}")

    async def write(self, workspace: str, task: Callable[[Ledger], T]) -> T:
        """Refuse: ledger code that writes (the honest score's map versions) needs DuckDB.

        This store keeps no model registry, so a map version could not be stored.
        """
        raise Unsupported(
            "the PostgreSQL store keeps no model registry, so it cannot store the honest "
            "map versions a served score is recorded against; serve honest scores from a "
            "DuckDB store (assay serve --store duckdb:DIR) or with assay score --honest"
        )

    # ------------------------------------------------------------------ reads
    async def read(self, workspace: str, task: Callable[[Ledger], T]) -> T:
        """Run ``task`` on an in-memory ledger loaded with the workspace's rows."""

        def run() -> T:
            with Ledger(":memory:") as ledger:
                self._load(workspace, ledger)
                ledger.path = Path(workspace)  # reports show the workspace, nothing else
                return task(ledger)

        return await self._on(self._readers, run)

    def _load(self, workspace: str, ledger: Ledger) -> None:
        """Copy the workspace's rows into an in-memory DuckDB ledger with the same schema."""
        with self._connect() as con, con.transaction():
            self._scope(con, workspace)
            for table in _SHARED:
                schema = ledger.con.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow_table().schema
                names = list(schema.names)
                select = ", ".join("segments::text" if n == "segments" else n for n in names)
                found = con.execute(
                    f"SELECT {select} FROM {table} WHERE workspace = %s", (workspace,)
                ).fetchall()
                arrays = {}
                for index, name in enumerate(names):
                    values: list[Any] = [row[index] for row in found]
                    if name == "segments":
                        values = [
                            None if v is None else list(orjson.loads(v).items()) for v in values
                        ]
                    arrays[name] = pa.array(values, schema.field(name).type)
                ledger.con.register("incoming", pa.table(arrays))
                ledger.con.execute(f"INSERT INTO {table} SELECT * FROM incoming")
                ledger.con.unregister("incoming")

    async def export(self, workspace: str) -> dict[str, Any]:
        """Write the workspace's tables as Parquet under a timestamped directory."""

        def run() -> dict[str, Any]:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            target = self.export_root / workspace / stamp
            target.mkdir(parents=True)
            files = {}
            with Ledger(":memory:") as ledger:
                self._load(workspace, ledger)
                for table in _SHARED:
                    path = target / f"{table}.parquet"
                    ledger.con.execute(f"COPY {table} TO '{path}' (FORMAT parquet)")
                    count = ledger.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
                    files[table] = {"path": relative(path, self.export_root), "rows": int(count)}
            return {"directory": relative(target, self.export_root), "files": files}

        return await self._on(self._readers, run)

    # ------------------------------------------------------------------ receipts, idempotency
    def _fetch(self, workspace: str, query: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._connect() as con, con.transaction():
            self._scope(con, workspace)
            return con.execute(query, args).fetchone()

    def _store(self, workspace: str, query: str, args: tuple[Any, ...]) -> None:
        with self._connect() as con, con.transaction():
            self._scope(con, workspace)
            con.execute(query, args)

    def receipt(self, workspace: str, kind: str, body_sha256: str) -> str | None:
        """Return the receipt stored for a body with this sha256, or None."""
        row = self._fetch(
            workspace,
            "SELECT receipt FROM receipts WHERE workspace = %s AND kind = %s AND body_sha256 = %s",
            (workspace, kind, body_sha256),
        )
        return None if row is None else str(row[0])

    def save_receipt(self, workspace: str, kind: str, body_sha256: str, receipt: str) -> None:
        """Keep the receipt of a body (the first one stored for its sha256 stays)."""
        self._store(
            workspace,
            "INSERT INTO receipts VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (workspace, kind, body_sha256, receipt),
        )

    def claim(
        self, workspace: str, key_id: str, key: str, request_sha256: str
    ) -> tuple[str, int, bytes] | None:
        """Claim ``key`` for ``key_id`` (a stale unanswered claim is taken over); see Store."""
        now = int(time.time())
        with self._connect() as con, con.transaction():
            self._scope(con, workspace)
            claimed = con.execute(
                _pg(CLAIM) + " RETURNING 1",
                (workspace, key_id, key, request_sha256, b"", now, now - STALE_CLAIM_SECONDS),
            ).fetchone()
            if claimed is not None:
                return None
            row = con.execute(_pg(LOOKUP), (workspace, key_id, key)).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), bytes(row[2]))

    def remember(self, workspace: str, key_id: str, key: str, status: int, body: bytes) -> None:
        """Store the response of a claimed key."""
        self._store(workspace, _pg(REMEMBER), (status, body, workspace, key_id, key))

    def release(self, workspace: str, key_id: str, key: str) -> None:
        """Give up a claim whose request ended without a response to keep."""
        self._store(workspace, _pg(RELEASE), (workspace, key_id, key))

    def close(self) -> None:
        """Finish queued work, then close the connection (graceful shutdown)."""
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        self._con.close()


def _scratch_rows(scratch: Ledger, kind: str) -> pa.Table:
    """Return the rows the scratch ledger holds of ``kind``, with their row hashes, by id."""
    table_name, id_column, _, columns = KINDS[kind]
    return scratch.con.sql(
        f"SELECT {', '.join(columns)}, row_hash FROM {table_name} ORDER BY {id_column}"
    ).to_arrow_table()


def _pg(query: str) -> str:
    """Rewrite a statement's ``?`` placeholders (SQLite) as psycopg's ``%s``."""
    return query.replace("?", "%s")
