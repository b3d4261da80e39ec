"""assay: does this score deserve belief? Calibration measured honestly, with its evidence.

The public names load on first use (PEP 562, :mod:`assay._lazy`): ``import assay`` loads no
third-party module at all; ``assay.expected_calibration_error`` brings in NumPy and SciPy, and
``assay.Monitor`` the ledger (DuckDB). ``_EXPORTS`` maps every public name to the module that
defines it; the ``TYPE_CHECKING`` imports below say the same to type checkers and editors.
Importing assay has no side effects beyond loading modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay._lazy import lazy_exports

if TYPE_CHECKING:
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
    from assay.stats.segments import segment_calibration, segment_rates
    from assay.stats.tolerance import Tolerance
    from assay.stats.uncertainty import NoiseFloor

__version__ = "0.1.0"

#: Public name → the module that defines it (one row per name; ``tests/test_entry.py`` checks
#: that this table, ``__all__`` and the ``TYPE_CHECKING`` imports above agree).
_EXPORTS: dict[str, str] = {
    "AssayInputError": "assay._validation",
    "Monitor": "assay.audit.monitor",
    "BinStats": "assay.stats.binstats",
    "CalibrationReport": "assay.stats.calibration",
    "calibration": "assay.stats.calibration",
    "calibration_from_stats": "assay.stats.calibration",
    "CertifiedThreshold": "assay.stats.decisions",
    "NetBenefit": "assay.stats.decisions",
    "RiskCoverage": "assay.stats.decisions",
    "certify_threshold": "assay.stats.decisions",
    "net_benefit": "assay.stats.decisions",
    "risk_coverage": "assay.stats.decisions",
    "BrierDecomposition": "assay.stats.metrics",
    "CalibrationLine": "assay.stats.metrics",
    "CorpDecomposition": "assay.stats.metrics",
    "TestResult": "assay.stats.metrics",
    "brier_decomposition": "assay.stats.metrics",
    "brier_score": "assay.stats.metrics",
    "calibration_slope_intercept": "assay.stats.metrics",
    "corp_decomposition": "assay.stats.metrics",
    "debiased_calibration_error": "assay.stats.metrics",
    "expected_calibration_error": "assay.stats.metrics",
    "hosmer_lemeshow_test": "assay.stats.metrics",
    "log_loss": "assay.stats.metrics",
    "maximum_calibration_error": "assay.stats.metrics",
    "mmce": "assay.stats.metrics",
    "roc_auc": "assay.stats.metrics",
    "smooth_calibration_error": "assay.stats.metrics",
    "spiegelhalter_test": "assay.stats.metrics",
    "sweep_calibration_error": "assay.stats.metrics",
    "CalibrationPosterior": "assay.stats.posterior",
    "EcePosterior": "assay.stats.posterior",
    "LevelPosterior": "assay.stats.posterior",
    "PosteriorSettings": "assay.stats.posterior",
    "BetaCalibrator": "assay.stats.recalibration",
    "HistogramCalibrator": "assay.stats.recalibration",
    "IsotonicCalibrator": "assay.stats.recalibration",
    "PlattCalibrator": "assay.stats.recalibration",
    "TemperatureCalibrator": "assay.stats.recalibration",
    "VennAbersCalibrator": "assay.stats.recalibration",
    "load_calibrator": "assay.stats.recalibration",
    "recalibrate": "assay.stats.recalibration",
    "ReliabilityTable": "assay.stats.reliability",
    "reliability_table": "assay.stats.reliability",
    "segment_calibration": "assay.stats.segments",
    "segment_rates": "assay.stats.segments",
    "Tolerance": "assay.stats.tolerance",
    "NoiseFloor": "assay.stats.uncertainty",
}

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
    "segment_calibration",
    "segment_rates",
    "smooth_calibration_error",
    "spiegelhalter_test",
    "sweep_calibration_error",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
