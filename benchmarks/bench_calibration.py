"""``assay.stats.calibration`` at growing n: time split into binning, posterior and noise floor.

The posterior works on per-bin sums, so its cost should not grow with n; binning is one pass
over the rows; the noise floor resamples rows exactly up to 1e5 and uses per-bin sums beyond.
The posterior table compares it with the former sampler's schedule, which gives the same
draws bit for bit: one τ at a time for the slab grids, and every draw's 71-point CDF in one
pass (one block of all draws). One pass over the rows (``BinStats.accumulate``) is the peer
that does grow with n.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

import assay
from assay.stats import posterior
from assay.stats.binning import bin_edges
from assay.stats.binstats import BinStats
from assay.stats.calibration import audit_bin_count
from assay.stats.posterior import calibration_posterior
from assay.stats.uncertainty import noise_floor
from benchmarks._timing import best_time, peak_memory


def _rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p**1.3).astype(np.float64)
    return y, p


def row(n: int) -> list[str]:
    y, p = _rows(n)
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


_BATCHED_SLAB_GRIDS = posterior._slab_grids


def _one_tau_at_a_time(
    bins: posterior._Bins, taus: np.ndarray, settings: posterior.PosteriorSettings
) -> list[posterior._Grid]:
    """The former slab schedule: each τ's grid (its Newton modes too) computed alone."""
    return [_BATCHED_SLAB_GRIDS(bins, taus[i : i + 1], settings)[0] for i in range(len(taus))]


def posterior_row(n: int) -> list[str]:
    """Today's schedule against the former one (same draws), on the audit bins of n rows."""
    y, p = _rows(n)
    edges = bin_edges(p, audit_bin_count(n), "quantile")
    stats = BinStats.accumulate(y, p, edges)
    ours = best_time(lambda: calibration_posterior(stats), 5)
    ours_memory = peak_memory(lambda: calibration_posterior(stats))
    block = posterior._DRAW_BLOCK
    posterior._slab_grids, posterior._DRAW_BLOCK = _one_tau_at_a_time, 10**9
    try:
        former = best_time(lambda: calibration_posterior(stats), 5)
        former_memory = peak_memory(lambda: calibration_posterior(stats))
    finally:
        posterior._slab_grids, posterior._DRAW_BLOCK = _BATCHED_SLAB_GRIDS, block
    rows_pass = best_time(lambda: BinStats.accumulate(y, p, edges), 3)
    return [
        f"{n:.0e}",
        f"{ours * 1e3:.0f}",
        f"{former * 1e3:.0f}",
        f"{former / ours:.2f}x",
        f"{ours_memory / 1e6:.0f}",
        f"{former_memory / 1e6:.0f}",
        f"{rows_pass * 1e3:.1f}",
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
    table = Table(title="Posterior (audit bins, 4000 draws): today vs the former schedule")
    for column in (
        "n", "posterior ms", "former ms", "speed-up", "peak MB", "former peak MB",
        "rows pass ms",
    ):  # fmt: skip
        table.add_column(column, justify="right")
    for n in (10**3, 10**4, 10**5, 10**6):
        table.add_row(*posterior_row(n))
    console.print(table)
    console.print(
        "Same draws bit for bit (tests/test_posterior.py). At large n nearly every draw needs "
        "a δ grid (τ > 0), so the one-pass sampler's memory grew with the slab draws."
    )
