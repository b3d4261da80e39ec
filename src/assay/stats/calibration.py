"""``assay.stats.calibration``: one immutable answer to "does this score deserve belief?".

It carries the posterior of every level of the calibration hierarchy (observed/expected in
the large, the slope, the ECE of the curve; :mod:`assay.stats.posterior`) with their tolerances
(:class:`assay.Tolerance`), the verdict with its direction in words (:mod:`assay.stats.verdict`),
the plug-in ECE and MCE on the audit binning (labelled as plug-in: the headline is the
posterior median), the noise floor a perfectly calibrated score would show here, scores of
exactly 0 or 1 that outcomes contradicted, and the companion metrics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from assay._validation import FloatArray, check_binary_inputs, check_choice
from assay.stats.binning import STRATEGIES, BinSpec, bin_edges
from assay.stats.binstats import BinStats
from assay.stats.metrics.ece import debiased_from_stats, smooth_ece_of
from assay.stats.metrics.scores import brier_from_stats, log_loss
from assay.stats.metrics.significance import spiegelhalter_test
from assay.stats.metrics.sorted_scores import SortedScores
from assay.stats.posterior import (
    CalibrationPosterior,
    EcePosterior,
    PosteriorSettings,
    calibration_posterior,
)
from assay.stats.reliability import ReliabilityTable
from assay.stats.tolerance import Tolerance
from assay.stats.uncertainty import NoiseFloor, noise_floor
from assay.stats.verdict import hierarchy_verdict, thin_data_reason

RESULT_SCHEMA_VERSION = 2


def audit_bin_count(n: int) -> int:
    """Default audit binning: B = clamp(⌊n / 40⌋, 2, 15) equal-mass bins."""
    return int(min(max(n // 40, 2), 15))


@dataclass(frozen=True)
class Extreme:
    """Scores of exactly 0 or 1: how many leads got them and how many converted."""

    promised: float  # 0.0 or 1.0
    n: int
    converted: int

    @property
    def contradicted(self) -> bool:
        return self.converted != round(self.promised * self.n)

    def sentence(self) -> str:
        return (
            f"promised {self.promised:.0%}: {self.n:,} leads, "
            f"{self.converted / self.n:.1%} converted"
        )


def extremes_of(labels: FloatArray, prob: FloatArray) -> list[Extreme]:
    """Leads scored exactly 0 or exactly 1, with their conversions."""
    rows = []
    for promised in (0.0, 1.0):
        chosen = prob == promised
        if chosen.any():
            rows.append(Extreme(promised, int(chosen.sum()), int(labels[chosen].sum())))
    return rows


@dataclass(frozen=True, eq=False)
class CalibrationReport:
    """The calibration of one binary score, with its uncertainty and verdict."""

    n: int
    positives: float
    strategy: str
    stats: BinStats
    ece: float  # plug-in, on the audit bins
    mce: float
    levels: CalibrationPosterior | None
    noise_floor: NoiseFloor
    verdict: str
    reason: str
    findings: list[str]
    more_leads: int | None
    extremes: list[Extreme]
    tolerance: Tolerance
    probability: float
    credibility: float
    seed: int
    settings: PosteriorSettings
    companions: dict[str, float | None]

    @property
    def table(self) -> ReliabilityTable:
        return ReliabilityTable.from_stats(self.stats)

    @property
    def posterior(self) -> EcePosterior | None:
        """The posterior of the ECE (the curve level); None on thin data."""
        return None if self.levels is None else self.levels.ece

    @property
    def mean_score(self) -> float:
        return float(self.stats.sum_p.sum() / self.stats.total_weight)

    @property
    def tolerance_words(self) -> str:
        """The tolerances in a sentence, for the line beside the verdict."""
        return "calibrated means " + self.tolerance.describe(self.mean_score)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with a stable key order (same inputs and seed give the same bytes)."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "verdict": self.verdict,
            "reason": self.reason,
            "findings": list(self.findings),
            "more_leads": self.more_leads,
            "tolerance_words": self.tolerance_words,
            "n": self.n,
            "positives": self.positives,
            "expected": float(self.stats.sum_p.sum()),
            "ece_plugin": self.ece,
            "mce_plugin": self.mce,
            "posterior": None if self.posterior is None else self.posterior.to_dict(),
            "levels": None if self.levels is None else self.levels.to_dict(),
            "noise_floor": self.noise_floor.to_dict(),
            "extremes": [asdict(e) for e in self.extremes],
            "companions": dict(self.companions),
            "bins": self.table.to_dict(),
            "conventions": {
                "strategy": self.strategy,
                "n_bins": self.stats.n_bins,
                "edges": self.stats.edges.tolist(),
                "bins": "left-closed [lo, hi), last bin closed [lo, 1]; ECE uses bin mean scores",
                "norm": "l1",
                "tolerance": self.tolerance.to_dict(),
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
    extremes: list[Extreme],
    tolerance: Tolerance | float | None,
    probability: float,
    credibility: float,
    seed: int,
    settings: PosteriorSettings | None,
) -> CalibrationReport:
    settings = settings or PosteriorSettings()
    tolerance = Tolerance.coerce(tolerance)
    n = stats.total_count
    positives = float(stats.sum_y.sum())
    ece = stats.calibration_error("l1")
    levels = (
        calibration_posterior(
            stats, tolerance=tolerance, credibility=credibility, seed=seed, settings=settings
        )
        if thin_data_reason(n, round(positives)) is None
        else None
    )
    table = ReliabilityTable.from_stats(stats)
    answer = hierarchy_verdict(
        n=n, positives=round(positives), expected=float(stats.sum_p.sum()), posterior=levels,
        table=table, probability=probability,
    )  # fmt: skip
    wrong = [e.sentence() for e in extremes if e.contradicted]
    reason = answer.reason + (
        f"; scores of exactly 0 or 1 were contradicted by outcomes ({'; '.join(wrong)})"
        if wrong
        else ""
    )
    return CalibrationReport(
        n=n,
        positives=positives,
        strategy=strategy,
        stats=stats,
        ece=ece,
        mce=stats.calibration_error("max"),
        levels=levels,
        noise_floor=noise_floor(stats, ece, prob=prob, seed=seed),
        verdict=answer.verdict,
        reason=reason,
        findings=answer.findings + wrong,
        more_leads=answer.more_leads,
        extremes=extremes,
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
    tolerance: Tolerance | float | None = None,
    probability: float = 0.95,
    credibility: float = 0.90,
    seed: int = 0,
    sample_weight: Any = None,
    settings: PosteriorSettings | None = None,
) -> CalibrationReport:
    """Calibration of a binary score with its credible interval, noise floor and verdict.

    ``n_bins=None`` uses the audit binning B = clamp(⌊n/40⌋, 2, 15) on ``strategy`` (equal-mass
    by default). ``tolerance`` is a :class:`Tolerance` (None: the defaults; a bare number is
    the first version's absolute ECE tolerance). The verdict follows :mod:`assay.stats.verdict`:
    "not yet" below 100 rows or 10 of either outcome; "miscalibrated" when some level lies
    outside its tolerance with probability ≥ ``probability``; "calibrated" when all lie within
    jointly with that probability; else "not yet".
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
        extremes=extremes_of(labels, prob),
        tolerance=tolerance,
        probability=probability,
        credibility=credibility,
        seed=seed,
        settings=settings,
    )


def calibration_from_stats(
    stats: BinStats,
    *,
    tolerance: Tolerance | float | None = None,
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
        extremes=[],
        tolerance=tolerance,
        probability=probability,
        credibility=credibility,
        seed=seed,
        settings=settings,
    )
