"""A prediction's inputs: canonical records, content addresses, dedupe, tamper evidence."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay._validation import AssayInputError
from assay.ledger import Ledger, LedgerIngestError
from assay.ledger.inputs import MAX_RECORD_BYTES, canonical_records, records_frame, typed_text
from assay.service.batches import BatchRejected, parse_csv, parse_ndjson


def reference(row: dict[str, Any]) -> tuple[str, str]:
    """The canonical record by the standard library: whole floats as ints, NaN as null."""

    def value(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, float) and v == int(v) and -(2**63) <= v < 2**63:
            return int(v)
        return v

    text = json.dumps(
        {k: value(v) for k, v in row.items()},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest(), text


VARIED = [
    {"b": 0.1, "a": "x\"\\é\n\t\x01\x0b\x1f\u2028😀", "n": None, "w": 2.0, "t": True,
     "z": -0.0, "tiny": 1e-300, "nan": math.nan, "i": 31, "big": 1e20, "e": ""},
    {"b": 1e-05, "a": "plain '", "n": None, "w": 0.5, "t": False, "z": 5e-324,
     "tiny": 1e16, "nan": 2.5, "i": -(2**63), "big": 1.5e300, "e": "ü"},
]  # fmt: skip


def test_canonical_record_by_hand_and_as_json_dumps_writes_it() -> None:
    records = canonical_records(pa.Table.from_pylist(VARIED)).to_pylist()
    assert records[0]["record"] == (
        '{"a":"x\\"\\\\é\\n\\t\\u0001\\u000b\\u001f\u2028😀","b":0.1,"big":1e+20,'
        '"e":"","i":31,"n":null,"nan":null,"t":true,"tiny":1e-300,"w":2,"z":0}'
    )
    for row, got in zip(VARIED, records, strict=True):
        assert (got["input_hash"], got["record"]) == reference(row)


def test_float_text_is_the_shortest_round_trip_for_many_values() -> None:
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 2**63, 20_000, dtype=np.int64).view(np.float64)
    values = np.concatenate(
        [raw[np.isfinite(raw)], rng.random(20_000) * 10.0 ** rng.integers(-12, 22, 20_000)]
    )
    got = canonical_records(pa.table({"x": values}))["record"].to_pylist()
    want = [reference({"x": float(v)})[1] for v in values]
    assert got == want
    assert all(float(json.loads(r)["x"]) == v for r, v in zip(got[:2000], values, strict=False))


def test_refused_values_and_types_say_what_to_do() -> None:
    with pytest.raises(AssayInputError, match="cannot be infinite"):
        canonical_records(pa.table({"x": [1.0, math.inf]}))
    with pytest.raises(AssayInputError, match="'when' holds timestamp"):
        canonical_records(pa.table({"when": pa.array([0], pa.timestamp("s"))}))


def test_csv_cells_are_typed_per_column_like_pyarrow() -> None:
    table = pa.table(
        {"i": ["1", " +2", "", "NA"], "f": ["1", "2.5", "", "x"], "b": ["True", "false", "", ""],
         "c": ["0,5", "2", "", ""], "s": ["02139", "x", "", "y "]}
    )  # fmt: skip
    typed = typed_text(table.select(["i", "c", "s", "b"]), decimal_comma=True)
    assert typed.to_pydict() == {
        "i": [1, 2, None, None], "c": [0.5, 2.0, None, None],
        "s": ["02139", "x", None, "y "], "b": [True, False, None, None],
    }  # fmt: skip
    assert typed_text(table.select(["f"]))["f"].to_pylist() == ["1", "2.5", None, "x"]


def test_records_frame_reads_records_back_typed_and_sorted() -> None:
    records = ['{"b":"2024-01-01","a":1}', '{"a":2.5,"b":null,"c":true}']
    frame = records_frame(records)
    assert frame.column_names == ["a", "b", "c"]
    assert frame.to_pydict() == {"a": [1.0, 2.5], "b": ["2024-01-01", None], "c": [None, True]}
    mixed = records_frame(['{"a":1}', '{"a":"x"}'])
    assert mixed["a"].to_pylist() == ["1", "x"]


# ------------------------------------------------------------------ ingest
def leads(n: int, distinct: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = rng.integers(0, distinct, n)
    k[: min(n, distinct)] = np.arange(min(n, distinct))  # every record appears
    return pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(n)],
            "entity_id": [f"e{i}" for i in range(n)],
            "scorer": "model",
            "score": np.round(rng.random(n), 6),
            "scored_at": "2024-05-01T00:00:00Z",
            "horizon_days": 90,
            "target_event": "customer",
            "seed": 7,
            "age": k % 60,
            "rev": (k * 0.25).astype(float),
            "region": np.array(["EU", "US", "APAC"])[k % 3],
        }
    )


INPUTS = ["age", "rev", "region"]


def test_sources_give_the_same_input_hash_per_lead(tmp_path: Path) -> None:
    frame = leads(30, 30)
    frame.loc[0, "rev"] = 2.0  # a whole float: 2 whatever the source
    frame.loc[1, "region"] = 'Zürich "HQ"'
    hashes = []
    csv = tmp_path / "leads.csv"
    frame.to_csv(csv, index=False)
    parquet = tmp_path / "leads.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet)
    rows = []
    for r in json.loads(frame.to_json(orient="records")):
        row = {k: v for k, v in r.items() if k not in INPUTS}
        rows.append({**row, "inputs": {k: r[k] for k in INPUTS}})
    ndjson = parse_ndjson("\n".join(json.dumps(r) for r in rows).encode(), "predictions")
    body = frame.rename(columns={k: f"input:{k}" for k in INPUTS}).to_csv(index=False)
    service_csv = parse_csv(body.encode(), "predictions")
    for data, inputs in (
        (csv, INPUTS), (parquet, INPUTS), (frame, INPUTS), (pl.from_pandas(frame), INPUTS),
        (ndjson.table, None), (service_csv.table, None),
    ):  # fmt: skip
        with Ledger(tmp_path / f"l{len(hashes)}.duckdb") as ledger:
            ledger.ingest_predictions(data, inputs=inputs)
            got = ledger.prediction_inputs()
            ids = got["prediction_id"].to_pylist()
            hashes.append(dict(zip(ids, got["input_hash"].to_pylist(), strict=True)))
    want = {
        r["prediction_id"]: reference({k: r[k] for k in INPUTS})[0]
        for r in frame.to_dict("records")
    }
    assert [h == want for h in hashes] == [True] * 6


def test_inputs_deduplicate_and_a_resend_writes_no_batch(tmp_path: Path) -> None:
    frame = leads(10_000, 2_000)
    with Ledger(tmp_path / "l.duckdb") as ledger:
        receipt = ledger.ingest_predictions(frame, inputs=INPUTS)
        assert (receipt.inputs_new, receipt.inputs_batch_id, receipt.batch_id) == (2000, 1, 2)
        assert ledger.con.sql("SELECT count(*) FROM inputs").fetchall() == [(2000,)]
        head = ledger.chain_head()
        again = ledger.ingest_predictions(frame, inputs=INPUTS)
        assert again.noop and ledger.chain_head() == head
        # a new batch over the same records stores no record again
        more = leads(100, 2_000, seed=1).assign(prediction_id=lambda f: "q" + f.prediction_id)
        assert (
            ledger.ingest_predictions(more, inputs="[ar][eg]*").inputs_new == 0
        )  # age, region, rev
        assert ledger.verify().ok
        assert ledger.input_coverage() == {"model": (10_100, 10_100)}


def test_an_edited_record_fails_verify_naming_the_batch_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "l.duckdb"
    with Ledger(path) as ledger:
        ledger.ingest_predictions(leads(50, 10), inputs=INPUTS)
        victim = ledger.con.sql("SELECT min(input_hash) FROM inputs").fetchall()[0][0]
        edit = "UPDATE inputs SET record = replace(record, '\"age\":', '\"age\":1') "
        ledger.con.execute(edit + "WHERE input_hash = ?", [victim])
        result = ledger.verify()
        assert (result.ok, result.first_bad_batch) == (False, 1)
        assert "(inputs)" in str(result.problem) and victim in str(result.problem)
        # the attacker recomputes the row hash: the content address still names the row
        ledger.con.execute(
            "UPDATE inputs SET row_hash = sha256(concat_ws('|', input_hash, record)) "
            "WHERE input_hash = ?",
            [victim],
        )
        result = ledger.verify()
        assert result.first_bad_batch == 1 and "content address" in str(result.problem)
        assert victim in str(result.problem)
        # …and the input_hash too: the batch digest no longer matches
        ledger.con.execute(
            "UPDATE inputs SET input_hash = sha256(record) WHERE input_hash = ?", [victim]
        )
        ledger.con.execute(
            "UPDATE inputs SET row_hash = sha256(concat_ws('|', input_hash, record)) "
            "WHERE row_hash <> sha256(concat_ws('|', input_hash, record))"
        )
        result = ledger.verify()
        assert result.first_bad_batch == 1 and "digest" in str(result.problem)


@pytest.mark.parametrize("bad", ["score", "input", "hash"])
def test_a_bad_row_anywhere_writes_neither_batch(tmp_path: Path, bad: str) -> None:
    frame = leads(200, 50).astype({"rev": float})
    if bad == "score":
        frame.loc[150, "score"] = 2.0
    elif bad == "input":
        frame.loc[150, "rev"] = math.inf
    else:
        frame["input_hash"] = None
        frame.loc[150, "input_hash"] = "0" * 64
    with Ledger(tmp_path / "l.duckdb") as ledger:
        with pytest.raises(LedgerIngestError) as error:
            ledger.ingest_predictions(frame, inputs=INPUTS)
        assert [b.row for b in error.value.bad_rows] == [151]
        if bad == "hash":
            computed = reference({k: frame[k].tolist()[150] for k in INPUTS})[0]
            assert computed in error.value.bad_rows[0].reason
        counts = ledger.con.sql(
            "SELECT (SELECT count(*) FROM inputs), (SELECT count(*) FROM predictions), "
            "(SELECT count(*) FROM batches)"
        ).fetchall()
        assert counts == [(0, 0, 0)]


def test_input_errors_name_the_column_and_the_limit(tmp_path: Path) -> None:
    frame = leads(3, 3)
    with Ledger(tmp_path / "l.duckdb") as ledger:
        with pytest.raises(AssayInputError, match=r"'agee' not in the batch; columns: .*age"):
            ledger.ingest_predictions(frame, inputs=["agee", "rev"])
        with pytest.raises(AssayInputError, match="no column matches"):
            ledger.ingest_predictions(frame, inputs="x_*")
        frame["region"] = ["x" * (MAX_RECORD_BYTES + 1), "EU", "US"]
        with pytest.raises(LedgerIngestError, match="at most 65,536 bytes"):
            ledger.ingest_predictions(frame, inputs=INPUTS)


def test_rows_without_inputs_keep_their_hash_and_coverage_counts_them(tmp_path: Path) -> None:
    frame = leads(4, 4)
    objects = [{k: r[k] for k in INPUTS} for r in frame.to_dict("records")]
    objects[1] = objects[3] = None  # a vendor's black box: no inputs, its own hash
    table = pa.Table.from_pandas(frame.drop(columns=INPUTS), preserve_index=False)
    table = table.append_column("inputs", pa.array(objects))
    table = table.append_column("input_hash", pa.array([None, "vendor-h", None, None]))
    with Ledger(tmp_path / "l.duckdb") as ledger:
        ledger.ingest_predictions(table)
        stored = ledger.con.sql("SELECT input_hash FROM predictions ORDER BY prediction_id")
        hashes = [r[0] for r in stored.fetchall()]
        assert hashes[1:] == ["vendor-h", reference(objects[2])[0], None]
        assert ledger.input_coverage() == {"model": (2, 4)}
        assert ledger.input_coverage(as_of="2020-01-01T00:00:00Z") == {}
        got = ledger.prediction_inputs(prediction_ids=["p2", "p3"])
        assert got["prediction_id"].to_pylist() == ["p2"]
        assert records_frame(got["record"]).to_pylist() == [objects[2]]


def test_rows_equal_as_records_are_one_record_recorded_with_the_earliest(
    tmp_path: Path,
) -> None:
    """0.0 and -0.0, NaN and null, decimals equal as doubles: different values, one record."""
    from decimal import Decimal

    x = [0.0, -0.0, math.nan, None, 2.0, 2.0]
    d = [Decimal("0.1"), Decimal("0.10000000000000000001"), None, None, Decimal(2), Decimal(2)]
    frame = (
        leads(6, 6)
        .drop(columns=INPUTS)
        .assign(scored_at=[f"2024-05-0{day}T00:00:00Z" for day in (3, 2, 1, 4, 6, 5)])
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.append_column("x", pa.array(x, pa.float64()))
    table = table.append_column("d", pa.array(d, pa.decimal128(38, 20)))
    want = [
        reference({"x": v, "d": None if w is None else float(w)}) for v, w in zip(x, d, strict=True)
    ]
    with Ledger(tmp_path / "l.duckdb") as ledger:
        receipt = ledger.ingest_predictions(table, inputs=["x", "d"], backfill=True)
        rows = ledger.con.sql("SELECT input_hash FROM predictions ORDER BY prediction_id")
        records = ledger.con.sql(
            "SELECT input_hash, record, strftime(recorded_at, '%d') FROM inputs ORDER BY 3"
        ).fetchall()
        assert [r[0] for r in rows.fetchall()] == [h for h, _ in want]
        assert ledger.verify().ok
    assert receipt.inputs_new == 3  # rows 1-2, 3-4 and 5-6
    assert records == [(want[2][0], want[2][1], "01"), (want[0][0], want[0][1], "02"),
                       (want[4][0], want[4][1], "05")]  # fmt: skip


def test_ndjson_inputs_must_be_flat_and_consistent() -> None:
    base = {"entity_id": "e", "scorer": "s", "score": 0.5, "scored_at": "2024-05-01T00:00:00Z",
            "horizon_days": 90, "target_event": "won"}  # fmt: skip
    for inputs, reason in (
        ([{"a": {"x": 1}}], "no objects or lists"),
        ([{"a": 1}, {"b": 1}], "send every input in every row"),
        ([{"a": 1}, {"a": "1"}], "one type per input"),
    ):
        body = "\n".join(json.dumps({**base, "inputs": i}) for i in inputs).encode()
        with pytest.raises(BatchRejected) as error:
            parse_ndjson(body, "predictions")
        assert reason in error.value.bad_rows[0].reason


@pytest.mark.integration
def test_postgres_store_keeps_inputs_and_chains_them(postgres: Any, tmp_path: Path) -> None:
    from assay.service.pgstore import PostgresStore

    store = PostgresStore(postgres.fresh_database())
    rows = [
        {"prediction_id": f"p{i}", "entity_id": f"e{i}", "scorer": "s", "score": 0.5,
         "scored_at": "2024-05-01T00:00:00Z", "horizon_days": 90, "target_event": "won",
         "seed": 3, "inputs": {"age": i % 2, "region": "EU"}}
        for i in range(6)
    ]  # fmt: skip
    body = "\n".join(json.dumps(r) for r in rows).encode()
    try:
        first = asyncio.run(store.ingest("acme", "predictions", parse_ndjson(body, "predictions")))
        again = asyncio.run(store.ingest("acme", "predictions", parse_ndjson(body, "predictions")))
        assert (first.inputs_new, first.inputs_batch_id, first.batch_id) == (2, 1, 2)
        assert again.noop

        def check(ledger: Ledger) -> tuple[bool, dict[str, tuple[int, int]], list[str]]:
            return (
                ledger.verify().ok,
                ledger.input_coverage(),
                ledger.prediction_inputs()["input_hash"].to_pylist(),
            )

        ok, coverage, hashes = asyncio.run(store.read("acme", check))
        assert ok and coverage == {"s": (6, 6)}
        assert hashes == [reference({"age": i % 2, "region": "EU"})[0] for i in range(6)]
    finally:
        store.close()


def test_cli_ingest_takes_inputs_by_name_or_pattern(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from assay.cli.main import app

    csv = tmp_path / "leads.csv"
    leads(20, 5).rename(columns={k: f"x_{k}" for k in INPUTS}).to_csv(csv, index=False)
    ledger = tmp_path / "l.duckdb"
    result = CliRunner().invoke(
        app, ["ingest", "predictions", str(csv), "--ledger", str(ledger), "--inputs", "x_*"]
    )
    assert result.exit_code == 0, result.output
    assert "5 new input records (batch 1)" in result.output
    result = CliRunner().invoke(
        app,
        ["ingest", "predictions", str(csv), "--ledger", str(ledger), "--inputs", "x_age,agee"],
    )
    assert result.exit_code != 0 and "'agee' not in the batch" in result.output
    with Ledger(ledger) as store:
        assert store.input_coverage() == {"model": (20, 20)}


def test_a_typed_copy_may_rest_on_records_stored_by_an_earlier_batch(tmp_path: Path) -> None:
    """A batch sending only the input_hash of records an earlier batch stored keeps its typed
    copy (the records are in the ledger by its ingest time); one naming a record the ledger
    does not hold keeps none. Verify re-derives the kept copy from the records either way."""
    import datetime as dt

    now = dt.datetime(2024, 12, 31, tzinfo=dt.UTC)

    def batch(ids: list[str], **extra: list[Any]) -> pa.Table:
        return pa.table({
            "prediction_id": ids, "entity_id": ids, "scorer": ["v"] * len(ids),
            "score": [0.5] * len(ids), "scored_at": ["2024-01-01T00:00:00Z"] * len(ids),
            "horizon_days": [30] * len(ids), "target_event": ["won"] * len(ids), **extra,
        })  # fmt: skip

    with Ledger(tmp_path / "l.duckdb") as ledger:
        ledger.ingest_predictions(batch(["a", "b"], x=[1, 2]), inputs=["x"], now=now)
        stored = dict(
            ledger.con.execute("SELECT prediction_id, input_hash FROM predictions").fetchall()
        )
        typed = records_frame(canonical_records(pa.table({"x": [2, 1]}))["record"].combine_chunks())
        later = now + dt.timedelta(days=1)
        kept = ledger.ingest_predictions(
            batch(["c", "d"], input_hash=[stored["b"], stored["a"]]), typed_inputs=typed, now=later
        )
        missing = ledger.ingest_predictions(
            batch(["e", "f"], input_hash=[stored["a"], "0" * 64]), typed_inputs=typed, now=later
        )
        copies = dict(ledger.con.execute("SELECT batch_id, frame_sha256 FROM batches").fetchall())
        assert copies[kept.batch_id] is not None and copies[missing.batch_id] is None
        assert ledger.verify().ok
