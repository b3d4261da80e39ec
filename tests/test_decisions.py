"""Certified thresholds, risk–coverage and net benefit against closed forms and simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betainc, expit, logit
from scipy.stats import binom

import assay
from assay import AssayInputError

A, B = 2.0, 5.0
STRETCH = 1.5  # the scores are over-confident: logit(s) = 1.5 logit(p)


def true_precision(score_threshold: float) -> float:
    """E[p | s ≥ t] for p ~ Beta(2, 5) and s = expit(1.5 logit p), in closed form."""
    t = expit(logit(score_threshold) / STRETCH)
    upper_mass = 1 - betainc(A, B, t)
    return float(A / (A + B) * (1 - betainc(A + 1, B, t)) / upper_mass)


def sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    p = rng.beta(A, B, n)
    return (rng.random(n) < p).astype(int), expit(STRETCH * logit(p))


@pytest.mark.slow
def test_certified_precision_guarantee_holds_in_simulation():
    rng = np.random.default_rng(2024)
    target, delta, reps = 0.5, 0.1, 600
    violations = certified = 0
    for _ in range(reps):
        y, s = sample(1500, rng)
        result = assay.certify_threshold(y, s, target_precision=target, delta=delta)
        if result.threshold is not None:
            certified += 1
            violations += true_precision(result.threshold) < target
    slack = 3 * np.sqrt(delta * (1 - delta) / reps)
    assert violations / reps <= delta + slack, violations
    assert certified > reps / 2  # the procedure is not vacuous


def test_pvalue_matches_the_binomial_and_clopper_pearson_agrees():
    rng = np.random.default_rng(1)
    y, s = sample(3000, rng)
    result = assay.certify_threshold(y, s, target_precision=0.45, delta=0.05, min_count=1)
    for row in result.rows:
        if row.pvalue is None or row.conversions == 0:
            continue
        expected = binom.cdf(row.n - row.conversions, row.n, 1 - 0.45)
        assert row.pvalue == pytest.approx(expected, rel=1e-9, abs=1e-15)
        assert (row.pvalue <= 0.05) == (row.lower_bound >= 0.45)


def test_fixed_sequence_never_certifies_below_the_first_failure():
    rng = np.random.default_rng(3)
    for _ in range(20):
        y, s = sample(800, rng)
        rows = assay.certify_threshold(y, s, target_precision=0.4).rows
        tested = [r for r in rows if r.pvalue is not None]
        flags = [r.certified for r in tested]
        first_failure = flags.index(False) if False in flags else len(flags)
        assert all(flags[:first_failure]) and not any(flags[first_failure:])
        assert [r.threshold for r in rows] == sorted((r.threshold for r in rows), reverse=True)


def test_not_yet_with_its_reason_when_evidence_is_thin():
    y, s = sample(60, np.random.default_rng(4))
    result = assay.certify_threshold(y, s, target_precision=0.9)
    assert result.threshold is None and result.verdict == "not yet"
    assert result.reason.startswith("not yet: ")
    with pytest.raises(AssayInputError, match=r"target_precision=1\.2"):
        assay.certify_threshold(y, s, target_precision=1.2)


def test_firing_rule_with_costs():
    y, s = sample(20_000, np.random.default_rng(5))
    result = assay.certify_threshold(
        y, s, target_precision=0.5, value_per_conversion=1000, cost_per_action=300
    )
    assert result.break_even == 0.3
    assert result.threshold is not None
    assert result.firing_threshold is not None and result.firing_threshold >= result.threshold
    assert "break-even C/V = 0.3" in result.rule
    firing = next(r for r in result.rows if r.threshold == result.firing_threshold)
    assert firing.certified and firing.band_lower_bound >= 0.3


def test_net_benefit_identity_with_profit():
    y, s = sample(5000, np.random.default_rng(6))
    value, cost = 500.0, 125.0
    t = cost / value
    nb = assay.net_benefit(y, s, [t]).model[0]
    acted = s >= t
    profit = (value * y[acted].sum() - cost * acted.sum()) / len(y)
    assert profit == pytest.approx((value - cost) * nb, rel=1e-12)


def test_net_benefit_references():
    y, s = sample(1000, np.random.default_rng(7))
    result = assay.net_benefit(y, s, [0.1, 0.5])
    prevalence = y.mean()
    np.testing.assert_allclose(
        result.treat_all, prevalence - (1 - prevalence) * np.array([1 / 9, 1.0])
    )
    assert (result.treat_none == 0).all()


def test_risk_coverage_with_ties_is_order_independent():
    rng = np.random.default_rng(8)
    y, s = sample(500, rng)
    s = np.round(s, 1)  # heavy ties
    first = assay.risk_coverage(y, s)
    perm = rng.permutation(len(y))
    second = assay.risk_coverage(y[perm], s[perm])
    np.testing.assert_array_equal(first.risk, second.risk)
    assert first.aurc == second.aurc
    # Brute force: every lead gets the risk of the whole tied group it belongs to.
    per_lead = []
    for value in np.unique(s)[::-1]:
        acted = s >= value
        per_lead += [1 - y[acted].mean()] * int((s == value).sum())
    assert first.aurc == pytest.approx(np.mean(per_lead), rel=1e-12)
    assert first.e_aurc >= 0
    distinct = rng.permutation(len(y)) / len(y) * 0.2
    perfect = assay.risk_coverage(y, y * 0.5 + 0.25 + distinct)  # every converter ranked first
    assert perfect.e_aurc == pytest.approx(0.0, abs=1e-12)


def test_cli_threshold_and_report_section(tmp_path):
    from tests.conftest import build_small_ledger
    from typer.testing import CliRunner

    from assay.audit import AuditConfig, audit
    from assay.cli import app
    from assay.report.html import render_html

    path = tmp_path / "small.duckdb"
    build_small_ledger(path).close()
    runner = CliRunner()
    arguments = ["threshold", "--target-precision", "0.3", "--ledger", str(path)]
    result = runner.invoke(app, [*arguments, "--as-of", "2024-05-01T00:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "Fixed-sequence test" in result.output
    from assay.ledger import Ledger

    with Ledger(path, read_only=True) as ledger:
        config = AuditConfig(target_precision=0.3, value_per_conversion=10, cost_per_action=2)
        report = audit(ledger, scorer="alpha", as_of="2024-05-01T00:00:00Z", config=config)
    assert report.decisions is not None
    expected = assay.certify_threshold(
        report.y_true,
        report.y_prob,
        target_precision=0.3,
        value_per_conversion=10,
        cost_per_action=2,
    )
    assert report.decisions.threshold.to_dict() == expected.to_dict()
    html = render_html([report], as_of="2024-05-01T00:00:00+00:00")
    assert "When may an action fire on its own?" in html
    assert expected.rule in html.replace("&#39;", "'")
