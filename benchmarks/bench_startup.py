"""Start-up: ``import assay`` and ``assay --help`` against importing NumPy and scipy.special.

Each command runs in a fresh interpreter, the runs of all commands interleaved (so a busy
moment of a shared machine hits them alike), and the median of ``RUNS`` is reported. Targets
(from the issue "One house, fast to enter"): ``import assay`` at most 2x ``import numpy,
scipy.special``; ``assay --help`` at most 0.8 s. The last table is ``python -X importtime`` of
the CLI's entry: the ten modules that cost it the most (cumulative, children included).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

RUNS = 7
PYTHON = sys.executable
ASSAY = str(Path(sys.executable).with_name("assay"))
COMMANDS = {
    "python -c pass": [PYTHON, "-c", "pass"],
    "import numpy, scipy.special": [PYTHON, "-c", "import numpy, scipy.special"],
    "import assay": [PYTHON, "-c", "import assay"],
    "assay --help": [ASSAY, "--help"],
}
IMPORT_RATIO_TARGET = 2.0
HELP_SECONDS_TARGET = 0.8


def wall_seconds(argv: list[str]) -> float:
    """Wall time of one run of ``argv`` in a new process (output discarded)."""
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def medians(runs: int = RUNS) -> dict[str, float]:
    """The median wall time of each command over ``runs`` interleaved rounds."""
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, argv in COMMANDS.items():
            times[name].append(wall_seconds(argv))
    return {name: statistics.median(values) for name, values in times.items()}


def import_times(code: str) -> list[tuple[str, int, int]]:
    """``(module, self µs, cumulative µs)`` for every import ``-X importtime`` reports."""
    stderr = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    ).stderr
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((name.strip(), int(own), int(cumulative)))
    return rows


def verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


def run(console: Console) -> None:
    got = medians()
    base = got["import numpy, scipy.special"]
    table = Table(title=f"Start-up: median wall time of {RUNS} fresh processes each")
    for column in ("command", "median s", "÷ import numpy, scipy.special", "target"):
        table.add_column(column, justify="left" if column == "command" else "right")
    ratio = got["import assay"] / base
    targets = {
        "import assay": f"≤ {IMPORT_RATIO_TARGET:g}x: {verdict(ratio <= IMPORT_RATIO_TARGET)}",
        "assay --help": f"≤ {HELP_SECONDS_TARGET:g} s: "
        + verdict(got["assay --help"] <= HELP_SECONDS_TARGET),
    }
    for name, seconds in got.items():
        table.add_row(name, f"{seconds:.3f}", f"{seconds / base:.2f}", targets.get(name, ""))
    console.print(table)

    rows = import_times("from assay.cli.main import app")
    top = sorted(rows, key=lambda row: row[2], reverse=True)[:10]
    detail = Table(title="python -X importtime: the CLI's entry, top 10 by cumulative time")
    for column in ("module", "self ms", "cumulative ms"):
        detail.add_column(column, justify="left" if column == "module" else "right")
    for name, own, cumulative in top:
        detail.add_row(name, f"{own / 1000:.1f}", f"{cumulative / 1000:.1f}")
    console.print(detail)


if __name__ == "__main__":
    run(Console(width=120))
