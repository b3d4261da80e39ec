"""Calibration metrics as plain functions on arrays (scikit-learn argument conventions)."""

from assay.stats.metrics.ece import (
    debiased_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    mmce,
    smooth_calibration_error,
    sweep_calibration_error,
)
from assay.stats.metrics.scores import (
    BrierDecomposition,
    CorpDecomposition,
    brier_decomposition,
    brier_from_stats,
    brier_score,
    corp_decomposition,
    log_loss,
    roc_auc,
)
from assay.stats.metrics.significance import (
    CalibrationLine,
    TestResult,
    calibration_slope_intercept,
    hosmer_lemeshow_test,
    spiegelhalter_test,
)

__all__ = [
    "BrierDecomposition",
    "CalibrationLine",
    "CorpDecomposition",
    "TestResult",
    "brier_decomposition",
    "brier_from_stats",
    "brier_score",
    "calibration_slope_intercept",
    "corp_decomposition",
    "debiased_calibration_error",
    "expected_calibration_error",
    "hosmer_lemeshow_test",
    "log_loss",
    "maximum_calibration_error",
    "mmce",
    "roc_auc",
    "smooth_calibration_error",
    "spiegelhalter_test",
    "sweep_calibration_error",
]
