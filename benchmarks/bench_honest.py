"""The honest score: serving 10^5 leads and updating the map with 10^4 newly matured leads.

A map is fitted on 20,000 matured leads of an over-confident vendor (5% base rate, four
segments). Timed, best of three, in this run:

* ``HonestMap.predict`` on 10^5 leads (point, interval, status; target ≤ 1 s), beside a plain
  NumPy pass over the same scores (``np.interp`` on the map's grid: the floor any table lookup
  pays);
* ``HonestMap.update`` with 10^4 newly matured leads (target ≤ 1 s), beside a full refit on all
  30,000 leads: the update costs the same whatever the history, a refit from raw leads grows
  with it;
* ``score_honestly`` through a ledger: serve and record 10^5 leads in one batch (inputs included).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._timing import best_time

SERVED = 100_000
NEW = 10_000
TARGET = 1.0


def _leads(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from tests.honest_sim import vendor

    score, _, outcome = vendor("over", 0.05, rng)(n)
    segment = rng.choice(["web", "partner", "event", "outbound"], n).tolist()
    return score, outcome, segment


def _through_ledger(score: np.ndarray, outcome: np.ndarray, served: np.ndarray) -> float:
    """Seconds to serve and record ``served`` raw scores with a map of the matured leads."""
    from tests.honest_sim import matured_tables

    from assay.ledger import Ledger
    from assay.models.honest import build_map, score_honestly

    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    ids = [f"lead-{i}" for i in range(len(score))]
    predictions, outcomes = matured_tables(ids, score, outcome, start)
    later = start + dt.timedelta(days=60)
    new = pa.table({"entity_id": [f"new-{i}" for i in range(len(served))], "score": served})
    with tempfile.TemporaryDirectory() as directory, Ledger(Path(directory) / "h.duckdb") as led:
        led.ingest_predictions(predictions, now=start)
        led.ingest_outcomes(outcomes, now=start + dt.timedelta(days=6))
        build_map(led, "vendor", now=later)
        moments = iter(later + dt.timedelta(minutes=k + 1) for k in range(10))
        return best_time(lambda: score_honestly(led, "vendor", new, now=next(moments)))


def run(console: Console) -> None:
    """Print the serve and update table."""
    from scipy.special import expit

    from assay.stats.honest import HonestMap, grid_centres

    rng = np.random.default_rng(0)
    score, outcome, segment = _leads(20_000, rng)
    honest = HonestMap.fit(score, outcome, segment)
    served, _, served_segment = _leads(SERVED, rng)
    new_score, new_outcome, new_segment = _leads(NEW, rng)
    grid = expit(grid_centres())
    timings = {
        f"predict {SERVED:,} leads (p, interval, status)": best_time(
            lambda: honest.predict(served, served_segment)
        ),
        f"  peer: np.interp of {SERVED:,} scores": best_time(
            lambda: np.interp(served, grid, honest.table[0, 0])
        ),
        f"update with {NEW:,} matured leads": best_time(
            lambda: honest.update(new_score, new_outcome, new_segment)
        ),
        f"  peer: refit on all {20_000 + NEW:,} leads": best_time(
            lambda: HonestMap.fit(
                np.concatenate([score, new_score]),
                np.concatenate([outcome, new_outcome]),
                segment + new_segment,
            )
        ),
        f"score_honestly: serve and record {SERVED:,} in a ledger": _through_ledger(
            score, outcome, served
        ),
    }
    table = Table(title="Honest score (best of 3, this run)")
    table.add_column("path")
    table.add_column("seconds", justify="right")
    for name, seconds in timings.items():
        table.add_row(name, f"{seconds:.3f}")
    console.print(table)
    for name in (
        f"predict {SERVED:,} leads (p, interval, status)",
        f"update with {NEW:,} matured leads",
    ):
        verdict = "meets" if timings[name] <= TARGET else "MISSES"
        console.print(f"{name}: {timings[name]:.3f} s, {verdict} the ≤ {TARGET:g} s target")


if __name__ == "__main__":
    run(Console(width=120))
