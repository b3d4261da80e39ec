"""Values as written: what a CSV, a Parquet file or a frame says is what the ledger stores.

Every case here failed before the reader read cells as text and typed them by the declared
schema (issue 21 "Values rewritten on the way in", issue 17 "Every input mistake gets one
clear sentence").
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay import AssayInputError
from assay.ledger import Ledger, LedgerIngestError
from assay.ledger.columns import MAX_HORIZON_DAYS, OUTCOME_INPUT, PREDICTION_INPUT
from assay.ledger.csvtext import MAX_COLUMNS, CsvShapeError, read_csv_text

if TYPE_CHECKING:
    from pathlib import Path

NOW = dt.datetime(2024, 12, 31, tzinfo=dt.UTC)
HEADER = "entity_id,scorer,score,scored_at,horizon_days,target_event"


def csv(tmp_path: Path, text: str, name: str = "p.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def stored(ledger: Ledger, column: str) -> list[object]:
    query = f"SELECT {column} FROM predictions ORDER BY entity_id"
    return [r[0] for r in ledger.con.execute(query).fetchall()]


@pytest.fixture
def ledger(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Ledger(tmp_path / "l.duckdb") as store:
        yield store


def test_ids_are_kept_exactly_as_written(tmp_path, ledger):
    """0042 stays 0042 (was 42), 18-digit ids stay distinct (were one float), NA stays NA."""
    path = csv(
        tmp_path,
        f"{HEADER}\n"
        "0042,v,0.5,2024-01-01T00:00:00Z,30,won\n"
        "123456789012345678,v,0.5,2024-01-01T00:00:00Z,30,won\n"
        "123456789012345679,v,0.5,2024-01-01T00:00:00Z,30,won\n"
        "NA,v,0.5,2024-01-01T00:00:00Z,30,won\n",
    )
    receipt = ledger.ingest_predictions(path, now=NOW)
    assert receipt.rows_new == 4
    assert stored(ledger, "entity_id") == [
        "0042", "123456789012345678", "123456789012345679", "NA",
    ]  # fmt: skip
    outcomes = csv(
        tmp_path, "entity_id,event,occurred_at\n0042,won,2024-01-05T00:00:00Z\n", "o.csv"
    )
    ledger.ingest_outcomes(outcomes, now=NOW)
    labels = ledger.labels(as_of=NOW).table
    positive = dict(zip(labels["entity_id"].to_pylist(), labels["label"].to_pylist(), strict=True))
    assert positive["0042"] == "positive"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("score", "NaN", "not a number"),
        ("score", "inf", "not a number"),
        ("score", "(0.5+0j)", "not a number"),
        ("score", "1e999", "too large to be finite"),
        ("horizon_days", "2147483648", f"from 1 to {MAX_HORIZON_DAYS:,}"),
        ("horizon_days", "0", f"from 1 to {MAX_HORIZON_DAYS:,}"),
        ("horizon_days", "30.5", "not a whole number of days"),
        ("seed", "1.5", "not a whole-number seed"),
        ("seed", "9223372036854775808", "outside the 64-bit range"),
    ],
)
def test_out_of_range_text_is_refused_with_row_and_column(tmp_path, ledger, column, value, message):
    row = {"score": "0.5", "horizon_days": "30", "seed": "7"} | {column: value}
    path = csv(
        tmp_path,
        f"{HEADER},seed\nq,v,{row['score']},2024-01-01T00:00:00Z,{row['horizon_days']},won,"
        f"{row['seed']}\n",
    )
    with pytest.raises(LedgerIngestError, match=rf"row 1, column '{column}'.*{message}"):
        ledger.ingest_predictions(path, now=NOW)
    assert ledger.con.execute("SELECT count(*) FROM batches").fetchone() == (0,)


def test_a_64_bit_seed_is_stored_exactly(tmp_path, ledger):
    path = csv(tmp_path, f"{HEADER},seed\nq,v,0.5,2024-01-01T00:00:00Z,30,won,9007199254740993\n")
    ledger.ingest_predictions(path, now=NOW)
    assert stored(ledger, "seed") == [9007199254740993]  # 2^53 + 1: a float would round it


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_parquet_nan_and_inf_scores_are_refused_not_abstentions(tmp_path, ledger, bad):
    """A NaN in a float column was stored as "unscored"; it is neither a score nor an
    abstention (an empty cell is)."""
    path = tmp_path / "p.parquet"
    pq.write_table(
        pa.table(
            {
                "entity_id": ["a", "b"], "scorer": ["v", "v"], "score": [0.5, bad],
                "scored_at": ["2024-01-01T00:00:00Z"] * 2, "horizon_days": [30, 30],
                "target_event": ["won", "won"],
            }
        ),
        path,
    )  # fmt: skip
    with pytest.raises(LedgerIngestError, match=r"row 2, column 'score'.*NaN and infinity"):
        ledger.ingest_predictions(path, now=NOW)


def test_float_id_columns_are_refused(ledger):
    frame = pd.DataFrame(
        {
            "entity_id": [1e18, 1e18 + 1], "scorer": ["v", "v"], "score": [0.5, 0.4],
            "scored_at": ["2024-01-01T00:00:00Z"] * 2, "horizon_days": [30, 30],
            "target_event": ["won", "won"],
        }
    )  # fmt: skip
    with pytest.raises(AssayInputError, match="'entity_id' holds floating-point numbers"):
        ledger.ingest_predictions(frame, now=NOW)


def test_complex_scores_from_a_frame_are_refused(ledger):
    frame = pd.DataFrame(
        {
            "entity_id": ["a"], "scorer": ["v"], "score": [complex(0.5, 1)],
            "scored_at": ["2024-01-01T00:00:00Z"], "horizon_days": [30], "target_event": ["won"],
        }
    )  # fmt: skip
    with pytest.raises((LedgerIngestError, AssayInputError)):
        ledger.ingest_predictions(frame, now=NOW)
    assert ledger.con.execute("SELECT count(*) FROM predictions").fetchone() == (0,)


def test_semicolon_csv_with_decimal_commas_is_read_and_said(tmp_path, ledger):
    path = csv(
        tmp_path,
        "entity_id;scorer;score;scored_at;horizon_days;target_event\n"
        "a;v;0,42;2024-01-01T00:00:00Z;30;won\n",
    )
    receipt = ledger.ingest_predictions(path, now=NOW)
    assert stored(ledger, "probability") == [0.42]
    assert any("semicolon-separated" in note and "0,42" in note for note in receipt.notes)


def test_a_decimal_comma_in_a_comma_file_says_what_to_do(tmp_path, ledger):
    path = csv(tmp_path, f'{HEADER}\na,v,"0,42",2024-01-01T00:00:00Z,30,won\n')
    with pytest.raises(LedgerIngestError, match="decimal comma in a comma-separated file"):
        ledger.ingest_predictions(path, now=NOW)


def test_percent_scores_are_summarised_with_the_flag(tmp_path, ledger):
    rows = "".join(f"e{i},v,{10 + i % 80},2024-01-01T00:00:00Z,30,won\n" for i in range(198))
    rows += "x,v,0.5,2024-01-01T00:00:00Z,30,won\ny,v,0.7,2024-01-01T00:00:00Z,30,won\n"
    with pytest.raises(LedgerIngestError) as refused:
        ledger.ingest_predictions(csv(tmp_path, HEADER + "\n" + rows), now=NOW)
    first_lines = str(refused.value).splitlines()[:2]
    assert "198 of 200 scores are above 1" in first_lines[1]
    assert "--score-kind percent" in first_lines[1]


def test_a_date_without_time_is_utc_midnight_and_said(tmp_path, ledger):
    receipt = ledger.ingest_predictions(
        csv(tmp_path, f"{HEADER}\na,v,0.5,2024-03-10,30,won\n"), now=NOW
    )
    assert stored(ledger, "scored_at") == [dt.datetime(2024, 3, 10, tzinfo=dt.UTC)]
    assert any("dates without a time; read as midnight UTC" in n for n in receipt.notes)


def test_a_date_format_reads_european_dates_and_names_itself_when_missing(tmp_path, ledger):
    path = csv(tmp_path, f"{HEADER}\na,v,0.5,05.03.2024 14:22,30,won\n")
    with pytest.raises(LedgerIngestError, match=r"--date-format '%d\.%m\.%Y %H:%M'"):
        ledger.ingest_predictions(path, now=NOW)
    ledger.ingest_predictions(
        path, date_format="%d.%m.%Y %H:%M", assume_timezone="Europe/Berlin", now=NOW
    )
    assert stored(ledger, "scored_at") == [dt.datetime(2024, 3, 5, 13, 22, tzinfo=dt.UTC)]


def test_the_same_rows_from_another_path_are_a_no_op(tmp_path, ledger):
    """The file path was hashed into every row: a daily re-export under a new name was
    refused row by row as 'different content'."""
    text = f"{HEADER}\na,v,0.5,2024-01-01T00:00:00Z,30,won\nb,v,0.2,2024-01-01T00:00:00Z,30,won\n"
    first = ledger.ingest_predictions(csv(tmp_path, text, "export-monday.csv"), now=NOW)
    (tmp_path / "other").mkdir()
    again = ledger.ingest_predictions(csv(tmp_path / "other", text, "export-tuesday.csv"), now=NOW)
    assert first.rows_new == 2 and again.noop
    source = ledger.con.execute("SELECT source_name FROM batches").fetchall()
    assert source == [(str(tmp_path / "export-monday.csv"),)]  # the path is batch metadata


def test_a_changed_row_names_the_fields_that_differ(tmp_path, ledger):
    text = f"{HEADER}\na,v,0.5,2024-01-01T00:00:00Z,30,won\n"
    ledger.ingest_predictions(csv(tmp_path, text), now=NOW)
    changed = text.replace("0.5,2024-01-01T00:00:00Z,30", "0.6,2024-01-01T00:00:00Z,45")
    with pytest.raises(LedgerIngestError) as refused:
        ledger.ingest_predictions(csv(tmp_path, changed, "q.csv"), now=NOW)
    assert "score: 0.5 → 0.6" in str(refused.value)
    assert "horizon_days: 30 → 45" in str(refused.value)
    segmented = csv(tmp_path, HEADER + ",industry\na,v,0.5,2024-01-01T00:00:00Z,30,won,retail\n")
    with pytest.raises(LedgerIngestError, match="segments: empty → industry=retail"):
        ledger.ingest_predictions(segmented, segments=["industry"], now=NOW)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"id,id\n1,2\n", "column 'id' appears twice"),
        (b"a,b\n1,\xff\n", r"line 2 is not UTF-8 \(byte 0xff\)"),
        (b"a,b\n1,2\n3,4,5\n", "line 3 has 3 fields; the header has 2"),
        (b"a,,b\n1,2,3\n", "column 2 of the header has no name"),
        (("x," * MAX_COLUMNS + "x\n").encode(), f"most {MAX_COLUMNS:,}"),
    ],
)
def test_a_csv_that_cannot_be_a_table_is_one_sentence(data, message):
    with pytest.raises(CsvShapeError, match=message) as refused:
        read_csv_text(data)
    assert "\n" not in str(refused.value)


def test_a_120000_column_header_is_refused_before_the_body_is_read():
    header = ",".join(f"c{i}" for i in range(120_000)).encode()
    with pytest.raises(CsvShapeError, match=f"at most {MAX_COLUMNS:,} columns"):
        read_csv_text(header + b"\n" + b"1," * 119_999 + b"1\n")


def test_the_declared_schema_names_every_column_the_ledger_validates():
    """The one declaration covers the columns the service accepts and the ledger stores."""
    from assay.ledger.schema import OUTCOME_COLUMNS, PREDICTION_COLUMNS

    derived = {"probability", "abstained", "segments", "recorded_at"}
    assert {c.name for c in PREDICTION_INPUT} | derived >= set(PREDICTION_COLUMNS)
    assert {c.name for c in OUTCOME_INPUT} >= set(OUTCOME_COLUMNS)


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=12
).filter(lambda s: s.strip() == s and s.strip())


@pytest.mark.slow  # long: 60 generated ledgers
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ids=st.lists(_TEXT, min_size=1, max_size=8, unique=True),
    scores=st.lists(
        st.one_of(
            st.floats(0, 1).map(repr), st.sampled_from(["0042", "1e-3", "NaN", "-1", "x", "1,5"])
        ),
        min_size=8, max_size=8,
    ),
)  # fmt: skip
def test_a_batch_round_trips_byte_exactly_or_is_refused_whole(tmp_path_factory, ids, scores):
    """Property: every id comes back byte-exact through ingest → labels, every score as the
    number written — or the batch is refused and nothing is written."""
    import csv as csvlib

    folder = tmp_path_factory.mktemp("prop")
    path = folder / "p.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csvlib.writer(handle)
        writer.writerow(HEADER.split(","))
        for entity, score in zip(ids, scores, strict=False):
            writer.writerow([entity, "v", score, "2024-01-01T00:00:00Z", "30", "won"])
    with Ledger(folder / "l.duckdb") as store:
        try:
            store.ingest_predictions(path, now=NOW)
        except LedgerIngestError:
            assert store.con.execute("SELECT count(*) FROM predictions").fetchone() == (0,)
            return
        table = store.labels(as_of=NOW, policy="all").table
        got = dict(zip(table["entity_id"].to_pylist(), table["score"].to_pylist(), strict=True))
    assert set(got) == set(ids[: len(scores)])
    for entity, score in zip(ids, scores, strict=False):
        assert got[entity] == pytest.approx(float(score), rel=0, abs=0)
    assert np.isfinite(list(got.values())).all()


def test_rows_no_label_can_use_are_counted_with_an_example(tmp_path, ledger):
    """Never a silent zero: each kind of unusable row is counted, with its first example."""
    ledger.ingest_predictions(
        csv(
            tmp_path,
            f"{HEADER}\n"
            "a,v,0.5,2024-03-01T00:00:00Z,30,won\n"
            "b,v,0.5,2024-03-01T00:00:00Z,30,won\n"
            "c,v,0.5,2024-03-01T00:00:00Z,3000,won\n"
            "d,v,0.5,2204-03-01T00:00:00Z,30,won\n",
        ),
        now=NOW,
    )
    ledger.ingest_outcomes(
        csv(
            tmp_path,
            "entity_id,event,occurred_at\n"
            "a,won,2024-02-01T00:00:00Z\n"  # before a's prediction
            "zz,won,2024-03-05T00:00:00Z\n"  # nobody scored zz
            "b,Won,2024-03-05T00:00:00Z\n",  # an event name no prediction targets
            "o.csv",
        ),
        now=NOW,
    )
    found = {w.kind: w for w in ledger.evidence_warnings(as_of=NOW)}
    assert {k: w.count for k, w in found.items()} == {
        "before_prediction": 1, "unmatched": 1, "unknown_event": 1, "future_scored": 1,
        "long_window": 1,
    }  # fmt: skip
    assert found["before_prediction"].example == (
        "entity a: won at 2024-02-01 00:00, first scored 2024-03-01 00:00"
    )
    assert found["unmatched"].example == "entity zz (won)"
    assert found["unknown_event"].example == "Won; target events: won"
    assert found["future_scored"].example == "entity d scored at 2204-03-01 00:00"
    assert found["long_window"].example.startswith("entity c: horizon_days 3000")
