"""BinStats: merge, serialisation, and metrics from sums alone."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import assay
from assay import AssayInputError, BinStats
from assay.stats.binning import uniform_edges
from assay.stats.metrics import brier_from_stats

EDGES = uniform_edges(10)

samples = st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=1, max_size=60)


def stats_of(rows: list[tuple[int, float]]) -> BinStats:
    y, p = zip(*rows, strict=True)
    return BinStats.from_arrays(list(y), list(p), n_bins=EDGES)


def assert_stats_close(a: BinStats, b: BinStats) -> None:
    np.testing.assert_array_equal(a.count, b.count)
    for field in ("weight", "sum_p", "sum_p2", "sum_y", "sum_py"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=1e-12, atol=1e-12)


@given(samples, samples)
def test_merge_equals_concatenation(a, b):
    assert_stats_close(stats_of(a) + stats_of(b), stats_of(a + b))


@given(samples, samples, samples)
def test_merge_is_associative_and_commutative(a, b, c):
    sa, sb, sc = stats_of(a), stats_of(b), stats_of(c)
    assert_stats_close((sa + sb) + sc, sa + (sb + sc))
    assert_stats_close(sa + sb, sb + sa)


@given(samples)
def test_json_round_trip_is_exact(rows):
    stats = stats_of(rows)
    assert BinStats.from_json(stats.to_json()) == stats


def test_merge_refuses_different_edges():
    a = BinStats.from_arrays([0, 1], [0.2, 0.7], n_bins=10)
    b = BinStats.from_arrays([0, 1], [0.2, 0.7], n_bins=5)
    with pytest.raises(AssayInputError, match="different edges"):
        _ = a + b


def test_chunked_accumulation_matches_one_pass(monkeypatch, scores):
    y, p = scores
    whole = BinStats.from_arrays(y, p)
    monkeypatch.setattr("assay.stats.binstats.CHUNK_ROWS", 257)
    assert_stats_close(BinStats.from_arrays(y, p), whole)


def test_metrics_from_merged_batches_equal_the_whole(scores):
    y, p = scores
    merged = BinStats.from_arrays(y[:1000], p[:1000]) + BinStats.from_arrays(y[1000:], p[1000:])
    for norm in ("l1", "l2", "max"):
        assert merged.calibration_error(norm) == pytest.approx(
            assay.expected_calibration_error(y, p, norm=norm), rel=1e-12
        )
    assert brier_from_stats(merged).brier == pytest.approx(assay.brier_score(y, p), rel=1e-12)


def test_weighted_stats_equal_repeated_rows():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.1, 0.35, 0.6, 0.62, 0.9])
    w = np.array([1, 3, 2, 1, 4])
    weighted = BinStats.from_arrays(y, p, sample_weight=w, n_bins=5)
    repeated = BinStats.from_arrays(np.repeat(y, w), np.repeat(p, w), n_bins=5)
    for field in ("weight", "sum_p", "sum_p2", "sum_y", "sum_py"):
        np.testing.assert_allclose(getattr(weighted, field), getattr(repeated, field), rtol=1e-12)
