"""The monitor's throughput on a calibrated stream, beside one plain NumPy likelihood-ratio pass."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from assay.audit.monitor import Monitor
from assay.stats.eprocess import log_likelihood_ratio, logit_of
from benchmarks._timing import best_time


def run(console: Console) -> None:
    table = Table(title="Monitor: matured leads consumed per second (update_arrays, one call)")
    for column in ("leads", "assay Monitor s", "leads/s", "one fixed-shift NumPy pass s", "ratio"):
        table.add_column(column, justify="right")
    for n in (10_000, 100_000):
        rng = np.random.default_rng(0)
        p = rng.beta(2, 5, n)
        y = (rng.random(n) < p).astype(float)
        ours = best_time(lambda p=p, y=y: Monitor(scorer="bench").update_arrays(y, p), 1)

        def plain(p: np.ndarray = p, y: np.ndarray = y) -> None:
            x = logit_of(p)
            np.cumsum(log_likelihood_ratio(y, x, x + 0.25))

        base = best_time(plain)
        table.add_row(
            f"{n:,}", f"{ours:.3f}", f"{n / ours:,.0f}", f"{base:.4f}", f"{ours / base:.0f}x"
        )
    console.print(table)
