"""The verdict on a score's calibration, with its direction, in words a sales manager reads.

**Rule** (one rule for audits, cohorts and everything built on :func:`assay.stats.calibration`):

* "not yet" when the data are too thin for any verdict (``thin_data_reason``);
* "miscalibrated" when some level of the hierarchy lies outside its tolerance with posterior
  probability ≥ ``probability`` (0.95): observed/expected conversions (in the large), the
  calibration slope (weak) or the ECE (the curve);
* "calibrated" when every level lies within its tolerance jointly with probability ≥
  ``probability``;
* otherwise "not yet", with roughly how many more matured leads would settle it: a posterior
  of standard deviation s at n leads, whose median lies d from the nearest tolerance edge,
  becomes decisive at about n·(1.645·s/d)² leads if the estimate holds (the width of a
  posterior shrinks like 1/√n).

**Direction.** A miscalibrated score is said to *over-promise* (O/E < 1: fewer conversions
than promised) or *under-promise* (O/E > 1), to be *over-confident* (slope < 1: scores spread
further apart than the outcomes; with O/E = 1, high scores too high and low scores too low)
or *under-confident* (slope > 1), and where: the score band with the largest gap between
promised and observed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from assay.stats.posterior import CalibrationPosterior, LevelPosterior
    from assay.stats.reliability import ReliabilityTable

MIN_ROWS = 100
MIN_CLASS_COUNT = 10
#: One-sided 95% normal quantile: how far a decisive posterior's median sits from an edge.
_Z = 1.645


@dataclass(frozen=True)
class Verdict:
    """The verdict, its reason, the per-level findings and the extra leads a "not yet" needs."""

    verdict: str  # "calibrated" | "miscalibrated" | "not yet"
    reason: str
    findings: list[str]  # one sentence per level outside tolerance (direction and where)
    more_leads: int | None  # "not yet" on enough data: rough extra matured leads needed


def thin_data_reason(n: int, positives: int) -> str | None:
    """Why the data are too thin for any verdict, or None when there is enough."""
    negatives = n - positives
    if n < MIN_ROWS:
        return f"not yet: only {n:,} resolved predictions; at least {MIN_ROWS} are needed"
    if positives < MIN_CLASS_COUNT:
        return f"not yet: only {positives:,} conversions; at least {MIN_CLASS_COUNT} are needed"
    if negatives < MIN_CLASS_COUNT:
        return f"not yet: only {negatives:,} non-conversions; at least {MIN_CLASS_COUNT} are needed"
    return None


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _ratio_finding(level: LevelPosterior, expected: float, observed: float) -> str:
    way = "over-promises" if level.median < 1 else "under-promises"
    return (
        f"it {way}: {expected:,.0f} conversions were promised and {observed:,.0f} happened "
        f"(observed/expected {level.median:.2f}, interval {level.lower:.2f}–{level.upper:.2f}; "
        f"tolerance {level.band[0]:.2f}–{level.band[1]:.2f})"
    )


def _slope_finding(level: LevelPosterior) -> str:
    if level.median < 1:
        way = "over-confident: its scores are spread further apart than the outcomes they predict"
    else:
        way = "under-confident: its scores are bunched closer together than the outcomes are"
    return (
        f"it is {way} (calibration slope {level.median:.2f}, interval "
        f"{level.lower:.2f}–{level.upper:.2f}; tolerance {level.band[0]:.2f}–{level.band[1]:.2f})"
    )


def largest_gap(table: ReliabilityTable) -> str | None:
    """Describe the score band where promised and observed rates differ most (weighted by leads)."""
    if len(table) == 0:
        return None
    gap = np.nan_to_num(np.abs(table.gap) * np.sqrt(table.n))
    i = int(np.argmax(gap))
    if table.n[i] == 0:
        return None
    return (
        f"the largest gap is for scores {_pct(table.lower[i])}–{_pct(table.upper[i])}: "
        f"promised {_pct(table.mean_score[i])}, observed {_pct(table.observed_rate[i])} "
        f"({int(table.n[i]):,} leads)"
    )


def _more_leads(levels: list[tuple[float, float]], n: int) -> int | None:
    """Rough extra leads until every undecided level is decisive: (sd, distance to an edge)."""
    needed = 0.0
    for sd, distance in levels:
        if sd <= 0:
            continue
        needed = max(needed, n * (_Z * sd / max(distance, 1e-12)) ** 2 - n)
    if needed <= 0:
        return None
    return int(min(needed, 100 * n))


def _undecided(posterior: CalibrationPosterior, probability: float) -> list[tuple[float, float]]:
    """(sd, distance from the median to the nearest edge) of every level not yet decisive."""
    rows = []
    for level in (posterior.ratio, posterior.slope):
        if level is None or max(level.prob_within, level.prob_below, level.prob_above) >= (
            probability
        ):
            continue
        distance = float(min(abs(level.median - edge) for edge in level.band))
        rows.append((float(np.std(level.samples)), distance))
    ece = posterior.ece
    if max(ece.prob_within_tolerance, 1 - ece.prob_within_tolerance) < probability:
        rows.append((float(np.std(ece.samples)), abs(ece.median - ece.tolerance)))
    return rows


def hierarchy_verdict(
    *,
    n: int,
    positives: int,
    expected: float,
    posterior: CalibrationPosterior | None,
    table: ReliabilityTable,
    probability: float = 0.95,
) -> Verdict:
    """Return the verdict and its reason (module docstring); ``expected`` is Σp over the leads."""
    thin = thin_data_reason(n, positives)
    if thin is not None or posterior is None:
        return Verdict("not yet", thin or "not yet: no posterior", [], None)
    ratio, slope, ece = posterior.ratio, posterior.slope, posterior.ece
    findings = []
    if max(ratio.prob_below, ratio.prob_above) >= probability:
        findings.append(_ratio_finding(ratio, expected, positives))
    if slope is not None and max(slope.prob_below, slope.prob_above) >= probability:
        findings.append(_slope_finding(slope))
    if 1 - ece.prob_within_tolerance >= probability:
        findings.append(
            f"the typical gap between promised and observed rates is {100 * ece.median:.1f} "
            f"points (interval {100 * ece.lower:.1f}–{100 * ece.upper:.1f}), more than the "
            f"{100 * ece.tolerance:.1f} points allowed"
        )
    summary = _summary(posterior)
    if findings:
        where = largest_gap(table)
        text = "; ".join(findings + ([where] if where else []))
        return Verdict("miscalibrated", f"miscalibrated: {text}", findings, None)
    joint = posterior.prob_all_within
    if joint >= probability:
        return Verdict(
            "calibrated",
            f"calibrated: within tolerance on every level with probability {joint:.2f} ({summary})",
            [],
            None,
        )
    more = _more_leads(_undecided(posterior, probability), n)
    settle = (
        f"; roughly {more:,} more matured leads would settle it if the estimates hold"
        if more
        else ""
    )
    return Verdict(
        "not yet",
        f"not yet: the evidence cannot tell; P(within tolerance) = {joint:.2f} and "
        f"{probability:.2f} is needed either way{settle} ({summary})",
        [],
        more,
    )


def _summary(posterior: CalibrationPosterior) -> str:
    ratio, slope, ece = posterior.ratio, posterior.slope, posterior.ece
    parts = [f"observed/expected {ratio.median:.2f} ({ratio.lower:.2f}–{ratio.upper:.2f})"]
    if slope is not None:
        parts.append(f"slope {slope.median:.2f} ({slope.lower:.2f}–{slope.upper:.2f})")
    parts.append(
        f"typical gap {100 * ece.median:.1f} points ({100 * ece.lower:.1f}–{100 * ece.upper:.1f})"
    )
    return ", ".join(parts)
