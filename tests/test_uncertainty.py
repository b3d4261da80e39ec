"""The ECE posterior, the noise floor and the verdict, against simulations with known truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit, logit, logsumexp
from scipy.stats import binom, norm

import assay
from assay.stats.binning import assign_bins
from assay.stats.posterior import PosteriorSettings
from assay.stats.uncertainty import expected_noise_floor


def generate(n: int, seed: int, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p ~ Beta(2, 5); the truth is p (calibrated), a slope-0.6 distortion, or p − 0.05."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    truth = {
        "calibrated": p,
        "slope": expit(0.6 * logit(p) + 0.3),
        "shift": np.maximum(p - 0.05, 0.0),
    }[kind]
    return (rng.random(n) < truth).astype(float), p, truth


def true_binned_ece(report: assay.CalibrationReport, p: np.ndarray, truth: np.ndarray) -> float:
    idx = assign_bins(p, report.stats.edges)
    bins = report.stats.n_bins
    count = np.bincount(idx, minlength=bins)
    keep = count > 0
    gap = np.bincount(idx, truth - p, bins)[keep] / count[keep]
    return float(np.sum(count[keep] / len(p) * np.abs(gap)))


@pytest.mark.slow  # long: a brute-force reference
def test_posterior_matches_a_brute_force_grid():
    """The whole model (line + wiggle, spike at τ = 0) on dense grids over μ, β, τ and every
    δ_b, sampled directly: the same ECE, O/E and slope posteriors."""
    y, p, _ = generate(200, 3, "slope")
    report = assay.calibration(y, p, seed=1)
    stats = report.stats
    keep = stats.nonempty
    n, k = stats.weight[keep], stats.sum_y[keep]
    mean_p = stats.sum_p[keep] / n
    base = logit(mean_p)
    z = base - np.sum(n * base) / np.sum(n)
    settings = PosteriorSettings()
    delta = np.linspace(-3, 3, 301)
    loglik = binom.logpmf(k[:, None], n[:, None], expit(base[:, None] + delta))  # (B, D)
    mus, betas = np.linspace(-1.6, 1.6, 49), np.linspace(-2.0, 1.5, 49)
    taus = np.linspace(0.01, 2.0, 30)
    tau_weight = norm.logpdf(taus, 0, settings.tau_scale)
    tau_weight -= logsumexp(tau_weight)
    mu, beta_ = np.meshgrid(mus, betas, indexing="ij")
    line = mu[..., None] + beta_[..., None] * z  # (M, Bt, B)
    prior = norm.logpdf(mu) + norm.logpdf(beta_)
    spike = binom.logpmf(k, n, expit(base + line)).sum(-1) + prior + np.log(0.4)
    step = np.log(delta[1] - delta[0])
    slabs = []
    for tau, weight in zip(taus, tau_weight, strict=True):
        gaussian = norm.logpdf(delta, line[..., None], tau)  # (M, Bt, B, D)
        marginal = (logsumexp(loglik + gaussian, axis=-1) + step).sum(-1)
        slabs.append(marginal + prior + weight + np.log(0.6))
    log_post = np.stack([spike, *slabs])  # (1 + T, M, Bt)
    weights = np.exp(log_post - logsumexp(log_post)).ravel()
    rng = np.random.default_rng(0)
    cells = np.unravel_index(rng.choice(weights.size, 3000, p=weights), log_post.shape)
    ece, ratio, slope = [], [], []
    for t, i, j in zip(*cells, strict=True):
        centre = line[i, j]
        if t == 0:
            theta = expit(base + centre)
        else:
            log_density = loglik + norm.logpdf(delta, centre[:, None], taus[t - 1])
            density = np.exp(log_density - log_density.max(1, keepdims=True))
            cdf = np.cumsum(density, axis=1)
            pick = (cdf / cdf[:, -1:] < rng.random(len(k))[:, None]).sum(axis=1)
            theta = expit(base + delta[pick])
        w = n / n.sum()
        ece.append(np.sum(w * np.abs(theta - mean_p)))
        ratio.append(np.sum(w * theta) / np.sum(w * mean_p))
        slope.append(1 + betas[j])
    levels = report.levels
    assert levels.ece.median == pytest.approx(np.median(ece), abs=0.004)
    assert levels.ece.upper_95 == pytest.approx(np.quantile(ece, 0.95), abs=0.006)
    assert levels.ratio.median == pytest.approx(np.median(ratio), abs=0.01)
    assert levels.slope.median == pytest.approx(np.median(slope), abs=0.04)
    assert levels.slope.upper == pytest.approx(np.quantile(slope, 0.95), abs=0.06)


@pytest.mark.parametrize(
    ("n", "positives", "reason"),
    [
        (80, 20, "not yet: only 80 resolved predictions; at least 100 are needed"),
        (400, 7, "not yet: only 7 conversions; at least 10 are needed"),
        (400, 395, "not yet: only 5 non-conversions; at least 10 are needed"),
    ],
)
def test_thin_data_gives_not_yet_with_its_reason(n, positives, reason):
    rng = np.random.default_rng(0)
    y = np.zeros(n)
    y[rng.choice(n, positives, replace=False)] = 1
    report = assay.calibration(y, rng.uniform(0.01, 0.99, n))
    assert report.verdict == "not yet"
    assert report.reason == reason
    assert report.posterior is None


@pytest.mark.parametrize("n", [300, 1000, 5000])
def test_noise_floor_matches_closed_form(n):
    y, p, _ = generate(n, 11, "calibrated")
    report = assay.calibration(y, p)
    assert report.noise_floor.method == "exact"
    expected = expected_noise_floor(report.stats)
    assert report.noise_floor.median == pytest.approx(expected, rel=0.05)
    from_stats = assay.calibration_from_stats(report.stats)
    assert from_stats.noise_floor.method == "normal"
    assert from_stats.noise_floor.median == pytest.approx(expected, rel=0.05)


def test_normal_noise_floor_changes_nothing_but_the_floor():
    """``noise_floor="normal"`` skips the row resampling; every other number is the same, and
    the approximation agrees with the exact floor and the closed form."""
    y, p, _ = generate(3000, 4, "slope")
    exact = assay.calibration(y, p, seed=2)
    normal = assay.calibration(y, p, seed=2, noise_floor="normal")
    assert (exact.noise_floor.method, normal.noise_floor.method) == ("exact", "normal")
    a, b = exact.to_dict(), normal.to_dict()
    a.pop("noise_floor"), b.pop("noise_floor")
    assert a == b
    assert normal.noise_floor.median == pytest.approx(exact.noise_floor.median, rel=0.1)
    assert normal.noise_floor.median == pytest.approx(expected_noise_floor(exact.stats), rel=0.05)
    with pytest.raises(assay.AssayInputError, match="noise_floor"):
        assay.calibration(y, p, noise_floor="none")


def test_monthly_cohorts_skip_the_row_resampling(monkeypatch):
    """An audit resamples rows for its overall noise floor only: its months judge their
    calibration without a floor they would not show."""
    from assay.audit.scorer import audit_arrays
    from assay.stats import calibration as calibration_module

    rows_passed: list[bool] = []
    real = calibration_module.noise_floor

    def recording(stats, observed, *, prob=None, seed=0):
        rows_passed.append(prob is not None)
        return real(stats, observed, prob=prob, seed=seed)

    monkeypatch.setattr(calibration_module, "noise_floor", recording)
    y, p, _ = generate(3000, 5, "calibrated")
    months = np.repeat(np.array(["2024-01-15", "2024-02-15", "2024-03-15"], "datetime64[D]"), 1000)
    audit = audit_arrays(y, p, scored_at=months)
    assert len(audit.cohorts) == 3
    assert rows_passed == [True, False, False, False]


def test_noise_floor_pvalue_flags_a_miscalibrated_score():
    y, p, _ = generate(2000, 4, "slope")
    assert assay.calibration(y, p).noise_floor.pvalue < 0.01
    y, p, _ = generate(2000, 4, "calibrated")
    assert assay.calibration(y, p).noise_floor.pvalue > 0.01


def test_identical_inputs_give_identical_bytes():
    y, p, _ = generate(700, 2, "slope")
    first = json.dumps(assay.calibration(y, p, seed=5).to_dict())
    second = json.dumps(assay.calibration(list(y), list(p), seed=5).to_dict())
    assert first == second
    assert json.dumps(assay.calibration(y, p, seed=6).to_dict()) != first


def test_report_from_stats_has_the_same_posterior():
    y, p, _ = generate(900, 8, "shift")
    rows = assay.calibration(y, p, seed=3)
    stats = assay.calibration_from_stats(assay.BinStats.from_json(rows.stats.to_json()), seed=3)
    assert stats.posterior.to_dict() == rows.posterior.to_dict()
    assert stats.verdict == rows.verdict
    assert stats.companions["auc"] is None


def test_report_records_binning_and_conventions():
    y, p, _ = generate(250, 1, "calibrated")
    data = assay.calibration(y, p).to_dict()
    assert data["conventions"]["n_bins"] == 6  # clamp(250 // 40, 2, 15)
    assert data["conventions"]["strategy"] == "quantile"
    assert data["conventions"]["seed"] == 0
    assert list(data)[:3] == ["schema_version", "verdict", "reason"]
    assert sum(data["bins"]["n"]) == 250


@pytest.mark.slow  # seeded simulations: six seeds per case
@pytest.mark.parametrize(
    ("kind", "n", "seeds"), [("calibrated", 1000, range(6)), ("slope", 300, range(6))]
)
def test_verdict_is_robust_to_the_tau_prior(kind, n, seeds):
    for seed in seeds:
        y, p, _ = generate(n, seed, kind)
        verdicts = {
            assay.calibration(y, p, settings=PosteriorSettings(tau_scale=scale)).verdict
            for scale in (0.25, 0.5, 1.0)
        }
        assert len(verdicts) == 1, (seed, verdicts)


# --------------------------------------------------------------------------- long simulations
@pytest.mark.slow
def test_calibrated_scores_are_recognised():
    # Issue 3: the interval of a calibrated score reaches near 0. Issue 23 judged every level
    # of the hierarchy: at n = 1000 the slope is often not pinned down to 0.80–1.25 yet, so
    # "not yet" is honest there; never "miscalibrated" (the base-rate table in
    # tests/test_verdicts.py holds the recognition rates at n = 20,000).
    hits, verdicts = 0, []
    for seed in range(200):
        y, p, _ = generate(1000, seed, "calibrated")
        report = assay.calibration(y, p, seed=seed)
        hits += report.posterior.lower < 0.01
        verdicts.append(report.verdict)
    counts = {v: verdicts.count(v) for v in ("calibrated", "not yet", "miscalibrated")}
    print(f"calibrated, n = 1000: {counts}; interval below 0.01 in {hits}/200")
    assert hits >= 170, hits
    assert counts["miscalibrated"] <= 5, counts


@pytest.mark.slow
def test_miscalibrated_scores_are_caught():
    caught = sum(
        assay.calibration(*generate(300, seed, "slope")[:2], seed=seed).verdict == "miscalibrated"
        for seed in range(100)
    )
    assert caught >= 95, caught


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["shift", "slope"])
@pytest.mark.parametrize("n", [300, 1000])
def test_credible_interval_coverage(kind, n):
    covered = 0
    reps = 100
    for seed in range(reps):
        y, p, truth = generate(n, seed, kind)
        report = assay.calibration(y, p, seed=seed)
        true_ece = true_binned_ece(report, p, truth)
        covered += report.posterior.lower <= true_ece <= report.posterior.upper
    assert 0.80 * reps <= covered <= 0.99 * reps, covered
