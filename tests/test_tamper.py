"""Tamper evidence against a hostile reviewer: ledger edits a plain chain check misses (the last
batch deleted, a full re-chain, row_hash and batch-metadata edits) and report edits (as_of, an
empty audits list, a future as-of, absurd settings). Each case names what it catches."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from tests.conftest import build_small_ledger
from typer.testing import CliRunner

import assay.audit.document
import assay.cli.ledger
import assay.cli.main
from assay.audit import settings
from assay.audit.scorer import AuditConfig
from assay.cli.main import app
from assay.ledger import Ledger
from assay.ledger.integrity import ChainHead, chain_hash, meta_columns, meta_sql
from assay.ledger.schema import GENESIS_HASH, KINDS, batch_item
from assay.stats.eprocess import StreamConfig
from assay.stats.tolerance import Tolerance

# plumbing: audits here default to coarse posterior grids (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("fast_posterior")

UTC = dt.UTC
DAY = [dt.datetime(2024, 3, d, tzinfo=UTC) for d in (1, 2, 3)]
AS_OF = "2024-05-01T00:00:00+00:00"


def _predictions(ids: range) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "prediction_id": [f"p{i}" for i in ids],
            "entity_id": [f"lead-{i}" for i in ids],
            "scorer": ["vendor"] * n,
            "score": [0.1 * (i % 9 + 1) for i in ids],
            "scored_at": ["2024-02-01T10:00:00Z"] * n,
            "horizon_days": [30] * n,
            "target_event": ["won"] * n,
        }
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """Three batches: predictions, outcomes, predictions (one day apart)."""
    store = Ledger(tmp_path / "l.duckdb")
    store.ingest_predictions(_predictions(range(4)), now=DAY[0])
    outcomes = pa.table(
        {"entity_id": ["lead-1", "lead-2"], "event": ["won"] * 2,
         "occurred_at": ["2024-02-05T00:00:00Z"] * 2},
    )  # fmt: skip
    store.ingest_outcomes(outcomes, now=DAY[1])
    store.ingest_predictions(_predictions(range(4, 7)), now=DAY[2])
    assert store.verify().ok
    yield store
    store.close()


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide consoles: each message on its own line, unwrapped (so "one line" is testable)."""
    for console in (assay.cli.main.console, assay.cli.ledger.console):
        monkeypatch.setattr(console, "_width", 2000)


def _cli(*args: str) -> tuple[int, str]:
    """Exit code and output of the command line."""
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _rechain(con: duckdb.DuckDBPyConnection) -> None:
    """What an attacker who read the source does after editing rows: recompute every row hash,
    batch digest, metadata hash and chain hash, in SQL."""
    for table, _, row_hash, _ in KINDS.values():
        con.execute(f"UPDATE {table} SET row_hash = {row_hash}")
    previous = GENESIS_HASH
    batches = con.execute("SELECT batch_id, kind FROM batches ORDER BY batch_id").fetchall()
    for batch_id, kind in batches:
        table, id_column, row_hash, _ = KINDS[kind]
        digest = (
            f"SELECT sha256(string_agg({batch_item(row_hash)} || chr(10), '' "
            f"ORDER BY {id_column})) FROM {table} WHERE batch_id = {batch_id}"
        )
        con.execute(f"UPDATE batches SET rows_sha256 = ({digest}) WHERE batch_id = {batch_id}")
        con.execute(
            f"UPDATE batches SET previous_hash = ?, meta_sha256 = {meta_sql(con)} "
            "WHERE batch_id = ?",
            [previous, batch_id],
        )
        con.execute(
            "UPDATE batches SET chain_hash = sha256(concat_ws('|', previous_hash, kind, "
            "rows_sha256, row_count, epoch_us(ingested_at), meta_sha256)) WHERE batch_id = ?",
            [batch_id],
        )
        previous = con.execute(
            "SELECT chain_hash FROM batches WHERE batch_id = ?", [batch_id]
        ).fetchall()[0][0]


# ---------------------------------------------------------------- the chain head
def test_the_head_round_trips_and_is_printed_by_status_and_verify(ledger: Ledger) -> None:
    head = ledger.chain_head()
    assert head.batches == 3 and len(head.chain_hash) == 64
    assert ChainHead.parse(str(head)) == head == ledger.verify().head
    ledger.close()
    path = str(ledger.path)
    code, shown = _cli("ledger", "status", "--ledger", path)
    assert code == 0 and f"chain head: {head} " in shown
    code, shown = _cli("ledger", "verify", "--ledger", path, "--expect", str(head))
    assert code == 0 and f"holds {head}; chain head {head}" in shown
    code, shown = _cli("ledger", "verify", "--ledger", path, "--expect", "3:abc")
    assert code == 1 and shown.count("\n") == 1 and "is not N:HASH" in shown


# ---------------------------------------------------------------- truncation and re-chain
def test_deleting_the_last_batch_is_caught_by_the_head_noted_before(ledger: Ledger) -> None:
    before = ledger.chain_head()
    ledger.con.execute("DELETE FROM predictions WHERE batch_id = 3")
    ledger.con.execute("DELETE FROM batches WHERE batch_id = 3")
    alone = ledger.verify()
    assert alone.ok and alone.head.batches == 2  # a shorter chain is a valid chain ...
    result = ledger.verify(expect=before)  # ... but not the history noted before
    assert not result.ok and result.first_bad_batch == 3
    assert f"the ledger holds 2 batches, but the expected head {before} is batch 3" in str(
        result.problem
    )
    ledger.close()
    code, shown = _cli("ledger", "verify", "--ledger", str(ledger.path), "--expect", str(before))
    assert code == 1 and shown.count("\n") == 1
    assert "TAMPERED: the ledger holds 2 batches" in shown and "were removed" in shown


def test_deleting_the_last_batch_record_but_not_its_rows_is_named(ledger: Ledger) -> None:
    ledger.con.execute("DELETE FROM batches WHERE batch_id = 3")
    result = ledger.verify()
    assert not result.ok and result.first_bad_batch == 3
    assert (
        result.problem == "batch 3: 3 predictions rows carry its number, but no batch 3 is recorded"
    )


def test_a_full_rechain_passes_alone_but_not_against_the_old_head(ledger: Ledger) -> None:
    before = ledger.chain_head()
    ledger.con.execute(
        "UPDATE predictions SET score = 0.99, probability = 0.99 WHERE prediction_id = 'p1'"
    )
    assert ledger.verify().first_bad_batch == 1
    _rechain(ledger.con)
    alone = ledger.verify()
    assert alone.ok, alone.problem  # the attacker's chain is consistent ...
    assert alone.head.batches == 3 and alone.head != before
    rewritten = ledger.verify(expect=before)  # ... and not the one noted before
    assert not rewritten.ok and rewritten.first_bad_batch == 3
    assert f"batch 3's chain hash is {alone.head.chain_hash}, not {before.chain_hash}" in str(
        rewritten.problem
    )
    ledger.close()
    path = str(ledger.path)
    assert _cli("ledger", "verify", "--ledger", path)[0] == 0
    code, shown = _cli("ledger", "verify", "--ledger", path, "--expect", str(before))
    assert code == 1 and "the history up to it was rewritten" in shown


# ---------------------------------------------------------------- stored columns
def test_an_edited_row_hash_names_its_batch_and_row(ledger: Ledger) -> None:
    ledger.con.execute("UPDATE outcomes SET row_hash = sha256('forged') WHERE entity_id = 'lead-2'")
    result = ledger.verify()
    outcome = ledger.con.execute(
        "SELECT outcome_id FROM outcomes WHERE entity_id = 'lead-2'"
    ).fetchall()[0][0]
    assert not result.ok and result.first_bad_batch == 2
    assert result.problem == (
        f"batch 2 (outcomes): outcome_id {outcome!r}: its stored row_hash does not match its "
        "content"
    )


def _edited(con: duckdb.DuckDBPyConnection, column: str) -> str:
    """SQL for a different value of ``column`` of batch 2 (an outcomes batch)."""
    kind = con.execute(
        "SELECT data_type FROM duckdb_columns() WHERE table_name = 'batches' AND column_name = ?",
        [column],
    ).fetchall()[0][0]
    if column == "kind":
        return "'predictions'"
    if kind == "BOOLEAN":
        return f"NOT coalesce({column}, false)"
    if kind.startswith("TIMESTAMP"):
        return f"{column} + INTERVAL 1 SECOND"
    if kind in ("BIGINT", "INTEGER"):
        return f"{column} + 10"
    return f"coalesce({column}, '') || 'x'"


#: What each batch column's edit is named as; every other column: its metadata hash.
NAMED_AS = {
    "batch_id": "batch 2 is missing",
    "kind": "2 outcomes rows carry its number",
    "row_count": "holds 2 rows; 12 were written",
    "rows_sha256": "no longer match the digest",
    "previous_hash": "its previous_hash is not the chain hash of the batch before",
    "chain_hash": "its chain_hash does not match its contents",
    "meta_sha256": "its metadata (",
}
with Ledger(":memory:") as _fresh:
    BATCH_COLUMNS = (*meta_columns(_fresh.con), "previous_hash", "chain_hash", "meta_sha256")


@pytest.mark.parametrize("column", BATCH_COLUMNS)
def test_every_batch_column_edit_is_named(ledger: Ledger, column: str) -> None:
    """Generic over the table: a column added to ``batches`` later is in this list too."""
    ledger.con.execute(f"UPDATE batches SET {column} = {_edited(ledger.con, column)} "
                       "WHERE batch_id = 2")  # fmt: skip
    result = ledger.verify()
    assert not result.ok and result.first_bad_batch == 2, result
    assert "batch 2" in str(result.problem)
    assert NAMED_AS.get(column, "its metadata (") in str(result.problem)


def test_legacy_batches_keep_verifying_and_new_ones_are_sealed(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with Ledger(path) as store:
        store.ingest_predictions(_predictions(range(3)), now=DAY[0])
    con = duckdb.connect(str(path))  # as a version-3 assay wrote it: no metadata hash
    con.execute(
        "ALTER TABLE batches DROP COLUMN backfill; ALTER TABLE batches DROP COLUMN meta_sha256; "
        "ALTER TABLE batches DROP COLUMN frame_sha256"
    )
    for table in ("derivations", "inputs", "models", "artefacts", "input_frames"):
        con.execute(f"DROP TABLE {table}")
    con.execute("UPDATE meta SET value = '2'")
    row = con.execute(
        "SELECT kind, rows_sha256, row_count, epoch_us(ingested_at) FROM batches"
    ).fetchall()[0]
    con.execute("UPDATE batches SET chain_hash = ?", [chain_hash(GENESIS_HASH, *row)])
    con.close()
    with Ledger(path) as store:  # migrates to the current version
        assert store.verify().ok
        store.ingest_predictions(_predictions(range(3, 5)), now=DAY[1])
        store.ingest_predictions(_predictions(range(5, 7)), now=DAY[2])
        sealed = store.con.execute("SELECT meta_sha256 IS NOT NULL FROM batches ORDER BY 1")
        assert [r[0] for r in sealed.fetchall()] == [False, True, True]
        assert store.verify().ok
        store.con.execute("UPDATE batches SET source_name = 'elsewhere' WHERE batch_id = 1")
        assert store.verify().ok  # documented: a legacy batch's metadata is not covered
        store.con.execute("UPDATE batches SET meta_sha256 = NULL WHERE batch_id = 3")
        result = store.verify()
        assert result.first_bad_batch == 3
        assert "lacks the metadata hash every batch since batch 2 carries" in str(result.problem)


# ---------------------------------------------------------------- reports
@pytest.fixture(scope="module")
def small_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tamper") / "small.duckdb"
    build_small_ledger(path).close()
    return path


@pytest.fixture
def report(small_ledger: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the small ledger and a JSON report made from it by the CLI."""
    path = tmp_path / "small.duckdb"
    shutil.copy(small_ledger, path)
    target = tmp_path / "report.json"
    code, shown = _cli("report", "--ledger", str(path), "--as-of", AS_OF, "--scorer", "beta",
                       "--json", str(target))  # fmt: skip
    assert code == 0, shown
    return path, target


def _verify(path: Path, target: Path) -> tuple[int, str]:
    return _cli("verify", str(target), "--ledger", str(path))


def test_a_report_records_the_head_and_verifies_against_it(report: tuple[Path, Path]) -> None:
    path, target = report
    with Ledger(path, read_only=True) as store:
        head = store.chain_head()
    assert json.loads(target.read_text())["ledger_head"] == str(head)
    code, shown = _verify(path, target)
    assert code == 0 and f"the ledger still holds its history (ledger head {head})" in shown


def _edit_as_of(document: dict) -> None:
    document["as_of"] = "2024-04-01T00:00:00+00:00"


def _empty_audits(document: dict) -> None:
    document["audits"] = []


def _extra_claim(document: dict) -> None:
    document["summary"] = "every scorer is calibrated"


def _edit_audit_as_of(document: dict) -> None:
    document["audits"][0]["reproducibility"]["as_of"] = "2024-04-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("edit", "first"),
    [
        (_edit_as_of, "as_of: recorded '2024-04-01T00:00:00+00:00', now '2024-05-01T00:00"),
        (_empty_audits, "audits: the report holds no audits"),
        (_extra_claim, "summary: recorded 'every scorer is calibrated', now None"),
        (_edit_audit_as_of, "as_of: recorded '2024-05-01T00:00:00+00:00', now '2024-04-01T"),
    ],
)  # fmt: skip
def test_an_edited_report_names_the_first_differing_field(report, edit, first) -> None:
    path, target = report
    document = json.loads(target.read_text())
    edit(document)
    target.write_text(json.dumps(document))
    code, shown = _verify(path, target)
    assert code == 1, shown
    lines = shown.splitlines()
    assert "numbers differ" in lines[0] and lines[1].strip().startswith(first), shown


def test_an_empty_report_without_ledger_names_audits(report: tuple[Path, Path]) -> None:
    _, target = report
    document = json.loads(target.read_text())
    document["audits"] = []
    target.write_text(json.dumps(document))
    code, shown = _cli("verify", str(target))
    assert code == 1 and shown.count("\n") == 1
    assert "error: audits: the report holds no audits, so it names no ledger" in shown


def test_a_report_as_of_the_future_is_neither_made_nor_verified(report: tuple[Path, Path]) -> None:
    path, target = report
    future = (dt.datetime.now(UTC) + dt.timedelta(days=30)).isoformat()
    code, shown = _cli("report", "--ledger", str(path), "--as-of", future, "--json",
                       str(target.with_name("future.json")))  # fmt: skip
    assert code == 1 and shown.count("\n") == 1 and "is later than now" in shown
    assert not target.with_name("future.json").exists()
    document = json.loads(target.read_text())
    document["as_of"] = document["audits"][0]["reproducibility"]["as_of"] = future
    target.write_text(json.dumps(document))
    code, shown = _verify(path, target)
    assert code == 1 and shown.count("\n") == 1
    assert "is later than now: a report as of a time after it is made" in shown


def test_a_report_as_of_after_a_later_batch_was_not_frozen(report: tuple[Path, Path]) -> None:
    """The report was as of 2024-05-01 but made before a batch ingested on 2024-04-30 (its
    as-of lay in the future when it was made): the next ingest changed it, so it is refused."""
    path, target = report
    with Ledger(path) as store:
        store.ingest_predictions(_predictions(range(3)), now=dt.datetime(2024, 4, 30, tzinfo=UTC))
    code, shown = _verify(path, target)
    assert code == 1 and shown.count("\n") == 1
    assert "but batch 4, ingested after it was made (its ledger head is batch 3)" in shown


def test_a_report_fails_once_its_ledger_lost_history(report: tuple[Path, Path]) -> None:
    path, target = report
    with duckdb.connect(str(path)) as con:
        con.execute(
            "DELETE FROM outcomes WHERE batch_id = 3; DELETE FROM batches WHERE batch_id = 3"
        )
    code, shown = _verify(path, target)
    assert code == 1 and shown.count("\n") == 1
    assert "the ledger no longer holds the history this report was computed from" in shown
    assert "the ledger holds 2 batches" in shown


CONFIG = "audits.0.reproducibility.config"


def _monitors(window: int) -> list[dict]:
    config = {f.name: f.default for f in dataclasses.fields(StreamConfig)}
    monitor = {"version": 2, "scorer": "beta", "model_version": None, "grace_days": None,
               "config": {**config, "window": window}}  # fmt: skip
    return [{"monitor": monitor}]


#: (field path, crafted value or a function of the report, what the refusal says)
ABSURD = [
    (f"{CONFIG}.n_bins", 10**9, "= 1000000000; it must be null or a whole number in [1, 1,000]"),
    (f"{CONFIG}.n_bins", 1e9, "n_bins = 1000000000.0; it must be null or a whole number"),
    (f"{CONFIG}.seed", -1, "seed = -1; it must be a whole number in [0,"),
    (f"{CONFIG}.probability", 2, "probability = 2; it must be a number strictly between 0 and 1"),
    (f"{CONFIG}.strategy", "x" * 500, "strategy = 'xxxxx"),
    (f"{CONFIG}.bins", [0, 1], "config must hold exactly"),
    (f"{CONFIG}.tolerance.ratio", "1.25", "ratio = '1.25'; it must be a finite number above 0"),
    ("audits.0.reproducibility.policy", "every", "policy = 'every'; it must be one of"),
    ("monitors", _monitors(10**12), "monitors[0].monitor.config.window = 1000000000000; it must"),
    ("audits", lambda d: d["audits"] * 1001, "audits must be a list of at most 1,000 items"),
    ("ledger_head", "3:zz", "ledger_head = '3:zz'; it must be null or N:HASH"),
]  # fmt: skip


def _set(document: dict, path: str, value: object) -> None:
    *parents, last = path.split(".")
    node: Any = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value(document) if callable(value) else value


@pytest.mark.parametrize(("path", "value", "refusal"), ABSURD)
def test_absurd_settings_are_refused_before_computing(report, monkeypatch, path, value, refusal):
    ledger_path, target = report
    document = json.loads(target.read_text())
    _set(document, path, value)
    target.write_text(json.dumps(document))

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("verification computed before checking the settings")

    monkeypatch.setattr(assay.audit.document, "build_report", never)
    code, shown = _verify(ledger_path, target)
    assert code == 1 and shown.count("\n") == 1, shown
    assert shown.startswith("error: report setting ") and refusal in shown, shown
    assert path.split(".")[-1] in shown
    assert "refused before computing anything" in shown


@pytest.mark.parametrize(
    ("spec", "kind"),
    [(settings.AUDIT_CONFIG, AuditConfig), (settings.TOLERANCE, Tolerance),
     (settings.STREAM_CONFIG, StreamConfig)],
)  # fmt: skip
def test_the_settings_checks_cover_every_field(spec: settings.Record, kind: type) -> None:
    assert set(spec.fields) == {f.name for f in dataclasses.fields(kind)}


# ---------------------------------------------------------------- typed input copies
def test_a_typed_copy_that_disagrees_with_its_records_fails_verify_naming_the_batch(
    tmp_path: Path,
) -> None:
    """The copy is checked by its content address, then re-derived from the records: an
    attacker who writes another copy under its own hash and recomputes every hash still fails."""
    pytest.importorskip("skops")
    from tests.model_fixtures import fitted_pipeline, lead_frame, skops_bytes

    from assay.ledger.inputs import read_typed_copy, typed_copy_bytes
    from assay.models.registry import register_model
    from assay.models.scoring import score_leads

    leads = lead_frame(200, 5).drop(columns="converted")
    leads.insert(0, "entity_id", [f"t-{i:03d}" for i in range(200)])
    with Ledger(tmp_path / "copy.duckdb") as store:
        register_model(store, "leads", "1", skops_bytes(fitted_pipeline(n=500)), now=DAY[0])
        score_leads(store, "leads@1", leads, defaults={"horizon_days": 90,
                    "target_event": "won"}, now=DAY[1])  # fmt: skip
        (batch, digest, data), = store.con.execute(
            "SELECT b.batch_id, b.frame_sha256, f.bytes FROM batches b JOIN input_frames f "
            "USING (frame_sha256)"
        ).fetchall()  # fmt: skip
        assert store.verify().ok
        copy = read_typed_copy(data)
        edited = copy.set_column(
            copy.column_names.index("visits"), "visits",
            pa.array([copy["visits"][0].as_py() + 1, *copy["visits"].to_pylist()[1:]]),
        )  # fmt: skip
        other = typed_copy_bytes(edited)
        # the bytes swapped under the old address
        store.con.execute("UPDATE input_frames SET bytes = ?", [other])
        result = store.verify()
        assert result.first_bad_batch == batch
        assert f"its typed input copy {digest} no longer hashes to its content address" in str(
            result.problem
        )
        # the other copy under its own address, the batch pointed at it, every hash recomputed
        fresh = hashlib.sha256(other).hexdigest()
        store.con.execute("UPDATE input_frames SET frame_sha256 = ?", [fresh])
        store.con.execute("UPDATE batches SET frame_sha256 = ? WHERE batch_id = ?", [fresh, batch])
        _rechain(store.con)
        result = store.verify()
        assert result.first_bad_batch == batch and f"batch {batch} (predictions)" in str(
            result.problem
        )
        assert "no longer matches its input records (re-derived from them)" in str(result.problem)
