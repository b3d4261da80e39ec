"""Each calibrator's fit and predict at 10^6 points (p ~ Beta(2, 5), over-confident truth);
``recalibrate`` at 10^5 beside its scikit-learn peer, measured in the same run."""

from __future__ import annotations

import time

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from assay.stats.recalibration import CALIBRATORS, VennAbersCalibrator, recalibrate
from benchmarks._timing import best_time


def run(console: Console) -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < expit(0.6 * logit(p) + 0.4)).astype(int)
    table = Table(title="Calibrators at n = 1e6 (fit on 1e6, predict 1e6)")
    for column in ("calibrator", "fit s", "predict s"):
        table.add_column(column, justify="right")
    for name, cls in CALIBRATORS.items():
        fitted = cls().fit(p, y)
        table.add_row(
            name,
            f"{best_time(lambda cls=cls: cls().fit(p, y), 1):.3f}",
            f"{best_time(lambda fitted=fitted: fitted.predict_proba(p)):.3f}",
        )
    console.print(table)
    run_venn_abers(console)
    run_recalibrate(console)


def run_venn_abers(console: Console) -> None:
    """Venn–Abers at 50,000 calibration and 50,000 test points, beside its definition."""
    rng = np.random.default_rng(1)
    m = 50_000
    p = rng.beta(2, 5, 2 * m)
    y = (rng.random(2 * m) < expit(0.6 * logit(p) + 0.4)).astype(int)
    calibration, test = slice(0, m), slice(m, None)

    def venn_abers() -> None:
        VennAbersCalibrator().fit(p[calibration], y[calibration]).predict_interval(p[test])

    ours = best_time(venn_abers)
    isotonic = best_time(lambda: IsotonicRegression().fit(p[calibration], y[calibration]))
    probes = 20  # the definition: two isotonic refits per test point
    start = time.perf_counter()
    for s in p[test][:probes]:
        for label in (0, 1):
            IsotonicRegression().fit(
                np.append(p[calibration], s), np.append(y[calibration], label)
            ).predict([s])
    per_point = (time.perf_counter() - start) / probes
    table = Table(title="Venn–Abers, 50,000 calibration + 50,000 test points")
    for column in ("method", "seconds", "vs one sklearn isotonic fit"):
        table.add_column(column, justify="right")
    table.add_row("assay VennAbersCalibrator", f"{ours:.3f}", f"{ours / isotonic:.1f}x")
    table.add_row("sklearn IsotonicRegression fit (once)", f"{isotonic:.3f}", "1.0x")
    table.add_row(
        f"definition, 2 refits per point (timed on {probes}, scaled)",
        f"{per_point * m:.0f}",
        f"{per_point * m / isotonic:.0f}x",
    )
    console.print(table)


def sklearn_cross_fit(p: np.ndarray, y: np.ndarray, cv: int = 5) -> np.ndarray:
    """The peer: 5-fold cross-fitted scikit-learn isotonic regression and Platt scaling
    (logistic regression on logit p), out-of-fold predictions of both."""
    x = logit(np.clip(p, 1e-12, 1 - 1e-12))[:, None]
    out = np.empty((len(p), 2))
    for train, test in KFold(cv, shuffle=True, random_state=0).split(x):
        isotonic = IsotonicRegression(out_of_bounds="clip").fit(p[train], y[train])
        out[test, 0] = isotonic.predict(p[test])
        platt = LogisticRegression().fit(x[train], y[train])
        out[test, 1] = platt.predict_proba(x[test])[:, 1]
    return out


def run_recalibrate(console: Console) -> None:
    """``recalibrate`` (five candidates cross-fitted, each judged with its ECE interval, the
    winner refitted) at 10^5 rows against the scikit-learn peer (target: at most 3x)."""
    rng = np.random.default_rng(2)
    n = 100_000
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < expit(0.6 * logit(p) + 0.4)).astype(int)
    ours = best_time(lambda: recalibrate(y, p), 2)
    peer = best_time(lambda: sklearn_cross_fit(p, y), 2)
    table = Table(title="recalibrate at 1e5 rows vs cross-fitted scikit-learn isotonic + Platt")
    for column in ("method", "seconds", "vs scikit-learn"):
        table.add_column(column, justify="right")
    table.add_row("assay recalibrate (5 candidates, 5 folds)", f"{ours:.2f}", f"{ours / peer:.2f}x")
    table.add_row("scikit-learn isotonic + Platt (5 folds)", f"{peer:.2f}", "1.00x")
    console.print(table)
