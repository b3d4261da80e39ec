"""Every CLI command, fed malformed input: one clear sentence, exit code 1 or 2, no traceback,
nothing written (issue 17 "Every input mistake gets one clear sentence", issue 21 "No traceback
reaches a user")."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import build_small_ledger
from typer.testing import CliRunner

from assay.cli.main import app

# plumbing: audits here default to coarse posterior grids (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("fast_posterior")

AS_OF = "2024-05-01T00:00:00Z"
PREDICTION_HEADER = "entity_id,scorer,score,scored_at,horizon_days,target_event\n"

#: Input files, written fresh for each case.
FILES: dict[str, bytes] = {
    "empty.csv": b"",
    "header_only.csv": PREDICTION_HEADER.encode(),
    "not_utf8.csv": PREDICTION_HEADER.encode() + b"a,v,0.5,2024-01-01T00:00:00Z,30,w\xe9n\n",
    "duplicate_columns.csv": b"entity_id,entity_id,score\n1,2,0.5\n",
    "ragged.csv": PREDICTION_HEADER.encode() + b"a,v,0.5,2024-01-01T00:00:00Z,30,won,extra\n",
    "wide.csv": (",".join(f"c{i}" for i in range(5000)) + "\n").encode(),
    "missing_column.csv": b"entity_id,score\na,0.5\n",
    "semicolon_missing.csv": b"entity_id;score\na;0,5\n",
    "not_json.json": b"{not json",
    "not_a_report.json": b'{"hello": "world"}',
    "not_a_calibrator.json": b'{"method": "nope"}',
    "not_a_ledger.duckdb": b"entity_id,score\na,0.5\n",
}

# (command line with {placeholders}, words the first sentence must contain)
CASES: list[tuple[str, str]] = [
    ("ingest predictions {empty.csv} --ledger {new}", "is empty"),
    ("ingest predictions {header_only.csv} --ledger {new}", "has no rows"),
    ("ingest predictions {not_utf8.csv} --ledger {new}", "line 2 is not UTF-8"),
    ("ingest predictions {duplicate_columns.csv} --ledger {new}", "appears twice"),
    ("ingest predictions {ragged.csv} --ledger {new}", "line 2 has 7 fields"),
    ("ingest predictions {wide.csv} --ledger {new}", "at most 2,000"),
    ("ingest predictions {missing_column.csv} --ledger {new}", "required column 'scorer'"),
    ("ingest predictions {semicolon_missing.csv} --ledger {new}", "required column 'scorer'"),
    ("ingest predictions {missing_column.csv} --preset nope --ledger {new}", "unknown preset"),
    ("ingest predictions {missing_column.csv} --map oops --ledger {new}", "NAME=VALUE"),
    ("ingest outcomes {empty.csv} --ledger {new}", "is empty"),
    ("ingest outcomes {not_utf8.csv} --ledger {new}", "not UTF-8"),
    ("ingest outcomes {missing_column.csv} --ledger {new}", "required column"),
    ("ingest predictions {missing_column.csv} --ledger {not_a_ledger.duckdb}", "not a ledger"),
    ("ingest apply-calibrator {not_json.json} --scorer alpha --ledger {ledger}", "calibrator"),
    (
        "ingest apply-calibrator {not_a_calibrator.json} --scorer alpha --ledger {ledger}",
        "calibrator",
    ),
    ("ledger status --ledger {new}", "no ledger at"),
    ("ledger verify --ledger {new}", "no ledger at"),
    ("ledger status --ledger {not_a_ledger.duckdb}", "not a ledger"),
    ("report --ledger {new}", "no ledger at"),
    ("report --ledger {ledger} --as-of yesterday", "not an ISO 8601 timestamp"),
    ("report --ledger {ledger} --as-of 2024-05-01T00:00", "has no time zone"),
    ("report --ledger {ledger} --scorer alpah --as-of " + AS_OF, "did you mean 'alpha'"),
    ("report --ledger {ledger} --as-of " + AS_OF + " --tolerance ratio=abc", "tolerance"),
    ("report --ledger {ledger} --as-of " + AS_OF + " --segment-by nope", "segment attribute"),
    (
        "threshold --ledger {ledger} --scorer alpah --target-precision 0.5 --as-of " + AS_OF,
        "did you mean",
    ),
    ("segments --ledger {ledger} --scorer alpha --by nope --as-of " + AS_OF, "nope"),
    ("compare --ledger {ledger} --scorers alpha,alpah --as-of " + AS_OF, "alpah"),
    ("recalibrate --ledger {ledger} --scorer alpah --out {dir}/c.json --as-of " + AS_OF, "alpah"),
    ("monitor --ledger {new}", "no ledger at"),
    ("verify {not_json.json} --ledger {ledger}", "JSON"),
    ("verify {not_a_report.json} --ledger {ledger}", "report"),
    ("audit --source {dir}/nothing/*.parquet --outcomes {dir}/none/*.parquet", "no files found"),
    ("audit --sums {not_json.json} --edges 0,0.5,1", "JSON"),
    ("sql --dialect nope", "nope"),
]


def _expand(template: str, folder: Path) -> list[str]:
    names = {name.replace(".", "_"): str(folder / name) for name in FILES}
    words = []
    for word in template.split():
        if word.startswith("{") and word.endswith("}"):
            key = word[1:-1]
            word = {"new": str(folder / "new.duckdb"), "ledger": str(folder / "l.duckdb"),
                    "dir": str(folder)}.get(key) or names[key.replace(".", "_")]  # fmt: skip
        elif "{dir}" in word:
            word = word.replace("{dir}", str(folder))
        words.append(word)
    return words


@pytest.fixture(scope="module")
def ledger_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "l.duckdb"
    build_small_ledger(path).close()
    return path


@pytest.mark.parametrize(("template", "words"), CASES, ids=[c[0] for c in CASES])
def test_malformed_input_is_one_sentence_and_writes_nothing(
    tmp_path: Path, ledger_file: Path, template: str, words: str
) -> None:
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "l.duckdb").write_bytes(ledger_file.read_bytes())
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    result = CliRunner().invoke(app, _expand(template, tmp_path))
    output = " ".join(result.output.split())
    assert result.exit_code in (1, 2), output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert words.lower() in output.lower(), output
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert after == before, f"written: {set(after) ^ set(before)}"
    assert not os.path.exists(tmp_path / "new.duckdb")


def _assay(args: list[str], *, memory_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    """``assay ARGS`` in a child process, optionally under an address-space ceiling."""

    def limit() -> None:
        if memory_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    command = [sys.executable, "-c", "from assay.cli.main import app; app()", *args]
    return subprocess.run(command, capture_output=True, text=True, preexec_fn=limit, check=False)


@pytest.mark.integration
def test_a_million_column_file_is_refused_within_a_memory_ceiling(tmp_path: Path) -> None:
    """A ~10 MB file with a million columns took 7.7 GB; the header is now refused first."""
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n" + "1," * 999_999 + "1\n")
    assert wide.stat().st_size > 9_000_000
    done = _assay(
        ["ingest", "predictions", str(wide), "--ledger", str(tmp_path / "l.duckdb")],
        memory_bytes=1_500_000_000,  # the interpreter, NumPy, Arrow and DuckDB fit in this
    )
    assert done.returncode == 1, done.stderr
    assert "at most 2,000 columns" in " ".join(done.stdout.split())
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "l.duckdb").exists()


@pytest.mark.integration
def test_a_second_writer_gets_one_sentence(tmp_path: Path) -> None:
    """The ledger file is locked by one writing process; another one is told so, not traced."""
    from assay.ledger import Ledger

    csv = tmp_path / "p.csv"
    csv.write_text(PREDICTION_HEADER + "a,v,0.5,2024-01-01T00:00:00Z,30,won\n")
    with Ledger(tmp_path / "l.duckdb"):
        done = _assay(["ingest", "predictions", str(csv), "--ledger", str(tmp_path / "l.duckdb")])
    output = " ".join(done.stdout.split())
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert "cannot open the ledger" in output and "another assay" in output
