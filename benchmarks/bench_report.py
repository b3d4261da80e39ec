"""``assay report --html --json`` and ``assay verify`` end to end, against the number of leads.

Two scorers on the synthetic CRM (:func:`assay.demo.build.synthetic_ledger`), with segment rates
(``--segment-by industry``) and a decision target (``--target-precision 0.5``), run as a user
runs them: a fresh process each, start-up and imports included. Wall time beside CPU time (user
plus system of the process: steadier on a shared machine), ``verify`` over ``report`` (target
≤ 1.2; ``verify`` also re-hashes every ledger row to check the chain head) and time against the
smallest size. Then, in this process, the posterior runs of one report beside its (scorer,
cohort) pairs: at most one each.

10⁴ and 10⁵ leads by default; ``ASSAY_BENCH_REPORT_LEADS=10000,100000,1000000`` for more.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import assay.stats.calibration as calibration_module
from assay.audit.report import build_report
from assay.audit.scorer import AuditConfig
from assay.demo.build import synthetic_ledger
from assay.ledger import Ledger

CLI = "from assay.cli.main import app; app()"
OPTIONS = ["--segment-by", "industry", "--target-precision", "0.5"]


def _sizes() -> list[int]:
    text = os.environ.get("ASSAY_BENCH_REPORT_LEADS", "10000,100000")
    return [int(float(size)) for size in text.split(",")]


def _run(arguments: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``assay`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", CLI, *arguments], check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _posterior_runs(path: Path, as_of: Any) -> tuple[int, int, int]:
    """(posterior runs, distinct (scorer, cohort) among them, cohorts judged) of one report."""
    runs: list[tuple[int, float, float]] = []
    posterior = calibration_module.calibration_posterior

    def counted(stats: Any, **options: Any) -> Any:
        runs.append((stats.total_count, float(stats.sum_y.sum()), float(stats.sum_p.sum())))
        return posterior(stats, **options)

    calibration_module.calibration_posterior = counted
    try:
        config = AuditConfig(segment_by="industry", target_precision=0.5)
        with Ledger(path, read_only=True) as ledger:
            report = build_report(ledger, as_of=as_of, config=config)
    finally:
        calibration_module.calibration_posterior = posterior
    judged = sum(1 + sum(c.median is not None for c in a.cohorts) for a in report.audits)
    return len(runs), len(Counter(runs)), judged


def run(console: Console) -> None:
    table = Table(title="assay report --html --json and assay verify (2 scorers, a fresh process)")
    for column in (
        "leads", "report wall s", "report CPU s", "verify wall s", "verify CPU s",
        "verify / report (CPU)", "report CPU / smallest",
    ):  # fmt: skip
        table.add_column(column, justify="right")
    smallest: float | None = None
    counted: tuple[int, int, int] | None = None
    with tempfile.TemporaryDirectory() as directory:
        for n in _sizes():
            ledger = Path(directory) / f"leads-{n}.duckdb"
            as_of = synthetic_ledger(ledger, n=n)
            stamp = as_of.isoformat()
            html, js = Path(directory) / f"{n}.html", Path(directory) / f"{n}.json"
            report = _run(
                ["report", "--ledger", str(ledger), "--as-of", stamp, *OPTIONS,
                 "--html", str(html), "--json", str(js)]
            )  # fmt: skip
            verify = _run(["verify", str(js), "--ledger", str(ledger)])
            smallest = smallest or report[1]
            table.add_row(
                f"{n:,}", f"{report[0]:.1f}", f"{report[1]:.1f}", f"{verify[0]:.1f}",
                f"{verify[1]:.1f}", f"{verify[1] / report[1]:.2f}", f"{report[1] / smallest:.1f}x",
            )  # fmt: skip
            if counted is None:
                counted = _posterior_runs(ledger, as_of)
            ledger.unlink()
    console.print(table)
    if counted is not None:
        runs, distinct, judged = counted
        console.print(
            f"posterior runs in one report ({_sizes()[0]:,} leads): {runs} for {distinct} "
            f"distinct (scorer, cohort) pairs; the audits judge {judged} (the rest: the common "
            "set of the comparison where it differs from a scorer's own leads)"
        )
