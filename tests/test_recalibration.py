"""Calibrators against scikit-learn, closed forms, hand-written solvers and held-out data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, logit, softmax
from sklearn.base import clone
from sklearn.isotonic import IsotonicRegression

import assay
from assay import AssayInputError
from assay.stats.recalibration import (
    CALIBRATORS,
    BetaCalibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    TemperatureCalibrator,
    VennAbersCalibrator,
    _method_result,
    load_calibrator,
    recalibrate,
)


def miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < expit(0.6 * logit(p) + 0.4)).astype(int)
    return y, p


def test_isotonic_equals_scikit_learn():
    y, p = miscalibrated(3000, 1)
    p = np.round(p, 2)  # ties
    ours = IsotonicCalibrator().fit(p, y)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(p, y)
    grid = np.linspace(0, 1, 501)
    np.testing.assert_allclose(ours.predict_proba(grid)[:, 1], theirs.predict(grid), atol=1e-12)


def test_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, (20_000, 4))
    y = np.array([rng.choice(4, p=row) for row in softmax(z / 2.0, axis=1)])
    fitted = TemperatureCalibrator(input="score").fit(z, y)
    assert fitted.temperature_ == pytest.approx(2.0, rel=0.05)
    direct = minimize_scalar(
        lambda t: -np.mean(log_softmax(z / t, axis=1)[np.arange(len(y)), y]),
        bounds=(0.1, 10), method="bounded", options={"xatol": 1e-10},
    )  # fmt: skip
    assert fitted.temperature_ == pytest.approx(direct.x, rel=1e-6)


def test_platt_matches_a_hand_written_newton_solution():
    y, p = miscalibrated(5000, 3)
    x = logit(p)
    positives, negatives = y.sum(), len(y) - y.sum()
    t = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    theta = np.zeros(2)
    design = np.column_stack((x, np.ones_like(x)))
    for _ in range(50):  # Newton–Raphson on the logistic likelihood
        q = expit(design @ theta)
        hessian = design.T @ (design * (q * (1 - q))[:, None])
        theta -= np.linalg.solve(hessian, design.T @ (q - t))
    fitted = PlattCalibrator().fit(p, y)
    assert fitted.a_ == pytest.approx(theta[0], rel=1e-6)
    assert fitted.b_ == pytest.approx(theta[1], rel=1e-6, abs=1e-8)


def test_beta_reduces_to_platt_when_a_equals_b():
    rng = np.random.default_rng(4)
    p = rng.beta(2, 5, 50_000)
    y = (rng.random(len(p)) < expit(0.7 * logit(p) + 0.2)).astype(int)  # a = b = 0.7
    beta = BetaCalibrator().fit(p, y)
    assert beta.a_ == pytest.approx(beta.b_, abs=0.05)
    platt = PlattCalibrator().fit(p, y)
    grid = np.linspace(0.01, 0.99, 99)
    np.testing.assert_allclose(
        beta.predict_proba(grid)[:, 1], platt.predict_proba(grid)[:, 1], atol=0.01
    )


@pytest.mark.parametrize("name", sorted(CALIBRATORS))
def test_every_method_lowers_held_out_ece(name):
    y, p = miscalibrated(20_000, 5)
    train, test = slice(0, 10_000), slice(10_000, None)
    fitted = CALIBRATORS[name]().fit(p[train], y[train])
    before = assay.expected_calibration_error(y[test], p[test])
    after = assay.expected_calibration_error(y[test], fitted.predict_proba(p[test])[:, 1])
    assert after < before / 2, (name, before, after)


def test_recalibrate_picks_the_lowest_out_of_fold_log_loss():
    y, p = miscalibrated(4000, 6)
    result = recalibrate(y, p, seed=1)
    best = min(result.table, key=lambda r: (r.log_loss, r.brier))
    assert result.method == best.method
    assert {r.method for r in result.table} == {
        "platt", "isotonic", "histogram", "beta", "venn-abers"
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(CALIBRATORS))
def test_json_round_trip_and_fingerprint(name):
    y, p = miscalibrated(2000, 7)
    fitted = CALIBRATORS[name]().fit(p, y)
    loaded = load_calibrator(fitted.to_json())
    grid = np.linspace(0, 1, 101)
    np.testing.assert_array_equal(loaded.predict_proba(grid), fitted.predict_proba(grid))
    assert loaded.fingerprint == fitted.fingerprint
    tampered = json.loads(fitted.to_json())
    first_key = sorted(tampered["state"])[0]
    value = tampered["state"][first_key]
    tampered["state"][first_key] = (np.asarray(value, dtype=float) * 1.01 + 0.001).tolist()
    with pytest.raises(AssayInputError, match="fingerprint does not match"):
        load_calibrator(json.dumps(tampered))


def _venn_abers_by_definition(scores, labels, s):
    """Refit isotonic regression with (s, 0) and with (s, 1) appended; read the fit at s."""
    pair = []
    for label in (0, 1):
        x = np.append(scores, s)
        pooled = IsotonicRegression().fit(x, np.append(labels, label))
        pair.append(pooled.predict([s])[0])
    return pair


@pytest.mark.slow  # long: a brute-force reference
def test_venn_abers_equals_its_definition_by_brute_force():
    rng = np.random.default_rng(9)
    for _ in range(60):
        m = int(rng.integers(1, 25))
        scores = np.round(rng.random(m), int(rng.integers(1, 3)))  # ties at 1-2 decimals
        labels = (rng.random(m) < scores).astype(int)
        fitted = VennAbersCalibrator().fit(scores, labels)
        tests = np.concatenate((scores, rng.random(6), [-0.5, 1.5]))
        p0, p1 = fitted.predict_interval(tests)
        expected = np.array([_venn_abers_by_definition(scores, labels, s) for s in tests])
        np.testing.assert_allclose(p0, expected[:, 0], atol=1e-12)
        np.testing.assert_allclose(p1, expected[:, 1], atol=1e-12)
        assert (p0 <= p1).all()
        np.testing.assert_allclose(
            fitted.predict_proba(tests)[:, 1], p1 / (1 - p0 + p1), atol=1e-15
        )


def test_venn_abers_interval_brackets_the_isotonic_fit_and_narrows_with_data():
    y, p = miscalibrated(20_000, 10)
    widths = []
    for m in (200, 20_000):
        fitted = VennAbersCalibrator().fit(p[:m], y[:m])
        p0, p1 = fitted.predict_interval(p[:m])
        isotonic = IsotonicCalibrator().fit(p[:m], y[:m]).predict_proba(p[:m])[:, 1]
        assert (p0 <= isotonic + 1e-12).all() and (isotonic <= p1 + 1e-12).all()
        widths.append(float(np.mean(p1 - p0)))
    assert widths[1] < widths[0] / 10


#: The scikit-learn common checks that apply to one-score-per-row estimators (the rest feed
#: multi-feature matrices, which is why scikit-learn's own IsotonicRegression skips them all).
APPLICABLE_CHECKS = [
    "check_estimator_cloneable", "check_estimator_repr", "check_no_attributes_set_in_init",
    "check_get_params_invariance", "check_set_params", "check_parameters_default_constructible",
    "check_do_not_raise_errors_in_init_or_set_params", "check_mixin_order",
    "check_estimators_unfitted", "check_valid_tag_types", "check_estimator_tags_renamed",
    "check_fit1d", "check_fit_check_is_fitted", "check_fit_idempotent",
]  # fmt: skip


@pytest.mark.parametrize("check", APPLICABLE_CHECKS)
@pytest.mark.parametrize("name", sorted(CALIBRATORS))
def test_scikit_learn_estimator_checks(name, check):
    import warnings

    from sklearn.utils import estimator_checks

    calibrator = CALIBRATORS[name](input="score") if name == "temperature" else CALIBRATORS[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(estimator_checks, check)(type(calibrator).__name__, calibrator)


def test_calibrators_work_inside_scikit_learn_model_selection():
    from sklearn.model_selection import cross_val_predict

    y, p = miscalibrated(3000, 11)
    for name in ("platt", "venn-abers"):
        out_of_fold = cross_val_predict(
            CALIBRATORS[name](), p[:, None], y, cv=3, method="predict_proba"
        )
        assert out_of_fold.shape == (3000, 2)
        np.testing.assert_allclose(out_of_fold.sum(axis=1), 1.0)


def test_scikit_learn_estimator_api():
    calibrator = PlattCalibrator(input="score")
    assert clone(calibrator).get_params() == {"input": "score"}
    y, p = miscalibrated(500, 8)
    assert calibrator.fit(p, y) is calibrator
    assert calibrator.predict_proba(p).shape == (500, 2)
    assert set(calibrator.predict(p)) <= {0, 1}


def test_cli_recalibrate_and_apply_as_a_derived_scorer(tmp_path):
    import datetime as dt

    from tests.conftest import build_small_ledger
    from typer.testing import CliRunner

    from assay.cli.main import app
    from assay.ledger import Ledger

    path = tmp_path / "small.duckdb"
    build_small_ledger(path).close()
    runner = CliRunner()
    out = tmp_path / "calibrator.json"
    arguments = ["recalibrate", "--scorer", "beta", "--out", str(out), "--ledger", str(path)]
    fitted = runner.invoke(app, [*arguments, "--as-of", "2024-05-01T00:00:00Z"])
    assert fitted.exit_code == 0, fitted.output
    assert "out-of-fold" in fitted.output
    calibrator = load_calibrator(out.read_text())
    applied = runner.invoke(
        app, ["ingest", "apply-calibrator", str(out), "--scorer", "beta", "--ledger", str(path)]
    )
    assert applied.exit_code == 0, applied.output
    with Ledger(path, read_only=True) as ledger:
        derived = [s for s in ledger.scorers() if s.startswith("beta+")]
        assert len(derived) == 1
        now = ledger.labels(scorer=derived[0], policy="all").table
        assert set(now["model_version"].to_pylist()) == {calibrator.fingerprint[:16]}
        original = ledger.labels(scorer="beta", policy="all").table
        expected = calibrator.predict_proba(original["probability"].to_numpy())[:, 1]
        np.testing.assert_allclose(sorted(now["probability"].to_pylist()), sorted(expected))
        # Recorded now: an audit as of the original date cannot see the derived scorer.
        before = ledger.labels(scorer=derived[0], as_of=dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
        assert before.table.num_rows == 0


@pytest.mark.parametrize(("n", "seed"), [(80, 1), (3000, 2)])
def test_table_rows_are_the_calibration_report_numbers(n, seed):
    """The table's ECE and interval come from the posterior alone, equal to what the full
    ``assay.calibration`` report says of the same out-of-fold probabilities (None under 100
    rows), and its scores equal the public log loss and Brier score."""
    y, p = miscalibrated(n, seed)
    q = VennAbersCalibrator().fit(p[::2], y[::2]).predict_proba(p)[:, 1]
    row = _method_result("venn-abers", y.astype(float), q, seed)
    report = assay.calibration(y, q, seed=seed)
    assert row.ece == report.ece
    if report.posterior is None:
        assert row.ece_lower is None and row.ece_upper is None
    else:
        assert (row.ece_lower, row.ece_upper) == (report.posterior.lower, report.posterior.upper)
    assert row.log_loss == assay.log_loss(y, q)
    assert row.brier == assay.brier_score(y, q)


def test_venn_abers_held_out_predictions_equal_fit_then_predict():
    """Bridging only the held-out positions gives the full table's answers bit for bit,
    at ties, gaps and scores beyond either end of the calibration scores."""
    y, p = miscalibrated(6000, 8)
    p = np.round(p, 3)  # ties with the calibration scores
    held_out = np.concatenate((np.round(np.random.default_rng(9).random(2000), 4), [0.0, 1.0]))
    full = VennAbersCalibrator().fit(p, y).predict_proba(held_out)[:, 1]
    assert np.array_equal(VennAbersCalibrator()._out_of_fold(p, y, held_out), full)


def test_newton_logistic_fits_solve_the_score_equations():
    """Platt (smoothed targets) and beta (0/1 outcomes) sit where the log-likelihood's
    gradient vanishes, and beta equals scikit-learn's unpenalised logistic regression on
    (ln p, −ln(1 − p))."""
    from sklearn.linear_model import LogisticRegression

    y, p = miscalibrated(20_000, 10)
    platt = PlattCalibrator().fit(p, y)
    positives, negatives = y.sum(), len(y) - y.sum()
    t = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    x = logit(p)
    residual = t - expit(platt.a_ * x + platt.b_)
    assert abs(residual @ x) / len(y) < 1e-10 and abs(residual.sum()) / len(y) < 1e-10
    beta = BetaCalibrator().fit(p, y)
    features = np.column_stack((np.log(p), -np.log(1 - p)))
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(features, y)
    assert beta.a_ > 0 and beta.b_ > 0
    np.testing.assert_allclose(
        [beta.a_, beta.b_, beta.c_], [*reference.coef_[0], reference.intercept_[0]], rtol=1e-6
    )
