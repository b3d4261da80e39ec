"""Tamper evidence: what ``assay ledger verify`` recomputes, and the chain head that anchors it.

Every batch is checked in batch order and the first failure is named. Per batch:

1. **numbering** — batches are numbered 1, 2, 3, … without a gap;
2. **rows** — it holds ``row_count`` rows, each row's stored ``row_hash`` is the hash of its
   content (:mod:`assay.ledger.schema`), and no row carries a batch number that does not record
   rows of its kind;
3. **content address** — an input record hashes to its ``input_hash``, a registered model's
   artefact bytes to its ``fingerprint`` (:data:`assay.ledger.schema.CONTENT_ADDRESSES`);
4. **digest** — ``rows_sha256`` is the digest of its stored rows (:func:`batch_digest`);
5. **metadata** — ``meta_sha256`` is the hash of its metadata (:func:`meta_sql`): *every*
   column of ``batches`` but the chain's own (:data:`UNCHAINED`), read from the table itself, so
   a column added later is covered with no change here. The one rule for such a column: add
   it nullable, without a default (earlier batches then hold NULL, and a NULL column is left out
   of the hash, so their hashes stay valid);
6. **chain** — ``previous_hash`` is the chain hash of the batch before (genesis: 64 zeros), and
   ``chain_hash`` = sha256(previous | kind | rows_sha256 | row_count | ingested_at µs | meta).
7. **typed copy** — a predictions batch with a ``frame_sha256`` (schema version 6,
   :mod:`assay.ledger.schema`): its bytes in ``input_frames`` hash to it; every row was recorded
   at the batch's ingest time with its input record recorded by then (so the copy is seen whole
   at any as-of, as replay reads it); and the copy re-derived from those records
   (:func:`assay.ledger.inputs.records_frame` in ``prediction_id`` order, then
   :func:`assay.ledger.inputs.typed_copy_bytes`) is the same bytes. A copy that disagrees with
   the records fails here, naming the batch.

Batches written before schema version 4 have ``meta_sha256`` NULL: they keep the chain formula
without the metadata part, and edits to their metadata cannot be detected. Once one batch
carries a metadata hash every later batch must (so the hash cannot be dropped to fall back).

A chain still verifies on its own after its last batches were deleted with their rows, or after
it was recomputed whole (every digest and chain hash). What reveals both is a chain head taken
earlier, ``N:HASH`` (:class:`ChainHead`): the ledger must still hold batch N, and batch N's chain
hash must be HASH. ``assay ledger status`` and ``verify`` print the head, ``verify --expect``
checks one, and every JSON report records the head of the ledger it was computed from.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError, to_utc
from assay.ledger.inputs import records_frame, typed_copy_bytes
from assay.ledger.schema import CONTENT_ADDRESSES, GENESIS_HASH, KINDS, batch_item, column_text
from assay.ledger.session import first_row

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable

    import duckdb

#: Columns of ``batches`` outside its metadata hash: the chain itself and the hash.
UNCHAINED = ("previous_hash", "chain_hash", "meta_sha256")

_HEAD = re.compile(r"(\d{1,18}):([0-9a-fA-F]{64})")


@dataclass(frozen=True)
class ChainHead:
    """A ledger's history in one line: its number of batches and the last one's chain hash.

    >>> head = ChainHead(7, "3f" * 32)
    >>> ChainHead.parse(str(head)) == head
    True
    """

    batches: int
    chain_hash: str

    def __str__(self) -> str:
        """Return the head as ``N:HASH`` (the form :meth:`parse` reads)."""
        return f"{self.batches}:{self.chain_hash}"

    @classmethod
    def parse(cls, text: str) -> ChainHead:
        """Read the head written as ``N:HASH`` (as ``assay ledger status`` prints it)."""
        match = _HEAD.fullmatch(text.strip())
        if match is None:
            raise AssayInputError(
                f"chain head {text[:80]!r} is not N:HASH (a batch count, a colon and 64 hex "
                "digits, as `assay ledger status` prints it)"
            )
        return cls(int(match[1]), match[2].lower())


GENESIS_HEAD = ChainHead(0, GENESIS_HASH)


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`; ``head`` is the chain head as stored."""

    ok: bool
    batches: int
    first_bad_batch: int | None = None
    problem: str | None = None
    head: ChainHead = field(default=GENESIS_HEAD, kw_only=True)


class Digest(NamedTuple):
    """A batch's digest as recomputed from its stored rows."""

    sha256: str
    rows: int
    #: Whether every row's stored ``row_hash`` equals the hash of its content.
    row_hashes_match: bool


class _Batch(NamedTuple):
    batch_id: int
    kind: str
    rows_sha256: str
    row_count: int
    ingested_us: int
    previous_hash: str
    chain_hash: str
    meta_sha256: str | None
    meta_now: str
    frame_sha256: str | None


def chain_hash(
    previous: str, kind: str, rows_sha256: str, rows: int, micros: int, meta: str | None = None
) -> str:
    """Return a batch's chain hash; ``meta`` None is the formula before schema version 4."""
    tail = "" if meta is None else f"|{meta}"
    text = f"{previous}|{kind}|{rows_sha256}|{rows}|{micros}{tail}"
    return hashlib.sha256(text.encode()).hexdigest()


def meta_columns(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """Return the columns of ``batches`` a metadata hash covers, in table order."""
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'batches' "
        "AND database_name = current_database() AND schema_name = 'main' ORDER BY column_index"
    ).fetchall()
    return tuple(str(r[0]) for r in rows if r[0] not in UNCHAINED)


def meta_sql(con: duckdb.DuckDBPyConnection) -> str:
    """Return the SQL for a batch row's metadata hash.

    It is the sha256 over ``name=length:text`` of each non-NULL
    metadata column (the length makes the text unambiguous whatever a value holds).
    """
    items = []
    for name in meta_columns(con):
        text = column_text(name)
        items.append(
            f"CASE WHEN {name} IS NULL THEN NULL "
            f"ELSE '{name}=' || length({text}) || ':' || {text} END"
        )
    return f"sha256(concat_ws('|', {', '.join(items)}))"


def batch_digest(
    con: duckdb.DuckDBPyConnection, kind: str, batch_id: int, *, recompute: bool = True
) -> Digest:
    """sha256 over the lines ``row_hash | recorded_at`` of a batch's rows in id order.

    With ``recompute`` (what :func:`verify` does) the row hash is recomputed from the stored
    columns and compared with ``row_hash``, never trusted; without it the stored ``row_hash``
    is taken as it is (an ingest that has just written it from the same rows, in the same
    transaction). The Arrow string buffers stream into the digest without Python strings.
    """
    table, id_column, row_hash, _ = KINDS[kind]
    content = row_hash if recompute else "row_hash"
    reader = con.sql(
        f"SELECT {batch_item('h')} || chr(10) AS item, h = row_hash AS same FROM ("
        f"SELECT {content} AS h, row_hash, recorded_at, {id_column} FROM {table} "
        f"WHERE batch_id = {int(batch_id)}) ORDER BY {id_column}"
    ).to_arrow_reader(1 << 16)
    digest, rows, match = hashlib.sha256(), 0, True
    for chunk in reader:
        digest.update(_string_bytes(chunk.column(0)))
        rows += chunk.num_rows
        match = match and pc.all(pc.fill_null(chunk.column(1), False)).as_py() is not False
    return Digest(digest.hexdigest(), rows, match)


def append_batch(
    con: duckdb.DuckDBPyConnection,
    *,
    kind: str,
    batch_id: int,
    previous_hash: str,
    file_sha256: str,
    source_name: str | None,
    ingested_at: dt.datetime,
    ingested_by: str | None,
    backfill: bool,
    recompute: bool = True,
    frame_sha256: str | None = None,
) -> dict[str, Any]:
    """Chain batch ``batch_id`` after ``previous_hash``; return the batch row as stored.

    The batch's rows are stored in ``con`` under that number already; the row returned maps
    column → value. ``recompute=False``: the rows' stored ``row_hash`` was computed from the
    same rows in this transaction, so the digest takes it as it is (:func:`batch_digest`).
    ``frame_sha256``: the hash of the batch's typed input copy, already in ``input_frames``.

    The one place a batch joins the hash chain, for both stores: the digest and the row count
    are taken from the stored rows (:func:`batch_digest`), the batch row is inserted, and
    ``meta_sha256`` and ``chain_hash`` are sealed from that row as stored — what :func:`verify`
    repeats. The DuckDB ledger calls it inside its ingest transaction; the PostgreSQL store on
    the scratch ledger that validated the batch, with the workspace's batch number and chain
    head, and copies the row it returns.
    """
    digest = batch_digest(con, kind, batch_id, recompute=recompute)
    row = {
        "batch_id": batch_id, "kind": kind, "source_name": source_name,
        "file_sha256": file_sha256, "rows_sha256": digest.sha256, "row_count": digest.rows,
        "ingested_at": ingested_at, "ingested_by": ingested_by, "previous_hash": previous_hash,
        "chain_hash": "", "backfill": backfill, "frame_sha256": frame_sha256,
    }  # fmt: skip
    names = _meta_columns(con)
    sealed = first_row(
        con.execute(
            f"INSERT INTO batches ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) "
            "RETURNING kind, rows_sha256, row_count, epoch_us(ingested_at), previous_hash, "
            + ", ".join(f"{name} IS NULL, {column_text(name)}" for name in names),
            list(row.values()),
        )
    )
    assert sealed is not None
    kind, rows_sha256, rows, micros, previous = sealed[:5]
    texts = sealed[5:]
    meta = _meta_sha256(
        (name, str(text)) for name, null, text in zip(names, texts[::2], texts[1::2], strict=True)
        if not null
    )  # fmt: skip
    stored = con.execute(
        "UPDATE batches SET meta_sha256 = ?, chain_hash = ? WHERE batch_id = ? RETURNING *",
        [meta, chain_hash(previous, kind, rows_sha256, rows, micros, meta), batch_id],
    )
    labels = [column[0] for column in stored.description or ()]
    return dict(zip(labels, stored.fetchall()[0], strict=True))


def _meta_sha256(items: Iterable[tuple[str, str]]) -> str:
    """Return what :func:`meta_sql` computes, from the non-NULL columns' (name, text) pairs.

    An append seals its batch row with it (one row: assembling the text here is cheaper than
    planning that expression); ``verify`` recomputes it with :func:`meta_sql`.
    """
    text = "|".join(f"{name}={len(value)}:{value}" for name, value in items)
    return hashlib.sha256(text.encode()).hexdigest()


#: :func:`meta_columns` per connection, for appends (``verify`` reads the table afresh).
_SEALED: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, tuple[str, ...]] = (
    weakref.WeakKeyDictionary()
)


def _meta_columns(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """Return :func:`meta_columns` of ``con``, read once per connection.

    A ledger's columns are migrated when it opens, before any append.
    """
    if con not in _SEALED:
        _SEALED[con] = meta_columns(con)
    return _SEALED[con]


def chain_head(con: duckdb.DuckDBPyConnection) -> ChainHead:
    """Return the stored chain head: the number of batches and the last batch's chain hash."""
    row = first_row(con.execute("SELECT count(*), arg_max(chain_hash, batch_id) FROM batches"))
    assert row is not None
    return ChainHead(int(row[0]), str(row[1])) if row[0] else GENESIS_HEAD


def ingested_at(con: duckdb.DuckDBPyConnection, batch: int) -> dt.datetime | None:
    """When batch number ``batch`` was ingested (None when the ledger holds no such batch)."""
    row = first_row(con.execute("SELECT ingested_at FROM batches WHERE batch_id = ?", [batch]))
    return None if row is None else to_utc(row[0])


def verify(con: duckdb.DuckDBPyConnection, expect: ChainHead | None = None) -> VerifyResult:
    """Check every batch by the module's rules; with ``expect``, also that history holds it.

    ``expect`` is a chain head the history must hold. The first failure is named with its batch.
    """
    frames = "frame_sha256" if "frame_sha256" in meta_columns(con) else "NULL"  # version 6
    batches = [
        _Batch(*row)
        for row in con.execute(
            "SELECT batch_id, kind, rows_sha256, row_count, epoch_us(ingested_at), "
            f"previous_hash, chain_hash, meta_sha256, {meta_sql(con)}, {frames} FROM batches "
            "ORDER BY batch_id"
        ).fetchall()
    ]
    head = ChainHead(len(batches), batches[-1].chain_hash) if batches else GENESIS_HEAD
    found = _first_problem(con, batches)
    if found is None and expect is not None:
        found = _missing(expect, batches)
    if found is None:
        return VerifyResult(True, len(batches), head=head)
    number, problem = found
    return VerifyResult(False, len(batches), number, problem, head=head)


def _first_problem(con: duckdb.DuckDBPyConnection, batches: list[_Batch]) -> tuple[int, str] | None:
    strays = _stray_rows(con)
    previous, sealed_since = GENESIS_HASH, None
    for number, batch in enumerate(batches, start=1):
        if batch.batch_id != number:
            return number, f"batch {number} is missing (batch {batch.batch_id} follows it)"
        if batch.kind not in KINDS:
            return number, f"batch {number}: its kind {batch.kind!r} is none of {', '.join(KINDS)}"
        problem = strays.pop(number, None) or _batch_problem(con, batch, previous, sealed_since)
        if problem:
            return number, f"batch {number} ({batch.kind}): {problem}"
        previous = batch.chain_hash
        if sealed_since is None and batch.meta_sha256 is not None:
            sealed_since = number
    if strays:
        number = min(strays)
        return number, f"batch {number}: {strays[number]}, but no batch {number} is recorded"
    return None


def _batch_problem(
    con: duckdb.DuckDBPyConnection, batch: _Batch, previous: str, sealed_since: int | None
) -> str | None:
    digest = batch_digest(con, batch.kind, batch.batch_id)
    if digest.rows != batch.row_count:
        return f"holds {digest.rows} rows; {batch.row_count} were written"
    if not digest.row_hashes_match:
        return _first_bad_row(con, batch)
    if batch.kind in CONTENT_ADDRESSES:
        broken = _broken_address(con, batch)
        if broken:
            return broken
    if digest.sha256 != batch.rows_sha256:
        return "its rows no longer match the digest taken when it was written"
    if batch.meta_sha256 is None and sealed_since is not None:
        return f"it lacks the metadata hash every batch since batch {sealed_since} carries"
    if batch.meta_sha256 is not None and batch.meta_sha256 != batch.meta_now:
        columns = ", ".join(meta_columns(con))
        return f"its metadata ({columns}) no longer match the hash taken when it was written"
    if batch.previous_hash != previous:
        return "its previous_hash is not the chain hash of the batch before (the chain is broken)"
    expected = chain_hash(
        previous, batch.kind, batch.rows_sha256, batch.row_count, batch.ingested_us,
        batch.meta_sha256,
    )  # fmt: skip
    if batch.chain_hash != expected:
        return "its chain_hash does not match its contents (the chain is broken)"
    return None if batch.frame_sha256 is None else _copy_problem(con, batch)


def _first_row_where(
    con: duckdb.DuckDBPyConnection, batch: _Batch, condition: str, params: list[Any] | None = None
) -> Any:
    """Return the id of the batch's first row (by id) meeting ``condition`` (alias ``t``)."""
    table, id_column, _, _ = KINDS[batch.kind]
    row = first_row(
        con.execute(
            f"SELECT t.{id_column} FROM {table} t WHERE t.batch_id = ? AND ({condition}) "
            f"ORDER BY t.{id_column} LIMIT 1",
            [batch.batch_id, *(params or [])],
        )
    )
    return None if row is None else row[0]


def _first_bad_row(con: duckdb.DuckDBPyConnection, batch: _Batch) -> str:
    _, id_column, row_hash, _ = KINDS[batch.kind]
    found = _first_row_where(con, batch, f"t.row_hash IS DISTINCT FROM {row_hash}")
    assert found is not None
    return f"{id_column} {found!r}: its stored row_hash does not match its content"


def _broken_address(con: duckdb.DuckDBPyConnection, batch: _Batch) -> str | None:
    """Name the batch's first row whose content no longer hashes to its address."""
    _, id_column, _, _ = KINDS[batch.kind]
    condition = f"NOT coalesce({CONTENT_ADDRESSES[batch.kind]}, false)"
    found = _first_row_where(con, batch, condition)
    if found is None:
        return None
    what = "record" if batch.kind == "inputs" else "artefact"
    return f"{id_column} {found!r}: its {what} no longer hashes to its content address"


def _copy_problem(con: duckdb.DuckDBPyConnection, batch: _Batch) -> str | None:
    """Check a predictions batch's typed input copy against its records (module rule 7)."""
    what = f"its typed input copy {batch.frame_sha256}"
    if batch.kind != "predictions":
        return f"{what} is set, but only predictions batches have one"
    stored = first_row(
        con.execute("SELECT bytes FROM input_frames WHERE frame_sha256 = ?", [batch.frame_sha256])
    )
    if stored is None:
        return f"{what} is missing from input_frames"
    if hashlib.sha256(stored[0]).hexdigest() != batch.frame_sha256:
        return f"{what} no longer hashes to its content address"
    late = _first_row_where(
        con, batch,
        "epoch_us(t.recorded_at) <> ? OR NOT EXISTS (SELECT 1 FROM inputs i WHERE "
        "i.input_hash = t.input_hash AND epoch_us(i.recorded_at) <= ?)",
        [batch.ingested_us, batch.ingested_us],
    )  # fmt: skip
    if late is not None:
        return (
            f"{what} covers prediction_id {late!r}, which was not recorded with the batch or "
            "whose input record was not stored by then"
        )
    records = con.sql(
        "SELECT i.record FROM predictions p JOIN inputs i ON i.input_hash = p.input_hash "
        f"WHERE p.batch_id = {int(batch.batch_id)} ORDER BY p.prediction_id"
    ).to_arrow_table()
    derived = typed_copy_bytes(records_frame(records["record"]))
    if hashlib.sha256(derived).hexdigest() != batch.frame_sha256:
        return f"{what} no longer matches its input records (re-derived from them)"
    return None


def _stray_rows(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """Per batch number, rows that carry it though that batch records no rows of their kind."""
    strays: dict[int, str] = {}
    for kind, (table, *_) in KINDS.items():
        rows = con.execute(
            f"SELECT t.batch_id, count(*) FROM {table} t LEFT JOIN batches b "
            "ON b.batch_id = t.batch_id AND b.kind = ? WHERE b.batch_id IS NULL "
            "GROUP BY t.batch_id",
            [kind],
        ).fetchall()
        for number, count in rows:
            strays.setdefault(int(number), f"{count} {table} rows carry its number")
    return strays


def _missing(expect: ChainHead, batches: list[_Batch]) -> tuple[int, str] | None:
    """Tell whether the history holds ``expect`` (run after every batch verified)."""
    if expect.batches == 0 and expect.chain_hash == GENESIS_HASH:
        return None
    if expect.batches > len(batches):
        return len(batches) + 1, (
            f"the ledger holds {len(batches)} batches, but the expected head {expect} is batch "
            f"{expect.batches}: batches after {len(batches)} were removed"
        )
    found = batches[expect.batches - 1].chain_hash if expect.batches else GENESIS_HASH
    if found != expect.chain_hash:
        return expect.batches, (
            f"batch {expect.batches}'s chain hash is {found}, not {expect.chain_hash} as the "
            f"expected head {expect} says: the history up to it was rewritten"
        )
    return None


def _string_bytes(items: pa.Array) -> memoryview:
    """Return the concatenated UTF-8 bytes of a null-free Arrow string array (no copies)."""
    width = np.int64 if pa.types.is_large_string(items.type) else np.int32
    _, offsets_buffer, data = items.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=width)[
        items.offset : items.offset + len(items) + 1
    ]
    return memoryview(data)[int(offsets[0]) : int(offsets[-1])]
