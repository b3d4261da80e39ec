"""The ledger's tables, declared once, and the canonical row hashes.

Tables are append-only. ``predictions`` holds one row per score emission, ``outcomes`` one
row per observed event, ``batches`` one row per ingest with a hash chain:
chain_hash = sha256(previous chain_hash | kind | rows_sha256 | row_count | ingested_at µs).

**One declaration.** :data:`TABLES` states every table's columns once: name, type, whether it
may be NULL, the schema version that added it, and who writes it. Every form of the schema is
built from it, so none can drift from another:

* the DuckDB migrations (:data:`MIGRATIONS`): version N creates the tables added in N and adds
  the columns added in N to older tables;
* the Ibis schemas the label rule compiles against (:func:`ibis_fields`, used by
  :func:`assay.ledger.rules.ledger_tables`);
* the PostgreSQL DDL of the service's shared store (:func:`postgres_ddl`), every row keyed by
  its workspace;
* the fields a service client may send (:func:`client_fields`): the declared ``client``
  columns; ``recorded_at`` is the server's clock, ``batch_id`` and ``row_hash`` the ledger's.

Types map one to one (:data:`DUCKDB_TYPES`, :data:`POSTGRES_TYPES`, :data:`IBIS_TYPES`);
segments are a ``MAP(VARCHAR, VARCHAR)`` in DuckDB and ``JSONB`` in PostgreSQL.

A row's ``row_hash`` covers its content, everything but ``recorded_at`` (so re-sending an
identical row is recognised as the same prediction whenever it is sent). A batch's
``rows_sha256`` covers ``row_hash | recorded_at`` of its rows in id order. Both are defined once
here, as SQL, and used on the staged batch at ingest and on the stored rows by ``verify``
(an inputs row's hash, two text columns, is computed at ingest by :func:`input_row_hash`, the
same formula in Python, which hashes faster); timestamps enter as epoch microseconds so the
session time zone cannot change a hash.

``derivations`` (version 3) records each derived scorer version (``assay ingest
apply-calibrator``): the calibrator, its JSON and the as-of of the outcomes it was fitted on.
Its batches join the same hash chain, so the fit cut-off that decides which leads may judge a
derived scorer is as tamper-evident as the predictions.

``batches.backfill`` (version 4) marks history loaded after the fact: its rows' ``recorded_at``
is their own ``scored_at`` / ``occurred_at`` (so they are visible at past as-ofs), and every
report discloses them as not frozen when scored.

``batches.meta_sha256`` (version 4) hashes every other column of the batch but the chain's own,
and enters its chain hash (:mod:`assay.ledger.integrity`). A column added to ``batches`` later
is covered by that hash automatically; add it nullable and without a default, so the batches
written before it keep their hashes.

``inputs`` (version 5) holds a prediction's inputs content-addressed: one row per distinct
record (canonical JSON, :mod:`assay.ledger.inputs`) under ``input_hash`` = sha256(record), which
the prediction row carries. ``models`` (version 5) registers model versions (``assay models
register``) by the fingerprint of their artefact, whose bytes ``artefacts`` keeps once per
fingerprint. Both kinds join the hash chain, and ``verify`` also checks each row's content
address (:data:`CONTENT_ADDRESSES`): an edited record or artefact fails even with its hashes
recomputed.

``batches.frame_sha256`` and ``input_frames`` (version 6) keep a typed copy of a predictions
batch's inputs: the batch's records read back (:func:`assay.ledger.inputs.records_frame`) in
``prediction_id`` order, written as Arrow IPC (:func:`assay.ledger.inputs.typed_copy_bytes`),
stored once per ``frame_sha256`` = sha256(bytes). Only :func:`assay.models.scoring.score_leads`
writes one (it already holds that table); replay reads it instead of parsing the records. The
records stay the source of truth: the copy is re-derivable, its hash is in the batch's
metadata hash (so in the chain), and ``verify`` re-derives it from the records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

SCHEMA_VERSION = 6

ColumnType = Literal["text", "double", "boolean", "int32", "int64", "timestamp", "map", "blob"]
#: What a column holds: row ``content`` (covered by the row hash), when the ledger
#: ``recorded`` the row (outside the hash, inside the batch digest), or the ``chain``'s
#: bookkeeping (the batch number and the row hash itself).
Role = Literal["content", "recorded", "chain"]

DUCKDB_TYPES: dict[ColumnType, str] = {
    "text": "VARCHAR", "double": "DOUBLE", "boolean": "BOOLEAN", "int32": "INTEGER",
    "int64": "BIGINT", "timestamp": "TIMESTAMPTZ", "map": "MAP(VARCHAR, VARCHAR)", "blob": "BLOB",
}  # fmt: skip
POSTGRES_TYPES: dict[ColumnType, str] = {
    "text": "TEXT", "double": "DOUBLE PRECISION", "boolean": "BOOLEAN", "int32": "INTEGER",
    "int64": "BIGINT", "timestamp": "TIMESTAMPTZ", "map": "JSONB", "blob": "BYTEA",
}  # fmt: skip
#: Ibis type strings (a leading ``!`` marks NOT NULL); timestamps are instants in UTC.
IBIS_TYPES: dict[ColumnType, str] = {
    "text": "string", "double": "float64", "boolean": "boolean", "int32": "int32",
    "int64": "int64", "timestamp": "timestamp('UTC')", "map": "map<string, string>",
    "blob": "binary",
}  # fmt: skip


@dataclass(frozen=True)
class Column:
    """One stored column. ``default`` is a SQL literal; ``client``: a service client sends it.

    ``compressed`` False: DuckDB keeps the values as written (``USING COMPRESSION
    uncompressed``), for values read whole and often, whose decompression would cost more
    than the space saves (the typed input copies: zstd takes ~3x the read time).
    """

    name: str
    type: ColumnType
    nullable: bool = True
    since: int = 1
    default: str | None = None
    role: Role = "content"
    client: bool = False
    compressed: bool = True


@dataclass(frozen=True)
class Table:
    """One table.

    ``key`` identifies a row; DuckDB enforces it only where ``keyed`` (the
    append-only evidence tables check ids at ingest instead: an index would slow bulk appends);
    ``shared`` tables are also kept by the service's PostgreSQL store, per workspace.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    since: int = 1
    keyed: bool = True
    shared: bool = False

    def column(self, name: str) -> Column:
        """Return the column called ``name``."""
        return next(c for c in self.columns if c.name == name)


def _text(name: str, nullable: bool = True, *, client: bool = False) -> Column:
    return Column(name, "text", nullable, client=client)


_BATCH_ID = Column("batch_id", "int64", False, role="chain")
_ROW_HASH = Column("row_hash", "text", False, role="chain")


def _recorded(since: int = 1) -> Column:
    return Column("recorded_at", "timestamp", False, since, role="recorded")


TABLES: tuple[Table, ...] = (
    Table("meta", (_text("key", False), _text("value")), key=("key",)),
    Table(
        "predictions",
        (
            _text("prediction_id", False, client=True),
            _text("entity_id", False, client=True),
            _text("scorer", False, client=True),
            _text("model_version", client=True),
            Column("score", "double", client=True),
            _text("score_kind", False, client=True),
            Column("probability", "double"),
            Column("abstained", "boolean", False),
            Column("scored_at", "timestamp", False, client=True),
            _recorded(),
            Column("horizon_days", "int32", False, client=True),
            _text("target_event", False, client=True),
            _text("input_hash", client=True),
            Column("seed", "int64", client=True),
            _text("source", client=True),
            Column("segments", "map", client=True),
            _BATCH_ID,
            _ROW_HASH,
        ),
        key=("prediction_id",),
        keyed=False,
        shared=True,
    ),
    Table(
        "outcomes",
        (
            _text("outcome_id", False, client=True),
            _text("entity_id", False, client=True),
            _text("event", False, client=True),
            Column("occurred_at", "timestamp", False, client=True),
            _recorded(),
            _text("source", client=True),
            _BATCH_ID,
            _ROW_HASH,
        ),
        key=("outcome_id",),
        keyed=False,
        shared=True,
    ),
    Table(
        "batches",
        (
            Column("batch_id", "int64", False),
            _text("kind", False),
            _text("source_name"),
            _text("file_sha256", False),
            _text("rows_sha256", False),
            Column("row_count", "int64", False),
            Column("ingested_at", "timestamp", False),
            _text("ingested_by"),
            _text("previous_hash", False),
            _text("chain_hash", False),
            # history loaded after the fact (``--backfill``)
            Column("backfill", "boolean", since=4, default="false"),
            # the hash of the batch's metadata, in its chain hash (NULL: written before v4)
            Column("meta_sha256", "text", since=4),
            # the sha256 of the batch's typed input copy in ``input_frames`` (NULL: none)
            Column("frame_sha256", "text", since=6),
        ),
        key=("batch_id",),
        shared=True,
    ),
    # the monitors' derived state (rebuildable by replay, so outside the hash chain)
    Table(
        "monitor_states",
        (
            _text("monitor_key", False),
            _text("state", False),
            Column("updated_at", "timestamp", False),
        ),
        key=("monitor_key",),
        since=2,
    ),
    # derived scorer versions and their calibrators' fit cut-offs (in the chain)
    Table(
        "derivations",
        (
            _text("derivation_id", False),
            _text("scorer", False),
            _text("model_version", False),
            _text("base_scorer", False),
            Column("fitted_as_of", "timestamp", False),
            _text("calibrator", False),
            _recorded(),
            _BATCH_ID,
            _ROW_HASH,
        ),
        key=("derivation_id",),
        since=3,
        keyed=False,
    ),
    # a prediction's inputs, stored once per distinct record under input_hash = sha256(record)
    Table(
        "inputs",
        (
            _text("input_hash", False),
            _text("record", False),
            _recorded(5),
            _BATCH_ID,
            _ROW_HASH,
        ),
        key=("input_hash",),
        since=5,
        keyed=False,
        shared=True,
    ),
    # registered model versions (in the chain); their artefacts' bytes are in ``artefacts``
    Table(
        "models",
        (
            _text("model_id", False),
            _text("name", False),
            _text("version", False),
            _text("fingerprint", False),
            _text("format", False),
            _text("details"),
            _recorded(5),
            _BATCH_ID,
            _ROW_HASH,
        ),
        key=("model_id",),
        since=5,
        keyed=False,
    ),
    # model artefacts by content address: fingerprint = sha256(bytes)
    Table(
        "artefacts",
        (_text("fingerprint", False), Column("bytes", "blob", False, since=5)),
        key=("fingerprint",),
        since=5,
    ),
    # typed copies of predictions batches' inputs by content address: frame_sha256 = sha256(bytes)
    Table(
        "input_frames",
        (_text("frame_sha256", False), Column("bytes", "blob", False, compressed=False)),
        key=("frame_sha256",),
        since=6,
    ),
)


TABLE = {t.name: t for t in TABLES}


def _ddl(column: Column, types: dict[ColumnType, str]) -> str:
    null = "" if column.nullable else " NOT NULL"
    default = "" if column.default is None else f" DEFAULT {column.default}"
    return f"{column.name} {types[column.type]}{null}{default}"


def _create(table: Table, version: int) -> str:
    """DuckDB's CREATE TABLE for ``table`` as schema ``version`` first wrote it."""
    parts = [
        _ddl(c, DUCKDB_TYPES) + ("" if c.compressed else " USING COMPRESSION uncompressed")
        for c in table.columns
        if c.since <= version
    ]
    if table.keyed:
        parts.append(f"PRIMARY KEY ({', '.join(table.key)})")
    return f"CREATE TABLE {table.name} ({', '.join(parts)});"


def migration(version: int) -> str:
    """DuckDB statements taking a ledger from ``version`` − 1 to ``version``."""
    statements = []
    for table in TABLES:
        if table.since == version:
            statements.append(_create(table, version))
        elif table.since < version:
            statements += [
                f"ALTER TABLE {table.name} ADD COLUMN {_ddl(c, DUCKDB_TYPES)};"
                for c in table.columns
                if c.since == version
            ]
    return "\n".join(statements)


#: ``MIGRATIONS[k]`` takes a ledger from schema version k to k + 1.
MIGRATIONS: tuple[str, ...] = tuple(migration(v) for v in range(1, SCHEMA_VERSION + 1))


def empty_stand_ins(version: int) -> str:
    """DuckDB statements creating, as empty TEMP tables, the tables added after ``version``.

    A ledger opened read-only is never migrated; with these stand-ins, a ledger written by an
    older assay reads as the current schema with nothing in its newer tables (no inputs, no
    registered models), and the file itself is left untouched.
    """
    return "\n".join(
        _create(table, SCHEMA_VERSION).replace("CREATE TABLE", "CREATE TEMP TABLE", 1)
        for table in TABLES
        if table.since > version
    )


def postgres_ddl() -> str:
    """Return the shared tables in PostgreSQL: each row carries its ``workspace``, in every key.

    Idempotent (``IF NOT EXISTS``): a store created by an older version gains the columns
    added since, as a DuckDB ledger does by migrating.
    """
    statements = []
    for table in (t for t in TABLES if t.shared):
        created = [_ddl(c, POSTGRES_TYPES) for c in table.columns if c.since <= table.since]
        key = ", ".join(("workspace", *table.key))
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {table.name} (workspace TEXT NOT NULL, "
            f"{', '.join(created)}, PRIMARY KEY ({key}));"
        )
        statements += [
            f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS {_ddl(c, POSTGRES_TYPES)};"
            for c in table.columns
            if c.since > table.since
        ]
    return "\n".join(statements)


def ibis_fields(name: str) -> dict[str, str]:
    """Return a table's row columns (its ``chain`` bookkeeping left out) as Ibis type strings."""
    return {
        c.name: ("" if c.nullable else "!") + IBIS_TYPES[c.type]
        for c in TABLE[name].columns
        if c.role != "chain"
    }


def client_fields(kind: str) -> tuple[str, ...]:
    """Return the fields a service client may send in a ``kind`` batch, in table order."""
    return tuple(c.name for c in TABLE[kind].columns if c.client)


def row_columns(name: str) -> tuple[str, ...]:
    """Return the columns of a row as ingest writes it: all but the chain's bookkeeping."""
    return tuple(c.name for c in TABLE[name].columns if c.role != "chain")


PREDICTION_COLUMNS = row_columns("predictions")
OUTCOME_COLUMNS = row_columns("outcomes")
DERIVATION_COLUMNS = row_columns("derivations")
INPUT_COLUMNS = row_columns("inputs")
MODEL_COLUMNS = row_columns("models")

GENESIS_HASH = "0" * 64


def column_text(column: str, alias: str = "") -> str:
    r"""Return the SQL text form of a content column that row hashes and change reports use.

    Timestamps become epoch microseconds, segments sorted ``name=value`` pairs, NULL ``\N``.
    """
    qualified = f"{alias}.{column}" if alias else column
    if column.endswith(("_at", "_as_of")):
        return f"coalesce(CAST(epoch_us({qualified}) AS VARCHAR), '\\N')"
    if column == "segments":
        return (
            "coalesce(array_to_string(list_sort(list_transform(map_entries("
            f"{qualified}), lambda e: e.key || '=' || e.value)), ';'), '')"
        )
    return f"coalesce(CAST({qualified} AS VARCHAR), '\\N')"


def content_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    """Return the columns a row hash covers: all but ``recorded_at``."""
    return tuple(c for c in columns if c != "recorded_at")


def _row_hash(columns: tuple[str, ...]) -> str:
    parts = ", ".join(column_text(c) for c in content_columns(columns))
    return f"sha256(concat_ws('|', {parts}))"


PREDICTION_ROW_HASH = _row_hash(PREDICTION_COLUMNS)
OUTCOME_ROW_HASH = _row_hash(OUTCOME_COLUMNS)
DERIVATION_ROW_HASH = _row_hash(DERIVATION_COLUMNS)
INPUT_ROW_HASH = _row_hash(INPUT_COLUMNS)


def input_row_hash(input_hash: str, record: bytes | memoryview) -> str:
    """Return :data:`INPUT_ROW_HASH` of an inputs row, computed in Python.

    Both columns are text and never NULL, so the SQL's ``concat_ws('|', …)`` is the bytes
    ``input_hash|record`` and the row hash is their sha256 (hex). Ingest computes it here,
    with the record's own sha256, in one pass over the record's bytes (hashlib uses the CPU's
    SHA instructions; DuckDB's sha256 does not); ``verify`` recomputes it with the SQL.
    """
    digest = hashlib.sha256(input_hash.encode())
    digest.update(b"|")
    digest.update(record)
    return digest.hexdigest()


MODEL_ROW_HASH = _row_hash(MODEL_COLUMNS)


def batch_item(row_hash_sql: str) -> str:
    """Return what a batch digest covers per row: the content hash and when it was learned."""
    return f"{row_hash_sql} || '|' || {column_text('recorded_at')}"


#: Per kind: table, id column and row-hash expression.
KINDS = {
    "predictions": ("predictions", "prediction_id", PREDICTION_ROW_HASH, PREDICTION_COLUMNS),
    "outcomes": ("outcomes", "outcome_id", OUTCOME_ROW_HASH, OUTCOME_COLUMNS),
    "derivations": ("derivations", "derivation_id", DERIVATION_ROW_HASH, DERIVATION_COLUMNS),
    "inputs": ("inputs", "input_hash", INPUT_ROW_HASH, INPUT_COLUMNS),
    "models": ("models", "model_id", MODEL_ROW_HASH, MODEL_COLUMNS),
}

#: Per kind, the content address each of its rows must keep (a SQL condition on the row,
#: aliased ``t``): an input record hashes to its ``input_hash``, a model's artefact bytes to its
#: ``fingerprint``. ``verify`` names the first row that breaks it.
CONTENT_ADDRESSES = {
    "inputs": "t.input_hash = sha256(t.record)",
    "models": (
        "t.fingerprint IS NOT DISTINCT FROM "
        "(SELECT sha256(a.bytes) FROM artefacts a WHERE a.fingerprint = t.fingerprint)"
    ),
}
