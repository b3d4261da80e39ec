"""Metrics core: ECE vs one plain NumPy bincount pass and scikit-learn; mmce; smooth ECE vs relplot.

Data: p ~ Beta(2, 5), y ~ Bernoulli(p ** 1.3). Times are best-of-3 in one run; ratios compare
numbers measured in the same process, so they survive a noisy machine better than seconds.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.calibration import calibration_curve

import assay
from benchmarks._timing import best_time, peak_memory


def data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    p = rng.beta(2, 5, n)
    return (rng.random(n) < p**1.3).astype(np.float64), p


def numpy_pass(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """The floor: one naive NumPy pass (floor binning + three bincounts), no validation."""
    idx = np.minimum((p * n_bins).astype(np.intp), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    gap = np.bincount(idx, weights=y, minlength=n_bins) - np.bincount(
        idx, weights=p, minlength=n_bins
    )
    return float(np.abs(gap[count > 0]).sum() / len(p))


def run(console: Console) -> None:
    table = Table(title="ECE (15 uniform bins, l1): assay vs a plain NumPy pass vs scikit-learn")
    for column in (
        "n",
        "assay s",
        "numpy s",
        "sklearn s",
        "assay/numpy",
        "sklearn/assay",
        "extra mem / y_prob",
    ):
        table.add_column(column, justify="right")
    for n in (10**6, 10**7):
        table.add_row(*ece_row(n))
    console.print(table)
    kernel_metrics(console)


def ece_row(n: int) -> list[str]:
    y, p = data(n)
    t_assay = best_time(lambda: assay.expected_calibration_error(y, p))
    t_numpy = best_time(lambda: numpy_pass(y, p))
    t_sk = best_time(lambda: calibration_curve(y, p, n_bins=15), repeat=1)
    memory = peak_memory(lambda: assay.expected_calibration_error(y, p))
    return [
            f"{n:.0e}", f"{t_assay:.3f}", f"{t_numpy:.3f}", f"{t_sk:.3f}",
            f"{t_assay / t_numpy:.2f}x", f"{t_sk / t_assay:.1f}x", f"{memory / p.nbytes:.2f}",
        ]  # fmt: skip


def kernel_metrics(console: Console) -> None:
    y, p = data(10**6)
    other = Table(title="Kernel metrics at n = 1e6")
    for column in ("metric", "assay s", "peer", "peer s", "peer/assay", "|difference|"):
        other.add_column(column, justify="right")
    t_mmce = best_time(lambda: assay.mmce(y, p))
    other.add_row("mmce (O(n log n))", f"{t_mmce:.3f}", "O(n²) double loop", "hours", "—", "—")
    t_smooth = best_time(lambda: assay.smooth_calibration_error(y, p))
    try:
        import relplot
    except ImportError:
        other.add_row("smooth ECE", f"{t_smooth:.3f}", "relplot (not installed)", "—", "—", "—")
    else:
        t_relplot = best_time(lambda: relplot.smECE(p, y), repeat=1)
        diff = abs(assay.smooth_calibration_error(y, p) - relplot.smECE(p, y))
        other.add_row(
            "smooth ECE", f"{t_smooth:.3f}", "relplot.smECE", f"{t_relplot:.3f}",
            f"{t_relplot / t_smooth:.1f}x", f"{diff:.1e}",
        )  # fmt: skip
    console.print(other)


if __name__ == "__main__":
    run(Console())
