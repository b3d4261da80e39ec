"""The evidence ledger: a hand-built scenario, refused batches, crashes and tampering."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from assay import AssayInputError
from assay.cli.main import app
from assay.ledger import Ledger, LedgerIngestError
from assay.ledger.integrity import meta_sql

UTC = dt.UTC
NOW = dt.datetime(2024, 12, 31, tzinfo=UTC)


def day(month: int, d: int) -> str:
    return f"2024-{month:02d}-{d:02d}T00:00:00Z"


# Scenario (30-day horizon, target "won"):
#   a: scored Jan 1 at 0.8, won Jan 10 (recorded Jan 11)          -> positive from Jan 11
#   b: scored Jan 1 at 0.3, won Feb 15 (outside [Jan 1, Jan 31))   -> negative from Jan 31
#   c: scored Jan 1 at 0.6, won Jan 20 but recorded only Mar 1     -> negative Feb 1, positive Mar 2
#   d: scored Jan 1 (0.2), Jan 15 (0.4), Feb 1 (0.9); won Feb 10 (recorded Feb 10)
#   e: scored Feb 20 at 0.5, no outcome                             -> pending until Mar 21
#   z: an outcome for an entity nobody scored                       -> unmatched
PREDICTIONS = pa.table(
    {
        "prediction_id": ["a1", "b1", "c1", "d1", "d2", "d3", "e1"],
        "entity_id": ["a", "b", "c", "d", "d", "d", "e"],
        "scorer": ["vendor"] * 7,
        "model_version": ["v1", "v1", "v1", "v1", "v1", "v2", "v2"],
        "score": [0.8, 0.3, 0.6, 0.2, 0.4, 0.9, 0.5],
        "scored_at": [
            day(1, 1),
            day(1, 1),
            day(1, 1),
            day(1, 1),
            day(1, 15),
            day(2, 1),
            day(2, 20),
        ],
        "recorded_at": [
            day(1, 1),
            day(1, 1),
            day(1, 1),
            day(1, 1),
            day(1, 15),
            day(2, 1),
            day(2, 20),
        ],
        "horizon_days": [30] * 7,
        "target_event": ["won"] * 7,
    }
)
OUTCOMES = pa.table(
    {
        "entity_id": ["a", "b", "c", "d", "z"],
        "event": ["won"] * 5,
        "occurred_at": [day(1, 10), day(2, 15), day(1, 20), day(2, 10), day(1, 5)],
        "recorded_at": [day(1, 11), day(2, 15), day(3, 1), day(2, 10), day(1, 5)],
    }
)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    store = Ledger(tmp_path / "ledger.duckdb")
    store.ingest_predictions(PREDICTIONS, now=NOW)
    store.ingest_outcomes(OUTCOMES, now=NOW)
    yield store
    store.close()


def labels_by_id(store: Ledger, as_of: str, policy: str = "all") -> dict[str, str]:
    table = store.labels(as_of=as_of, policy=policy).table
    return dict(zip(table["prediction_id"].to_pylist(), table["label"].to_pylist(), strict=True))


def test_labels_at_three_dates(ledger):
    assert labels_by_id(ledger, "2024-01-12T00:00:00Z") == {
        "a1": "positive",
        "b1": "pending",
        "c1": "pending",
        "d1": "pending",
    }  # fmt: skip  (d2 is scored on Jan 15: not in the ledger yet)
    assert labels_by_id(ledger, "2024-02-12T00:00:00Z") == {
        "a1": "positive",
        "b1": "negative",  # Feb 15 win is outside the window and not yet recorded anyway
        "c1": "negative",  # the Jan 20 win is recorded only on Mar 1
        "d1": "negative",  # window [Jan 1, Jan 31) closed without a win
        "d2": "positive",  # window [Jan 15, Feb 14) holds the Feb 10 win
        "d3": "positive",
    }  # fmt: skip
    assert labels_by_id(ledger, "2024-03-05T00:00:00Z") == {
        "a1": "positive", "b1": "negative", "c1": "positive", "d1": "negative",
        "d2": "positive", "d3": "positive", "e1": "pending",
    }  # fmt: skip


def test_matured_marks_closed_windows(ledger):
    table = ledger.labels(as_of="2024-02-12T00:00:00Z", policy="all").table
    matured = dict(
        zip(table["prediction_id"].to_pylist(), table["matured"].to_pylist(), strict=True)
    )
    # d3 (scored Feb 1, 30-day window) is already positive but its window is still open
    assert matured == {
        "a1": True, "b1": True, "c1": True, "d1": True, "d2": False, "d3": False,
    }  # fmt: skip


def test_policies_pick_one_emission_per_entity(ledger):
    first = labels_by_id(ledger, "2024-03-05T00:00:00Z", policy="first")
    last = labels_by_id(ledger, "2024-03-05T00:00:00Z", policy="last")
    assert {k for k in first if k.startswith("d")} == {"d1"}
    assert {k for k in last if k.startswith("d")} == {"d3"}
    # "last" means last *before T*: on Jan 20 the Feb 1 emission does not exist yet
    assert {k for k in labels_by_id(ledger, "2024-01-20T00:00:00Z", "last") if k[0] == "d"} == {
        "d2"
    }


def test_counts_and_filters(ledger):
    result = ledger.labels(as_of="2024-03-05T00:00:00Z", policy="all")
    assert (result.counts.positive, result.counts.negative, result.counts.pending) == (4, 2, 1)
    assert result.counts.unmatched_outcomes == 1
    v2 = ledger.labels(as_of="2024-03-05T00:00:00Z", model_version="v2", policy="all")
    assert v2.table["prediction_id"].to_pylist() == ["d3", "e1"]


def test_rerun_as_of_a_date_is_identical_after_more_data_arrives(ledger):
    before = ledger.labels(as_of="2024-02-12T00:00:00Z", policy="all").table
    late = pa.table(
        {
            "entity_id": ["b"], "event": ["won"], "occurred_at": [day(1, 25)],
            "recorded_at": [day(6, 1)],
        }
    )  # fmt: skip
    ledger.ingest_outcomes(late, now=NOW)
    assert ledger.labels(as_of="2024-02-12T00:00:00Z", policy="all").table.equals(before)
    assert labels_by_id(ledger, "2024-06-02T00:00:00Z")["b1"] == "positive"


def test_naive_as_of_is_refused(ledger):
    with pytest.raises(AssayInputError, match="has no time zone"):
        ledger.labels(as_of=dt.datetime(2024, 3, 1))


def test_identical_reingest_is_a_noop_and_changed_rows_are_frozen(ledger):
    receipt = ledger.ingest_predictions(PREDICTIONS, now=NOW)
    assert receipt.noop and receipt.batch_id is None
    changed = PREDICTIONS.set_column(4, "score", pa.array([0.81, 0.3, 0.6, 0.2, 0.4, 0.9, 0.5]))
    with pytest.raises(
        LedgerIngestError, match="row 1, column 'prediction_id', value 'a1': frozen"
    ):
        ledger.ingest_predictions(changed, now=NOW)


def row_counts(store: Ledger) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        store.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        for t in ("predictions", "outcomes", "batches")
    )


def with_column(name: str, values: list) -> pa.Table:
    table = PREDICTIONS.set_column(0, "prediction_id", pa.array([f"n{i}" for i in range(7)]))
    index = table.column_names.index(name)
    return table.set_column(index, name, pa.array(values))


BAD_BATCHES = [
    (PREDICTIONS.drop(["scorer"]), AssayInputError, "required column 'scorer' is missing"),
    (with_column("scored_at", [day(3, 1)] * 6 + ["yesterday"]), LedgerIngestError,
     r"row 7, column 'scored_at', value 'yesterday': not an ISO 8601 timestamp"),
    (with_column("scored_at", [day(3, 1)] * 6 + ["2024-03-01T00:00:00"]), LedgerIngestError,
     r"row 7, column 'scored_at'.*has no time zone"),
    (with_column("score", [0.1, 0.2, 1.3, 0.1, 0.1, 0.1, 0.1]), LedgerIngestError,
     r"row 3, column 'score', value '1.3': probabilities must lie in \[0, 1\]"),
    (with_column("entity_id", ["a", "", "c", "d", "d", "d", "e"]), LedgerIngestError,
     r"row 2, column 'entity_id', value '': empty"),
    (with_column("prediction_id", ["n0", "a1", "n2", "n3", "n4", "n5", "n6"]), LedgerIngestError,
     r"row 2, column 'prediction_id', value 'a1': frozen"),
    (with_column("recorded_at", [day(3, 1)] * 6 + ["2030-01-01T00:00:00Z"]), LedgerIngestError,
     r"row 7, column 'recorded_at'.*later than the ingest time"),
    (with_column("horizon_days", [30, 30, 30, 30, 30, 30, -5]), LedgerIngestError,
     r"row 7, column 'horizon_days'.*whole number of days from 1 to 3,650"),
]  # fmt: skip


@pytest.mark.parametrize(("batch", "error", "pattern"), BAD_BATCHES)
def test_every_bad_row_kind_rejects_the_whole_batch(ledger, batch, error, pattern):
    before = row_counts(ledger)
    with pytest.raises(error, match=pattern):
        ledger.ingest_predictions(batch, now=NOW)
    assert row_counts(ledger) == before
    assert ledger.verify().ok


def test_all_bad_rows_are_listed(ledger):
    batch = with_column("score", ["x"] * 7)
    with pytest.raises(LedgerIngestError) as info:
        ledger.ingest_predictions(batch, now=NOW)
    assert [b.row for b in info.value.bad_rows] == list(range(1, 8))


def test_abstentions_are_stored_not_rejected(tmp_path):
    with Ledger(tmp_path / "l.duckdb") as store:
        batch = with_column(
            "score", ["0.4", "not yet", "", "Insufficient data", "0.1", "0.2", "0.3"]
        )
        receipt = store.ingest_predictions(batch, now=NOW)
        assert receipt.abstentions == 3
        table = store.labels(as_of=NOW, policy="all").table
        abstained = dict(
            zip(table["prediction_id"].to_pylist(), table["abstained"].to_pylist(), strict=True)
        )
        assert [k for k, v in abstained.items() if v] == ["n1", "n2", "n3"]
        assert store.labels(as_of=NOW, policy="all").counts.abstained == 3


def test_assume_timezone_and_percent_scores(tmp_path):
    frame = pd.DataFrame(
        {
            "id": ["x", "y"], "score": [85, 12], "when": ["2024-03-01 09:00:00", "2024-03-02"],
        }
    )  # fmt: skip
    with Ledger(tmp_path / "l.duckdb") as store:
        store.ingest_predictions(
            frame,
            mapping={"id": "entity_id", "when": "scored_at"},
            defaults={
                "scorer": "crm",
                "score_kind": "percent",
                "horizon_days": 90,
                "target_event": "won",
            },
            assume_timezone="Europe/Berlin",
            now=NOW,
        )
        table = store.labels(as_of=NOW, policy="all").table
        assert table["probability"].to_pylist() == [0.85, 0.12]
        assert table["scored_at"][0].as_py() == dt.datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("kind", ["csv", "parquet", "pandas", "polars"])
def test_inputs_of_every_kind_give_the_same_rows(tmp_path, kind):
    frame = PREDICTIONS.to_pandas()
    data: object
    if kind == "csv":
        data = tmp_path / "p.csv"
        frame.to_csv(data, index=False)
    elif kind == "parquet":
        data = tmp_path / "p.parquet"
        pq.write_table(PREDICTIONS, data)
    else:
        data = frame if kind == "pandas" else pl.from_pandas(frame)
    with Ledger(tmp_path / f"{kind}.duckdb") as store:
        store.ingest_predictions(data, defaults={"source": "same"}, now=NOW)
        hashes = store.con.execute(
            "SELECT row_hash FROM predictions ORDER BY prediction_id"
        ).fetchall()
    with Ledger(tmp_path / "reference.duckdb") as reference:
        reference.ingest_predictions(PREDICTIONS, defaults={"source": "same"}, now=NOW)
        expected = reference.con.execute(
            "SELECT row_hash FROM predictions ORDER BY prediction_id"
        ).fetchall()
    assert hashes == expected


def test_presets(tmp_path):
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "hs_object_id,hs_predictivecontactscore_v2,lastmodifieddate,hs_lifecyclestage_customer_date\n"
        "1,80,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z\n"
        "2,10,2024-01-01T00:00:00Z,\n"
    )
    leads = tmp_path / "leads.csv"
    leads.write_text("Id,IsConverted,ConvertedDate\n00Q1,true,2024-02-01T00:00:00Z\n00Q2,false,\n")
    with Ledger(tmp_path / "l.duckdb") as store:
        store.ingest_predictions(
            contacts, preset="hubspot", defaults={"scored_at": "2024-01-01T00:00:00Z"}, now=NOW
        )
        outcomes = store.ingest_outcomes(contacts, preset="hubspot", now=NOW)
        assert outcomes.rows == 1
        sf = store.ingest_outcomes(leads, preset="salesforce", now=NOW)
        assert sf.rows == 1
        table = store.labels(as_of=NOW, policy="all").table
        labels = dict(zip(table["entity_id"].to_pylist(), table["label"].to_pylist(), strict=True))
        assert labels == {"1": "positive", "2": "negative"}


def test_tampering_is_detected_and_named(ledger):
    assert ledger.verify().ok
    ledger.con.execute("UPDATE predictions SET score = 0.99 WHERE prediction_id = 'c1'")
    result = ledger.verify()
    assert not result.ok and result.first_bad_batch == 1
    assert "batch 1 (predictions)" in result.problem


def test_a_batch_sealed_at_ingest_verifies_whatever_its_metadata_holds(tmp_path):
    # An append assembles the metadata hash in Python from the columns' SQL text; verify
    # recomputes it with meta_sql: the two agree on non-ASCII and emoji names (length in
    # characters, not bytes) and on NULL columns (left out).
    leads = tmp_path / "Lëads—Q3 👍🏽 e\u0301.csv"
    leads.write_text(
        "prediction_id,entity_id,scorer,score,scored_at\n"
        "a,e1,vendor,0.2,2024-01-01T00:00:00Z\nb,e2,vendor,0.7,2024-01-01T00:00:00Z\n"
    )
    with Ledger(tmp_path / "l.duckdb") as store:
        store.ingest_predictions(leads, defaults={"horizon_days": 30, "target_event": "won"})
        store.ingest_predictions(
            pa.table({"prediction_id": ["c"], "entity_id": ["e3"], "scorer": ["vendor"],
                      "score": [0.5], "scored_at": ["2024-01-02T00:00:00Z"],
                      "horizon_days": [30], "target_event": ["won"]}),
            backfill=True,
        )  # fmt: skip
        sealed = store.con.execute(
            f"SELECT meta_sha256 = {meta_sql(store.con)}, source_name FROM batches "
            "ORDER BY batch_id"
        ).fetchall()
        assert sealed[0] == (True, str(leads)) and sealed[1][0] is True
        assert store.verify().ok


def test_deleting_a_row_or_rewriting_a_batch_is_detected(ledger):
    ledger.con.execute("DELETE FROM outcomes WHERE entity_id = 'z'")
    assert ledger.verify().first_bad_batch == 2
    ledger.con.execute("UPDATE batches SET row_count = 4 WHERE batch_id = 2")
    assert ledger.verify().first_bad_batch == 2


def test_cli_ingest_status_verify(tmp_path):
    runner = CliRunner()
    csv = tmp_path / "p.csv"
    PREDICTIONS.to_pandas().to_csv(csv, index=False)
    db = str(tmp_path / "cli.duckdb")
    result = runner.invoke(app, ["ingest", "predictions", str(csv), "--ledger", db])
    assert result.exit_code == 0, result.output
    assert "7 new predictions rows" in result.output
    again = runner.invoke(app, ["ingest", "predictions", str(csv), "--ledger", db])
    assert "no-op" in again.output
    status = runner.invoke(app, ["ledger", "status", "--ledger", db])
    assert "vendor" in status.output and status.exit_code == 0
    assert runner.invoke(app, ["ledger", "verify", "--ledger", db]).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "entity_id,scorer,score,scored_at,horizon_days,target_event\n"
        "q,v,2,2024-01-01 10:00,30,won\n"
    )
    refused = runner.invoke(app, ["ingest", "predictions", str(bad), "--ledger", db])
    assert refused.exit_code == 1
    errors = (tmp_path / "bad.csv.errors.csv").read_text()
    assert "probabilities must lie in [0, 1]" in errors and "no time zone" in errors


@pytest.mark.integration
def test_sigkill_during_ingest_leaves_all_or_nothing(tmp_path):
    n = 2_000_000
    rng = np.random.default_rng(0)
    big = pa.table(
        {
            "prediction_id": pa.array([f"k{i}" for i in range(n)]),
            "entity_id": pa.array([f"e{i}" for i in range(n)]),
            "scorer": pa.array(["bulk"] * n),
            "score": rng.random(n),
            "scored_at": pa.array(
                np.full(n, np.datetime64("2024-01-01T00:00:00", "us")), pa.timestamp("us", tz="UTC")
            ),
            "horizon_days": pa.array(np.full(n, 30, dtype=np.int32)),
            "target_event": pa.array(["won"] * n),
        }
    )
    source = tmp_path / "big.parquet"
    pq.write_table(big, source)
    db = tmp_path / "kill.duckdb"
    with Ledger(db) as store:
        store.ingest_predictions(PREDICTIONS, now=NOW)
    script = textwrap.dedent(
        f"""
        from assay.ledger import Ledger
        store = Ledger({str(db)!r})
        print("ready", flush=True)
        store.ingest_predictions({str(source)!r})
        print("done", flush=True)
        """
    )
    outcomes = set()
    for delay in (0.5, 1.5, 3.0):
        process = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        with Ledger(db) as store:
            count = store.con.execute("SELECT count(*) FROM predictions").fetchall()[0][0]
            assert count in (7, 7 + n), count
            assert store.verify().ok
            outcomes.add(count)
            if count == 7 + n:
                break
    assert 7 in outcomes or 7 + n in outcomes


def test_schema_version_is_recorded_and_older_ledgers_are_migrated(tmp_path):
    import duckdb

    from assay.ledger.schema import MIGRATIONS, SCHEMA_VERSION

    with Ledger(tmp_path / "v.duckdb") as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    with Ledger(tmp_path / "v.duckdb") as store:  # reopening migrates nothing
        assert store.schema_version == SCHEMA_VERSION
    old = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(old))
    con.execute(MIGRATIONS[0])
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.close()
    with Ledger(old, read_only=True) as store:  # reading never migrates
        assert store.schema_version == 1
    with Ledger(old) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.monitor_state("nothing") is None
        store.save_monitor_state("k", "{}")
        assert store.monitor_state("k") == "{}"


def test_a_version_2_ledger_with_data_migrates_and_still_verifies(tmp_path):
    import duckdb

    from assay.ledger.integrity import chain_hash
    from assay.ledger.schema import GENESIS_HASH, MIGRATIONS

    path = tmp_path / "v2.duckdb"
    with Ledger(path) as store:
        store.ingest_predictions(PREDICTIONS, now=NOW)
        store.ingest_outcomes(OUTCOMES, now=NOW)
        before = store.labels(as_of="2024-03-05T00:00:00Z", policy="all").table
    con = duckdb.connect(str(path))  # take it back to version 2, as an older assay wrote it
    for table in ("derivations", "inputs", "models", "artefacts", "input_frames"):
        con.execute(f"DROP TABLE {table}")
    con.execute("UPDATE meta SET value = '2'")
    for column in ("backfill", "meta_sha256", "frame_sha256"):  # the version-4 and 6 columns
        con.execute(f"ALTER TABLE batches DROP COLUMN {column}")
    previous = GENESIS_HASH  # and the chain as version 2 wrote it (no metadata hash)
    for batch_id, *fields in con.execute(
        "SELECT batch_id, kind, rows_sha256, row_count, epoch_us(ingested_at) FROM batches "
        "ORDER BY batch_id"
    ).fetchall():
        chain = chain_hash(previous, *fields)
        con.execute(
            "UPDATE batches SET previous_hash = ?, chain_hash = ? WHERE batch_id = ?",
            [previous, chain, batch_id],
        )
        previous = chain
    con.close()
    with Ledger(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.verify().ok
        assert store.labels(as_of="2024-03-05T00:00:00Z", policy="all").table.equals(before)


def test_a_version_4_ledger_reads_read_only_as_the_current_schema_untouched(tmp_path):
    import hashlib

    import duckdb

    path = tmp_path / "v4.duckdb"
    with Ledger(path) as store:
        store.ingest_predictions(PREDICTIONS, now=NOW)
        before = store.labels(as_of="2024-03-05T00:00:00Z", policy="all").table
    con = duckdb.connect(str(path))  # as assay wrote it before inputs and models (version 4)
    for table in ("inputs", "models", "artefacts", "input_frames"):
        con.execute(f"DROP TABLE {table}")
    con.execute("ALTER TABLE batches DROP COLUMN frame_sha256")
    con.execute("UPDATE meta SET value = '4'")
    con.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with Ledger(path, read_only=True) as store:
        assert store.schema_version == 4  # read-only: never migrated
        assert store.verify().ok
        assert store.prediction_inputs().num_rows == 0
        assert store.input_coverage() == {"vendor": (0, 7)}
        assert store.labels(as_of="2024-03-05T00:00:00Z", policy="all").table.equals(before)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_default_path_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_LEDGER", str(tmp_path / "env.duckdb"))
    with Ledger() as store:
        assert store.path == tmp_path / "env.duckdb"
    assert os.path.exists(tmp_path / "env.duckdb")


def test_cli_reports_a_missing_ledger_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from assay.cli.main import app

    missing = tmp_path / "nowhere.duckdb"
    for command in (["ledger", "status"], ["ledger", "verify"]):
        result = CliRunner().invoke(app, [*command, "--ledger", str(missing)])
        assert result.exit_code == 1
        assert "no ledger at" in result.output and "Traceback" not in result.output
        assert not missing.exists()


# ---------------------------------------------------------------------- one schema declaration
def _same_type(stored: object, declared: object) -> bool:
    """Ibis types equal up to a timestamp's precision (DuckDB reports microseconds)."""
    import ibis.expr.datatypes as dt_types

    if isinstance(stored, dt_types.Timestamp) and isinstance(declared, dt_types.Timestamp):
        return (stored.timezone, stored.nullable) == (declared.timezone, declared.nullable)
    return stored == declared


def test_the_ledger_tables_the_label_rule_and_the_allow_list_share_one_declaration(tmp_path):
    """DuckDB's tables as Ibis reads them back (its own type mapping) hold the declared columns
    in order with the declared nullability; the label rule's Ibis schemas are those tables
    without the chain's bookkeeping; a service client may send exactly the ingest columns but
    ``recorded_at``, plus the segments object."""
    import ibis

    from assay.ledger.columns import INPUT
    from assay.ledger.rules import LEDGER_OUTCOMES, LEDGER_PREDICTIONS
    from assay.ledger.schema import TABLES, client_fields
    from assay.service.batches import FIELDS

    Ledger(tmp_path / "schema.duckdb").close()
    con = ibis.duckdb.connect(str(tmp_path / "schema.duckdb"))
    for table in TABLES:
        stored = con.table(table.name).schema()
        assert stored.names == tuple(c.name for c in table.columns)
        assert [stored[c.name].nullable for c in table.columns] == [
            c.nullable for c in table.columns
        ]
    for name, rule in (("predictions", LEDGER_PREDICTIONS), ("outcomes", LEDGER_OUTCOMES)):
        stored = con.table(name).schema()
        assert rule.names == tuple(n for n in stored.names if n not in ("batch_id", "row_hash"))
        assert all(_same_type(stored[n], rule[n]) for n in rule.names), (stored, rule)
        assert FIELDS[name] == client_fields(name)
        assert set(FIELDS[name]) - {"segments"} == {c.name for c in INPUT[name]} - {"recorded_at"}
        assert ("segments" in FIELDS[name]) == (name == "predictions")
    con.disconnect()


#: The DuckDB type each PostgreSQL type of the service's store stands for.
_PG_TYPES = {
    "text": "VARCHAR", "double precision": "DOUBLE", "boolean": "BOOLEAN", "integer": "INTEGER",
    "bigint": "BIGINT", "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "jsonb": "MAP(VARCHAR, VARCHAR)",
}  # fmt: skip


@pytest.mark.integration
def test_the_postgresql_store_keeps_the_ledger_tables_per_workspace(postgres, tmp_path):
    """The service's PostgreSQL tables are the ledger's shared tables, column for column (type
    and nullability), with the workspace first in every row and key."""
    import psycopg

    from assay.service.pgstore import PostgresStore

    dsn = postgres.fresh_database()
    PostgresStore(dsn).close()
    with Ledger(tmp_path / "pg.duckdb") as store:
        duck = store.con.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE table_name IN ('predictions', 'outcomes', 'batches') "
            "ORDER BY table_name, column_index"
        ).fetchall()
    with psycopg.connect(dsn) as con:
        found = con.execute(
            "SELECT table_name, column_name, data_type, is_nullable = 'YES' "
            "FROM information_schema.columns WHERE table_name IN "
            "('predictions', 'outcomes', 'batches') ORDER BY table_name, ordinal_position"
        ).fetchall()
        keys = con.execute(
            "SELECT t.relname, array_agg(a.attname ORDER BY k.ord) FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid "
            "CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
            "WHERE i.indisprimary AND t.relname IN ('predictions', 'outcomes', 'batches') "
            "GROUP BY t.relname"
        ).fetchall()
    workspace = {(t, "workspace", "VARCHAR", False) for t in ("predictions", "outcomes", "batches")}
    pg = [(t, c, _PG_TYPES[kind], null) for t, c, kind, null in found]
    assert [row for row in pg if row not in workspace] == [tuple(row) for row in duck]
    assert sorted(row[:2] for row in pg if row in workspace) == [
        ("batches", "workspace"), ("outcomes", "workspace"), ("predictions", "workspace"),
    ]  # fmt: skip
    assert dict(keys) == {
        "predictions": ["workspace", "prediction_id"],
        "outcomes": ["workspace", "outcome_id"],
        "batches": ["workspace", "batch_id"],
    }


def test_labels_read_only_the_columns_asked_for(ledger):
    full = ledger.labels(as_of=day(3, 5), policy="all")
    few = ledger.labels(as_of=day(3, 5), policy="all", columns=["probability"])
    assert few.table.column_names == ["probability", "label", "matured"]
    assert few.counts == full.counts
    assert few.table.equals(full.table.select(["probability", "label", "matured"]))
    judged = ledger.judged_labels(as_of=day(3, 5), scorer="vendor", columns=["scored_at"])
    assert judged.table.column_names == ["scored_at", "label", "matured"]
    assert judged.counts == ledger.judged_labels(as_of=day(3, 5), scorer="vendor").counts
    with pytest.raises(AssayInputError, match="no prediction column probabilty"):
        ledger.labels(as_of=day(3, 5), columns=["probabilty"])


def test_one_memory_limit_for_the_ledger_and_a_lake(ledger, tmp_path, monkeypatch):
    """ASSAY_MEMORY_LIMIT caps the ledger's DuckDB and the one reading a Parquet lake alike;
    unset, both use the one default."""
    import duckdb

    from assay.ledger.session import DEFAULT_MEMORY_LIMIT
    from assay.pushdown.sources import open_source

    for table, name in (("predictions", "p"), ("outcomes", "o")):
        ledger.con.execute(f"COPY {table} TO '{tmp_path / name}.parquet' (FORMAT parquet)")

    def limits() -> tuple[str, str]:
        with Ledger(tmp_path / "limit.duckdb") as store:
            ledger_limit = store.con.execute("SELECT current_setting('memory_limit')").fetchall()
        source = open_source(str(tmp_path / "p.parquet"), outcomes=str(tmp_path / "o.parquet"))
        lake = source.predictions.get_backend().raw_sql("SELECT current_setting('memory_limit')")
        return ledger_limit[0][0], lake.fetchall()[0][0]

    def shown(limit: str) -> str:
        with duckdb.connect() as con:
            con.execute(f"SET memory_limit = '{limit}'")
            return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])

    monkeypatch.delenv("ASSAY_MEMORY_LIMIT", raising=False)
    assert limits() == (shown(DEFAULT_MEMORY_LIMIT),) * 2
    monkeypatch.setenv("ASSAY_MEMORY_LIMIT", "300MB")
    assert limits() == (shown("300MB"),) * 2 != (shown(DEFAULT_MEMORY_LIMIT),) * 2
