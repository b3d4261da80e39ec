"""The evidence ledger: an embedded DuckDB file of frozen predictions and observed outcomes.

* Append-only: a batch is validated whole, then written in one transaction or not at all.
* Frozen: re-sending an identical prediction is a no-op; a different content under an existing
  ``prediction_id`` is refused ("corrections are new predictions").
* Tamper-evident: each batch stores the digest of its rows and a hash chain over batches;
  :meth:`Ledger.verify` recomputes both from the stored rows.
* Labels are derived as of a cut-off T, never imported (see :mod:`assay.ledger.labels`); the
  labels a scorer is judged on wait for the measured recording lag (:mod:`assay.ledger.lag`)
  and leave out a derived scorer's in-sample leads (``judged_labels``).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError, to_utc
from assay.ledger import integrity
from assay.ledger.checks import (
    Backfilled,
    EvidenceWarning,
    backfilled,
    closest,
    evidence_warnings,
)
from assay.ledger.columns import INT64, SCORE_KINDS, column
from assay.ledger.inputs import (
    input_frame,
    read_typed_copy,
    stage_inputs,
    typed_copy_bytes,
    typed_text,
)
from assay.ledger.integrity import ChainHead, VerifyResult, append_batch
from assay.ledger.labels import LabelSet, resolve_labels
from assay.ledger.lag import RecordingLag, recording_lag
from assay.ledger.maturity import consumed_leads
from assay.ledger.parse import BadRow, RowChecker, Source, apply_mapping, read_source, segment_map
from assay.ledger.presets import Preset, get_preset
from assay.ledger.schema import (
    DERIVATION_COLUMNS,
    GENESIS_HASH,
    INPUT_COLUMNS,
    KINDS,
    MIGRATIONS,
    MODEL_COLUMNS,
    OUTCOME_COLUMNS,
    PREDICTION_COLUMNS,
    SCHEMA_VERSION,
    column_text,
    content_columns,
    empty_stand_ins,
)
from assay.ledger.session import first_row, session_settings

DEFAULT_PATH = "assay.duckdb"
ABSTENTION_TOKENS = ("not yet", "insufficient data", "abstain", "n/a")
#: Bad rows shown in an error message; all of them are on the exception (and the CLI's file).
SHOWN_BAD_ROWS = 20

Progress = Callable[[str], None]
#: The prediction columns ``status`` reads.
STATUS_COLUMNS = ("scorer", "model_version", "abstained", "scored_at")


class LedgerIngestError(AssayInputError):
    """A batch was refused; ``bad_rows`` lists every offending row. Nothing was written."""

    def __init__(self, kind: str, bad_rows: list[BadRow], hints: Sequence[str] = ()) -> None:
        self.bad_rows = sorted(bad_rows, key=lambda b: (b.row, b.column))
        self.hints = tuple(hints)
        shown = "\n".join(f"  {b}" for b in self.bad_rows[:SHOWN_BAD_ROWS])
        more = len(self.bad_rows) - SHOWN_BAD_ROWS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        rows = len({b.row for b in self.bad_rows})
        advice = "".join(f"\n{hint}" for hint in self.hints)
        super().__init__(
            f"{kind} batch refused: {rows} bad row(s), nothing was written{advice}\n{shown}{tail}"
        )


@dataclass(frozen=True)
class IngestReceipt:
    """What one ingest did: rows read, new and already present, and the hashes it recorded."""

    kind: str
    batch_id: int | None  # None when the batch held nothing new
    rows: int
    rows_new: int
    rows_already_present: int
    file_sha256: str
    rows_sha256: str | None
    abstentions: int = 0
    backfill: bool = False
    #: What the reader decided (delimiter, dates read as midnight), in sentences.
    notes: tuple[str, ...] = ()
    #: Input records new to the ledger, and the "inputs" batch that holds them.
    inputs_new: int = 0
    inputs_batch_id: int | None = None

    @property
    def noop(self) -> bool:
        """Whether the batch held no new row nor input record (nothing was written)."""
        return self.rows_new == 0 and self.inputs_new == 0

    def describe(self) -> str:
        """Return the receipt as one sentence for the terminal."""
        records = (
            f"; {self.inputs_new:,} new input records (batch {self.inputs_batch_id})"
            if self.inputs_new
            else ""
        )
        if self.rows_new == 0 and self.inputs_new:
            return f"all {self.rows:,} {self.kind} rows are already in the ledger{records}"
        if self.noop:
            return (
                f"no-op: all {self.rows:,} {self.kind} rows are already in the ledger "
                "(identical content); nothing was written"
            )
        extra = (
            f", {self.rows_already_present:,} already present" if self.rows_already_present else ""
        )
        abst = f", {self.abstentions:,} abstentions" if self.abstentions else ""
        history = (
            "; marked as history loaded after the fact (reports disclose it)"
            if self.backfill
            else ""
        )
        return (
            f"batch {self.batch_id}: {self.rows_new:,} new {self.kind} rows{extra}{abst}{records}"
            f"{history}"
        )


class _Census(NamedTuple):
    """A staged part counted against the ledger (:meth:`Ledger._stage`)."""

    rows: int
    distinct: int  # distinct ids
    new: int  # distinct ids not stored
    changed: int  # rows whose id is stored with other content
    repeats: bool  # some id appears twice or more


@dataclass
class _Staged:
    table: pa.Table
    abstentions: int = 0
    bad: list[BadRow] = field(default_factory=list)
    #: History loaded after the fact (``--backfill`` or an explicit earlier ``recorded_at``).
    backfill: bool = False
    notes: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)


class Ledger:
    """An embedded DuckDB ledger at ``path`` (default ``$ASSAY_LEDGER`` or ``./assay.duckdb``).

    One process may hold the file for writing; open it with ``read_only=True`` to read while
    nobody writes.
    """

    def __init__(
        self, path: str | Path | None = None, *, read_only: bool = False, existing: bool = False
    ) -> None:
        self.path = ledger_path(path)
        if (read_only or existing) and not self.path.exists():
            raise AssayInputError(f"no ledger at {self.path}; ingest something first")
        try:
            con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as error:
            if "not a valid DuckDB database" in str(error):
                raise AssayInputError(
                    f"{self.path} is not a ledger (not a DuckDB database file); pass the "
                    "ledger with --ledger"
                ) from None
            first = str(error).strip().splitlines()[0]
            raise AssayInputError(
                f"cannot open the ledger {self.path}: {first} (is another assay writing it?)"
            ) from None
        self.con = _configure(con)
        self._consumed: tuple[tuple[object, ...], pa.Table] | None = None
        if not read_only:
            self._migrate()
        elif self.schema_version < SCHEMA_VERSION:
            self.con.execute(empty_stand_ins(self.schema_version))

    def reader(self) -> Ledger:
        """Another handle on the same database through its own cursor, for another thread.

        DuckDB connections are not shared across threads; a cursor is a separate connection to
        the same database, so readers see every committed batch while one thread writes.
        """
        view = object.__new__(Ledger)
        view.path = self.path
        view.con = _configure(self.con.cursor())
        view._consumed = None
        return view

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the DuckDB connection."""
        self.con.close()

    def __enter__(self) -> Ledger:
        """Return the ledger itself, closed when the ``with`` block ends."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the ledger, whether or not the block raised."""
        self.close()

    def _migrate(self) -> None:
        tables = {
            row[0] for row in self.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        version = 0
        if "meta" in tables:
            row = first_row(self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'"))
            version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise AssayInputError(
                f"{self.path} has schema version {version}, newer than this assay "
                f"({SCHEMA_VERSION}); upgrade assay"
            )
        for number in range(version, SCHEMA_VERSION):
            self.con.execute("BEGIN")
            self.con.execute(MIGRATIONS[number])
            self.con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(number + 1)]
            )
            self.con.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        """Return the schema version stored in ``meta`` (0 when there is none)."""
        row = first_row(self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'"))
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ ingest
    def ingest_predictions(
        self,
        data: Any,
        *,
        mapping: Mapping[str, str] | None = None,
        defaults: Mapping[str, Any] | None = None,
        preset: str | None = None,
        segments: Sequence[str] = (),
        assume_timezone: str | None = None,
        date_format: str | None = None,
        backfill: bool = False,
        abstention_tokens: Sequence[str] = ABSTENTION_TOKENS,
        now: dt.datetime | None = None,
        progress: Progress | None = None,
        inputs: Sequence[str] | str | None = None,
        typed_inputs: pa.Table | None = None,
    ) -> IngestReceipt:
        """Validate and append a batch of score emissions (all or nothing).

        ``inputs`` names the columns holding the features the model read (names, or one glob
        such as ``"x_*"``); a column ``inputs`` of one object per row counts too. Each row's
        ``input_hash`` is then the sha256 of its canonical record (:mod:`assay.ledger.inputs`;
        a differing sent hash is a bad row) and the records new to the ledger are written as a
        batch of kind "inputs" just before the predictions, in the same transaction. Rows
        without inputs keep the ``input_hash`` they were sent with.

        ``typed_inputs`` (what :func:`assay.models.scoring.score_leads` passes) is the inputs
        read back from their records, row for row: ``records_frame`` of the rows' records in
        ``prediction_id`` order. It is kept as the batch's typed copy (``input_frames``, its
        hash in the batch's metadata; :mod:`assay.ledger.schema`) when every row is new, none
        is backfilled and every row's record is stored by the ingest time; otherwise nothing
        is kept and replay parses the records. ``verify`` re-derives the copy from the records.

        ``backfill`` loads history: each row counts as recorded at its own ``scored_at`` (so
        it is visible at past as-ofs) and the batch is marked, so every report discloses that
        these predictions were loaded after the fact. A ``recorded_at`` column earlier than
        now marks the batch the same way.
        """
        say = progress or (lambda _: None)
        ingested_at = _now(now)
        say("reading")
        source, checker = self._prepare("predictions", data, mapping, defaults, preset, date_format)
        frame = input_frame(checker.table, inputs)
        if frame is not None and source.text_cells:
            frame = typed_text(frame, decimal_comma=source.decimal_comma)
        say("validating")
        staged = _stage_predictions(
            checker, segments, assume_timezone, abstention_tokens, ingested_at, backfill
        )
        staged.notes = [*source.notes, *checker.notes]
        records = _stage_records(staged, frame, self.con) if frame is not None else None
        del checker, frame  # the staged columns are all that is needed now; free the input
        return self._commit(
            "predictions", staged, source.sha256, source.name, ingested_at, say, records=records,
            typed=typed_inputs,
        )  # fmt: skip

    def ingest_outcomes(
        self,
        data: Any,
        *,
        mapping: Mapping[str, str] | None = None,
        defaults: Mapping[str, Any] | None = None,
        preset: str | None = None,
        assume_timezone: str | None = None,
        date_format: str | None = None,
        backfill: bool = False,
        now: dt.datetime | None = None,
        progress: Progress | None = None,
    ) -> IngestReceipt:
        """Validate and append a batch of observed events (all or nothing).

        ``backfill`` loads history: an outcome without ``recorded_at`` counts as recorded
        when it occurred (so past as-ofs see it); its recording lag is unknown and not
        measured from it (:mod:`assay.ledger.lag`). Without it the ingest time is used.
        """
        say = progress or (lambda _: None)
        ingested_at = _now(now)
        say("reading")
        source, checker = self._prepare("outcomes", data, mapping, defaults, preset, date_format)
        say("validating")
        staged = _stage_outcomes(checker, assume_timezone, ingested_at, backfill)
        staged.notes = [*source.notes, *checker.notes]
        del checker
        return self._commit("outcomes", staged, source.sha256, source.name, ingested_at, say)

    def record_derivation(
        self,
        *,
        scorer: str,
        base_scorer: str,
        fingerprint: str,
        calibrator_json: str,
        fitted_as_of: dt.datetime,
        model_version: str | None = None,
        now: dt.datetime | None = None,
    ) -> IngestReceipt:
        """Record the derived scorer version ``scorer`` (model version default: fingerprint[:16]).

        It is ``base_scorer`` mapped through a calibrator fitted on outcomes as of ``fitted_as_of``.

        Appended as a batch of kind "derivations" in the hash chain; recording the same
        derivation again is a no-op.
        """
        ingested_at = _now(now)
        row = {
            "derivation_id": f"{scorer}|{fingerprint}",
            "scorer": scorer,
            "model_version": fingerprint[:16] if model_version is None else model_version,
            "base_scorer": base_scorer,
            "fitted_as_of": to_utc(fitted_as_of),
            "calibrator": calibrator_json,
            "recorded_at": ingested_at,
        }
        table = pa.Table.from_pylist([{**row, "_row": 1}])
        assert tuple(table.column_names[:-1]) == DERIVATION_COLUMNS
        digest = hashlib.sha256(calibrator_json.encode()).hexdigest()
        return self._commit(
            "derivations", _Staged(table), digest, f"apply-calibrator {scorer}", ingested_at,
            lambda _: None,
        )  # fmt: skip

    def record_model(
        self,
        *,
        name: str,
        version: str,
        fingerprint: str,
        format: str,
        details_json: str,
        artefact: bytes,
        now: dt.datetime | None = None,
    ) -> IngestReceipt:
        """Record the model version ``name@version`` and keep its artefact's bytes.

        The models row (``model_id`` = "NAME@VERSION") is a batch of kind "models" in the hash
        chain; the bytes go into ``artefacts`` under ``fingerprint`` = sha256(bytes), once per
        fingerprint, in the same transaction. Recording the same row again is a no-op; another
        fingerprint under an existing ``model_id`` is refused (the row is frozen).
        """
        if hashlib.sha256(artefact).hexdigest() != fingerprint:
            raise AssayInputError(f"fingerprint {fingerprint} is not the sha256 of the artefact")
        ingested_at = _now(now)
        row = {
            "model_id": f"{name}@{version}",
            "name": name,
            "version": version,
            "fingerprint": fingerprint,
            "format": format,
            "details": details_json,
            "recorded_at": ingested_at,
        }
        table = pa.Table.from_pylist([{**row, "_row": 1}])
        assert tuple(table.column_names[:-1]) == MODEL_COLUMNS
        return self._commit(
            "models", _Staged(table), fingerprint, f"models register {row['model_id']}",
            ingested_at, lambda _: None,
            also=("INSERT OR IGNORE INTO artefacts VALUES (?, ?)", [fingerprint, artefact]),
        )  # fmt: skip

    def _prepare(
        self,
        kind: str,
        data: Any,
        mapping: Mapping[str, str] | None,
        defaults: Mapping[str, Any] | None,
        preset_name: str | None,
        date_format: str | None,
    ) -> tuple[Source, RowChecker]:
        preset: Preset | None = get_preset(kind, preset_name)
        source = read_source(data)
        table = apply_mapping(source.table, mapping or {})
        notes: list[str] = []
        if preset:
            table = preset.prepare(table, notes)
        merged = {**(preset.defaults if preset else {}), **(defaults or {})}
        for name, value in merged.items():
            if name not in table.column_names:
                table = table.append_column(name, pa.repeat(pa.scalar(str(value)), table.num_rows))
        if preset and preset.snapshot and "scored_at" not in table.column_names:
            raise AssayInputError(preset.snapshot_advice())
        if table.num_rows == 0:
            left = (
                f" after the {preset.label} preset's filter ({'; '.join(notes)})" if preset else ""
            )
            raise AssayInputError(f"the {kind} input has no rows{left}")
        checker = RowChecker(table, decimal_comma=source.decimal_comma, date_format=date_format)
        checker.notes.extend(notes)
        return source, checker

    def _commit(
        self,
        kind: str,
        staged: _Staged,
        file_sha256: str,
        source_name: str,
        ingested_at: dt.datetime,
        say: Progress,
        also: tuple[str, list[Any]] | None = None,
        records: _Staged | None = None,
        typed: pa.Table | None = None,
    ) -> IngestReceipt:
        """Append the staged rows new to the ledger as one batch of ``kind`` (all or nothing).

        ``also`` is one more SQL statement (with its parameters) run in the same transaction.
        ``records``: the batch's input records; those new to the ledger are written as a
        batch of kind "inputs" just before it, in the same transaction. ``typed``: the rows'
        typed inputs, kept as the batch's typed copy where :meth:`_typed_copy` allows.
        """
        parts = {"inputs": records} if records is not None else {}
        parts[kind] = staged
        say("checking against the ledger")
        try:
            census = {name: self._stage(name, part) for name, part in parts.items()}
            bad = [
                b for name, part in parts.items()
                for b in [*part.bad, *self._conflicts(name, census[name])]
            ]  # fmt: skip
            if bad:
                raise LedgerIngestError(kind, bad, staged.hints)
            mine = census[kind]
            receipt_base: dict[str, Any] = dict(
                kind=kind,
                rows=mine.rows,
                rows_new=mine.new,
                rows_already_present=mine.distinct - mine.new,
                file_sha256=file_sha256,
                abstentions=staged.abstentions,
                backfill=staged.backfill,
                notes=tuple(staged.notes),
                inputs_new=census["inputs"].new if records is not None else 0,
            )
            if not any(part.new for part in census.values()):
                return IngestReceipt(batch_id=None, rows_sha256=None, **receipt_base)
            say("writing")
            written = self._write(
                kind, parts, census, file_sha256, source_name, ingested_at, also,
                typed if not staged.backfill and mine.new == mine.rows else None,
            )  # fmt: skip
        finally:
            self.con.execute(
                "; ".join(f"DROP TABLE IF EXISTS staged_{n}; DROP TABLE IF EXISTS repeated_{n}"
                          for n in parts)
            )  # fmt: skip
        batch_id, rows_sha256 = written.get(kind, (None, None))
        inputs_batch = written["inputs"][0] if "inputs" in written else None
        return IngestReceipt(
            batch_id=batch_id, rows_sha256=rows_sha256, inputs_batch_id=inputs_batch,
            **receipt_base,
        )  # fmt: skip

    def _write(
        self,
        kind: str,
        parts: dict[str, _Staged],
        census: dict[str, _Census],
        file_sha256: str,
        source_name: str,
        ingested_at: dt.datetime,
        also: tuple[str, list[Any]] | None,
        typed: pa.Table | None,
    ) -> dict[str, tuple[int, str]]:
        """Write each part's new rows as the next batches in one transaction.

        Returns each written part's batch number and digest.
        """
        head = first_row(
            self.con.execute("SELECT max(batch_id), arg_max(chain_hash, batch_id) FROM batches")
        )
        batch_id, previous = (int(head[0]), str(head[1])) if head and head[0] else (0, GENESIS_HASH)
        written: dict[str, tuple[int, str]] = {}
        self.con.execute("BEGIN TRANSACTION")
        try:
            for part, staged in parts.items():
                if not census[part].new:
                    continue
                frame_sha256 = (
                    self._typed_copy(typed, ingested_at)
                    if part == kind and typed is not None
                    else None
                )
                batch_id += 1
                previous, digest = self._append(
                    part, batch_id, previous, staged, census[part].repeats, file_sha256,
                    source_name, ingested_at, also if part == kind else None, frame_sha256,
                )  # fmt: skip
                written[part] = (batch_id, digest)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return written

    def _stage(self, kind: str, staged: _Staged) -> _Census:
        """Hold the staged rows of ``kind`` in temp tables; count them against the ledger.

        ``staged_KIND`` holds each row with its content hash and ``stored_hash``, the row hash
        stored under its id (or NULL). The stored rows are found in two steps (the batch's ids,
        then those rows' hashes), so a scan of the ledger reads the ids only. ``repeated_KIND``
        (the ids the batch repeats, with their first row) is made only for a batch that repeats
        an id or changes a stored row: the usual batch needs two statements.
        """
        table_name, id_column, row_hash, _ = KINDS[kind]
        # the inputs rows come with their row hash (computed while staging, in Python)
        hashed = "" if "row_hash" in staged.table.column_names else f", {row_hash} AS row_hash"
        self.con.register("staged_raw", staged.table)
        try:
            self.con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE staged_{kind} AS
                SELECT s.*, t.row_hash AS stored_hash
                FROM (SELECT *{hashed} FROM staged_raw) s LEFT JOIN (
                    SELECT {id_column}, row_hash FROM {table_name}
                    WHERE {id_column} IN (SELECT {id_column} FROM staged_raw)
                ) t USING ({id_column})
                """
            )
        finally:
            self.con.unregister("staged_raw")
        staged.table = pa.table({})  # DuckDB holds the rows now; free the Arrow copy
        pa.default_memory_pool().release_unused()
        counted = first_row(
            self.con.execute(
                f"""
                SELECT count(*), count(*) FILTER (WHERE stored_hash IS NULL),
                       count(*) FILTER (WHERE stored_hash <> row_hash),
                       (SELECT count(*) FROM (SELECT 1 FROM staged_{kind} GROUP BY {id_column}
                                              HAVING count(*) > 1))
                FROM staged_{kind}
                """
            )
        )
        assert counted is not None
        rows, unstored, changed, repeated = map(int, counted)
        census = _Census(rows, rows, unstored, changed, repeats=repeated > 0)
        if census.repeats or census.changed:
            self.con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE repeated_{kind} AS
                SELECT {id_column}, min(_row) AS first_row, arg_min(row_hash, _row) AS first_hash
                FROM staged_{kind} GROUP BY {id_column} HAVING count(*) > 1
                """
            )
        if census.repeats:  # an id counts once
            ids = first_row(
                self.con.execute(
                    f"SELECT count(DISTINCT {id_column}), count(DISTINCT {id_column}) "
                    f"FILTER (WHERE stored_hash IS NULL) FROM staged_{kind}"
                )
            )
            assert ids is not None
            census = census._replace(distinct=int(ids[0]), new=int(ids[1]))
        return census

    def _append(
        self,
        kind: str,
        batch_id: int,
        previous_hash: str,
        staged: _Staged,
        repeats: bool,
        file_sha256: str,
        source_name: str,
        ingested_at: dt.datetime,
        also: tuple[str, list[Any]] | None,
        frame_sha256: str | None = None,
    ) -> tuple[str, str]:
        """Write the new rows of ``staged_KIND`` as batch ``batch_id``; return (chain, digest).

        Runs inside the caller's transaction, chained after ``previous_hash`` (the last
        batch's chain hash); ``repeats``: whether the batch repeats an id. ``frame_sha256`` is
        the batch's typed input copy, whose rows are then written in its order
        (prediction_id), so that they read back in it.
        """
        table_name, id_column, _, columns = KINDS[kind]
        order = "" if frame_sha256 is None else f"ORDER BY s.{id_column}"
        self.con.execute(
            f"""
            INSERT INTO {table_name} ({", ".join(columns)}, batch_id, row_hash)
            SELECT {", ".join("s." + c for c in columns)}, ?, s.row_hash
            {_fresh(kind, repeats)} {order}
            """,
            [batch_id],
        )
        if also is not None:
            self.con.execute(*also)
        stored = append_batch(
            self.con, kind=kind, batch_id=batch_id,
            previous_hash=previous_hash,
            file_sha256=file_sha256, source_name=source_name, ingested_at=ingested_at,
            ingested_by=_who(), backfill=staged.backfill, recompute=False,
            frame_sha256=frame_sha256,
        )  # fmt: skip
        return str(stored["chain_hash"]), str(stored["rows_sha256"])

    def _typed_copy(self, typed: pa.Table, ingested_at: dt.datetime) -> str | None:
        """Store the staged predictions' typed inputs as their batch's copy; return its sha256.

        Runs inside the ingest transaction, after the batch's input records are written, for a
        batch whose rows are all new and recorded at ``ingested_at`` (not backfilled). The copy
        holds the rows in ``prediction_id`` order; it is kept only when ``typed`` has a column
        and a row per staged row and every row's record is stored by ``ingested_at`` (what
        ``verify`` checks, so replay may read the copy whole at any as-of that sees the batch).
        None: no copy.
        """
        found = first_row(
            self.con.execute(
                "SELECT count(*), count(*) FILTER (WHERE i.recorded_at IS NULL "
                "OR i.recorded_at > ?) FROM staged_predictions s LEFT JOIN inputs i "
                "ON i.input_hash = s.input_hash",
                [ingested_at],
            )
        )
        assert found is not None
        if typed.num_columns == 0 or typed.num_rows != found[0] or found[1]:
            return None
        order = self.con.sql(
            "SELECT _row - 1 AS i FROM staged_predictions ORDER BY prediction_id"
        ).to_arrow_table()["i"]
        positions = np.asarray(order.to_numpy(), dtype=np.int64)
        if not np.array_equal(positions, np.arange(len(positions))):
            typed = typed.take(pa.array(positions))
        data = typed_copy_bytes(typed)
        digest = hashlib.sha256(data).hexdigest()
        self.con.execute("INSERT OR IGNORE INTO input_frames VALUES (?, ?)", [digest, data])
        return digest

    def _conflicts(self, kind: str, census: _Census) -> list[BadRow]:
        """Return the rows whose id is already used with different content.

        The id may be used in the batch or the ledger; each row names the fields that differ
        (old value → new value).
        """
        if not census.repeats and not census.changed:  # the usual batch: new ids, each once
            return []
        table_name, id_column, _, columns = KINDS[kind]
        suspects = first_row(
            self.con.execute(
                f"""
                SELECT (SELECT count(*) FROM staged_{kind} s JOIN repeated_{kind} r
                          USING ({id_column}) WHERE s.row_hash <> r.first_hash)
                     + (SELECT count(*) FROM staged_{kind}
                          WHERE stored_hash IS NOT NULL AND stored_hash <> row_hash)
                """
            )
        )
        if not suspects or not suspects[0]:  # repeats of identical rows
            return []
        changes = _changed_fields(columns, "s", "t")
        rows = self.con.execute(
            f"""
            SELECT s._row, s.{id_column}, 'the same {id_column} appears earlier in this batch '
                   || 'with different content: ' || {changes} AS reason
            FROM staged_{kind} s JOIN repeated_{kind} r USING ({id_column})
            JOIN staged_{kind} t ON t.{id_column} = s.{id_column} AND t._row = r.first_row
            WHERE s._row > r.first_row AND s.row_hash <> r.first_hash
            UNION ALL
            SELECT s._row, s.{id_column}, 'frozen: {id_column} is already in the ledger with '
                   || 'different content (' || {changes} || '); corrections are new '
                   || 'predictions with their own id' AS reason
            FROM staged_{kind} s JOIN {table_name} t USING ({id_column})
            WHERE s.stored_hash IS NOT NULL AND s.stored_hash <> s.row_hash
            ORDER BY 1
            """
        ).fetchall()
        return [BadRow(int(r), id_column, str(v), reason) for r, v, reason in rows]

    def verify(self, expect: ChainHead | None = None) -> VerifyResult:
        """Recompute every row hash, batch digest, metadata hash and the chain.

        Also check that the history holds ``expect`` (:mod:`assay.ledger.integrity`); name the
        first failure.
        """
        return integrity.verify(self.con, expect)

    def chain_head(self) -> ChainHead:
        """Return the number of batches and the last one's chain hash (``N:HASH`` as text)."""
        return integrity.chain_head(self.con)

    # ------------------------------------------------------------------ reading
    def prediction_inputs(
        self,
        *,
        scorer: str | None = None,
        model_version: str | None = None,
        as_of: dt.datetime | str | None = None,
        prediction_ids: Sequence[str] | None = None,
    ) -> pa.Table:
        """Return the predictions whose input record the ledger holds, with the record.

        Columns ``prediction_id, scorer, model_version, score, probability, seed, input_hash,
        record``, ordered by prediction_id; a prediction and its record count when both were
        recorded by ``as_of`` (default: now). ``records_frame`` (:mod:`assay.ledger.inputs`)
        reads the records back into typed columns.
        """
        return self._with_records(
            "p.score, p.probability, p.seed, p.input_hash", scorer, model_version,
            to_utc(as_of), prediction_ids,
        )  # fmt: skip

    def replay_inputs(
        self,
        *,
        scorer: str | None = None,
        model_version: str | None = None,
        as_of: dt.datetime | str | None = None,
    ) -> tuple[pa.Table, pa.Table | None]:
        """Return the predictions whose inputs the ledger holds, each with its record or copy row.

        The rows are those of :meth:`prediction_inputs`, with columns ``prediction_id, scorer,
        model_version, probability, seed, batch_id, record, copy_row``, ordered by
        prediction_id. A row
        of a batch with a typed input copy (:mod:`assay.ledger.schema`, version 6) has no
        ``record``: its ``copy_row`` is its row in the second value, the copies of those
        batches (seen by ``as_of``) one after another in batch order
        (:func:`assay.ledger.inputs.read_typed_copy`, no copying); the other rows have their
        ``record`` and no ``copy_row``. Copies are used only when all of them hold the same
        column types (None otherwise, and every row has its record): so the copies together
        are what ``records_frame`` reads from their records together.
        """
        moment = to_utc(as_of)
        copies, rows = self._typed_copies(scorer, model_version, moment)
        if copies is not None and rows is not None and not self._rows_without_copy(moment):
            return rows.append_column("record", pa.nulls(rows.num_rows, pa.string())), copies
        others = self._with_records(
            "p.probability, p.seed, p.batch_id", scorer, model_version, moment, None,
            without_copies=copies is not None,
        )  # fmt: skip
        others = others.append_column("copy_row", pa.nulls(others.num_rows, pa.int64()))
        if rows is None or rows.num_rows == 0:
            return others, copies
        rows = rows.append_column(
            "record", pa.nulls(rows.num_rows, others.schema.field("record").type)
        )
        rows = rows.select(others.column_names)
        if others.num_rows == 0:
            return rows, copies
        return _by_id(pa.concat_tables([others, rows])), copies

    def _typed_copies(
        self, scorer: str | None, model_version: str | None, moment: dt.datetime
    ) -> tuple[pa.Table | None, pa.Table | None]:
        """Return the typed copies of the batches seen by ``moment`` holding matching rows.

        Also those rows (``prediction_id, scorer, model_version, probability, seed, batch_id,
        copy_row``, by prediction_id). (None, None) when there are none, or when the copies'
        column types differ. A copy holds every row of its batch in prediction_id order, all
        recorded at the batch's ingest time with their records (``verify`` checks it), so a
        row's place in its copy is its rank by prediction_id in its batch.
        """
        if self.schema_version < 6:
            return None, None
        matching = (
            ""
            if scorer is None and model_version is None
            else "AND batch_id IN (SELECT batch_id FROM predictions WHERE (? IS NULL OR "
            "scorer = ?) AND (? IS NULL OR model_version = ?))"
        )
        found = self.con.sql(
            "SELECT batch_id, frame_sha256 FROM batches WHERE frame_sha256 IS NOT NULL "
            f"AND ingested_at <= ? {matching} ORDER BY batch_id",
            params=[moment, *([scorer, scorer, model_version, model_version] if matching else [])],
        ).to_arrow_table()
        if found.num_rows == 0:
            return None, None
        hashes = found["frame_sha256"].to_pylist()
        # the bytes by a filtered scan (a join would move every blob through its hash table)
        stored = self.con.sql(
            "SELECT frame_sha256, bytes FROM input_frames WHERE list_contains(?, frame_sha256)",
            params=[sorted(set(hashes))],
        ).to_arrow_table()
        blobs = {
            str(key): value.as_buffer()
            for chunk in stored.to_batches()
            for key, value in zip(chunk["frame_sha256"], chunk["bytes"], strict=True)
        }
        missing = [h for h in hashes if h not in blobs]
        if missing:
            raise AssayInputError(
                f"the typed input copy {missing[0]} is missing; run `assay ledger verify`"
            )
        copies = [read_typed_copy(blobs[h]) for h in hashes]
        if any(not c.schema.equals(copies[0].schema) for c in copies[1:]):
            return None, None
        batch_ids = np.asarray(found["batch_id"].to_numpy(), dtype=np.int64)
        rows = self.con.sql(
            "SELECT prediction_id, scorer, model_version, probability, seed, batch_id "
            "FROM predictions WHERE list_contains(?, batch_id)",
            params=[batch_ids.tolist()],
        ).to_arrow_table()
        rows = _by_id(rows)
        # each row's copy: rows grouped by it (stable: prediction_id order within) fall in
        # the order of the copies laid end to end, so a row's place there is its copy_row
        slot = np.searchsorted(batch_ids, np.asarray(rows["batch_id"].to_numpy(), np.int64))
        sizes = np.array([c.num_rows for c in copies], dtype=np.int64)
        counts = np.bincount(slot, minlength=len(copies))
        if not np.array_equal(counts, sizes):
            wrong = int(np.flatnonzero(counts != sizes)[0])
            raise AssayInputError(
                f"batch {batch_ids[wrong]}'s typed input copy holds {sizes[wrong]:,} rows for "
                f"{counts[wrong]:,} predictions; run `assay ledger verify`"
            )
        copy_row = np.empty(len(slot), dtype=np.int64)
        copy_row[np.argsort(slot, kind="stable")] = np.arange(len(slot))
        rows = rows.append_column("copy_row", pa.array(copy_row))
        keep = pc.and_(
            pc.equal(rows["scorer"], scorer) if scorer is not None else pa.scalar(True),
            pc.equal(rows["model_version"], model_version)
            if model_version is not None
            else pa.scalar(True),
        )
        if scorer is not None or model_version is not None:
            rows = rows.filter(pc.fill_null(keep, False))
        return pa.concat_tables(copies), rows

    def _rows_without_copy(self, moment: dt.datetime) -> bool:
        """Whether a prediction recorded by ``moment`` with an input hash has no typed copy."""
        found = first_row(
            self.con.execute(
                "SELECT EXISTS (SELECT 1 FROM predictions WHERE recorded_at <= ? "
                "AND input_hash IS NOT NULL AND batch_id NOT IN "
                "(SELECT batch_id FROM batches WHERE frame_sha256 IS NOT NULL))",
                [moment],
            )
        )
        return bool(found and found[0])

    def _with_records(
        self,
        columns: str,
        scorer: str | None,
        model_version: str | None,
        moment: dt.datetime,
        prediction_ids: Sequence[str] | None,
        *,
        without_copies: bool = False,
    ) -> pa.Table:
        """Return ``prediction_id, scorer, model_version,`` ``columns`` and ``record`` by id.

        The predictions recorded by ``moment`` whose record was too (:meth:`prediction_inputs`);
        ``without_copies``: only those of batches without a typed input copy.
        """
        where = ["p.recorded_at <= ?", "i.recorded_at <= ?"]
        params: list[Any] = [moment, moment]
        for name, value in (("scorer", scorer), ("model_version", model_version)):
            if value is not None:
                where.append(f"p.{name} = ?")
                params.append(value)
        wanted = pa.table({"prediction_id": pa.array(list(prediction_ids or ()), pa.string())})
        if prediction_ids is not None:
            where.append("p.prediction_id IN (SELECT prediction_id FROM wanted_ids)")
        if without_copies:
            where.append(
                "p.batch_id NOT IN (SELECT batch_id FROM batches WHERE frame_sha256 IS NOT NULL)"
            )
        self.con.register("wanted_ids", wanted)
        try:
            table = self.con.sql(
                f"SELECT p.prediction_id, p.scorer, p.model_version, {columns}, i.record "
                "FROM predictions p JOIN inputs i "
                f"ON i.input_hash = p.input_hash WHERE {' AND '.join(where)}",
                params=params,
            ).to_arrow_table()
        finally:
            self.con.unregister("wanted_ids")
        return _by_id(table)

    def input_coverage(
        self, *, as_of: dt.datetime | str | None = None, scorer: str | None = None
    ) -> dict[str, tuple[int, int]]:
        """Per scorer: (predictions whose input record is stored, all predictions) as of ``as_of``.

        Both counts are of predictions recorded by ``as_of`` (default: now); a record counts
        when it too was recorded by then.
        """
        moment = to_utc(as_of)
        rows = self.con.execute(
            "SELECT p.scorer, count(i.input_hash), count(*) FROM predictions p LEFT JOIN "
            "(SELECT input_hash FROM inputs WHERE recorded_at <= ?) i "
            "ON i.input_hash = p.input_hash WHERE p.recorded_at <= ? "
            "AND (? IS NULL OR p.scorer = ?) GROUP BY p.scorer ORDER BY p.scorer",
            [moment, moment, scorer, scorer],
        ).fetchall()
        return {str(name): (int(stored), int(total)) for name, stored, total in rows}

    def labels(
        self,
        *,
        as_of: dt.datetime | str | None = None,
        scorer: str | None = None,
        model_version: str | None = None,
        policy: str = "first",
        columns: Sequence[str] | None = None,
    ) -> LabelSet:
        """Label predictions positive / negative / pending as of ``as_of`` (default: now).

        The rule is DESIGN §6's plain rule: a negative counts once the window closes.
        ``columns``: the prediction columns to read (default all; ``label`` and ``matured``
        always come).
        """
        moment = to_utc(as_of)
        return resolve_labels(
            self.con, as_of=moment, scorer=scorer, model_version=model_version, policy=policy,
            recording_lag=RecordingLag(moment, fixed_days=0.0), columns=columns,
        )  # fmt: skip

    def judged_labels(
        self,
        *,
        as_of: dt.datetime | str | None = None,
        scorer: str | None = None,
        model_version: str | None = None,
        policy: str = "first",
        recording_lag_days: float | None = None,
        columns: Sequence[str] | None = None,
    ) -> LabelSet:
        """Return the labels a scorer is judged on as of ``as_of``.

        A lead is ``matured`` only once its window closed and its event's recording lag passed
        (measured, or ``recording_lag_days`` for every event), and a derived scorer's in-sample
        leads are left out (``LabelSet.in_sample`` says how many and the fit cut-offs).
        ``columns`` as for :meth:`labels`.
        """
        moment = to_utc(as_of)
        lag = (
            self.recording_lag(as_of=moment)
            if recording_lag_days is None
            else RecordingLag(moment, fixed_days=_non_negative(recording_lag_days))
        )
        return resolve_labels(
            self.con, as_of=moment, scorer=scorer, model_version=model_version, policy=policy,
            recording_lag=lag, held_out=True, columns=columns,
        )  # fmt: skip

    def evidence_warnings(
        self, *, as_of: dt.datetime | str | None = None, scorer: str | None = None
    ) -> list[EvidenceWarning]:
        """Count the rows no label can use as of ``as_of``, with an example.

        See :mod:`assay.ledger.checks`.
        """
        return evidence_warnings(self.con, as_of=to_utc(as_of), scorer=scorer)

    def backfilled(
        self, *, as_of: dt.datetime | str | None = None, scorer: str | None = None
    ) -> Backfilled | None:
        """Predictions visible as of ``as_of`` that were loaded with ``--backfill``."""
        return backfilled(self.con, as_of=to_utc(as_of), scorer=scorer)

    def recording_lag(self, *, as_of: dt.datetime | str | None = None) -> RecordingLag:
        """Per event, the recording lag measured as of ``as_of`` (see :mod:`assay.ledger.lag`)."""
        return recording_lag(self.con, as_of=to_utc(as_of))

    def matured_leads(
        self,
        *,
        scorer: str,
        model_version: str | None,
        since: dt.datetime | None,
        until: dt.datetime,
        grace: dt.timedelta | None,
    ) -> pa.Table:
        """Return the leads maturing in (since, until], labelled as of their own maturity.

        They come in monitor order, with prediction_id, matures_us, probability, positive;
        ``grace=None`` waits the measured recording lag (:mod:`assay.ledger.maturity`).
        """
        table = self._consumed_by(scorer, model_version, until, grace)
        if since is not None:
            table = table.filter(pc.greater(table["matures_us"], micros(since)))
        return table.select(["prediction_id", "matures_us", "probability", "positive"])

    def late_flips(
        self,
        *,
        scorer: str,
        model_version: str | None,
        until: dt.datetime,
        grace: dt.timedelta | None,
    ) -> int:
        """Leads negative at maturity whose conversion was recorded after it (by ``until``)."""
        late = self._consumed_by(scorer, model_version, until, grace)["late"]
        return int(pc.sum(late.cast(pa.int64())).as_py() or 0)

    def _consumed_by(
        self, scorer: str, model_version: str | None, until: dt.datetime, grace: dt.timedelta | None
    ) -> pa.Table:
        """Return the leads consumed by ``until``.

        The last answer is kept for the same question on the same history (number of batches),
        because a monitor update asks for its matured leads and then for its late flips as of
        the same time.
        """
        key = (scorer, model_version, to_utc(until), grace, self.chain_head().batches)
        if self._consumed is None or self._consumed[0] != key:
            found = consumed_leads(
                self.con, scorer=scorer, model_version=model_version, until=key[2], grace=grace
            )
            self._consumed = (key, found)
        return self._consumed[1]

    def monitor_state(self, key: str) -> str | None:
        """Return the stored JSON state of a monitor, if any."""
        row = first_row(
            self.con.execute("SELECT state FROM monitor_states WHERE monitor_key = ?", [key])
        )
        return None if row is None else str(row[0])

    def monitor_states(self) -> list[str]:
        """Every stored monitor state (JSON), in key order."""
        rows = self.con.execute("SELECT state FROM monitor_states ORDER BY monitor_key").fetchall()
        return [str(row[0]) for row in rows]

    def save_monitor_state(self, key: str, state: str) -> None:
        """Store the JSON ``state`` of monitor ``key``, replacing any earlier one."""
        self.con.execute(
            "INSERT OR REPLACE INTO monitor_states VALUES (?, ?, ?)",
            [key, state, dt.datetime.now(dt.UTC)],
        )

    def scorers(self) -> list[str]:
        """Names of the scorers with predictions in the ledger, sorted."""
        rows = self.con.execute(
            "SELECT DISTINCT scorer FROM predictions ORDER BY scorer"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def has_scorer(self, name: str) -> bool:
        """Whether the ledger holds a prediction of scorer ``name`` (stops at the first)."""
        found = first_row(
            self.con.execute("SELECT EXISTS (SELECT 1 FROM predictions WHERE scorer = ?)", [name])
        )
        return bool(found and found[0])

    def require_scorer(self, name: str) -> None:
        """Refuse a scorer the ledger does not hold, naming the closest and the list."""
        if not self.has_scorer(name):
            scorers = self.scorers()
            raise AssayInputError(
                f"the ledger holds no scorer {name!r}{closest(name, scorers)}; scorers: "
                f"{', '.join(scorers) or 'none yet (ingest predictions first)'}"
            )

    def status(self) -> dict[str, Any]:
        """Scorers and versions: rows, pending share (as of now), abstentions; the last batch."""
        labels = self.labels(policy="all", columns=STATUS_COLUMNS).table
        self.con.register("status_labels", labels)
        try:
            scorers = self.con.sql(
                """
                SELECT scorer, coalesce(model_version, '') AS model_version, count(*) AS rows,
                       count(*) FILTER (WHERE label = 'pending') / count(*) AS pending_share,
                       count(*) FILTER (WHERE abstained) AS abstentions,
                       min(scored_at) AS first_scored, max(scored_at) AS last_scored
                FROM status_labels GROUP BY ALL ORDER BY scorer, model_version
                """
            ).to_arrow_table()
        finally:
            self.con.unregister("status_labels")
        last = first_row(
            self.con.execute(
                "SELECT batch_id, kind, row_count, strftime(ingested_at, '%Y-%m-%dT%H:%M:%SZ'), "
                "source_name FROM batches "
                "ORDER BY batch_id DESC LIMIT 1"
            )
        )
        outcomes = first_row(self.con.execute("SELECT count(*) FROM outcomes"))
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "scorers": scorers,
            "outcomes": int(outcomes[0]) if outcomes else 0,
            "last_batch": last,
        }


# ---------------------------------------------------------------------- staging helpers
def ledger_path(path: str | Path | None = None) -> Path:
    """Return the ledger file: ``path``, else ``$ASSAY_LEDGER``, else ``./assay.duckdb``."""
    return Path(path or os.environ.get("ASSAY_LEDGER") or DEFAULT_PATH)


def _now(now: dt.datetime | None) -> dt.datetime:
    return dt.datetime.now(dt.UTC) if now is None else to_utc(now)


def _non_negative(days: float) -> float:
    if not days >= 0:
        raise AssayInputError(f"recording_lag_days={days} must be a number of days >= 0")
    return float(days)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def micros(moment: dt.datetime) -> int:
    """Return ``moment`` as whole microseconds since 1970-01-01T00:00Z (exact integer math)."""
    delta = to_utc(moment) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _recorded_at(
    checker: RowChecker,
    assume_timezone: str | None,
    ingested_at: dt.datetime,
    history: pa.Array | None,
) -> pa.Array:
    """Return when the ledger learned each row.

    That is the ``recorded_at`` column where given, else ``history`` (a backfill's own
    scored_at / occurred_at), else the ingest time.
    """
    fallback = pa.repeat(pa.scalar(ingested_at, pa.timestamp("us", tz="UTC")), checker.n_rows)
    if history is not None:
        fallback = pc.coalesce(history, fallback)
    raw = checker.column("recorded_at")
    if raw is None:
        return fallback
    parsed = checker.timestamp("recorded_at", raw, assume_timezone)
    late = np.asarray(pc.fill_null(pc.greater(parsed, pa.scalar(ingested_at)), False))
    checker.flag(late, "recorded_at", raw, "recorded_at is later than the ingest time")
    return pc.coalesce(parsed, fallback)


def _required_timestamp(checker: RowChecker, name: str, assume_timezone: str | None) -> pa.Array:
    raw = checker.require(name)
    parsed = checker.timestamp(name, raw, assume_timezone)
    text = pc.cast(raw, pa.string()) if not pa.types.is_timestamp(raw.type) else None
    missing = np.asarray(pc.is_null(raw)) | (
        np.asarray(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), False))
        if text is not None
        else False
    )
    checker.flag(missing, name, raw, "empty; every row needs a time")
    return parsed


def _derived_id(*parts: pa.Array) -> pa.Array:
    """Return a stable id from the identifying fields: the first 32 hex digits of their sha256."""
    keys = pc.binary_join_element_wise(*[pc.cast(p, pa.string()) for p in parts], "|")
    with duckdb.connect() as con:
        con.register("id_keys", pa.table({"key": keys}))
        ids = con.sql("SELECT substr(sha256(key), 1, 32) AS id FROM id_keys").to_arrow_table()
    return ids["id"].combine_chunks()


def _changed_fields(columns: tuple[str, ...], new: str, old: str) -> str:
    """Return SQL listing the content columns where rows ``new`` and ``old`` differ.

    Each is written ``name: old → new``, separated by semicolons (the row hash's text forms
    are compared).
    """
    parts = [
        f"CASE WHEN {column_text(c, new)} IS DISTINCT FROM {column_text(c, old)} THEN "
        f"'{c}: ' || {_shown(c, old)} || ' → ' || {_shown(c, new)} END"
        for c in content_columns(columns)
    ]
    return f"concat_ws('; ', {', '.join(parts)})"


def _shown(column: str, alias: str) -> str:
    value = column_text(column, alias)
    if column.endswith("_at"):
        value = f"coalesce(strftime({alias}.{column}, '%Y-%m-%dT%H:%M:%S.%fZ'), 'empty')"
    return f"coalesce(nullif(nullif({value}, '\\N'), ''), 'empty')"


def _by_id(table: pa.Table) -> pa.Table:
    """Return ``table`` ordered by its unique ``prediction_id`` (UTF-8 bytes, as DuckDB orders).

    Sorted in Arrow: cheaper than an ORDER BY moving every column through DuckDB's sort; and
    not at all when the rows already come in that order (a batch with a typed copy is written
    in it), which one comparison of neighbours tells.
    """
    ids = table["prediction_id"].combine_chunks()
    if len(ids) < 2 or pc.all(pc.less(ids[:-1], ids[1:])).as_py():
        return table
    return table.take(pc.sort_indices(ids))


def _configure(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Session settings every ledger connection runs with (:mod:`assay.ledger.session`)."""
    for statement in session_settings():
        con.execute(statement)
    return con


def _fresh(kind: str, repeats: bool) -> str:
    """Return the SQL ``FROM … WHERE`` selecting the staged rows of ``kind`` new to the ledger.

    A row is new when its id is not stored; an id the batch repeats (``repeats``: some id
    is) counts once (first row).
    """
    if not repeats:
        return f"FROM staged_{kind} s WHERE s.stored_hash IS NULL"
    id_column = KINDS[kind][1]
    return (
        f"FROM staged_{kind} s LEFT JOIN repeated_{kind} r USING ({id_column}) "
        "WHERE s.stored_hash IS NULL AND (r.first_row IS NULL OR s._row = r.first_row)"
    )


def _stage_records(staged: _Staged, frame: pa.Table, con: duckdb.DuckDBPyConnection) -> _Staged:
    """Hash each row's inputs into ``staged`` (bad rows included); stage the records.

    A record counts as recorded when the earliest of its rows was (a backfill's inputs are
    visible with their predictions). The records are encoded on ``con``.
    """
    table = staged.table
    found = stage_inputs(
        frame, table["input_hash"].combine_chunks(), table["recorded_at"].combine_chunks(), con
    )
    staged.table = table.set_column(
        table.column_names.index("input_hash"), "input_hash", found.hashes
    )
    staged.bad += found.bad
    assert tuple(found.records.column_names[:-2]) == INPUT_COLUMNS
    return _Staged(found.records, backfill=staged.backfill)


def _stage_predictions(
    checker: RowChecker,
    segments: Sequence[str],
    assume_timezone: str | None,
    abstention_tokens: Sequence[str],
    ingested_at: dt.datetime,
    backfill: bool,
) -> _Staged:
    n = checker.n_rows
    entity = checker.text("entity_id", required=True)
    scorer = checker.text("scorer", required=True)
    kind = checker.text("score_kind", required=True, default="probability")
    bad_kind = ~np.asarray(pc.fill_null(pc.is_in(kind, pa.array(SCORE_KINDS)), True))
    checker.flag(
        bad_kind, "score_kind", kind, f"score_kind must be one of {', '.join(SCORE_KINDS)}"
    )

    raw_score = checker.require("score")
    if pa.types.is_string(raw_score.type) or pa.types.is_large_string(raw_score.type):
        token = pc.utf8_lower(pc.utf8_trim_whitespace(raw_score))
        abstained = pc.fill_null(
            pc.or_(
                pc.equal(pc.utf8_length(token), 0),
                pc.is_in(token, pa.array(list(abstention_tokens))),
            ),
            True,
        )
        score_text = pc.if_else(abstained, pa.scalar(None, pa.string()), raw_score)
    else:
        abstained = pc.is_null(raw_score)
        score_text = raw_score
    score = checker.number("score", score_text)
    score_np = np.asarray(score.to_numpy(zero_copy_only=False), dtype=np.float64)
    is_prob = np.asarray(pc.fill_null(pc.equal(kind, "probability"), False))
    is_pct = np.asarray(pc.fill_null(pc.equal(kind, "percent"), False))
    out_of_range = (is_prob & ((score_np < 0) | (score_np > 1))) | (
        is_pct & ((score_np < 0) | (score_np > 100))
    )
    checker.flag(
        out_of_range & is_prob, "score", raw_score,
        "probabilities must lie in [0, 1]; for a 0-100 score pass --score-kind percent",
    )  # fmt: skip
    checker.flag(out_of_range & is_pct, "score", raw_score, "percent scores must lie in [0, 100]")
    probability = np.where(is_prob, score_np, np.where(is_pct, score_np / 100.0, np.nan))

    scored_at = _required_timestamp(checker, "scored_at", assume_timezone)
    horizon = _integer(checker, "predictions", "horizon_days", "a whole number of days")
    seed = _integer(checker, "predictions", "seed", "a whole-number seed")
    model_version = checker.text("model_version", required=False)
    prediction_id = (
        checker.text("prediction_id", required=True)
        if "prediction_id" in checker.table.column_names
        else _derived_id(
            scorer,
            entity,
            model_version.fill_null(""),
            pc.cast(scored_at, pa.string()).fill_null(""),
        )
    )
    recorded_at = _recorded_at(
        checker, assume_timezone, ingested_at, scored_at if backfill else None
    )
    table = pa.table(
        {
            "prediction_id": prediction_id,
            "entity_id": entity,
            "scorer": scorer,
            "model_version": model_version,
            "score": score,
            "score_kind": kind,
            "probability": pa.array(probability, pa.float64(), mask=np.isnan(probability)),
            "abstained": abstained,
            "scored_at": scored_at,
            "recorded_at": recorded_at,
            "horizon_days": pc.cast(pc.fill_null(horizon, 0), pa.int32()),
            "target_event": checker.text("target_event", required=True),
            "input_hash": checker.text("input_hash", required=False),
            "seed": seed,
            "source": checker.text("source", required=False),
            "segments": segment_map(checker.table, segments),
            "_row": pa.array(np.arange(1, n + 1)),
        }
    )
    assert tuple(table.column_names[:-1]) == PREDICTION_COLUMNS
    abstentions = int(pc.sum(pc.cast(abstained, pa.int64())).as_py() or 0)
    _percent_hint(checker, score_np, is_prob)
    return _Staged(
        table, abstentions, checker.bad, backfill or _earlier(recorded_at, ingested_at),
        hints=checker.hints,
    )  # fmt: skip


def _stage_outcomes(
    checker: RowChecker, assume_timezone: str | None, ingested_at: dt.datetime, backfill: bool
) -> _Staged:
    entity = checker.text("entity_id", required=True)
    event = checker.text("event", required=True)
    occurred_at = _required_timestamp(checker, "occurred_at", assume_timezone)
    recorded_at = _recorded_at(
        checker, assume_timezone, ingested_at, occurred_at if backfill else None
    )
    early = np.asarray(pc.fill_null(pc.greater(occurred_at, recorded_at), False))
    checker.flag(
        early,
        "occurred_at",
        pc.cast(occurred_at, pa.string()),
        "occurred_at is later than recorded_at (an event cannot be known before it happens)",
    )
    outcome_id = (
        checker.text("outcome_id", required=True)
        if "outcome_id" in checker.table.column_names
        else _derived_id(entity, event, pc.cast(occurred_at, pa.string()).fill_null(""))
    )
    table = pa.table(
        {
            "outcome_id": outcome_id,
            "entity_id": entity,
            "event": event,
            "occurred_at": occurred_at,
            "recorded_at": recorded_at,
            "source": checker.text("source", required=False),
            "_row": pa.array(np.arange(1, checker.n_rows + 1)),
        }
    )
    assert tuple(table.column_names[:-1]) == OUTCOME_COLUMNS
    return _Staged(table, 0, checker.bad, backfill, hints=checker.hints)


def _integer(checker: RowChecker, kind: str, name: str, what: str) -> pa.Array:
    """Read a declared integer column within its declared bounds (null where absent or bad)."""
    declared = column(kind, name)
    raw = checker.require(name) if declared.required else checker.column(name)
    if raw is None:
        return pa.nulls(checker.n_rows, pa.int64())
    return checker.integer(name, raw, declared.bounds or INT64, what)


def _earlier(recorded_at: pa.Array, ingested_at: dt.datetime) -> bool:
    """Tell whether any row claims to have been recorded before this ingest (history)."""
    return bool(pc.any(pc.less(recorded_at, pa.scalar(ingested_at, recorded_at.type))).as_py())


def _percent_hint(checker: RowChecker, score: np.ndarray, is_prob: np.ndarray) -> None:
    """Say once, ahead of the row list, that the scores look like percentages.

    Most out-of-range probabilities inside (1, 100] mean the scores are percentages: the hint
    gives the count and the flag.
    """
    above = is_prob & (score > 1)
    if above.any() and np.all(score[above] <= 100):
        checker.hints.append(
            f"{int(above.sum()):,} of {int(np.isfinite(score).sum()):,} scores are above 1 "
            "and none above 100: they look like percentages; pass --score-kind percent"
        )
