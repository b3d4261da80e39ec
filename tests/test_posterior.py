"""The posterior's draws: pinned to the numbers of the one-pass sampler, whatever the blocking.

The sampler builds its grids in batches (every τ of the slab at once) and its inverse-CDF
draws in blocks of draws; both must give exactly the numbers of the straightforward one-pass
computation. The literals below were computed by that one-pass code (before blocking) and
pin every level of the posterior, including the sum of all 4,000 ECE, O/E and slope draws, so
a single changed draw fails the test.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from scipy.special import expit, logit

from assay.stats import posterior
from assay.stats.binning import bin_edges
from assay.stats.binstats import BinStats
from assay.stats.calibration import audit_bin_count
from assay.stats.posterior import PosteriorSettings, calibration_posterior
from assay.stats.simulate import simulate_scores


def from_rows(n: int, base_rate: float, distortion: str, amount: float, seed: int) -> BinStats:
    s = simulate_scores(n, base_rate, distortion=distortion, amount=amount, seed=seed)
    return BinStats.accumulate(s.y, s.score, bin_edges(s.score, audit_bin_count(n), "quantile"))


def from_bins(mean_p: list[float] | np.ndarray, n_b: list[int] | np.ndarray, truth, seed: int):
    """BinStats of bins with the given mean scores and sizes, conversions ~ Binomial(n_b, truth)."""
    mean_p, n_b = np.asarray(mean_p, float), np.asarray(n_b, float)
    k = np.random.default_rng(seed).binomial(n_b.astype(np.int64), truth).astype(float)
    edges = np.linspace(0, 1, len(mean_p) + 1)
    return BinStats(edges, n_b.astype(np.int64), n_b, mean_p * n_b, mean_p**2 * n_b, k, mean_p * k)


MEAN_LARGE = np.linspace(0.02, 0.6, 15)
WIGGLED_LARGE = 1.2 * logit(MEAN_LARGE) + 0.1 + 0.1 * np.sin(3 * logit(MEAN_LARGE))
CASES = {
    "stretch-400": lambda: from_rows(400, 0.3, "stretch", 1.5, 2),
    "calibrated-3000": lambda: from_rows(3000, 0.05, "calibrated", 1.0, 4),
    "one-bin": lambda: from_bins([0.1], [500], [0.12], 1),
    # 10^6 leads in 15 bins with a wiggle no line explains: every draw lands on the slab (τ > 0).
    "large": lambda: from_bins(MEAN_LARGE, np.full(15, 66_667), expit(WIGGLED_LARGE), 3),
}

# ECE median, lower, upper, upper_95, P(within); Σ ECE draws; Σ rate medians; Σ O/E draws;
# Σ slope draws (None: one bin); P(all within) — from the one-pass sampler.
PINNED = {
    ("stretch-400", 0): [
        0.058626088851987765,
        0.027783491155630755,
        0.0929937575579915,
        0.0929937575579915,
        0.3305,
        237.65040876763487,
        2.95769179783731,
        3692.4275053188653,
        3314.7895326014063,
        0.22225,
    ],
    ("stretch-400", 7): [
        0.05904955784708331,
        0.027059712544234973,
        0.09265879861775486,
        0.09265879861775486,
        0.32875,
        238.2724368728998,
        2.960012730166985,
        3695.2599593747377,
        3325.354619909024,
        0.225,
    ],
    ("calibrated-3000", 0): [
        0.008920940803613112,
        0.003258719124616487,
        0.01590314894189799,
        0.01590314894189799,
        0.807,
        36.7071242993514,
        0.8699718483728086,
        4690.6559944044,
        4031.9375388989693,
        0.7925,
    ],
    ("calibrated-3000", 7): [
        0.009157482689160883,
        0.0034254224767818046,
        0.015902755100370345,
        0.015902755100370345,
        0.79625,
        37.28471485740161,
        0.8723615663740873,
        4705.770714672737,
        4035.2693551634675,
        0.783,
    ],
    ("one-bin", 0): [
        0.009992566422374498,
        0.0009228947437812501,
        0.030096154605195533,
        0.030096154605195533,
        0.8995,
        48.057998733809434,
        0.10566341115647428,
        4244.943520910529,
        None,
        0.8855,
    ],
    ("one-bin", 7): [
        0.009604299738593503,
        0.0009471748984858168,
        0.02912020136676981,
        0.02912020136676981,
        0.91,
        46.75569999598644,
        0.10576858499816919,
        4247.888175800414,
        None,
        0.8945,
    ],
    ("large", 0): [
        0.02509184654113498,
        0.024396518853247093,
        0.025784048061355497,
        0.025784048061355497,
        1.0,
        100.34894390408844,
        4.599926405691721,
        3956.9784128886336,
        4795.311369690637,
        0.98475,
    ],
    ("large", 7): [
        0.025109460671593024,
        0.02443072993913518,
        0.025793754074234204,
        0.025793754074234204,
        1.0,
        100.41765800524612,
        4.599877803953596,
        3956.9928210389717,
        4796.527550293206,
        0.988,
    ],
}


def summary(post: posterior.CalibrationPosterior) -> list[float | None]:
    return [
        post.ece.median, post.ece.lower, post.ece.upper, post.ece.upper_95,
        post.ece.prob_within_tolerance, float(post.ece.samples.sum()),
        float(np.nansum(post.ece.rate_median)), float(post.ratio.samples.sum()),
        None if post.slope is None else float(post.slope.samples.sum()), post.prob_all_within,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def cases() -> dict[str, BinStats]:
    return {name: make() for name, make in CASES.items()}


@pytest.mark.parametrize(("case", "seed"), sorted(PINNED))
def test_posterior_reproduces_the_one_pass_numbers(cases, case, seed):
    got = summary(calibration_posterior(cases[case], seed=seed))
    for expected, value in zip(PINNED[(case, seed)], got, strict=True):
        if expected is None:
            assert value is None
        else:
            assert math.isclose(value, expected, rel_tol=1e-12, abs_tol=0.0), (expected, value)


@pytest.mark.parametrize("case", ["stretch-400", "large"])
def test_draws_do_not_depend_on_the_block_size(cases, case, monkeypatch):
    """Blocks of 1 draw, the default and one block of all draws (the one-pass computation)."""
    samples = []
    for block in (1, posterior._DRAW_BLOCK, 10**9):
        monkeypatch.setattr(posterior, "_DRAW_BLOCK", block)
        post = calibration_posterior(cases[case], seed=3)
        samples.append(np.concatenate([post.ece.samples, post.ratio.samples]))
    assert all(np.array_equal(samples[0], s) for s in samples[1:])


@pytest.mark.parametrize("case", ["stretch-400", "one-bin", "large"])
def test_slab_grids_batched_equal_one_tau_at_a_time(cases, case):
    """Every τ's grid of the batch is bit for bit the grid computed for that τ alone."""
    bins = posterior._bins(cases[case])
    settings = PosteriorSettings()
    tau_grid, _ = posterior._tau_grid(bins, settings)
    batched = posterior._slab_grids(bins, tau_grid, settings)
    for i, tau in enumerate(tau_grid):
        (alone,) = posterior._slab_grids(bins, tau_grid[i : i + 1], settings)
        assert np.array_equal(batched[i].points, alone.points), tau
        assert np.array_equal(batched[i].log_mass, alone.log_mass), tau
        assert np.array_equal(batched[i].transform, alone.transform), tau


def test_posterior_memory_does_not_grow_with_the_slab_draws(cases):
    """At 10^6 leads nearly all 4,000 draws need a δ grid; blocks keep the peak small
    (the one-pass sampler held several 4,000 × 15 × 71 arrays, 34 MB each)."""
    stats = cases["large"]
    calibration_posterior(stats)  # warm caches (quadrature nodes, SciPy) outside the trace
    tracemalloc.start()
    try:
        calibration_posterior(stats)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 25e6, peak
