"""Shared generators for the test suite."""

from __future__ import annotations

import numpy as np
import pytest


def beta_scores(n: int, seed: int, exponent: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """p ~ Beta(2, 5) and y ~ Bernoulli(p ** exponent) (exponent 1 is perfectly calibrated)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p**exponent).astype(np.int64)
    return y, p


@pytest.fixture
def scores() -> tuple[np.ndarray, np.ndarray]:
    return beta_scores(3000, seed=7, exponent=1.3)


def build_small_ledger(path):  # type: ignore[no-untyped-def]
    """A seeded 800-lead ledger: scorer "alpha" calibrated, "beta" over-promising; the last
    weeks are pending as of 2024-05-01. Used by the report tests and the golden fixture."""
    import datetime as dt

    import pyarrow as pa

    from assay.ledger import Ledger

    rng = np.random.default_rng(42)
    n = 800
    start = np.datetime64("2024-01-01T00:00:00", "us")
    scored = start + (np.sort(rng.uniform(0, 110, n)) * 86_400e6).astype("timedelta64[us]")
    truth = rng.beta(2, 5, n)
    converted = rng.random(n) < truth
    utc = pa.timestamp("us", tz="UTC")
    now = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    ledger = Ledger(path)
    for name, score in {"alpha": truth, "beta": np.minimum(truth * 1.6, 1.0)}.items():
        ledger.ingest_predictions(
            pa.table(
                {
                    "prediction_id": [f"{name}-{i}" for i in range(n)],
                    "entity_id": [f"lead-{i}" for i in range(n)],
                    "scorer": [name] * n,
                    "model_version": ["m1"] * n,
                    "score": np.round(score, 4),
                    "scored_at": pa.array(scored, utc),
                    "recorded_at": pa.array(scored, utc),
                    "horizon_days": pa.array(np.full(n, 21, np.int32)),
                    "target_event": ["won"] * n,
                }
            ),
            now=now,
        )
    won = np.flatnonzero(converted)
    occurred = scored[won] + (rng.uniform(0, 14, len(won)) * 86_400e6).astype("timedelta64[us]")
    keep = occurred <= np.datetime64("2024-05-01T00:00:00", "us")
    ledger.ingest_outcomes(
        pa.table(
            {
                "entity_id": [f"lead-{i}" for i in won[keep]],
                "event": ["won"] * int(keep.sum()),
                "occurred_at": pa.array(occurred[keep], utc),
                "recorded_at": pa.array(occurred[keep], utc),
            }
        ),
        now=now,
    )
    return ledger
