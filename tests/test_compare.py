"""Comparing scorers on the same leads: ranking, indistinguishable twins, honesty, coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from assay.compare import compare, compare_arrays


@pytest.fixture(scope="module")
def vendors():
    rng = np.random.default_rng(11)
    n = 4000
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p).astype(int)
    sizes = [3000, 600, 300] + [10] * 10
    segments = np.concatenate([[f"seg{i}"] * s for i, s in enumerate(sizes)])
    thin = np.isin(segments, [f"seg{i}" for i in range(3, 13)])
    noisy = lambda: expit(logit(p) + rng.normal(0, 0.3, n))  # noqa: E731
    scores = {
        "calibrated": p,
        "overconfident": expit(1.8 * logit(p)),
        "base-rate": np.full(n, y.mean()),
        "abstainer": np.where(thin, np.nan, p),
        "twin-1": noisy(),
        "twin-2": noisy(),
    }
    return y, scores, segments, thin, compare_arrays(y, scores, segments=segments, seed=1)


def summary(result, name, which="common"):
    return next(s for s in getattr(result, which) if s.scorer == name)


def pair(result, a, b):
    return next(p for p in result.pairs if {p.a, p.b} == {a, b})


def test_calibration_is_ranked_correctly(vendors):
    *_, result = vendors
    assert summary(result, "calibrated").ece < summary(result, "overconfident").ece
    verdict = pair(result, "calibrated", "overconfident").verdict
    assert verdict == "calibrated is better calibrated"
    assert summary(result, "overconfident").verdict == "miscalibrated"
    assert summary(result, "overconfident").slope < 0.7


def test_base_rate_scorer_is_calibrated_and_useless(vendors):
    *_, result = vendors
    base = summary(result, "base-rate")
    assert base.auc == 0.5
    assert base.auc_upper < summary(result, "calibrated").auc_lower
    assert base.ece < 0.05


def test_identically_generated_scorers_cannot_be_told_apart(vendors):
    *_, result = vendors
    twins = pair(result, "twin-1", "twin-2")
    assert twins.verdict == "cannot tell apart"


def test_common_set_excludes_abstentions_and_own_sets_are_shown(vendors):
    y, _, _, thin, result = vendors
    assert result.n_common == int((~thin).sum())
    assert summary(result, "calibrated", "own").n == len(y)
    assert summary(result, "abstainer", "own").n == int((~thin).sum())


def test_honesty_rate_hand_built():
    y = np.array([1, 0] * 20 + [1, 0, 0, 1, 0])
    segments = ["big"] * 40 + ["small"] * 5
    honest = np.linspace(0.2, 0.8, 45)
    honest[[40, 41, 42, 43, 0, 1]] = np.nan  # 4 of 5 thin leads, 2 of 40 others
    result = compare_arrays(y, {"v": honest}, segments=segments)
    v = result.own[0]
    assert v.abstention_rate == pytest.approx(6 / 45)
    assert v.abstention_thin == pytest.approx(4 / 5)
    assert v.abstention_rest == pytest.approx(2 / 40)


def test_leads_scored_by_only_some_scorers(tmp_path):
    import pyarrow as pa
    from tests.conftest import build_small_ledger

    ledger = build_small_ledger(tmp_path / "l.duckdb")
    partial = ledger.labels(as_of="2024-05-01T00:00:00Z", scorer="alpha", policy="all").table
    half = partial.slice(0, 300)
    ledger.ingest_predictions(
        pa.table(
            {
                "prediction_id": [f"gamma-{e}" for e in half["entity_id"].to_pylist()],
                "entity_id": half["entity_id"],
                "scorer": ["gamma"] * half.num_rows,
                "score": half["probability"],
                "scored_at": half["scored_at"],
                "recorded_at": half["scored_at"],
                "horizon_days": half["horizon_days"],
                "target_event": half["target_event"],
            }
        ),
        now=__import__("datetime").datetime(2024, 5, 1, tzinfo=__import__("datetime").UTC),
    )
    result = compare(ledger, as_of="2024-05-01T00:00:00Z")
    ledger.close()
    gamma_own = summary(result, "gamma", "own")
    assert result.n_common == gamma_own.n <= 300
    assert summary(result, "alpha", "own").n > result.n_common
    assert gamma_own.abstention_rate == 0.0  # leads it never scored are not abstentions
