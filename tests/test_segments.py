"""Empirical-Bayes segment rates: simulation with known truth, agreement, degenerate cases."""

from __future__ import annotations

import numpy as np
import pytest

from assay.segments import M_CAP, segment_calibration, segment_rates


def simulate(seed: int, j: int = 40) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 401, j)
    truth = rng.beta(0.1 * 50, 0.9 * 50, j)
    y = np.concatenate([rng.random(n) < t for n, t in zip(sizes, truth, strict=True)])
    labels = np.concatenate([[f"s{i:02d}"] * n for i, n in enumerate(sizes)])
    return y.astype(int), labels, {f"s{i:02d}": float(t) for i, t in enumerate(truth)}


@pytest.mark.slow
def test_shrinkage_beats_raw_rates_and_intervals_cover():
    wins, covered, total = 0, 0, 0
    for seed in range(100):
        y, labels, truth = simulate(seed)
        result = segment_rates(y, labels, min_size=1, seed=seed)
        raw = np.array([r.raw_rate for r in result.rows])
        shrunk = np.array([r.shrunken_rate for r in result.rows])
        true = np.array([truth[r.segment] for r in result.rows])
        wins += np.mean((shrunk - true) ** 2) < np.mean((raw - true) ** 2)
        covered += sum(r.lower <= truth[r.segment] <= r.upper for r in result.rows)
        total += len(result.rows)
    assert wins >= 95, wins
    assert 0.90 <= covered / total <= 0.98, covered / total


def test_methods_agree_on_well_behaved_data():
    rng = np.random.default_rng(1)
    truth = rng.beta(4, 16, 30)
    y = np.concatenate([rng.random(500) < t for t in truth]).astype(int)
    labels = np.repeat([f"s{i}" for i in range(30)], 500)
    fits = {m: segment_rates(y, labels, method=m) for m in ("grid", "mle", "moments")}
    for method in ("mle", "moments"):
        assert fits[method].mu == pytest.approx(fits["grid"].mu, abs=0.01)
        for a, b in zip(fits[method].rows, fits["grid"].rows, strict=True):
            assert a.segment == b.segment
            assert a.shrunken_rate == pytest.approx(b.shrunken_rate, abs=0.005)
    assert fits["mle"].concentration == pytest.approx(fits["moments"].concentration, rel=0.5)


def test_one_segment_has_its_own_interval():
    result = segment_rates([1, 0, 0, 1] * 20, ["a"] * 80)
    assert result.rule.startswith("one segment")
    assert result.rows[0].shrunken_rate == pytest.approx((40 + 0.5) / 81)
    assert result.rows[0].shrinkage is None


def test_two_segments_hand_over_to_the_grid():
    y = [1] * 30 + [0] * 70 + [1] * 10 + [0] * 90
    labels = ["a"] * 100 + ["b"] * 100
    result = segment_rates(y, labels, method="mle")
    assert result.method == "grid" and result.rule.startswith("two segments")
    a, b = result.rows
    assert a.raw_rate == 0.3 and b.raw_rate == 0.1
    assert 0.1 < b.shrunken_rate < a.shrunken_rate < 0.3


@pytest.mark.parametrize("outcome", [0, 1])
def test_all_outcomes_equal(outcome):
    labels = np.repeat(["a", "b", "c", "d"], 50)
    result = segment_rates(np.full(200, outcome), labels, method="moments")
    assert result.rule.startswith(f"all outcomes are {outcome}")
    for row in result.rows:
        assert row.lower <= outcome <= row.upper + 1e-12
        assert row.raw_rate == outcome


def test_tiny_segments_are_pooled_into_other():
    labels = ["big"] * 1000 + [f"tiny{i}" for i in range(30) for _ in range(3)]
    y = np.random.default_rng(2).random(len(labels)) < 0.2
    result = segment_rates(y, labels, min_size=10)
    names = {r.segment for r in result.rows}
    assert names == {"big", "other"}
    other = next(r for r in result.rows if r.segment == "other")
    assert other.n == 90 and len(other.pooled_from) == 30
    assert any("pooled 30 segments" in note for note in result.notes)


def test_identical_rates_pool_fully():
    labels = np.repeat([f"s{i}" for i in range(10)], 100)
    y = np.tile(np.r_[np.ones(10), np.zeros(90)], 10)
    result = segment_rates(y, labels, method="mle")
    assert result.concentration == M_CAP
    assert result.rule.startswith("no spread between segments")
    for row in result.rows:
        assert row.shrunken_rate == pytest.approx(0.1, abs=1e-4)


def test_labels_are_normalised_with_a_note():
    result = segment_rates(
        [1, 0, 1, 0] * 30, ["SaaS", " saas", "Retail", "retail "] * 30, min_size=1
    )
    assert {r.segment for r in result.rows} == {"saas", "retail"}
    assert any("merged ' saas', 'SaaS' into 'saas'" in note for note in result.notes)


def test_verdicts_and_reasons():
    rng = np.random.default_rng(3)
    labels = np.repeat(["high", "low", "mid", "small"], [2000, 2000, 2000, 12])
    rates = {"high": 0.3, "low": 0.05, "mid": 0.15, "small": 0.5}
    y = np.array([rng.random() < rates[s] for s in labels])
    rows = {r.segment: r for r in segment_rates(y, labels).rows}
    assert rows["high"].verdict == "above" and rows["low"].verdict == "below"
    assert rows["small"].verdict == "not yet"
    assert rows["small"].reason == "not yet: only 12 leads; at least 30 are needed"


def test_segment_calibration_finds_the_miscalibrated_segment():
    rng = np.random.default_rng(4)
    n = 6000
    labels = rng.choice(["a", "b", "c"], n)
    p = rng.beta(2, 5, n)
    truth = np.where(labels == "c", np.minimum(p * 1.6, 1), p)  # the score under-promises for c
    y = (rng.random(n) < truth).astype(int)
    rows = {r.segment: r for r in segment_calibration(y, p, labels)}
    assert rows["c"].lower > 1.0
    assert rows["a"].lower < 1.0 < rows["a"].upper
    assert rows["c"].verdict == "miscalibrated"
    assert rows["a"].observed == int(y[labels == "a"].sum())


def test_funnel_limits_exact_and_overdispersed():
    from scipy.stats import binom

    from assay.segments import funnel_limits

    labels = np.repeat(["a", "b", "c", "d"], [100, 400, 1600, 6400])
    rng = np.random.default_rng(9)
    y = rng.random(len(labels)) < 0.2
    rates = segment_rates(y, labels)
    limits = funnel_limits(rates)
    if not limits.adjusted:
        i = int(np.searchsorted(limits.n, 400))
        assert limits.upper_95[i] == binom.ppf(0.975, limits.n[i], rates.reference) / limits.n[i]
    spread = np.concatenate(
        [rng.random(n) < r for n, r in zip([500] * 6, [0.05, 0.1, 0.2, 0.3, 0.4, 0.5], strict=True)]
    )
    wide = funnel_limits(segment_rates(spread, np.repeat(list("abcdef"), 500)))
    assert wide.adjusted and wide.overdispersion > 10


def test_cli_segments_on_the_ledger(tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app
    from assay.demo import build_synthetic_demo

    result = build_synthetic_demo(tmp_path / "demo", n=2000)
    assert "Segments by" in result.html.read_text()
    output = CliRunner().invoke(
        app,
        [
            "segments",
            "--by",
            "industry",
            "--ledger",
            str(result.ledger),
            "--as-of",
            "2024-09-01T00:00:00Z",
        ],
    )
    assert output.exit_code == 0, output.output
    assert "saas" in output.output and "shrunken" in output.output
    page = tmp_path / "compare.html"
    arguments = ["compare", "--ledger", str(result.ledger), "--as-of", "2024-09-01T00:00:00Z"]
    compared = CliRunner().invoke(
        app, [*arguments, "--segment-by", "industry", "--html", str(page)]
    )
    assert compared.exit_code == 0, compared.output
    assert "vendor-a vs vendor-b" in compared.output
    html = page.read_text()
    assert "Leaderboard" in html and "http" not in html and "<script" not in html
    assert result.compare_html.exists()
