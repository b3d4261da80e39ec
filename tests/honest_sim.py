"""Seeded vendors with a known P(convert | raw score), for the honest-score tests and benchmark.

A vendor's raw score s has logit z ~ N(centre, 1.2²); the truth is logit P(y | s) = a + g(z),
with a solved so the mean true rate is the base rate:

* ``over`` (over-confident): g(z) = 0.5 z — scores spread twice as far as the outcomes;
* ``under`` (under-confident): g(z) = 1.8 z;
* ``shifted``: g(z) = z with the scores centred one logit above the base rate (over-promises);
* ``nonmono``: g(z) = z − 1.6 σ(4(z − 0.5)) — conversion dips for scores above σ(0.5) ≈ 62%
  (falls by up to 0.6 logits per logit of score), the shape of a vendor whose top band is
  padded with low-intent leads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.optimize import brentq
from scipy.special import expit, logit

VENDORS = ("over", "under", "shifted", "nonmono")
Draw = Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _shape(kind: str) -> Callable[[np.ndarray], np.ndarray]:
    shapes: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "over": lambda z: 0.5 * z,
        "under": lambda z: 1.8 * z,
        "shifted": lambda z: z,
        "nonmono": lambda z: z - 1.6 * expit(4 * (z - 0.5)),
    }
    return shapes[kind]


def vendor(kind: str, base: float, rng: np.random.Generator) -> Draw:
    """Return draw(n) -> (raw score, true P(y | s), outcome) for the vendor at the base rate."""
    shape = _shape(kind)
    centre = logit(base) + (1.0 if kind == "shifted" else 0.0)
    reference = np.random.default_rng(0).normal(centre, 1.2, 200_000)
    level = brentq(lambda a: expit(a + shape(reference)).mean() - base, -30, 30)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = rng.normal(centre, 1.2, n)
        truth = expit(level + shape(z))
        return expit(z), truth, (rng.random(n) < truth).astype(np.float64)

    return draw


def matured_tables(
    ids: list[str], score: np.ndarray, outcome: np.ndarray, scored_at: dt.datetime, **columns: Any
) -> tuple[pa.Table, pa.Table]:
    """The vendor's leads, all scored at ``scored_at`` (30-day windows), and their wins 5 days
    later: the predictions (with ``columns``) and the outcomes to ingest."""
    n = len(ids)
    predictions = pa.table({
        "prediction_id": ids, "entity_id": ids, "scorer": ["vendor"] * n, "score": score,
        "scored_at": pa.array([scored_at] * n, pa.timestamp("us", tz="UTC")),
        "horizon_days": [30] * n, "target_event": ["won"] * n, **columns,
    })  # fmt: skip
    won = np.flatnonzero(outcome == 1)
    outcomes = pa.table({
        "entity_id": [ids[i] for i in won], "event": ["won"] * len(won),
        "occurred_at": pa.array(
            [scored_at + dt.timedelta(days=5)] * len(won), pa.timestamp("us", tz="UTC")
        ),
    })  # fmt: skip
    return predictions, outcomes


def vendor_history(
    prefix: str, n: int, first: dt.datetime, seed: int
) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray, list[str]]:
    """Leads of a vendor promising 2× the truth over 30 days; 30-day windows; outcomes on time."""
    rng = np.random.default_rng(seed)
    scored = [first + dt.timedelta(hours=float(h)) for h in rng.uniform(0, 24 * 30, n)]
    score = np.round(rng.beta(2, 8, n), 4)
    won = rng.random(n) < score / 2
    region = rng.choice(["emea", "amer"], n).tolist()
    ids = [f"{prefix}{i}" for i in range(n)]
    predictions = pa.table({
        "prediction_id": ids, "entity_id": ids, "scorer": ["vendor"] * n, "score": score,
        "scored_at": pa.array(scored, pa.timestamp("us", tz="UTC")), "region": region,
        "horizon_days": [30] * n, "target_event": ["won"] * n,
    })  # fmt: skip
    hit = np.flatnonzero(won)
    outcomes = pa.table({
        "entity_id": [ids[i] for i in hit], "event": ["won"] * len(hit),
        "occurred_at": pa.array(
            [scored[i] + dt.timedelta(days=3) for i in hit], pa.timestamp("us", tz="UTC")
        ),
    })  # fmt: skip
    return predictions, outcomes, score, won.astype(float), region
