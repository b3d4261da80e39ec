"""The answer a reader acts on: direction, size, ranking and next step, on simulations with
known truth (a low-base-rate lead score like real ones: 1–6% conversion)."""

from __future__ import annotations

import shlex

import numpy as np
import pytest

from assay.audit.answer import answer_for, reason_detail
from assay.audit.scorer import audit_arrays


def lead_scores(n: int, seed: int, *, promise: float = 1.0, signal: float = 1.0):
    """True conversion rates around 3% (log-normal spread ``signal``); the vendor says
    ``promise`` × the truth (capped at 0.99)."""
    rng = np.random.default_rng(seed)
    truth = np.clip(0.03 * np.exp(signal * rng.normal(0, 0.8, n) - 0.32 * signal**2), 0, 0.5)
    y = (rng.random(n) < truth).astype(np.int64)
    return y, np.clip(promise * truth, 0.0, 0.99)


def test_a_three_times_over_promise_at_a_three_percent_base_rate_says_so_with_numbers():
    y, p = lead_scores(20_000, 1, promise=3.0)
    answer = answer_for(audit_arrays(y, p, scorer="vendor"))
    assert answer.verdict == "miscalibrated"
    assert answer.direction == "over-promises"
    assert answer.sentence.startswith("Over-promises: leads it scores ")
    # The whole: Σp promised against the conversions that happened (hand computed here).
    assert f"it promised {p.sum():,.0f} conversions and {int(y.sum()):,} happened" in (
        answer.sentence
    )
    assert f"({y.sum() / p.sum():.2f}× the promise)" in answer.sentence
    assert answer.command.startswith("assay recalibrate --scorer vendor --out ")


def test_the_quoted_bin_is_the_verdicts_and_one_where_the_score_over_promises():
    y, p = lead_scores(20_000, 2, promise=3.0)
    audit = audit_arrays(y, p)
    answer = answer_for(audit)
    quoted = [
        b
        for b in audit.audit_bins
        if f"{100 * b.lower:.1f}–{100 * b.upper:.1f}% convert at "
        f"{100 * b.rate_lower:.1f}–{100 * b.rate_upper:.1f}%" in answer.sentence
    ]
    assert len(quoted) == 1 and quoted[0].observed_rate < quoted[0].mean_score
    # The verdict's reason names the same scores (its own format: "x%–y%").
    bin_ = quoted[0]
    assert f"for scores {100 * bin_.lower:.1f}%–{100 * bin_.upper:.1f}%" in audit.calibration.reason


def test_an_under_promise_is_told_the_other_way():
    y, p = lead_scores(20_000, 3, promise=0.4)
    answer = answer_for(audit_arrays(y, p))
    assert answer.direction == "under-promises"
    assert answer.sentence.startswith("Under-promises: ")


def test_a_calibrated_score_keeps_its_promises_and_is_monitored():
    y, p = lead_scores(40_000, 4)
    answer = answer_for(audit_arrays(y, p, scorer="vendor"))
    assert answer.verdict == "calibrated", answer.sentence
    assert answer.sentence.startswith("Keeps its promises: ")
    assert answer.direction == "within tolerance"
    assert answer.command == "assay monitor --scorer vendor"


def test_thin_data_says_not_yet_and_how_much_is_missing():
    y, p = lead_scores(83, 5)
    answer = answer_for(audit_arrays(y, p))
    assert answer.verdict == "not yet"
    assert answer.sentence.startswith("Insufficient data: only 83 resolved predictions")
    assert answer.ranking_label == "not judged yet"
    assert answer.command.startswith("assay report ")


def expected_label(auc: float) -> str:
    """Hosmer & Lemeshow's bands, the lowest split at 0.6 (written out here, not imported)."""
    if auc >= 0.9:
        return "very well"
    if auc >= 0.8:
        return "well"
    if auc >= 0.7:
        return "acceptably"
    return "weakly" if auc >= 0.6 else "barely better than chance"


@pytest.mark.parametrize("signal", [0.0, 0.4, 0.8, 1.2, 2.0, 3.0])
def test_ranking_label_follows_the_auc(signal):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(6)
    n = 20_000
    if signal == 0.0:  # a score independent of the outcome
        y = (rng.random(n) < 0.05).astype(np.int64)
        p = rng.uniform(0.0, 0.1, n)
    else:
        y, p = lead_scores(n, 6, signal=signal)
    answer = answer_for(audit_arrays(y, p))
    auc = roc_auc_score(y, p)
    assert answer.ranking_label.split(" (could be ")[0] == expected_label(auc), auc
    assert f"AUC {auc:.3f}" in answer.ranking


def test_the_labels_span_every_band():
    """The signals above reach every band, so the test above checks each one."""
    from sklearn.metrics import roc_auc_score

    labels = set()
    for signal in (0.4, 0.8, 1.2, 2.0, 3.0):
        y, p = lead_scores(20_000, 6, signal=signal)
        labels.add(expected_label(roc_auc_score(y, p)))
    assert labels == {"barely better than chance", "weakly", "acceptably", "well", "very well"}


def test_a_score_that_barely_ranks_is_not_to_be_prioritised_even_once_recalibrated():
    rng = np.random.default_rng(7)
    y = (rng.random(20_000) < 0.05).astype(np.int64)
    p = rng.uniform(0.2, 0.4, 20_000)  # over-promises, ranks at chance
    answer = answer_for(audit_arrays(y, p))
    assert answer.verdict == "miscalibrated"
    assert "do not prioritise leads by it" in answer.action


def test_a_hostile_scorer_name_is_quoted_in_the_command():
    y, p = lead_scores(20_000, 8, promise=3.0)
    name = "acme; rm -rf ~ $(reboot) 'x'"
    answer = answer_for(audit_arrays(y, p, scorer=name))
    words = shlex.split(answer.command)
    assert words[words.index("--scorer") + 1] == name
    out = words[words.index("--out") + 1]
    assert out.startswith("calibrator-") and set(out) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
    )


def test_contradicted_certainties_are_named():
    y, p = lead_scores(5_000, 9)
    p = p.copy()
    p[:200] = 1.0  # promised 100%
    answer = answer_for(audit_arrays(y, p))
    converted = y[:200].mean()
    assert answer.extremes == [f"promised 100%: 200 leads, {converted:.1%} converted"]


@pytest.mark.parametrize(
    ("verdict", "reason", "detail"),
    [
        ("miscalibrated", "miscalibrated: it over-promises", "it over-promises"),
        ("miscalibrated", "miscalibrated from the start: E = 20", "from the start: E = 20"),
        ("not yet", "not yet: only 83 resolved predictions", "only 83 resolved predictions"),
        ("calibrated", "within tolerance", "within tolerance"),
    ],
)
def test_reason_detail_drops_only_a_leading_verdict(verdict, reason, detail):
    assert reason_detail(verdict, reason) == detail


def test_a_label_the_evidence_cannot_pin_down_says_so():
    """AUC ≈ 0.58: its 90% interval (Hanley–McNeil, written out here) crosses 0.6 on 300
    conversions, so both bands are named."""
    from sklearn.metrics import roc_auc_score

    y, p = lead_scores(10_000, 6, signal=0.4)
    a, n1, n0 = roc_auc_score(y, p), int(y.sum()), int(len(y) - y.sum())
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
    assert a - 1.645 * se < 0.6 < a + 1.645 * se  # the case this test is about
    answer = answer_for(audit_arrays(y, p))
    assert answer.ranking_label == (
        f"{expected_label(a)} (could be barely better than chance to weakly)"
    )
    assert "the evidence allows anything from barely better than chance to weakly" in (
        answer.ranking
    )


def test_the_auc_interval_covers_the_true_auc_at_its_nominal_rate():
    """Hanley–McNeil's 90% interval on binormal scores (true AUC Φ(δ/√2)) in simulation."""
    from scipy.stats import norm
    from sklearn.metrics import roc_auc_score

    from assay.stats.metrics.scores import auc_interval

    rng = np.random.default_rng(11)
    shift = 0.74
    truth = norm.cdf(shift / np.sqrt(2))
    covered = 0
    for _ in range(400):
        y = (rng.random(2_000) < 0.15).astype(np.int64)
        s = rng.normal(0, 1, 2_000) + shift * y
        lower, upper = auc_interval(roc_auc_score(y, s), int(y.sum()), int(len(y) - y.sum()))
        covered += lower <= truth <= upper
    assert 0.85 <= covered / 400 <= 0.95


@pytest.mark.parametrize(("n", "promise"), [(83, 1.0), (20_000, 3.0), (40_000, 1.0), (2_000, 1.15)])
def test_the_sentence_never_repeats_the_verdict_shown_beside_it(n, promise):
    y, p = lead_scores(n, 12, promise=promise)
    answer = answer_for(audit_arrays(y, p))
    assert not answer.sentence.lower().startswith(answer.verdict), answer.sentence
