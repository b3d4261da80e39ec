"""assay: does this score deserve belief? Calibration measured honestly, with its evidence."""

from assay._validation import AssayInputError
from assay.audit.monitor import Monitor
from assay.stats.binstats import BinStats
from assay.stats.calibration import CalibrationReport, calibration, calibration_from_stats
from assay.stats.decisions import (
    CertifiedThreshold,
    NetBenefit,
    RiskCoverage,
    certify_threshold,
    net_benefit,
    risk_coverage,
)
from assay.stats.metrics import (
    BrierDecomposition,
    CalibrationLine,
    CorpDecomposition,
    TestResult,
    brier_decomposition,
    brier_score,
    calibration_slope_intercept,
    corp_decomposition,
    debiased_calibration_error,
    expected_calibration_error,
    hosmer_lemeshow_test,
    log_loss,
    maximum_calibration_error,
    mmce,
    roc_auc,
    smooth_calibration_error,
    spiegelhalter_test,
    sweep_calibration_error,
)
from assay.stats.posterior import (
    CalibrationPosterior,
    EcePosterior,
    LevelPosterior,
    PosteriorSettings,
)
from assay.stats.recalibration import (
    BetaCalibrator,
    HistogramCalibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    TemperatureCalibrator,
    VennAbersCalibrator,
    load_calibrator,
    recalibrate,
)
from assay.stats.reliability import ReliabilityTable, reliability_table
from assay.stats.tolerance import Tolerance
from assay.stats.uncertainty import NoiseFloor

__version__ = "0.1.0"

__all__ = [
    "AssayInputError",
    "BetaCalibrator",
    "BinStats",
    "BrierDecomposition",
    "CalibrationLine",
    "CalibrationPosterior",
    "CalibrationReport",
    "CertifiedThreshold",
    "CorpDecomposition",
    "EcePosterior",
    "HistogramCalibrator",
    "IsotonicCalibrator",
    "LevelPosterior",
    "Monitor",
    "NetBenefit",
    "NoiseFloor",
    "PlattCalibrator",
    "PosteriorSettings",
    "ReliabilityTable",
    "RiskCoverage",
    "TemperatureCalibrator",
    "TestResult",
    "Tolerance",
    "VennAbersCalibrator",
    "__version__",
    "brier_decomposition",
    "brier_score",
    "calibration",
    "calibration_from_stats",
    "calibration_slope_intercept",
    "certify_threshold",
    "corp_decomposition",
    "debiased_calibration_error",
    "expected_calibration_error",
    "hosmer_lemeshow_test",
    "load_calibrator",
    "log_loss",
    "maximum_calibration_error",
    "mmce",
    "net_benefit",
    "recalibrate",
    "reliability_table",
    "risk_coverage",
    "roc_auc",
    "smooth_calibration_error",
    "spiegelhalter_test",
    "sweep_calibration_error",
]
