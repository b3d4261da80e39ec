"""Each calibrator's fit and predict at 10^6 points (p ~ Beta(2, 5), over-confident truth)."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.special import expit, logit

from assay.recalibration import CALIBRATORS
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
