"""Run every benchmark and print its tables (``make bench``). Nothing here is asserted."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODULES = [
    "benchmarks.bench_startup",
    "benchmarks.bench_metrics",
    "benchmarks.bench_calibration",
    "benchmarks.bench_compare",
    "benchmarks.bench_recalibration",
    "benchmarks.bench_monitor",
    "benchmarks.bench_ledger",
    "benchmarks.bench_remote",
    "benchmarks.bench_service",
    "benchmarks.bench_report",
    "benchmarks.bench_replay",
    "benchmarks.bench_honest",
]


def main() -> None:
    console = Console(width=120)
    for name in MODULES:
        console.rule(name)
        importlib.import_module(name).run(console)


if __name__ == "__main__":
    main()
