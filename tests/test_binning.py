"""The bin assignment rule of DESIGN §3."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import assay
from assay.stats.binning import assign_bins, quantile_edges, uniform_edges


def test_decimal_scores_land_in_their_own_bin():
    # For every B <= 100 and j < B, the decimal j/B (parsed from text, as a CSV would be)
    # lands in bin j. floor(p * B) gets some of these wrong (e.g. 0.29 * 100 = 28.999...).
    misplaced_by_floor = 0
    for n_bins in range(1, 101):
        edges = uniform_edges(n_bins)
        scores = np.array([float(f"{j / n_bins!r}") for j in range(n_bins)])
        np.testing.assert_array_equal(assign_bins(scores, edges), np.arange(n_bins))
        misplaced_by_floor += int(np.sum(np.floor(scores * n_bins) != np.arange(n_bins)))
    assert misplaced_by_floor > 0  # the rule is not vacuous: the naive method does fail


def test_whole_percent_scores():
    percents = np.array([float(f"0.{k:02d}") for k in range(100)])
    np.testing.assert_array_equal(assign_bins(percents, uniform_edges(100)), np.arange(100))


@given(st.integers(1, 100), st.lists(st.floats(0, 1), min_size=1, max_size=50))
def test_every_score_is_assigned_to_a_bin_that_contains_it(n_bins, values):
    p = np.array(values)
    edges = uniform_edges(n_bins)
    idx = assign_bins(p, edges)
    assert ((idx >= 0) & (idx < n_bins)).all()
    last = idx == n_bins - 1
    assert (edges[idx] <= p).all()
    assert ((p < edges[idx + 1]) | last).all()


def test_zero_and_one_are_never_dropped():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.0, 1.0, 1.0, 0.0])
    table = assay.reliability_table(y, p, n_bins=10)
    assert table.n.sum() == 4
    assert table.n[0] == 2 and table.n[-1] == 2


@given(
    st.lists(st.sampled_from([0.1, 0.2, 0.2, 0.2, 0.5, 0.7, 0.7, 0.9]), min_size=5, max_size=80),
    st.integers(2, 12),
)
def test_quantile_bins_never_split_ties(values, n_bins):
    p = np.array(values)
    idx = assign_bins(p, quantile_edges(p, n_bins))
    for value in np.unique(p):
        assert len(np.unique(idx[p == value])) == 1


def test_quantile_bins_are_equal_mass_without_ties():
    p = np.arange(1000) / 1000 + 0.0005
    idx = assign_bins(p, quantile_edges(p, 10))
    np.testing.assert_array_equal(np.bincount(idx), np.full(10, 100))
