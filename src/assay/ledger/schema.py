"""The ledger's tables, schema version, migrations and canonical row hashes.

Tables are append-only. ``predictions`` holds one row per score emission, ``outcomes`` one
row per observed event, ``batches`` one row per ingest with a hash chain:
chain_hash = sha256(previous chain_hash | kind | rows_sha256 | row_count | ingested_at µs).

A row's ``row_hash`` covers its content, everything but ``recorded_at`` (so re-sending an
identical row is recognised as the same prediction whenever it is sent). A batch's
``rows_sha256`` covers ``row_hash | recorded_at`` of its rows in id order. Both are defined once
here, as SQL, and used on the staged batch at ingest and on the stored rows by ``verify``;
timestamps enter as epoch microseconds so the session time zone cannot change a hash.

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
"""

from __future__ import annotations

SCHEMA_VERSION = 4

PREDICTION_COLUMNS = (
    "prediction_id", "entity_id", "scorer", "model_version", "score", "score_kind",
    "probability", "abstained", "scored_at", "recorded_at", "horizon_days", "target_event",
    "input_hash", "seed", "source", "segments",
)  # fmt: skip
OUTCOME_COLUMNS = ("outcome_id", "entity_id", "event", "occurred_at", "recorded_at", "source")
DERIVATION_COLUMNS = (
    "derivation_id", "scorer", "model_version", "base_scorer", "fitted_as_of", "calibrator",
    "recorded_at",
)  # fmt: skip

MIGRATIONS: tuple[str, ...] = (
    # version 1
    """
    CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
    CREATE TABLE predictions (
        prediction_id VARCHAR NOT NULL, entity_id VARCHAR NOT NULL, scorer VARCHAR NOT NULL,
        model_version VARCHAR, score DOUBLE, score_kind VARCHAR NOT NULL, probability DOUBLE,
        abstained BOOLEAN NOT NULL, scored_at TIMESTAMPTZ NOT NULL,
        recorded_at TIMESTAMPTZ NOT NULL, horizon_days INTEGER NOT NULL,
        target_event VARCHAR NOT NULL, input_hash VARCHAR, seed BIGINT, source VARCHAR,
        segments MAP(VARCHAR, VARCHAR), batch_id BIGINT NOT NULL, row_hash VARCHAR NOT NULL
    );
    CREATE TABLE outcomes (
        outcome_id VARCHAR NOT NULL, entity_id VARCHAR NOT NULL, event VARCHAR NOT NULL,
        occurred_at TIMESTAMPTZ NOT NULL, recorded_at TIMESTAMPTZ NOT NULL, source VARCHAR,
        batch_id BIGINT NOT NULL, row_hash VARCHAR NOT NULL
    );
    CREATE TABLE batches (
        batch_id BIGINT PRIMARY KEY, kind VARCHAR NOT NULL, source_name VARCHAR,
        file_sha256 VARCHAR NOT NULL, rows_sha256 VARCHAR NOT NULL, row_count BIGINT NOT NULL,
        ingested_at TIMESTAMPTZ NOT NULL, ingested_by VARCHAR, previous_hash VARCHAR NOT NULL,
        chain_hash VARCHAR NOT NULL
    );
    """,
    # version 2: the monitors' derived state (rebuildable by replay, so outside the hash chain)
    """
    CREATE TABLE monitor_states (
        monitor_key VARCHAR PRIMARY KEY, state VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL
    );
    """,
    # version 3: derived scorer versions and their calibrators' fit cut-offs (in the chain)
    """
    CREATE TABLE derivations (
        derivation_id VARCHAR NOT NULL, scorer VARCHAR NOT NULL, model_version VARCHAR NOT NULL,
        base_scorer VARCHAR NOT NULL, fitted_as_of TIMESTAMPTZ NOT NULL,
        calibrator VARCHAR NOT NULL, recorded_at TIMESTAMPTZ NOT NULL, batch_id BIGINT NOT NULL,
        row_hash VARCHAR NOT NULL
    );
    """,
    # version 4: history loaded after the fact (``--backfill``) is marked on its batch
    """
    ALTER TABLE batches ADD COLUMN backfill BOOLEAN DEFAULT false;
    -- the hash of the batch's metadata, in its chain hash (NULL: written before version 4)
    ALTER TABLE batches ADD COLUMN meta_sha256 VARCHAR;
    """,
)

GENESIS_HASH = "0" * 64


def column_text(column: str, alias: str = "") -> str:
    """The SQL text form of a content column that row hashes and change reports use:
    timestamps as epoch microseconds, segments as sorted ``name=value`` pairs, NULL as ``\\N``."""
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
    """The columns a row hash covers: all but ``recorded_at``."""
    return tuple(c for c in columns if c != "recorded_at")


def _row_hash(columns: tuple[str, ...]) -> str:
    parts = ", ".join(column_text(c) for c in content_columns(columns))
    return f"sha256(concat_ws('|', {parts}))"


PREDICTION_ROW_HASH = _row_hash(PREDICTION_COLUMNS)
OUTCOME_ROW_HASH = _row_hash(OUTCOME_COLUMNS)
DERIVATION_ROW_HASH = _row_hash(DERIVATION_COLUMNS)


def batch_item(row_hash_sql: str) -> str:
    """What a batch digest covers per row: the content hash and when the ledger learned it."""
    return f"{row_hash_sql} || '|' || {column_text('recorded_at')}"


#: Per kind: table, id column and row-hash expression.
KINDS = {
    "predictions": ("predictions", "prediction_id", PREDICTION_ROW_HASH, PREDICTION_COLUMNS),
    "outcomes": ("outcomes", "outcome_id", OUTCOME_ROW_HASH, OUTCOME_COLUMNS),
    "derivations": ("derivations", "derivation_id", DERIVATION_ROW_HASH, DERIVATION_COLUMNS),
}
