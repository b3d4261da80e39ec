"""Bin edges and the exact assignment rule.

Convention (DESIGN §3): bins are left-closed ``[lo, hi)`` and the last bin is closed
``[lo, 1]``, so p = 0 lands in the first bin, p = 1 in the last and no row is dropped.

Uniform edges are computed as ``j / B`` (a correctly rounded division), and scores are
assigned by *comparison* with the edges (``searchsorted``), never by ``floor(p * B)``. A
score written as the decimal ``j/B`` parses to the same double as the edge, so it lands in
bin ``j`` for every B; ``floor(0.29 * 100)`` is 28, which is why multiplying is wrong.

Equal-mass (``"quantile"``) edges are observed score values; because assignment depends
only on the value, tied scores always share a bin. Duplicate edges are merged, so heavily
tied scores can give fewer bins than requested.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from assay._validation import (
    AssayInputError,
    FloatArray,
    check_choice,
    check_positive_int,
)

STRATEGIES = ("uniform", "quantile")

BinSpec = int | Sequence[float] | FloatArray


def uniform_edges(n_bins: int) -> FloatArray:
    """``n_bins + 1`` equal-width edges ``j / n_bins`` on [0, 1]."""
    n_bins = check_positive_int(n_bins, "n_bins")
    return np.arange(n_bins + 1, dtype=np.float64) / n_bins


def quantile_edges(y_prob: FloatArray, n_bins: int) -> FloatArray:
    """Equal-mass edges: 0, the order statistics p_(⌊j·n/B⌋) for j = 1..B−1, and 1.

    Bin j then starts at the first score of the j-th equal-size slice of the sorted scores.
    Edges are observed scores, so ties are never split; duplicates are merged.
    """
    n_bins = check_positive_int(n_bins, "n_bins")
    ranks = (np.arange(1, n_bins) * len(y_prob)) // n_bins
    interior: FloatArray = np.partition(y_prob, ranks)[ranks] if n_bins > 1 else np.empty(0)
    return np.unique(np.concatenate(([0.0], interior, [1.0])))


def explicit_edges(edges: Any) -> FloatArray:
    """Validate user-supplied edges: strictly increasing, inside [0, 1], at least two."""
    arr = np.asarray(edges, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise AssayInputError(
            f"bin edges must be a 1-D sequence of at least 2 values, got {edges!r}"
        )
    if not np.isfinite(arr).all() or arr[0] < 0.0 or arr[-1] > 1.0:
        raise AssayInputError(f"bin edges must be finite and inside [0, 1], got {arr.tolist()}")
    steps = np.diff(arr)
    if (steps <= 0).any():
        first = int(np.flatnonzero(steps <= 0)[0])
        raise AssayInputError(
            f"bin edges must increase strictly; edge {first + 1} ({arr[first + 1]}) does not "
            f"exceed edge {first} ({arr[first]})"
        )
    return arr


def bin_edges(y_prob: FloatArray, n_bins: BinSpec = 15, strategy: str = "uniform") -> FloatArray:
    """Edges for ``n_bins`` (an int) under ``strategy``, or the explicit edges ``n_bins`` gives."""
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool):
        return explicit_edges(n_bins)
    check_choice(strategy, "strategy", STRATEGIES)
    if strategy == "uniform":
        return uniform_edges(int(n_bins))
    return quantile_edges(y_prob, int(n_bins))


def _is_uniform(edges: FloatArray) -> bool:
    n_bins = len(edges) - 1
    return bool(edges[0] == 0.0 and np.array_equal(edges, uniform_edges(n_bins)))


#: Products p·B this close to an integer are re-checked against the edges by comparison.
_NEAR_INTEGER = 1e-9


def assign_bins(y_prob: FloatArray, edges: FloatArray) -> np.ndarray:
    """Bin index of each score: ``j`` such that ``edges[j] <= p < edges[j+1]`` (last bin closed).

    For uniform edges a fast path takes ``floor(p·B)`` and re-decides by comparison every
    score whose product lies within 1e-9 of an integer: rounding moves p·B by at most a few
    ulps (~1e-14), so only those can be misplaced, and comparison decides them exactly.
    Raises if a score lies outside ``[edges[0], edges[-1]]`` (possible only with explicit edges).
    """
    n_bins = len(edges) - 1
    if _is_uniform(edges):
        scaled = y_prob * n_bins
        idx = scaled.astype(np.intp)
        fraction = scaled - idx
        near = np.flatnonzero((fraction < _NEAR_INTEGER) | (fraction > 1.0 - _NEAR_INTEGER))
        idx[near] = np.searchsorted(edges, y_prob[near], side="right") - 1
    else:
        idx = np.searchsorted(edges, y_prob, side="right") - 1
    # The closed last bin: p == edges[-1] gets index n_bins, which belongs to bin n_bins - 1.
    np.minimum(idx, n_bins - 1, out=idx)
    if edges[0] <= 0.0 and edges[-1] >= 1.0:
        return idx  # probabilities are already validated to lie in [0, 1]
    outside = (idx < 0) | (y_prob > edges[-1])
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise AssayInputError(
            f"y_prob[{first}] is {float(y_prob[first])!r}, outside the bin edges "
            f"[{edges[0]}, {edges[-1]}] ({int(outside.sum())} values offend); "
            "widen the edges to cover every score"
        )
    return idx
