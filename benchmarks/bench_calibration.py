"""``assay.stats.calibration`` at growing n: time split into binning, posterior and noise floor.

The posterior works on per-bin sums, so its cost should not grow with n; binning is one pass
over the rows; the noise floor resamples rows exactly up to 1e5 and uses per-bin sums beyond.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

import assay
from assay.stats.binning import bin_edges
from assay.stats.binstats import BinStats
from assay.stats.posterior import calibration_posterior
from assay.stats.uncertainty import noise_floor
from benchmarks._timing import best_time


def row(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p**1.3).astype(np.float64)
    t_binning = best_time(lambda: BinStats.accumulate(y, p, bin_edges(p, 15, "quantile")), 1)
    stats = BinStats.accumulate(y, p, bin_edges(p, 15, "quantile"))
    t_posterior = best_time(lambda: calibration_posterior(stats))
    ece = stats.calibration_error("l1")
    t_floor = best_time(lambda: noise_floor(stats, ece, prob=p))
    t_total = best_time(lambda: assay.calibration(y, p), 3)
    return [
        f"{n:.0e}",
        f"{t_binning:.3f}",
        f"{t_posterior:.3f}",
        f"{t_floor:.3f}",
        f"{t_total:.3f}",
    ]


def run(console: Console) -> None:
    table = Table(
        title="assay.stats.calibration: seconds by stage (15 equal-mass bins, 4000 draws)"
    )
    for column in ("n", "binning", "posterior", "noise floor", "whole call"):
        table.add_column(column, justify="right")
    for n in (10**4, 10**6, 10**7):
        table.add_row(*row(n))
    console.print(table)
    console.print(
        "The whole call also computes smooth ECE, log loss, AUC (a sort) and Spiegelhalter's test."
    )
