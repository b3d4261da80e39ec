"""What the report draws, computed once in the audit layer.

Renderers (:mod:`assay.report.plots`) only place these series on axes: they open no ledger,
fit nothing and read no lead. Every series is small whatever the number of leads: bounded by
the bins, by the distinct values of a monotone fit, or by a fixed grid.

* **Reliability diagram** (:class:`ReliabilitySeries`): per non-empty bin the mean score p̄_b
  and the observed rate ȳ_b, with a band (the posterior's per-bin bands of an audit, or a
  Jeffreys interval Beta(k_b + ½, n_b − k_b + ½) per bin), the reach of both axes,
  reach = min(1, 1.1 · max(q₉₉.₅(p), max_b ȳ_b, max_b upper_b)), and the histogram of the scores
  in :data:`HISTOGRAM_BINS` equal bins over [0, reach].
* **CORP curve** (:class:`StepSeries`): the PAV fit x̂ of y on p (ties pooled, Dimitriadis,
  Gneiting & Jordan 2021) as a right-continuous step on the sorted distinct scores, keeping only
  the knots where x̂ changes (and the last score): the same drawing, a few hundred points.
* **Decisions**: the share of leads scored at or above the certified threshold.
* **Segments**: the funnel limits around the reference rate
  (:func:`assay.stats.segments.funnel_limits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import beta

from assay.stats.binning import bin_edges
from assay.stats.binstats import BinStats
from assay.stats.calibration import CalibrationReport, audit_bin_count
from assay.stats.isotonic import isotonic_fit
from assay.stats.segments import FunnelLimits, SegmentRates, funnel_limits

if TYPE_CHECKING:
    from assay._validation import FloatArray

#: Bars of the score histogram under a reliability diagram.
HISTOGRAM_BINS = 50
#: The axes reach past this quantile of the scores (and every rate and band drawn).
REACH_QUANTILE = 0.995


def jeffreys_interval(positives: Any, n: Any, credibility: float) -> tuple[FloatArray, FloatArray]:
    """Return the equal-tailed Jeffreys interval of a rate.

    The Beta(k + ½, n − k + ½) quantiles at (1 ∓ credibility)/2, elementwise.
    """
    k, size = np.asarray(positives, dtype=np.float64), np.asarray(n, dtype=np.float64)
    tail = (1 - credibility) / 2
    lower = beta.ppf(tail, k + 0.5, size - k + 0.5)
    upper = beta.ppf(1 - tail, k + 0.5, size - k + 0.5)
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class ReliabilitySeries:
    """A reliability diagram's series (module docstring); arrays run over non-empty bins."""

    mean_score: FloatArray
    observed: FloatArray
    lower: FloatArray | None  # the band, None when there is none (thin data)
    upper: FloatArray | None
    band: str  # what the band is, for the legend
    reach: float  # both axes run over [0, reach]
    histogram: FloatArray  # leads per bar, HISTOGRAM_BINS equal bars over [0, reach]


def _reliability(
    stats: BinStats,
    prob: FloatArray,
    band: tuple[FloatArray, FloatArray] | None,
    band_reach: float | None,
    label: str,
) -> ReliabilitySeries:
    keep = stats.nonempty
    observed = stats.observed_rate
    reach = [float(np.quantile(prob, REACH_QUANTILE)), float(np.nanmax(observed))]
    if band_reach is not None:
        reach.append(band_reach)
    limit = min(1.0, 1.1 * max(reach))
    counts, _ = np.histogram(prob, bins=HISTOGRAM_BINS, range=(0.0, limit))
    return ReliabilitySeries(
        mean_score=stats.mean_prob[keep],
        observed=observed[keep],
        lower=None if band is None else band[0],
        upper=None if band is None else band[1],
        band=label,
        reach=limit,
        histogram=counts.astype(np.float64),
    )


def audit_reliability(report: CalibrationReport, prob: FloatArray) -> ReliabilitySeries:
    """Return the audit's diagram: its bins with the posterior's per-bin credible bands."""
    stats, posterior = report.stats, report.posterior
    if posterior is None:
        return _reliability(stats, prob, None, None, "")
    keep = stats.nonempty
    band = (posterior.rate_lower[keep], posterior.rate_upper[keep])
    upper = float(np.nanmax(posterior.rate_upper))
    return _reliability(stats, prob, band, upper, f"{report.credibility:.0%} credible band")


def binned_reliability(
    labels: FloatArray, prob: FloatArray, credibility: float
) -> ReliabilitySeries:
    """Return a reliability diagram without a posterior.

    The audit binning (B = clamp(⌊n/40⌋, 2, 15) equal-mass bins) with a Jeffreys interval per
    bin.
    """
    stats = BinStats.accumulate(
        labels, prob, bin_edges(prob, audit_bin_count(len(prob)), "quantile")
    )
    keep = stats.nonempty
    band = jeffreys_interval(stats.sum_y[keep], stats.count[keep], credibility)
    label = f"{credibility:.0%} Jeffreys interval per bin"
    return _reliability(stats, prob, band, float(np.max(band[1], initial=0.0)), label)


@dataclass(frozen=True, eq=False)
class StepSeries:
    """A right-continuous step function: ``y[i]`` holds on [``x[i]``, ``x[i + 1]``)."""

    x: FloatArray
    y: FloatArray


def corp_curve(labels: FloatArray, prob: FloatArray) -> StepSeries:
    """Return the CORP reliability curve: the PAV fit on the distinct scores, at its knots."""
    _, (scores, fitted) = isotonic_fit(prob, labels)
    knots = np.concatenate(([True], fitted[1:] != fitted[:-1]))
    knots[-1] = True
    return StepSeries(scores[knots], fitted[knots])


@dataclass(frozen=True, eq=False)
class AuditCharts:
    """Every series the report draws for one audit."""

    reliability: ReliabilitySeries
    corp: StepSeries
    ece_limit: float  # the tolerated ECE at the mean score: the cohort chart's line
    certified_coverage: float | None  # share of leads scored ≥ the certified threshold
    funnel: FunnelLimits | None


def audit_charts(
    report: CalibrationReport,
    labels: FloatArray,
    prob: FloatArray,
    *,
    certified: float | None,
    segments: SegmentRates | None,
) -> AuditCharts:
    """Return the series of one audit (``certified``: its certified threshold, if any)."""
    return AuditCharts(
        reliability=audit_reliability(report, prob),
        corp=corp_curve(labels, prob),
        ece_limit=report.tolerance.curve_limit(report.mean_score),
        certified_coverage=None if certified is None else float(np.mean(prob >= certified)),
        funnel=None if segments is None else funnel_limits(segments),
    )
