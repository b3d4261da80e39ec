"""Timing helpers for the benchmarks: best of a few runs, and peak traced memory."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any


def best_time(func: Callable[[], Any], repeat: int = 3) -> float:
    """Best wall time over ``repeat`` runs (the least disturbed by a noisy shared machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_memory(func: Callable[[], Any]) -> int:
    """Peak bytes allocated (NumPy allocations are traced) while ``func`` runs."""
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
