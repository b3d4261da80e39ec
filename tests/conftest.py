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
