"""In-engine labels and BinStats (assay.pushdown) against independent in-memory references."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import (
    AS_OF,
    assert_same_stats,
    build_small_ledger,
    make_lake,
    reference_labels,
    usable_reference,
)
from typer.testing import CliRunner

from assay import BinStats
from assay._validation import AssayInputError
from assay.cli.main import app
from assay.pushdown import (
    DIALECTS,
    binstats,
    equal_mass_edges,
    grouped_binstats,
    labelled,
    open_source,
    stats_from_rows,
)
from assay.pushdown import stats as remote_stats
from assay.pushdown.expressions import bin_sums_sql
from assay.stats.binning import quantile_edges, uniform_edges

# plumbing: audits here default to coarse posterior grids (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("fast_posterior")

GOLDEN_SQL = Path(__file__).parent / "golden" / "sql"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, pa.Table, Path]:
    predictions, outcomes = make_lake(4000, seed=3, emissions=2)
    root = tmp_path_factory.mktemp("lake")
    (root / "predictions").mkdir()
    (root / "outcomes").mkdir()
    half = predictions.num_rows // 2
    pq.write_table(predictions.slice(0, half), root / "predictions" / "part-0.parquet")
    pq.write_table(predictions.slice(half), root / "predictions" / "part-1.parquet")
    pq.write_table(outcomes, root / "outcomes" / "part-0.parquet")
    return predictions, outcomes, root


def _open(root: Path):  # type: ignore[no-untyped-def]
    return open_source(
        str(root / "predictions" / "*.parquet"), outcomes=str(root / "outcomes" / "*.parquet")
    )


# ---------------------------------------------------------------- the label rule
@pytest.mark.parametrize("policy", ["first", "last", "all"])
def test_engine_labels_equal_the_row_by_row_rule(lake, policy: str) -> None:  # type: ignore[no-untyped-def]
    predictions, outcomes, root = lake
    source = _open(root)
    got = labelled(source.predictions, source.outcomes, as_of=AS_OF, policy=policy).to_pyarrow()
    want = reference_labels(predictions, outcomes, AS_OF, policy)
    pairs = dict(
        zip(
            got["prediction_id"].to_pylist(),
            zip(got["label"].to_pylist(), got["matured"].to_pylist(), strict=True),
            strict=True,
        )
    )
    assert pairs == want
    assert {"positive", "negative", "pending"} <= {label for label, _ in want.values()}


def test_ledger_labels_equal_the_row_by_row_rule_on_the_ledger_scenario(tmp_path: Path) -> None:
    ledger = build_small_ledger(tmp_path / "ledger.duckdb")
    predictions = ledger.con.sql("SELECT * FROM predictions").to_arrow_table()
    outcomes = ledger.con.sql("SELECT * FROM outcomes").to_arrow_table()
    for as_of in (AS_OF, dt.datetime(2024, 2, 20, 13, 5, 7, 123456, tzinfo=dt.UTC)):
        table = ledger.labels(as_of=as_of, policy="first").table
        got = dict(
            zip(
                table["prediction_id"].to_pylist(),
                zip(table["label"].to_pylist(), table["matured"].to_pylist(), strict=True),
                strict=True,
            )
        )
        assert got == reference_labels(predictions, outcomes, as_of, "first")
    ledger.close()


def test_naive_cut_off_and_zoneless_columns_are_refused(lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    predictions, _, root = lake
    source = _open(root)
    with pytest.raises(AssayInputError, match="no time zone"):
        labelled(source.predictions, source.outcomes, as_of=dt.datetime(2024, 5, 1))
    naive = predictions.set_column(
        predictions.schema.get_field_index("scored_at"),
        "scored_at",
        predictions["scored_at"].cast(pa.timestamp("us")),
    )
    pq.write_table(naive, tmp_path / "naive.parquet")
    with pytest.raises(AssayInputError, match=r"predictions\.scored_at .* without a time zone"):
        open_source(str(tmp_path / "naive.parquet"), outcomes=str(root / "outcomes" / "*.parquet"))
    with pytest.raises(AssayInputError, match="outcomes' glob"):
        open_source(str(root / "predictions" / "*.parquet"))
    with pytest.raises(AssayInputError, match="lacks column"):
        labelled(source.predictions.drop("horizon_days"), source.outcomes, as_of=AS_OF)


# ---------------------------------------------------------------- BinStats in the engine
def test_engine_binstats_equal_numpy_on_fixed_edges(lake) -> None:  # type: ignore[no-untyped-def]
    predictions, outcomes, root = lake
    source = _open(root)
    y, p, _ = usable_reference(predictions, outcomes)
    for edges in (uniform_edges(100), uniform_edges(15), np.array([0.0, 0.29, 0.3, 0.5, 1.0])):
        got = binstats(source.predictions, outcomes=source.outcomes, as_of=AS_OF, edges=edges)
        assert_same_stats(got, BinStats.accumulate(y, p, edges))
    # 0.29 sits on an edge of the 0.01 grid and must open bin 29, not close bin 28
    grid = binstats(
        source.predictions, outcomes=source.outcomes, as_of=AS_OF, edges=uniform_edges(100)
    )
    assert grid.count[29] == int(np.sum(p == 0.29)) > 0


def test_groups_follow_cohorts_and_merge_to_the_total(lake) -> None:  # type: ignore[no-untyped-def]
    predictions, outcomes, root = lake
    source = _open(root)
    y, p, rows = usable_reference(predictions, outcomes)
    edges = uniform_edges(10)
    labels = labelled(source.predictions, source.outcomes, as_of=AS_OF)
    groups = grouped_binstats(labels, edges)
    months = (
        np.asarray(predictions["scored_at"].to_numpy()).astype("datetime64[M]").astype(str)[rows]
    )
    scorers = np.asarray(predictions["scorer"].to_pylist())[rows]
    versions = np.asarray(predictions["model_version"].to_pylist())[rows]
    assert len(groups) == len(set(zip(scorers, versions, months, strict=True)))
    for (scorer, version, cohort), stats in groups.items():
        mask = (scorers == scorer) & (versions == version) & (months == cohort)
        assert_same_stats(stats, BinStats.accumulate(y[mask], p[mask], edges))
    total = sum(groups.values(), start=stats_from_rows([], edges))
    assert_same_stats(total, BinStats.accumulate(y, p, edges))


def test_segment_from_a_column_or_the_segments_map(tmp_path: Path) -> None:
    ledger = build_small_ledger(tmp_path / "ledger.duckdb")
    ledger.con.execute(
        "UPDATE predictions SET segments = MAP {'region': CASE WHEN hash(entity_id) % 2 = 0 "
        "THEN 'north' ELSE 'south' END}"
    )
    ledger.close()
    source = open_source(f"duckdb://{tmp_path / 'ledger.duckdb'}?read_only=true")
    labels = labelled(source.predictions, source.outcomes, as_of=AS_OF, scorer="alpha")
    groups = grouped_binstats(labels, uniform_edges(5), segment="region")
    assert {key[3] for key in groups} == {"north", "south"}
    whole = binstats(
        source.predictions,
        outcomes=source.outcomes,
        as_of=AS_OF,
        edges=uniform_edges(5),
        scorer="alpha",
    )
    assert_same_stats(sum(groups.values(), start=stats_from_rows([], uniform_edges(5))), whole)


def test_invalid_probabilities_in_a_lake_are_reported_not_binned(lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    predictions, _, root = lake
    prob = predictions["probability"].to_numpy().copy()
    prob[:40] = 1.5
    prob[40:45] = np.nan
    bad = predictions.set_column(
        predictions.schema.get_field_index("probability"), "probability", pa.array(prob)
    )
    pq.write_table(bad, tmp_path / "bad.parquet")
    source = open_source(
        str(tmp_path / "bad.parquet"), outcomes=str(root / "outcomes" / "*.parquet")
    )
    with pytest.raises(AssayInputError, match=r"probability outside \[0, 1\] or NaN"):
        binstats(source.predictions, outcomes=source.outcomes, as_of=AS_OF, edges=uniform_edges(10))


# ---------------------------------------------------------------- equal-mass edges at scale
def test_exact_equal_mass_edges_equal_the_in_memory_rule(lake) -> None:  # type: ignore[no-untyped-def]
    predictions, outcomes, root = lake
    source = _open(root)
    _, p, _ = usable_reference(predictions, outcomes)
    labels = labelled(source.predictions, source.outcomes, as_of=AS_OF)
    for n_bins in (2, 7, 15):
        np.testing.assert_array_equal(equal_mass_edges(labels, n_bins), quantile_edges(p, n_bins))
    stats = binstats(source.predictions, outcomes=source.outcomes, as_of=AS_OF)
    assert stats.n_bins == len(quantile_edges(p, 15)) - 1  # the audit rule: n // 40 > 15


def test_sketch_edges_approximate_the_quantiles(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    predictions, outcomes = make_lake(3000, seed=5)
    rng = np.random.default_rng(1)
    continuous = rng.beta(2, 5, predictions.num_rows)  # every score distinct
    pq.write_table(
        predictions.set_column(4, "probability", pa.array(continuous)), tmp_path / "p.parquet"
    )
    pq.write_table(outcomes, tmp_path / "o.parquet")
    source = open_source(str(tmp_path / "p.parquet"), outcomes=str(tmp_path / "o.parquet"))
    labels = labelled(source.predictions, source.outcomes, as_of=AS_OF)
    exact = equal_mass_edges(labels, 10)
    monkeypatch.setattr(remote_stats, "EXACT_DISTINCT_LIMIT", 10)
    sketch = equal_mass_edges(labels, 10)
    assert len(sketch) == len(exact) == 11
    np.testing.assert_allclose(sketch, exact, atol=0.02)


# ---------------------------------------------------------------- SQL for other engines
@pytest.mark.parametrize("dialect", DIALECTS)
def test_compiled_sql_matches_the_golden_file(dialect: str) -> None:
    """Regenerate with ``python tests/fixtures/make_golden_sql.py`` after a deliberate change."""
    text = bin_sums_sql(dialect, as_of=AS_OF, edges=uniform_edges(10))
    assert text == (GOLDEN_SQL / f"{dialect}.sql").read_text()


def test_sql_run_elsewhere_feeds_back_as_binstats(tmp_path: Path) -> None:
    """The duckdb SQL run on the ledger's own tables, then `assay audit --sums`, gives the
    ledger's BinStats."""
    ledger = build_small_ledger(tmp_path / "ledger.duckdb")
    edges = uniform_edges(10)
    rows = ledger.con.sql(
        bin_sums_sql("duckdb", as_of=AS_OF, edges=edges, scorer="beta")
    ).to_arrow_table()
    evidence = ledger.labels(as_of=AS_OF, scorer="beta").table
    ledger.close()
    usable = evidence.filter(np.asarray(evidence["matured"]) & ~np.asarray(evidence["abstained"]))
    y = (np.asarray(usable["label"]) == "positive").astype(np.float64)
    want = BinStats.accumulate(y, usable["probability"].to_numpy(), edges)
    assert_same_stats(stats_from_rows(rows, edges), want)
    result = tmp_path / "rows.json"
    result.write_text(json.dumps(rows.to_pylist()))
    out = tmp_path / "out.json"
    cli = CliRunner().invoke(
        app,
        ["audit", "--sums", str(result), "--edges", ",".join(map(str, edges)), "--json", str(out)],
    )
    assert cli.exit_code == 0, cli.output
    assert BinStats.from_dict(json.loads(out.read_text())["binstats"]) == stats_from_rows(
        rows, edges
    )


@pytest.mark.integration
@pytest.mark.parametrize("policy", ["first", "last"])
def test_the_postgresql_sql_runs_there_and_gives_the_ledgers_binstats(
    postgres, tmp_path: Path, policy: str
) -> None:  # type: ignore[no-untyped-def]
    """The printed PostgreSQL SQL, run by PostgreSQL on the ledger's rows (in the service's
    tables, :func:`assay.ledger.schema.postgres_ddl`), gives the BinStats of the DuckDB SQL
    run on the ledger itself."""
    import psycopg

    from assay.ledger.schema import PREDICTION_COLUMNS, postgres_ddl

    ledger = build_small_ledger(tmp_path / "ledger.duckdb")
    ledger.ingest_predictions(  # an abstained first emission, and a later one that scored
        pa.table({
            "prediction_id": ["x-1", "x-2"], "entity_id": ["x", "x"], "scorer": ["beta"] * 2,
            "score": ["", "0.9"], "scored_at": ["2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"],
            "horizon_days": ["21", "21"], "target_event": ["won", "won"],
        }),
        now=AS_OF,
    )  # fmt: skip
    edges = uniform_edges(10)
    want = ledger.con.sql(bin_sums_sql("duckdb", as_of=AS_OF, edges=edges, policy=policy))
    columns = [c for c in PREDICTION_COLUMNS if c != "segments"]  # none carry segments here
    tables = {
        "predictions": ledger.con.sql(f"SELECT {', '.join(columns)} FROM predictions").fetchall(),
        "outcomes": ledger.con.sql(
            "SELECT outcome_id, entity_id, event, occurred_at, recorded_at FROM outcomes"
        ).fetchall(),
    }
    wanted = stats_from_rows(want.to_arrow_table(), edges)
    ledger.close()
    names = {"predictions": columns, "outcomes": ["outcome_id", "entity_id", "event",
                                                  "occurred_at", "recorded_at"]}  # fmt: skip
    with psycopg.connect(postgres.fresh_database(), options="-c timezone=UTC") as con:
        con.execute(postgres_ddl())
        for table, rows in tables.items():
            with con.cursor().copy(
                f"COPY {table} (workspace, batch_id, row_hash, {', '.join(names[table])}) "
                "FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(("w", 1, "-", *row))
        cursor = con.execute(bin_sums_sql("postgres", as_of=AS_OF, edges=edges, policy=policy))
        keys = [d.name for d in cursor.description or ()]
        found = [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]
    assert_same_stats(stats_from_rows(found, edges), wanted)


# ---------------------------------------------------------------- the command line
def test_cli_audits_a_parquet_glob_and_the_ledger_in_place(lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    predictions, outcomes, root = lake
    out = tmp_path / "lake.json"
    result = CliRunner().invoke(
        app,
        [
            "audit", "--source", str(root / "predictions" / "*.parquet"), "--outcomes",
            str(root / "outcomes" / "*.parquet"), "--as-of", "2024-05-01T00:00:00Z",
            "--scorer", "alpha", "--json", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "scorer alpha" in result.output
    document = json.loads(out.read_text())
    y, p, rows = usable_reference(predictions, outcomes)
    alpha = np.asarray(predictions["scorer"].to_pylist())[rows] == "alpha"
    reference = reference_labels(predictions, outcomes, AS_OF, "first")
    scorer_of = dict(
        zip(
            predictions["prediction_id"].to_pylist(), predictions["scorer"].to_pylist(), strict=True
        )
    )
    states = [
        label if matured else "pending"
        for pid, (label, matured) in reference.items()
        if scorer_of[pid] == "alpha"
    ]
    assert document["audits"][0]["labels"] == {
        s: states.count(s) for s in ("positive", "negative", "pending")
    }
    got = BinStats.from_dict(document["audits"][0]["binstats"])
    assert_same_stats(got, BinStats.accumulate(y[alpha], p[alpha], quantile_edges(p[alpha], 15)))

    ledger = build_small_ledger(tmp_path / "ledger.duckdb")
    ledger.close()
    report = tmp_path / "ledger.json"
    runs = [
        ["audit", "--source", f"duckdb://{tmp_path / 'ledger.duckdb'}?read_only=true", "--as-of",
         "2024-05-01T00:00:00Z", "--json", str(report)],
        ["report", "--ledger", str(tmp_path / "ledger.duckdb"), "--as-of", "2024-05-01T00:00:00Z",
         "--json", str(tmp_path / "report.json")],
    ]  # fmt: skip
    for args in runs:
        run = CliRunner().invoke(app, args)
        assert run.exit_code == 0, run.output
    in_place = json.loads(report.read_text())["audits"]
    ingested = json.loads((tmp_path / "report.json").read_text())["audits"]
    for remote, local in zip(in_place, ingested, strict=True):
        assert remote["scorer"] == local["scorer"]
        assert remote["calibration"]["ece_plugin"] == pytest.approx(
            local["calibration"]["ece_plugin"], rel=1e-12
        )
        assert remote["calibration"]["verdict"] == local["calibration"]["verdict"]


def test_cli_says_what_is_missing(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "audit",
            "--source",
            str(tmp_path / "none-*.parquet"),
            "--outcomes",
            str(tmp_path / "o.parquet"),
        ],
    )
    assert result.exit_code != 0 and "cannot open" in result.output
    result = runner.invoke(app, ["sql", "--dialect", "oracle"])
    assert result.exit_code != 0 and "dialect" in result.output
