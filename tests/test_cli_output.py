"""What the command line prints when its output is not a terminal (a pipe, a file, a CI log).

Tables print whole (Rich would cut them to 80 columns), a verdict word is never repeated by
the reason beside it, and ``assay --version`` answers.
"""

from __future__ import annotations

import importlib.metadata
import io
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from tests.conftest import AS_OF, build_small_ledger
from typer.testing import CliRunner

import assay
from assay.audit.report import Report, build_report
from assay.cli.ledger import UNBOUNDED, OutputConsole
from assay.cli.main import app
from assay.ledger import Ledger
from assay.report.terminal import HEADING_WIDTH, print_segments
from assay.stats.segments import segment_rates

# plumbing: audits here default to coarse posterior grids (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("fast_posterior")

AS_OF_TEXT = AS_OF.isoformat()
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
#: Every verdict word a command prints beside its reason.
VERDICTS = (
    "no evidence of miscalibration",
    "miscalibrated",
    "calibrated",
    "not yet",
    "drifted",
    "certified",
    "cannot reach",
    "in line",
    "above",
    "below",
)
DOUBLED = re.compile(
    r"\b(" + "|".join(re.escape(v) for v in VERDICTS) + r")\b[\s—:–-]+\1\b", re.IGNORECASE
)


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-output") / "small.duckdb"
    build_small_ledger(path).close()
    return path


@pytest.fixture
def report(ledger_path: Path) -> Iterator[Report]:
    """The report ``assay report --as-of AS_OF`` prints, built through the same seam."""
    with Ledger(ledger_path, read_only=True) as ledger:
        yield build_report(ledger, as_of=AS_OF_TEXT)


def invoke(*arguments: str) -> str:
    result = CliRunner().invoke(app, list(arguments))
    assert result.exit_code == 0, result.output
    return result.output


def table_rows(output: str, width: int) -> list[list[str]]:
    """The rows (``│ a │ b │``) of the tables with ``width`` columns, as stripped cells."""
    rows = [
        [c.strip() for c in line.strip("│ ").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]
    return [cells for cells in rows if len(cells) == width]


def numbers(cell: str) -> list[float]:
    return [float(n.replace(",", "")) for n in NUMBER.findall(cell)]


def shown(cell: str, *expected: float, digits: int) -> None:
    """The numbers in ``cell`` are ``expected``, rounded to ``digits`` decimals."""
    assert numbers(cell) == pytest.approx([round(e, digits) for e in expected], abs=1e-9), cell


def test_a_console_off_a_terminal_prints_a_wide_table_whole() -> None:
    """The probe: Rich's own console cuts the leaderboard in a pipe; the command line's does not."""
    rich_pipe, ours = io.StringIO(), io.StringIO()
    wide = "a-scorer-name-of-sixty-characters-that-no-80-column-table-fits"
    rates = segment_rates([1, 0] * 40, [wide] * 80, min_size=5)
    print_segments(Console(file=rich_pipe), wide, "region", rates)
    print_segments(OutputConsole(file=ours), wide, "region", rates)
    assert "…" in rich_pipe.getvalue()
    assert "…" not in ours.getvalue() and f"│ {wide} │" in ours.getvalue()


def test_on_a_terminal_the_console_keeps_the_terminal_width() -> None:
    terminal = OutputConsole(file=io.StringIO(), force_terminal=True, width=72)
    assert terminal.width == 72
    assert OutputConsole(file=io.StringIO()).width == UNBOUNDED


def test_report_in_a_pipe_prints_every_cell_whole(ledger_path: Path, report: Report) -> None:
    output = invoke("report", "--ledger", str(ledger_path), "--as-of", AS_OF_TEXT)
    assert "…" not in output
    assert report.comparison is not None
    common = report.comparison.comparison.common
    board = {cells[0]: cells for cells in table_rows(output, 8)}
    assert set(board) == {"alpha", "beta"}
    for s in common:
        _, ece, interval, verdict, brier, auc, slope, abstains = board[s.scorer]
        assert verdict == s.verdict
        assert s.auc is not None
        shown(ece, 100 * s.ece, digits=1)
        shown(interval, *[100 * e for e in (s.ece_lower, s.ece_upper) if e is not None], digits=1)
        shown(brier, s.brier, digits=4)
        shown(auc, s.auc, digits=3)
        shown(slope, *([] if s.slope is None else [s.slope]), digits=2)
        shown(abstains, 100 * s.abstention_rate, digits=1)
    printed = table_rows(output, 6)
    deciles = [b for a in report.audits for b in a.deciles if b.n]
    assert len(printed) == len(deciles)  # one row per bucket, every cell shown in full
    for b in deciles:
        ends = [round(100 * b.lower, 1), round(100 * b.upper, 1)]
        [row] = [c for c in printed if numbers(c[0]) == ends and numbers(c[1]) == [b.n]]
        shown(row[2], 100 * b.mean_score, digits=1)
        if b.thin:
            assert row[3:] == ["not yet", "", ""]
            continue
        assert b.observed_rate is not None and b.gap is not None
        shown(row[3], 100 * b.observed_rate, digits=1)
        shown(row[4], *[100 * e for e in (b.rate_lower, b.rate_upper) if e is not None], digits=1)
        shown(row[5], 100 * b.gap, digits=1)
    headings = [line for line in output.splitlines() if line.startswith("─")]
    assert len(headings) == len(report.audits) + 1  # a section per scorer, then the answers
    assert " the answer " in headings[-1]
    assert all(len(line) == HEADING_WIDTH for line in headings)


def test_the_doubled_verdict_check_can_fail() -> None:
    assert DOUBLED.search("MISCALIBRATED — miscalibrated: it under-promises")
    assert DOUBLED.search("boosting: miscalibrated — miscalibrated from the start: outside")
    assert not DOUBLED.search("MISCALIBRATED — it under-promises: calibrated means …")


def test_no_command_repeats_a_verdict_word(ledger_path: Path, tmp_path: Path) -> None:
    """Report (with the stored monitors), monitor, threshold and compare, as a pipe sees them."""
    ledger = shutil.copy(ledger_path, tmp_path / "ledger.duckdb")
    where = ("--ledger", str(ledger), "--as-of", AS_OF_TEXT)
    outputs = [
        invoke("monitor", *where),
        invoke("report", *where),
        invoke("threshold", "--target-precision", "0.3", *where),
        invoke("threshold", "--target-precision", "0.95", *where),
        invoke("compare", *where),
    ]
    said = "\n".join(outputs)
    for verdict in ("MISCALIBRATED", "CALIBRATED", "alpha: ", "beta: "):
        assert verdict in said  # the lines the check reads are there
    assert re.search(r"^(CERTIFIED|NOT YET|CANNOT REACH) — ", said, re.MULTILINE)
    doubled = [line for line in said.splitlines() if DOUBLED.search(line)]
    assert doubled == []


def test_segment_reasons_say_their_verdict_once() -> None:
    """Below the segment table, each segment not in line with its reason, the verdict once."""
    labels = [1] * 60 + [0] * 40 + [1] * 10 + [0] * 90 + [1, 0] * 3
    names = ["hot"] * 100 + ["cold"] * 100 + ["tiny"] * 6
    rates = segment_rates(labels, names, min_size=5)
    verdicts = {row.segment: row.verdict for row in rates.rows}
    assert verdicts["hot"] == "above" and verdicts["cold"] == "below"
    screen = io.StringIO()
    print_segments(OutputConsole(file=screen), "alpha", "region", rates)
    lines = screen.getvalue().splitlines()
    for row in rates.rows:
        if row.verdict != "in line":
            assert f"{row.segment}: {row.reason}" in lines
    assert not [line for line in lines if DOUBLED.search(line)]


def test_version_prints_the_installed_version() -> None:
    assert assay.__version__ == importlib.metadata.version("assay")
    assert invoke("--version") == f"assay {assay.__version__}\n"
    entry = subprocess.run(
        [sys.executable, "-c", "from assay.cli.main import app; app()", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (entry.returncode, entry.stdout) == (0, f"assay {assay.__version__}\n")
