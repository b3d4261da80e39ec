"""Verdicts on data shaped like lead scoring: low base rates, known truth, the whole error table.

The leads come from :func:`assay.stats.simulate.simulate_scores` (true log-odds t ~ N(m, 1), mean
true probability = the base rate): calibrated, a multiple of the truth (1.5× over-promises,
÷1.5 under-promises), a logit stretch (×k > 1 over-confident), a shift (±0.5) or a
non-monotone wiggle. Run ``pytest -s -m slow tests/test_verdicts.py`` to print the tables.
"""

from __future__ import annotations

import numpy as np
import pytest

import assay
from assay.stats.binning import assign_bins, bin_edges
from assay.stats.calibration import audit_bin_count
from assay.stats.simulate import simulate_scores

#: Named cases of the issue: (distortion, amount) for :func:`assay.stats.simulate.simulate_scores`.
CASES = {
    "calibrated": ("calibrated", 1.0),
    "over x1.5": ("multiple", 1.5),
    "under x0.67": ("multiple", 1 / 1.5),
    "stretch1.5": ("stretch", 1.5),
    "stretch2.5": ("stretch", 2.5),
    "stretch3": ("stretch", 3.0),
    "stretch0.5": ("stretch", 0.5),
    "shift +0.5": ("shift", 0.5),
    "shift -0.5": ("shift", -0.5),
    "wiggle": ("wiggle", 0.6),
}


def simulate(
    n: int, base: float, kind: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, score, true probability) for ``n`` leads of a named case."""
    distortion, amount = CASES[kind]
    leads = simulate_scores(n, base, distortion=distortion, amount=amount, seed=seed)
    return leads.y, leads.score, leads.truth


def report_for(n: int, base: float, kind: str, seed: int) -> tuple[assay.CalibrationReport, dict]:
    """The audit's answer from BinStats (the verdict needs no rows) and the true quantities."""
    y, p, truth = simulate(n, base, kind, seed)
    edges = bin_edges(p, audit_bin_count(n), "quantile")
    report = assay.calibration_from_stats(assay.BinStats.accumulate(y, p, edges), seed=seed)
    idx = assign_bins(p, edges)
    count = np.bincount(idx, minlength=len(edges) - 1)
    keep = count > 0
    gap = np.bincount(idx, truth - p, len(edges) - 1)[keep] / count[keep]
    truths = {
        "ece": float(np.sum(count[keep] / n * np.abs(gap))),
        "ratio": float(truth.sum() / p.sum()),
    }
    return report, truths


def test_generator_hits_its_base_rate():
    for base in (0.01, 0.3):
        _, _, truth = simulate(200_000, base, "calibrated", 0)
        assert truth.mean() == pytest.approx(base, rel=0.02)


def test_three_times_over_promise_at_two_percent_is_not_calibrated():
    # The case of the issue: 20,000 leads at 2%; the vendor promises 3x the truth.
    rng = np.random.default_rng(7)
    truth = np.full(20_000, 0.02)
    y = (rng.random(20_000) < truth).astype(float)
    p = np.clip(3 * truth * rng.uniform(0.8, 1.2, 20_000), 0, 1)
    report = assay.calibration(y, p)
    assert report.verdict == "miscalibrated"
    assert "over-promises" in report.reason
    assert report.levels.ratio.upper < 0.8


def test_direction_words_follow_the_truth():
    y, p, _ = simulate(20_000, 0.05, "under x0.67", 1)
    assert "under-promises" in assay.calibration(y, p).reason
    y, p, _ = simulate(20_000, 0.3, "stretch3", 1)
    reason = assay.calibration(y, p).reason
    assert "over-confident" in reason and "largest gap" in reason
    y, p, _ = simulate(20_000, 0.3, "stretch0.5", 1)
    assert "under-confident" in assay.calibration(y, p).reason


def test_contradicted_certainties_are_named():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 2_000)
    p[:655] = 1.0
    y = (rng.random(2_000) < p).astype(float)
    y[:655] = 0
    y[:614] = 1  # 614 / 655 = 93.7% converted
    report = assay.calibration(y, p)
    assert "promised 100%: 655 leads, 93.7% converted" in report.reason
    assert report.extremes[-1].contradicted


def test_headline_sits_inside_its_interval():
    y, p, _ = simulate(10_000, 0.3, "stretch3", 0)
    posterior = assay.calibration(y, p).posterior
    assert posterior.lower <= posterior.median <= posterior.upper


def test_not_yet_says_roughly_how_many_more_leads():
    y, p, _ = simulate(600, 0.1, "calibrated", 2)
    report = assay.calibration(y, p)
    assert report.verdict == "not yet"
    assert report.more_leads is not None and report.more_leads > 0
    assert f"roughly {report.more_leads:,} more matured leads" in report.reason


def test_tolerance_is_stated_and_can_be_changed():
    y, p, _ = simulate(20_000, 0.02, "under x0.67", 4)
    strict = assay.calibration_from_stats(
        assay.BinStats.from_arrays(y, p), tolerance=assay.Tolerance()
    )
    loose = assay.calibration_from_stats(
        assay.BinStats.from_arrays(y, p), tolerance=assay.Tolerance(ratio=2.0, curve=1.0)
    )
    assert strict.verdict == "miscalibrated"
    assert loose.verdict != "miscalibrated"
    assert "observed/expected conversions within 0.80–1.25" in strict.tolerance_words
    assert strict.to_dict()["conventions"]["tolerance"]["ratio"] == 1.25


def test_tolerance_parsing_and_errors():
    assert assay.Tolerance.parse("oe=1.5, slope=1.3") == assay.Tolerance(ratio=1.5, slope=1.3)
    with pytest.raises(assay.AssayInputError, match="ratio"):
        assay.Tolerance(ratio=0.8)
    with pytest.raises(assay.AssayInputError, match="KEY=NUMBER"):
        assay.Tolerance.parse("ratio:1.5")
    assert assay.Tolerance.coerce(0.05).curve_limit(0.3) == 0.05


# --------------------------------------------------------------------------- long simulations
BASE_RATES = (0.01, 0.02, 0.05, 0.30)
REPLICATES = 100


@pytest.mark.slow
@pytest.mark.parametrize("n", [2_000, 20_000])
@pytest.mark.parametrize("base", BASE_RATES)
def test_base_rate_error_table(base, n):
    """False "calibrated", false "miscalibrated" and power, per base rate and size."""
    rows = {}
    for kind in ("calibrated", "over x1.5", "under x0.67"):
        verdicts = [report_for(n, base, kind, seed)[0].verdict for seed in range(REPLICATES)]
        rows[kind] = {v: verdicts.count(v) for v in ("calibrated", "not yet", "miscalibrated")}
        print(f"base {base:.0%} n {n:>6,} {kind:<12} {rows[kind]}")
    for kind in ("over x1.5", "under x0.67"):
        assert rows[kind]["calibrated"] == 0, (kind, rows[kind])
        if n == 20_000:
            # At 1%, 20,000 leads hold ~200 conversions: the rest is an honest "not yet"
            # (measured 84 and 78 of 100 caught; a narrower O/E tolerance of 1.2 would catch
            # 93 and 87 at the cost of calibrated scores at 2% — see the closing note).
            power = 0.9 if base >= 0.02 else 0.75
            assert rows[kind]["miscalibrated"] >= power * REPLICATES, (kind, rows[kind])
    assert rows["calibrated"]["miscalibrated"] <= 0.05 * REPLICATES, rows["calibrated"]
    if n == 20_000 and base >= 0.02:
        assert rows["calibrated"]["calibrated"] >= 0.8 * REPLICATES, rows["calibrated"]


COVERAGE_KINDS = ("stretch1.5", "stretch2.5", "stretch3", "shift +0.5", "shift -0.5", "wiggle")
COVERAGE_REPLICATES = 100


@pytest.mark.slow
@pytest.mark.parametrize("base", [0.02, 0.30])
@pytest.mark.parametrize("n", [1_000, 10_000])
def test_interval_coverage_table(n, base):
    """The 90% interval of the headline ECE (and of O/E) covers the truth 85–95% of the time."""
    for kind in COVERAGE_KINDS:
        ece_hits = ratio_hits = 0
        for seed in range(COVERAGE_REPLICATES):
            report, truth = report_for(n, base, kind, 1000 + seed)
            if report.levels is None:
                continue
            post, ratio = report.levels.ece, report.levels.ratio
            ece_hits += post.lower <= truth["ece"] <= post.upper
            ratio_hits += ratio.lower <= truth["ratio"] <= ratio.upper
        print(f"coverage n {n:>6,} base {base:.0%} {kind:<11} ECE {ece_hits} O/E {ratio_hits}")
        assert 0.82 * COVERAGE_REPLICATES <= ece_hits <= 0.97 * COVERAGE_REPLICATES, (
            kind,
            ece_hits,
        )
        assert ratio_hits >= 0.80 * COVERAGE_REPLICATES, (kind, ratio_hits)
