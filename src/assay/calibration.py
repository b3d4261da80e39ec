"""``assay.calibration``: one immutable answer to "does this score deserve belief?".

It carries the plug-in ECE and MCE on the audit binning, the posterior of the ECE (median,
credible interval, 95% upper bound, P(ECE ≤ tolerance)), the noise floor a perfectly
calibrated score would show here, the companion metrics, and the verdict with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from assay._validation import FloatArray, check_binary_inputs, check_choice
from assay.binning import STRATEGIES, BinSpec, bin_edges
from assay.binstats import BinStats
from assay.metrics.ece import debiased_from_stats, smooth_ece_of
from assay.metrics.scores import brier_from_stats, log_loss
from assay.metrics.significance import spiegelhalter_test
from assay.metrics.sorted_scores import SortedScores
from assay.reliability import ReliabilityTable
from assay.uncertainty import (
    EcePosterior,
    NoiseFloor,
    PosteriorSettings,
    calibration_verdict,
    ece_posterior,
    noise_floor,
    thin_data_reason,
)

RESULT_SCHEMA_VERSION = 1


def audit_bin_count(n: int) -> int:
    """Default audit binning: B = clamp(⌊n / 40⌋, 2, 15) equal-mass bins."""
    return int(min(max(n // 40, 2), 15))


@dataclass(frozen=True, eq=False)
class CalibrationReport:
    """The calibration of one binary score, with its uncertainty and verdict."""

    n: int
    positives: float
    strategy: str
    stats: BinStats
    ece: float
    mce: float
    posterior: EcePosterior | None
    noise_floor: NoiseFloor
    verdict: str
    reason: str
    tolerance: float
    probability: float
    credibility: float
    seed: int
    settings: PosteriorSettings
    companions: dict[str, float | None]

    @property
    def table(self) -> ReliabilityTable:
        return ReliabilityTable.from_stats(self.stats)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with a stable key order (same inputs and seed give the same bytes)."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "verdict": self.verdict,
            "reason": self.reason,
            "n": self.n,
            "positives": self.positives,
            "ece": self.ece,
            "mce": self.mce,
            "posterior": None if self.posterior is None else self.posterior.to_dict(),
            "noise_floor": self.noise_floor.to_dict(),
            "companions": dict(self.companions),
            "bins": self.table.to_dict(),
            "conventions": {
                "strategy": self.strategy,
                "n_bins": self.stats.n_bins,
                "edges": self.stats.edges.tolist(),
                "bins": "left-closed [lo, hi), last bin closed [lo, 1]; ECE uses bin mean scores",
                "norm": "l1",
                "tolerance": self.tolerance,
                "probability": self.probability,
                "credibility": self.credibility,
                "prior": self.settings.to_dict(),
                "seed": self.seed,
            },
        }


def _report(
    stats: BinStats,
    *,
    strategy: str,
    prob: FloatArray | None,
    companions: dict[str, float | None],
    tolerance: float,
    probability: float,
    credibility: float,
    seed: int,
    settings: PosteriorSettings | None,
) -> CalibrationReport:
    settings = settings or PosteriorSettings()
    n = stats.total_count
    positives = float(stats.sum_y.sum())
    ece = stats.calibration_error("l1")
    posterior = (
        ece_posterior(
            stats, tolerance=tolerance, credibility=credibility, seed=seed, settings=settings
        )
        if thin_data_reason(n, round(positives)) is None
        else None
    )
    verdict, reason = calibration_verdict(
        n=n, positives=round(positives), posterior=posterior, probability=probability
    )
    return CalibrationReport(
        n=n,
        positives=positives,
        strategy=strategy,
        stats=stats,
        ece=ece,
        mce=stats.calibration_error("max"),
        posterior=posterior,
        noise_floor=noise_floor(stats, ece, prob=prob, seed=seed),
        verdict=verdict,
        reason=reason,
        tolerance=tolerance,
        probability=probability,
        credibility=credibility,
        seed=seed,
        settings=settings,
        companions={
            "brier": brier_from_stats(stats).brier,
            "debiased_l2": debiased_from_stats(stats),
            **companions,
        },
    )


def calibration(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: BinSpec | None = None,
    strategy: str = "quantile",
    tolerance: float = 0.05,
    probability: float = 0.95,
    credibility: float = 0.90,
    seed: int = 0,
    sample_weight: Any = None,
    settings: PosteriorSettings | None = None,
) -> CalibrationReport:
    """Calibration of a binary score with its credible interval, noise floor and verdict.

    ``n_bins=None`` uses the audit binning B = clamp(⌊n/40⌋, 2, 15) on ``strategy`` (equal-mass
    by default). The verdict is "not yet" below 100 rows or 10 of either outcome; otherwise
    "calibrated" if P(ECE ≤ tolerance) ≥ probability, "miscalibrated" if P(ECE > tolerance) ≥
    probability, else "not yet".
    """
    check_choice(strategy, "strategy", STRATEGIES)
    labels, prob, weight = check_binary_inputs(y_true, y_prob, sample_weight)
    bins = audit_bin_count(len(prob)) if n_bins is None else n_bins
    stats = BinStats.accumulate(labels, prob, bin_edges(prob, bins, strategy), weight)
    both_classes = 0 < labels.sum() < len(labels)
    scores = SortedScores(labels, prob)  # one sort, shared by the smooth ECE and the AUC
    companions: dict[str, float | None] = {
        "smooth_ece": smooth_ece_of(scores),
        "log_loss": log_loss(labels, prob, sample_weight=weight),
        "auc": scores.auc() if both_classes else None,
        "spiegelhalter_z": None,
        "spiegelhalter_pvalue": None,
    }
    if np.any((prob > 0) & (prob < 1) & (prob != 0.5)):
        test = spiegelhalter_test(labels, prob)
        companions["spiegelhalter_z"] = test.statistic
        companions["spiegelhalter_pvalue"] = test.pvalue
    return _report(
        stats,
        strategy=strategy,
        prob=prob if weight is None else None,
        companions=companions,
        tolerance=tolerance,
        probability=probability,
        credibility=credibility,
        seed=seed,
        settings=settings,
    )


def calibration_from_stats(
    stats: BinStats,
    *,
    tolerance: float = 0.05,
    probability: float = 0.95,
    credibility: float = 0.90,
    seed: int = 0,
    settings: PosteriorSettings | None = None,
) -> CalibrationReport:
    """The same answer from merged or stored :class:`BinStats` alone (no rows needed).

    Metrics that need rows (smooth ECE, log loss, AUC, Spiegelhalter) are reported as None,
    and the noise floor uses the per-bin normal approximation.
    """
    return _report(
        stats,
        strategy="explicit",
        prob=None,
        companions={"smooth_ece": None, "log_loss": None, "auc": None},
        tolerance=tolerance,
        probability=probability,
        credibility=credibility,
        seed=seed,
        settings=settings,
    )
