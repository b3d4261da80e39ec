"""Certified thresholds, risk–coverage and net benefit against closed forms and simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betainc, expit, logit
from scipy.stats import beta, binom

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


def test_cannot_reach_when_every_upper_bound_is_below_the_target():
    """The real case: 19,284 leads, P(precision ≥ target) = 0.000 at every threshold."""
    y, s = sample(19_284, np.random.default_rng(11))
    result = assay.certify_threshold(y, s, target_precision=0.95, delta=0.05)
    tested = [r for r in result.rows if r.pvalue is not None]
    assert len(tested) == len(result.rows)  # the whole grid is tested
    assert max(r.prob_above_target for r in tested) < 0.001
    best = 0.0
    for row in tested:
        k, n = row.conversions, row.n
        assert row.upper_bound == pytest.approx(beta.ppf(0.95, k + 1, n - k), rel=1e-9)
        assert row.upper_bound < 0.95
        best = max(best, beta.ppf(0.05, k, n - k + 1) if k else 0.0)
    assert result.verdict == "cannot reach" and result.threshold is None
    assert result.reason.startswith(
        f"cannot reach the target: best certified precision {best:.1%};"
    )
    assert "more leads will not help" in result.reason
    assert max(r.lower_bound for r in tested) == pytest.approx(best, rel=1e-9)
    assert result.rule == "do not fire automatically: the score cannot reach the target"
    costed = assay.certify_threshold(
        y, s, target_precision=0.95, value_per_conversion=10, cost_per_action=3
    )
    assert costed.rule == result.rule


def test_not_yet_says_how_many_more_leads_would_certify():
    y, s = sample(1500, np.random.default_rng(4))
    result = assay.certify_threshold(y, s, target_precision=0.6)
    assert result.verdict == "not yet"
    top = next(r for r in result.rows if r.pvalue is not None)
    assert top.precision > 0.6 and top.upper_bound >= 0.6
    more = int(result.reason.split("roughly ")[1].split(" more leads")[0].replace(",", ""))
    # At the same precision, n + more leads bring the Clopper–Pearson lower bound to the target.
    n = top.n + more
    assert beta.ppf(0.05, top.precision * n, (1 - top.precision) * n + 1) == pytest.approx(
        0.6, abs=0.01
    )
    assert result.rule == "do not fire automatically yet"


def test_thin_data_is_not_yet_even_when_tested_thresholds_fall_short():
    """Thresholds with fewer than min_count leads above them may still reach the target."""
    y, s = sample(60, np.random.default_rng(4))
    result = assay.certify_threshold(y, s, target_precision=0.9)
    assert all(r.upper_bound < 0.9 for r in result.rows if r.pvalue is not None)
    assert result.verdict == "not yet"
    assert "fewer than 30 leads above them" in result.reason


@pytest.mark.slow
def test_cannot_reach_is_rarely_wrong():
    """Prints the verdict table with ``pytest -s``. "cannot reach" is false when some tested
    threshold's true precision E[p | s ≥ t] is at least the target; the worst case is a target
    equal to the best true precision (about 75% here), where each upper bound errs with
    probability δ."""
    rng = np.random.default_rng(7)
    reps, delta = 200, 0.05
    print(
        "\n  leads  target  certified  cannot reach  not yet  false cannot reach  false certified"
    )
    for n, target in [(3000, 0.7), (3000, 0.9), (20_000, 0.75), (20_000, 0.9)]:
        counts = dict.fromkeys(("certified", "cannot reach", "not yet"), 0)
        false_unreachable = false_certified = 0
        for _ in range(reps):
            y, s = sample(n, rng)
            result = assay.certify_threshold(y, s, target_precision=target, delta=delta)
            counts[result.verdict] += 1
            tested = [r.threshold for r in result.rows if r.pvalue is not None]
            best = max(true_precision(t) for t in tested)
            false_unreachable += result.verdict == "cannot reach" and best >= target
            false_certified += (
                result.threshold is not None and true_precision(result.threshold) < target
            )
        print(
            f"{n:7,d}  {target:6.2f}  {counts['certified']:9d}  {counts['cannot reach']:12d}  "
            f"{counts['not yet']:7d}  {false_unreachable / reps:18.3f}  "
            f"{false_certified / reps:15.3f}"
        )
        assert false_unreachable / reps <= delta + 3 * np.sqrt(delta * (1 - delta) / reps)
        assert false_certified / reps <= delta + 3 * np.sqrt(delta * (1 - delta) / reps)
    assert counts["cannot reach"] == reps  # 20,000 leads, target 90%: always settled


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


@pytest.mark.usefixtures("fast_posterior")  # plumbing (tests/conftest.py)
def test_cli_threshold_and_report_section(tmp_path):
    from tests.conftest import build_small_ledger
    from typer.testing import CliRunner

    from assay.audit.report import Report
    from assay.audit.scorer import AuditConfig, audit
    from assay.cli.main import app
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
    html = render_html(Report(as_of="2024-05-01T00:00:00+00:00", audits=[report]))
    assert "When may an action fire on its own?" in html
    assert expected.rule in html.replace("&#39;", "'")
