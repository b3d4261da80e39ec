r"""A prediction's inputs: one canonical JSON record per row, stored once under its sha256.

**The canonical record** of a row (:func:`canonical_records`) is the JSON object of its input
values, written one way only:

* keys are the column names, sorted by code point; no whitespace; text is written as UTF-8
  (not ``\\u``-escaped) with the escapes ``json.dumps`` uses (``\\"``, ``\\\\``, ``\\b``,
  ``\\f``, ``\\n``, ``\\r``, ``\\t``, other control characters ``\\u00xx``);
* **numbers by value**: a whole number within the 64-bit range is written as its integer digits
  (``2``, ``2.0`` and ``-0.0`` are ``2``, ``2`` and ``0``); any other finite number as the
  shortest decimal that reads back to the same float64, in Python's ``repr`` form (``0.1``,
  ``1e-05``, ``1.5e+300``); float32 and decimal values are first widened to float64;
* ``true`` / ``false``; a missing value (None, NaN) is ``null``; ±infinity is refused;
* timestamps, dates, bytes, lists and nested objects are refused: convert them to text or
  numbers first.

So ``input_hash`` = sha256 of ``json.dumps(row, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` once whole floats are ints and NaN is None: anyone can recompute it.
Numbers go by value because a column's type depends on the other rows of its batch (a CSV
column holding one 0.5 reads ``2`` as 2.0, a JSON client writes ``2``); a content address must
not. The encoding runs in DuckDB over the whole Arrow table (whose float-to-text cast is
Python's ``repr``), never row by row in Python.

**CSV cells** are text as written (:mod:`assay.ledger.csvtext`); an input column read from a
CSV is typed per column by :func:`typed_text`, as pyarrow's CSV reader infers: its null
spellings (empty, ``NA``, ``NaN``, ``null``, …) are null; a column whose other cells are all
integers is int64, all numbers float64 (``0,42`` in a semicolon- or tab-separated file),
all ``true``/``false`` (any case) boolean; any other column keeps its text as written. As with
every CSV reader, ``02139`` is then the number 2139: send such codes as text (Parquet, a frame,
or NDJSON) if the model reads them as text.

:func:`records_frame` reads records back into a typed Arrow table;
:func:`typed_copy_bytes` writes such a table as the Arrow IPC bytes of a batch's typed copy
(``input_frames``), one way only, and :func:`read_typed_copy` reads them back.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as paipc
import pyarrow.json as pajson

from assay._validation import AssayInputError
from assay.ledger.parse import BadRow
from assay.ledger.schema import input_row_hash

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "MAX_RECORD_BYTES",
    "StagedInputs",
    "canonical_records",
    "input_frame",
    "read_typed_copy",
    "records_frame",
    "stage_inputs",
    "typed_copy_bytes",
    "typed_text",
]

#: A canonical record holds at most this many bytes (log the features a model reads, not a
#: whole CRM row).
MAX_RECORD_BYTES = 65_536
#: The name of a column holding each row's inputs as one object (struct).
INPUTS_COLUMN = "inputs"
_NULLS = pa.array(pacsv.ConvertOptions().null_values)
_INTEGER = r"^[+-]?\d+$"
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_DECIMAL_COMMA = r"^[+-]?\d*,\d+$"
_BOOLEAN = ("true", "false")
#: Text json.dumps escapes: a quote, a backslash, a control character.
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'
#: 2^63 as a double: whole floats in [-2^63, 2^63) are written as int64 digits.
_INT64_END = "9223372036854775808.0"
#: Bytes of records per block :func:`records_frame` parses (blocks are parsed in parallel;
#: one holds many records of at most :data:`MAX_RECORD_BYTES`).
_BLOCK_BYTES = 1 << 20


def _json_text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text_sql(column: str) -> str:
    r"""Return the JSON text of a VARCHAR: DuckDB's ``to_json``, or the json.dumps escapes by hand.

    DuckDB writes some control characters with upper-case hex (``\\u001F``); a value that holds
    one is escaped character by character as ``json.dumps`` does.
    """
    escaped = f"replace(replace({column}, '\\', '\\\\'), '\"', '\\\"')"
    for code in range(32):
        escaped = f"replace({escaped}, chr({code}), {_sql_literal(_json_text(chr(code))[1:-1])})"
    return (
        f"CASE WHEN regexp_matches({column}, '[\\x00-\\x1f]') THEN '\"' || {escaped} || '\"' "
        f"ELSE to_json({column})::VARCHAR END"
    )


def _value_sql(name: str, kind: pa.DataType, quoted: bool = False) -> str:
    """Return SQL for the canonical JSON text of one column's value (never NULL).

    ``quoted``: the column holds its values' JSON text already (:func:`_quoted`).
    """
    column = _identifier(name)
    if pa.types.is_null(kind):
        return "'null'"
    if quoted:
        return f"coalesce({column}, 'null')"
    if pa.types.is_boolean(kind):
        text = f"CASE WHEN {column} THEN 'true' ELSE 'false' END"
    elif pa.types.is_integer(kind):
        text = f"CAST({column} AS VARCHAR)"
    elif _is_number(kind):  # a double by now, never NaN nor -0.0 (:func:`_numbers_sql`)
        text = (
            f"CASE WHEN {column} = trunc({column}) AND {column} >= -{_INT64_END} "
            f"AND {column} < {_INT64_END} THEN CAST(CAST({column} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({column} AS VARCHAR) END"
        )
    else:
        text = _text_sql(f"CAST({column} AS VARCHAR)")
    return f"coalesce({text}, 'null')"


def _plain(table: pa.Table) -> pa.Table:
    """Decode dictionary (categorical) columns; refuse the types a record cannot hold."""
    columns = []
    for name, values in zip(table.column_names, table.columns, strict=True):
        kind = values.type
        if pa.types.is_dictionary(kind):
            values = values.cast(kind.value_type)
            kind = kind.value_type
        plain = (
            pa.types.is_null(kind) or pa.types.is_boolean(kind) or pa.types.is_integer(kind)
            or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            or pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_string_view(kind)
        )  # fmt: skip
        if not plain:
            raise AssayInputError(
                f"input {name!r} holds {kind} values; an input is text, a number, true/false "
                "or empty: convert it (timestamps to ISO 8601 text, lists and objects to "
                "separate inputs)"
            )
        columns.append(values)
    return pa.table(columns, names=table.column_names)


def _infinite(table: pa.Table) -> list[BadRow]:
    """One bad row per infinite input value (JSON has no infinity; NaN is a missing value)."""
    bad = []
    for name, values in zip(table.column_names, table.columns, strict=True):
        if not pa.types.is_floating(values.type):
            continue
        array = np.asarray(values.to_numpy(), dtype=np.float64)
        for index in np.flatnonzero(np.isinf(array)):
            bad.append(
                BadRow(int(index) + 1, name, str(array[index]),
                       "an input cannot be infinite; leave it empty if it is unknown")
            )  # fmt: skip
    return bad


def _is_number(kind: pa.DataType) -> bool:
    """Whether a column's values are written as numbers by value (floats and decimals)."""
    return bool(pa.types.is_floating(kind) or pa.types.is_decimal(kind))


def _numbers_sql(schema: pa.Schema) -> str:
    """Return a select list: every column, the numbers among ``schema``'s as canonical doubles.

    Floats and decimals become doubles with NaN as NULL and -0.0 as 0.0, so two values are
    equal exactly when their canonical texts are: rows grouped on these columns are grouped
    by record.
    """
    numbers = [
        f"CASE WHEN isnan({x}) THEN NULL ELSE {x} + 0.0 END AS {_identifier(name)}"
        for name in schema.names
        if _is_number(schema.field(name).type)
        for x in [f"CAST({_identifier(name)} AS DOUBLE)"]
    ]
    return f"* REPLACE ({', '.join(numbers)})" if numbers else "*"


def _record_sql(schema: pa.Schema, quoted: frozenset[str] = frozenset()) -> str:
    """Return SQL for a row's canonical record over the columns of ``schema``.

    Numbers are read from :func:`_numbers_sql`'s doubles; the columns named in ``quoted``
    hold their values' JSON text already (:func:`_quoted`).
    """
    names = sorted(schema.names)
    parts = [
        item
        for k, name in enumerate(names)
        for item in (
            _sql_literal(("{" if k == 0 else ",") + _json_text(name) + ":"),
            _value_sql(name, schema.field(name).type, name in quoted),
        )
    ]
    return f"concat({', '.join(parts)}, '}}')" if parts else "'{}'"


def _is_text(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
    )  # fmt: skip


def _quoted(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    r"""Return each text value as its JSON text (``json.dumps``, UTF-8 unescaped); null stays null.

    Built in Arrow, once per distinct value (inputs repeat): a value without ``"``, ``\`` or
    a control character is written between quotes as it is; the rare others go through
    ``json.dumps``.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_dictionary(values.type):
        values = pc.dictionary_encode(pc.cast(values, pa.large_string()))
    text = pc.cast(values.dictionary, pa.large_string())
    quote, empty = pa.scalar('"', pa.large_string()), pa.scalar("", pa.large_string())
    quoted = pc.binary_join_element_wise(quote, text, quote, empty)
    special = pc.fill_null(pc.match_substring_regex(text, _NEEDS_ESCAPE), False)
    if pc.any(special).as_py():
        escaped = [_json_text(v) for v in text.filter(special).to_pylist()]
        quoted = pc.replace_with_mask(quoted, special, pa.array(escaped, pa.large_string()))
    return quoted.take(values.indices)


def _quote_text(table: pa.Table) -> tuple[pa.Table, frozenset[str]]:
    """Return ``table`` with its text columns as JSON text (:func:`_quoted`), and their names."""
    names = frozenset(n for n, f in zip(table.column_names, table.schema, strict=True)
                      if _is_text(f.type))  # fmt: skip
    for index, name in enumerate(table.column_names):
        if name in names:
            table = table.set_column(index, name, _quoted(table.column(index)))
    return table, names


def _finite(table: pa.Table) -> pa.Table:
    """Return ``table`` with infinite floats as null (they are reported by :func:`_infinite`)."""
    for index, values in enumerate(table.columns):
        if pa.types.is_floating(values.type):
            values = pc.cast(values, pa.float64())
            values = pc.if_else(pc.is_inf(values), pa.scalar(None, pa.float64()), values)
            table = table.set_column(index, table.column_names[index], values)
    return table


def canonical_records(table: pa.Table) -> pa.Table:
    """Return each row's canonical JSON record and its sha256, in row order.

    Parameters
    ----------
    table : pyarrow.Table
        One column per input (text, numbers, booleans; dictionary columns are decoded).

    Returns
    -------
    pyarrow.Table
        ``input_hash`` = sha256(``record``) as 64 hex digits and ``record``, the row as
        canonical JSON (module docstring): keys sorted, no whitespace, UTF-8 unescaped, whole
        numbers within 64 bits as integers, other floats in shortest round-trip form,
        None/NaN as null.

    Raises
    ------
    AssayInputError
        On a column of another type, or an infinite value (naming the row and column).
    """
    plain = _plain(table)
    bad = _infinite(plain)
    if bad:
        raise AssayInputError(f"{len(bad)} input value(s) cannot be recorded; first: {bad[0]}")
    rows, quoted = _quote_text(plain)
    with duckdb.connect() as con:
        con.register("input_rows", rows)
        return con.sql(
            f"SELECT sha256(record) AS input_hash, record FROM (SELECT "
            f"{_record_sql(plain.schema, quoted)} AS record FROM (SELECT "
            f"{_numbers_sql(plain.schema)} FROM input_rows))"
        ).to_arrow_table()


def typed_text(table: pa.Table, *, decimal_comma: bool = False) -> pa.Table:
    """Type text columns as pyarrow's CSV reader infers them, per column.

    Parameters
    ----------
    table : pyarrow.Table
        Text columns, cells as written.
    decimal_comma : bool
        Read ``0,42`` as 0.42 (semicolon- and tab-separated files write them).

    Returns
    -------
    pyarrow.Table
        Per column: pyarrow's null spellings (empty, ``NA``, ``NaN``, ``null``, …) are null;
        then int64 when every other cell is an integer (``[+-]digits``, surrounding spaces
        ignored; beyond 64 bits it is a number), float64 when every one is a decimal number,
        boolean when every one is true/false in any case, else the text as written.
        Non-text columns are returned unchanged.
    """
    columns = []
    for values in table.columns:
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            columns.append(values)
            continue
        text = pc.cast(values, pa.string())
        missing = pc.fill_null(pc.is_in(text, _NULLS), True)
        text = pc.if_else(missing, pa.scalar(None, pa.string()), text)
        columns.append(_typed(text, decimal_comma))
    return pa.table(columns, names=table.column_names)


def _all(text: pa.ChunkedArray, pattern: str) -> bool:
    return bool(pc.all(pc.match_substring_regex(text, pattern)).as_py() is not False)


def _typed(text: pa.ChunkedArray, decimal_comma: bool) -> pa.ChunkedArray:
    trimmed = pc.replace_substring_regex(pc.utf8_trim_whitespace(text), r"^\+", "")
    if pc.all(pc.is_null(text)).as_py() is not False:
        return text
    if _all(trimmed, _INTEGER):
        try:
            return pc.cast(trimmed, pa.int64())
        except pa.ArrowInvalid:  # beyond 64 bits: a number
            return pc.cast(trimmed, pa.float64())
    if decimal_comma:
        comma = pc.fill_null(pc.match_substring_regex(trimmed, _DECIMAL_COMMA), False)
        trimmed = pc.if_else(comma, pc.replace_substring(trimmed, ",", "."), trimmed)
    if _all(trimmed, _NUMBER):
        return pc.cast(trimmed, pa.float64())
    lower = pc.utf8_lower(trimmed)
    if pc.all(pc.or_kleene(pc.is_null(lower), pc.is_in(lower, pa.array(_BOOLEAN)))).as_py():
        return pc.equal(pc.utf8_lower(trimmed), "true")
    return text


def input_frame(table: pa.Table, inputs: Sequence[str] | str | None) -> pa.Table | None:
    """Return the input columns of a batch, or None when it carries no inputs.

    Parameters
    ----------
    table : pyarrow.Table
        The batch as read.
    inputs : sequence of str, str or None
        Column names, or one glob (``"x_*"``); a column ``inputs`` holding one object
        (struct) per row counts as well (its fields are the inputs; a null object: that row
        has none).

    Returns
    -------
    pyarrow.Table or None
        The input columns under their names (an ``inputs`` object's fields), plus a boolean
        column ``__has_record`` (False where a row has no inputs object).

    Raises
    ------
    AssayInputError
        On a name the batch lacks or a glob matching nothing (listing the columns), on both
        ``inputs`` and an ``inputs`` column, or an ``inputs`` column that is not objects.
    """
    names = table.column_names
    carried = INPUTS_COLUMN in names and inputs is None
    if inputs is None and not carried:
        return None
    if carried:
        column = table[INPUTS_COLUMN]
        if not pa.types.is_struct(column.type):
            raise AssayInputError(
                f"the column {INPUTS_COLUMN!r} holds {column.type}, not one object of input "
                "values per row; name the input columns instead (--inputs col1,col2)"
            )
        flat = column.combine_chunks()
        has = pc.is_valid(flat)
        fields = [flat.type.field(i).name for i in range(flat.type.num_fields)]
        frame = pa.table([flat.field(i) for i in range(len(fields))], names=fields)
        return frame.append_column("__has_record", has)
    if INPUTS_COLUMN in names:
        raise AssayInputError(
            f"the batch has a column {INPUTS_COLUMN!r} and inputs= names columns too; give "
            "the inputs one way"
        )
    chosen = _chosen(names, inputs)
    frame = table.select(chosen)
    return frame.append_column("__has_record", pa.repeat(pa.scalar(True), table.num_rows))


def _chosen(names: list[str], inputs: Sequence[str] | str | None) -> list[str]:
    requested = [inputs] if isinstance(inputs, str) else list(inputs or ())
    if len(requested) == 1 and any(ch in requested[0] for ch in "*?["):
        chosen = [n for n in names if fnmatch.fnmatchcase(n, requested[0])]
        if not chosen:
            raise AssayInputError(
                f"no column matches the inputs pattern {requested[0]!r}; columns: "
                f"{', '.join(names)}"
            )
        return chosen
    missing = [n for n in requested if n not in names]
    if missing or not requested:
        raise AssayInputError(
            f"input column(s) {', '.join(map(repr, missing)) or '(none named)'} not in the "
            f"batch; columns: {', '.join(names)}"
        )
    return list(dict.fromkeys(requested))


@dataclass(frozen=True)
class StagedInputs:
    """A batch's inputs, checked: each row's hash, the distinct records, the bad rows."""

    #: Per row, the sha256 of its record (None where the row carries no inputs).
    hashes: pa.Array
    #: The distinct records: ``input_hash``, ``record``, ``recorded_at`` (the earliest of its
    #: rows'), ``row_hash`` (:func:`assay.ledger.schema.input_row_hash`) and ``_row`` (the
    #: first row with it).
    records: pa.Table
    bad: list[BadRow]


def stage_inputs(
    frame: pa.Table,
    client_hash: pa.Array,
    recorded_at: pa.Array,
    con: duckdb.DuckDBPyConnection | None = None,
) -> StagedInputs:
    """Encode a batch's inputs and check them against the client's ``input_hash``.

    Parameters
    ----------
    frame : pyarrow.Table
        From :func:`input_frame`: input columns and ``__has_record``.
    client_hash : pyarrow.Array
        The ``input_hash`` column as sent (null where none was sent).
    recorded_at : pyarrow.Array
        When the ledger learned each row; a record counts as recorded with its earliest row.
    con : duckdb connection, optional
        Where to encode (the ledger's own saves opening one); default a fresh in-memory one.

    Returns
    -------
    StagedInputs
        The hash per row (the client's own where the row has no inputs); the distinct records
        (``input_hash, record, recorded_at, row_hash, _row``, by first row); one bad row per
        infinite value, record over :data:`MAX_RECORD_BYTES` bytes, or sent ``input_hash``
        that differs from the record's sha256.
    """
    plain = _plain(frame.drop_columns(["__has_record"]))
    bad = _infinite(plain)
    rows, quoted = _quote_text(_finite(plain))
    rows = rows.append_column("__has_record", frame["__has_record"])
    rows = rows.append_column("__at", pa.chunked_array([recorded_at]))
    rows = rows.append_column("__row", pa.array(np.arange(1, frame.num_rows + 1)))
    keys = ", ".join(map(_identifier, plain.column_names)) or "__has_record"
    # rows are grouped by their canonical values, so by record: each record is encoded once
    encoded = _encode(
        con, rows,
        f"SELECT {_record_sql(plain.schema, quoted)} AS record, min(__row) AS first_row, "
        f"min(__at) AS earliest, list(__row) AS members FROM (SELECT "
        f"{_numbers_sql(plain.schema)} FROM input_rows WHERE __has_record) "
        f"GROUP BY {keys} ORDER BY first_row",
    )  # fmt: skip
    text = encoded["record"].combine_chunks()
    digest, row_hash, size = _hashes(text)
    records = pa.table(
        {"input_hash": digest, "record": text, "recorded_at": encoded["earliest"],
         "row_hash": row_hash, "_row": encoded["first_row"]}
    )  # fmt: skip
    # each row's record: the encoded row whose members hold it (none: the row has no inputs)
    members = encoded["members"].combine_chunks()
    group = np.full(frame.num_rows, -1, dtype=np.int64)
    group[np.asarray(pc.list_flatten(members)) - 1] = np.asarray(pc.list_parent_indices(members))
    of_row = pa.array(group, mask=group < 0)
    computed = digest.take(of_row)
    sent = pa.array(client_hash, pa.string())
    hash_array = computed if sent.null_count == len(sent) else pc.coalesce(computed, sent)
    row_size = np.zeros(frame.num_rows, dtype=np.int64)
    row_size[group >= 0] = size[group[group >= 0]]
    for index in np.flatnonzero(row_size > MAX_RECORD_BYTES):
        bad.append(
            BadRow(int(index) + 1, "inputs", f"{int(row_size[index]):,} bytes",
                   f"an input record holds at most {MAX_RECORD_BYTES:,} bytes; log the "
                   "features the model reads, not the whole row")
        )  # fmt: skip
    differs = np.asarray(pc.fill_null(pc.not_equal(sent, computed), False))
    for index in np.flatnonzero(differs):
        bad.append(
            BadRow(int(index) + 1, "input_hash", str(sent[index].as_py()),
                   f"differs from the sha256 of the row's inputs ({computed[index].as_py()}); "
                   "leave input_hash empty and the ledger computes it")
        )  # fmt: skip
    return StagedInputs(hash_array, records, bad)


def _encode(con: duckdb.DuckDBPyConnection | None, rows: pa.Table, sql: str) -> pa.Table:
    """Run ``sql`` over ``rows`` (as ``input_rows``) on ``con``, or on a fresh in-memory one."""
    if con is None:
        with duckdb.connect() as fresh:
            return _encode(fresh, rows, sql)
    con.register("input_rows", rows)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister("input_rows")


def _hashes(text: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Return each record's sha256 (its ``input_hash``), its inputs row hash, and its bytes.

    ``text`` is a string array without nulls; each record's bytes are hashed in place
    (hashlib), never copied into Python strings. The row hash is
    :func:`assay.ledger.schema.input_row_hash`, as ``verify`` recomputes it in SQL.
    """
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        text = pc.cast(text, pa.large_string())  # e.g. string_view: offsets are needed
    width = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(text.buffers()[1], dtype=width)[
        text.offset : text.offset + len(text) + 1
    ]
    data = memoryview(text.buffers()[2]) if len(text) else memoryview(b"")
    digest, row_hash = [], []
    for start, stop in itertools.pairwise(offsets.tolist()):
        record = data[start:stop]
        address = hashlib.sha256(record).hexdigest()
        digest.append(address)
        row_hash.append(input_row_hash(address, record))
    sizes = np.diff(offsets).astype(np.int64)
    return pa.array(digest, pa.string()), pa.array(row_hash, pa.string()), sizes


def records_frame(records: pa.Array | pa.ChunkedArray | list[str]) -> pa.Table:
    """Read canonical records back into a typed Arrow table.

    Parameters
    ----------
    records : pyarrow.Array, ChunkedArray or list of str
        Canonical JSON records (as :func:`canonical_records` writes them).

    Returns
    -------
    pyarrow.Table
        One row per record, one column per key (sorted; a key a record lacks is null):
        integers int64, numbers mixing integers and decimals float64, booleans, text as text
        (never read as dates), an all-null key of type null. A key whose records hold
        different JSON types (text in one, a number in another) is read as text, each value
        as its JSON text.
    """
    text = pa.array(records, pa.large_string()) if isinstance(records, list) else records
    text = pc.cast(text, pa.large_string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if len(text) == 0:
        return pa.table({})
    if text.null_count:
        raise AssayInputError("a record is missing (null); each row needs its JSON record")
    data = _lines(text)
    # Blocks are parsed in parallel; a key typed differently by two blocks is promoted as one
    # block would type it (integers and decimals: float64; null: the other type).
    options = pajson.ReadOptions(block_size=_BLOCK_BYTES)
    try:
        table = pajson.read_json(pa.BufferReader(data), read_options=options)
    except pa.ArrowInvalid:
        return _mixed_frame(text.to_pylist())
    if any(pa.types.is_temporal(f.type) for f in table.schema):  # text that looked like dates
        schema = pa.schema(
            pa.field(f.name, pa.string()) if pa.types.is_temporal(f.type) else f
            for f in table.schema
        )
        parse = pajson.ParseOptions(explicit_schema=schema)
        table = pajson.read_json(pa.BufferReader(data), read_options=options, parse_options=parse)
    return table.select(sorted(table.column_names))


def _lines(text: pa.LargeStringArray) -> pa.Buffer:
    """Return the records as one newline-delimited buffer, built in Arrow (no Python strings).

    A canonical record holds no raw newline (``json.dumps`` escapes it), so each is one line.
    """
    joined = pc.binary_join_element_wise(
        text, pa.scalar("", pa.large_string()), pa.scalar("\n", pa.large_string())
    )
    offsets = np.frombuffer(
        joined.buffers()[1], dtype=np.int64, count=len(joined) + 1, offset=joined.offset * 8
    )
    return joined.buffers()[2][int(offsets[0]) : int(offsets[-1])]


def _mixed_frame(lines: list[str]) -> pa.Table:
    """Read records whose keys mix JSON types, one key at a time (a rare, slow path)."""
    rows = [json.loads(line) for line in lines]
    keys = sorted({key for row in rows for key in row})
    columns = {}
    for key in keys:
        values = [row.get(key) for row in rows]
        try:
            columns[key] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[key] = pa.array(
                [None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values],
                pa.string(),
            )
    return pa.table(columns)


def typed_copy_bytes(frame: pa.Table) -> bytes:
    """Write a typed table as Arrow IPC stream bytes, the same bytes for the same table.

    One record batch (chunks combined), no schema metadata, no compression; the value slots
    under nulls of fixed-width columns are zeroed first (a builder may leave anything there),
    so the bytes, and their sha256, depend on the table's types and values alone.
    """
    columns = []
    for values in frame.combine_chunks().columns:
        array = values.combine_chunks()
        fixed = pa.types.is_integer(array.type) or pa.types.is_floating(array.type)
        if array.null_count and (fixed or pa.types.is_boolean(array.type)):
            filled = pc.fill_null(array, pa.scalar(0 if fixed else False, array.type))
            missing = np.asarray(pc.is_null(array), dtype=bool)
            array = pa.array(filled.to_numpy(zero_copy_only=False), array.type, mask=missing)
        columns.append(array)
    schema = frame.schema.remove_metadata()
    batch = pa.RecordBatch.from_arrays(columns, schema=schema)
    sink = pa.BufferOutputStream()
    with paipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue())


def read_typed_copy(data: pa.Buffer | bytes) -> pa.Table:
    """Read the bytes :func:`typed_copy_bytes` wrote back into the table (zero copy)."""
    return paipc.open_stream(pa.BufferReader(data)).read_all()
