"""Metrics against independent references: scikit-learn, hand calculation, closed forms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.metrics import log_loss as sk_log_loss
from tests.conftest import beta_scores

import assay

FIXTURES = Path(__file__).parent / "fixtures"


def test_ece_hand_computed():
    # bin [0, 0.5): p = 0.25, y = 0 -> |0 - 0.25|; bin [0.5, 1]: p = .75, .5, .5 and y = 1, 1, 0
    # -> |2 - 1.75|. ECE = (0.25 + 0.25) / 4.
    y, p = [0, 1, 1, 0], [0.25, 0.75, 0.5, 0.5]
    assert assay.expected_calibration_error(y, p, n_bins=2) == 0.125
    # l2: bins have weight 1/4 and 3/4, gaps 0.25 and 1/12
    expected_l2 = np.sqrt(0.25 * 0.25**2 + 0.75 * (1 / 12) ** 2)
    assert assay.expected_calibration_error(y, p, n_bins=2, norm="l2") == pytest.approx(expected_l2)
    assert assay.maximum_calibration_error(y, p, n_bins=2) == 0.25


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_reliability_matches_sklearn_calibration_curve(scores, strategy, n_bins):
    y, p = scores
    table = assay.reliability_table(y, p, n_bins=n_bins, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    keep = table.n > 0
    np.testing.assert_allclose(table.observed_rate[keep], prob_true, rtol=1e-12)
    np.testing.assert_allclose(table.mean_score[keep], prob_pred, rtol=1e-12)
    expected_ece = np.sum(table.n[keep] / len(y) * np.abs(prob_true - prob_pred))
    assert assay.expected_calibration_error(
        y, p, n_bins=n_bins, strategy=strategy
    ) == pytest.approx(expected_ece, rel=1e-12)


def test_scores_match_sklearn(scores):
    y, p = scores
    assert assay.brier_score(y, p) == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert assay.log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=1e-12)
    assert assay.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    rounded = np.round(p, 1)  # heavy ties
    assert assay.roc_auc(y, rounded) == pytest.approx(roc_auc_score(y, rounded), rel=1e-12)


def test_weighted_scores_match_sklearn(scores):
    y, p = scores
    w = np.random.default_rng(3).uniform(0, 2, len(y))
    assert assay.brier_score(y, p, sample_weight=w) == pytest.approx(
        brier_score_loss(y, p, sample_weight=w), rel=1e-12
    )
    assert assay.log_loss(y, p, sample_weight=w) == pytest.approx(
        sk_log_loss(y, p, sample_weight=w), rel=1e-12
    )


def test_log_loss_is_infinite_for_a_certain_wrong_forecast():
    assert assay.log_loss([1, 0], [0.0, 0.0]) == np.inf
    assert assay.log_loss([1, 0], [1.0, 0.0]) == 0.0


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ece_bounds_calibration_in_the_large(scores, strategy):
    y, p = scores
    ece = assay.expected_calibration_error(y, p, strategy=strategy)
    assert ece >= abs(p.mean() - y.mean()) - 1e-15
    # A score that over-promises everywhere: every bin gap has the same sign -> equality
    over = np.minimum(p + 0.3, 1.0)
    assert assay.expected_calibration_error(y, over) == pytest.approx(
        abs(over.mean() - y.mean()), abs=1e-14
    )


@settings(max_examples=50)
@given(st.integers(0, 10_000))
def test_ece_is_permutation_invariant(seed):
    y, p = beta_scores(300, seed)
    perm = np.random.default_rng(seed).permutation(len(y))
    for strategy in ("uniform", "quantile"):
        assert assay.expected_calibration_error(
            y[perm], p[perm], strategy=strategy
        ) == pytest.approx(assay.expected_calibration_error(y, p, strategy=strategy), abs=1e-15)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_brier_decomposition_is_exact(scores, strategy):
    y, p = scores
    d = assay.brier_decomposition(y, p, strategy=strategy, n_bins=12)
    assert d.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert d.rel - d.res + d.unc + d.wbv - d.wbc == pytest.approx(d.brier, abs=1e-12)


@pytest.mark.parametrize("score", ["brier", "log"])
def test_corp_decomposition_is_exact_and_uses_pav(scores, score):
    y, p = scores
    p = np.round(p, 2)  # ties must be pooled
    d = assay.corp_decomposition(y, p, score=score)
    assert d.mcb - d.dsc + d.unc == pytest.approx(d.score, abs=1e-12)
    assert d.mcb >= 0 and d.dsc >= 0
    iso = IsotonicRegression(out_of_bounds="clip").fit(p, y).predict(p)
    if score == "brier":
        assert d.score - d.mcb == pytest.approx(np.mean((iso - y) ** 2), abs=1e-12)
        assert d.unc == pytest.approx(y.mean() * (1 - y.mean()), abs=1e-12)
    else:
        assert d.score - d.mcb == pytest.approx(sk_log_loss(y, iso), abs=1e-9)


def test_multiclass_top_label_and_classwise():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(2000, 3)) * 2
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in prob])
    conf = prob.max(axis=1)
    correct = (prob.argmax(axis=1) == y).astype(int)
    assert assay.expected_calibration_error(y, prob) == pytest.approx(
        assay.expected_calibration_error(correct, conf), abs=1e-15
    )
    classwise = np.mean(
        [assay.expected_calibration_error((y == k).astype(int), prob[:, k]) for k in range(3)]
    )
    assert assay.expected_calibration_error(y, prob, mode="classwise") == pytest.approx(classwise)


def test_binary_scores_are_not_folded():
    # P(y=1) = 0.2 for everyone and 20% positives: perfectly calibrated as given.
    y = np.array([1] * 20 + [0] * 80)
    p = np.full(100, 0.2)
    assert assay.expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-15)


def test_debiased_error_hand_computed():
    # quantile bins of 2 bins on 4 rows: [0.2, 0.2] y=[0, 1]; [0.7, 0.7] y = [1, 1]
    y, p = [0, 1, 1, 1], [0.2, 0.2, 0.7, 0.7]
    # bin 1: (0.5 - 0.2)^2 - 0.25/1 = -0.16 ; bin 2: 0.09 - 0 = 0.09 -> mean -0.035 -> 0
    assert assay.debiased_calibration_error(y, p, n_bins=2) == 0.0
    y2 = [0, 0, 1, 1]
    # bin 1: 0.04 - 0 ; bin 2: 0.09 - 0 -> sqrt(0.065)
    assert assay.debiased_calibration_error(y2, p, n_bins=2) == pytest.approx(np.sqrt(0.065))


def test_debiased_error_is_nearly_unbiased_for_a_calibrated_score():
    plug_in, debiased = [], []
    for seed in range(30):
        y, p = beta_scores(500, seed)
        plug_in.append(assay.expected_calibration_error(y, p, norm="l2", strategy="quantile"))
        debiased.append(assay.debiased_calibration_error(y, p))
    assert np.mean(debiased) < 0.5 * np.mean(plug_in)


def test_sweep_uses_largest_monotone_binning():
    y, p = beta_scores(2000, 11)
    value = assay.sweep_calibration_error(y, p)
    # Reference by brute force: ECE on equal-mass bins for every B until monotonicity fails.
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    expected = None
    for n_bins in range(1, 200):
        parts_y = np.array_split(ys, n_bins)
        rates = np.array([part.mean() for part in parts_y])
        if n_bins > 1 and np.any(np.diff(rates) < 0):
            break
        parts_p = np.array_split(ps, n_bins)
        expected = sum(abs(a.sum() - b.sum()) for a, b in zip(parts_y, parts_p, strict=True)) / len(
            y
        )
    assert value == pytest.approx(expected, rel=1e-12)


def test_smooth_ece_agrees_with_relplot():
    reference = json.loads((FIXTURES / "relplot_smece.json").read_text())
    for case in reference["cases"]:
        y, p = beta_scores(case["n"], case["seed"], case["exponent"])
        value, sigma = assay.smooth_calibration_error(y, p, return_bandwidth=True)
        assert sigma == case["sigma"]
        assert value == pytest.approx(case["smece"], abs=1e-9)


def test_mmce_equals_quadratic_form():
    for width, n in [(0.4, 300), (0.05, 300), (0.004, 400)]:
        y, p = beta_scores(n, 2)
        a = y - p
        kernel = np.exp(-np.abs(p[:, None] - p[None, :]) / width)
        expected = np.sqrt(a @ kernel @ a) / n
        assert assay.mmce(y, p, width=width) == pytest.approx(expected, rel=1e-10)


def test_mmce_with_ties_and_multiclass():
    y, p = beta_scores(200, 4)
    p = np.round(p, 1)
    a = y - p
    expected = np.sqrt(a @ np.exp(-np.abs(p[:, None] - p[None, :]) / 0.4) @ a) / len(p)
    assert assay.mmce(y, p) == pytest.approx(expected, rel=1e-10)
    prob = np.column_stack((1 - p, p))
    conf, correct = prob.max(axis=1), (prob.argmax(axis=1) == y).astype(float)
    assert assay.mmce(y, prob) == pytest.approx(assay.mmce(correct, conf), rel=1e-12)


def test_spiegelhalter_closed_form():
    y, p = np.array([1, 0, 1, 1]), np.array([0.9, 0.2, 0.6, 0.3])
    num = np.sum((y - p) * (1 - 2 * p))
    den = np.sqrt(np.sum((1 - 2 * p) ** 2 * p * (1 - p)))
    result = assay.spiegelhalter_test(y, p)
    assert result.statistic == pytest.approx(num / den)


def test_spiegelhalter_pvalues_are_uniform_under_calibration():
    pvalues = [assay.spiegelhalter_test(*beta_scores(400, s)).pvalue for s in range(200)]
    assert 0.01 <= np.mean(np.array(pvalues) < 0.05) <= 0.10


def test_hosmer_lemeshow_hand_reference():
    y, p = beta_scores(1000, 9, 1.2)
    result = assay.hosmer_lemeshow_test(y, p, n_groups=10)
    order = np.argsort(p)
    statistic = 0.0
    for group in np.array_split(order, 10):
        observed, expected, n = y[group].sum(), p[group].sum(), len(group)
        statistic += (observed - expected) ** 2 / (expected * (1 - expected / n))
    assert result.dof == 8
    assert result.statistic == pytest.approx(statistic, rel=1e-10)
    assert result.pvalue == pytest.approx(chi2.sf(statistic, 8), rel=1e-8)


def test_calibration_slope_matches_unpenalised_logistic_regression(scores):
    y, p = scores
    x = np.log(p / (1 - p)).reshape(-1, 1)
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(x, y)
    line = assay.calibration_slope_intercept(y, p)
    assert line.slope == pytest.approx(reference.coef_[0, 0], rel=1e-5)
    assert line.slope_intercept == pytest.approx(reference.intercept_[0], rel=1e-5, abs=1e-6)


def test_calibration_line_of_a_calibrated_score_is_the_identity():
    y, p = beta_scores(200_000, 1)
    line = assay.calibration_slope_intercept(y, p)
    assert line.slope == pytest.approx(1.0, abs=0.03)
    assert line.intercept == pytest.approx(0.0, abs=0.02)


def test_reliability_table_exports(scores):
    y, p = scores
    table = assay.reliability_table(y, p, n_bins=20)
    data = table.to_dict()
    assert data["n"] == table.n.tolist()
    arrow = table.to_arrow()
    assert arrow.num_rows == 20
    assert arrow.column("n").to_pylist() == table.n.tolist()
    empty = [i for i, n in enumerate(data["n"]) if n == 0]
    assert all(data["mean_score"][i] is None for i in empty)
    assert arrow.column("gap").null_count == len(empty)
