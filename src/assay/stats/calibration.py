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
from assay.stats.metrics.scores import _log_loss, brier_from_stats
from assay.stats.metrics.significance import _spiegelhalter
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
#: ``noise_floor=`` choices: resample the rows exactly (up to ``EXACT_RESAMPLING_ROWS``, the
#: per-bin normal approximation beyond), or always the normal approximation (no pass over rows).
NOISE_FLOORS = ("auto", "normal")


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
        """Whether the outcomes disagree with the promise (any 0 converted, any 1 did not)."""
        return self.converted != round(self.promised * self.n)

    def sentence(self) -> str:
        """Describe the promise and what happened, for a finding."""
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
    """The calibration of one binary score, with its uncertainty and verdict.

    Built by :func:`calibration` (from rows) or :func:`calibration_from_stats` (from
    :class:`BinStats`). The headline number is the posterior median of the ECE
    (:attr:`posterior`); ``ece`` and ``mce`` are plug-in values on the audit bins.
    ``to_dict`` gives the JSON document, byte-stable for the same inputs and seed.

    Parameters
    ----------
    n : int
        Number of rows.
    positives : float
        Number (weighted sum) of positive outcomes.
    strategy : str
        Binning strategy ("uniform", "quantile" or "explicit" for given BinStats).
    stats : BinStats
        Per-bin sums on the audit bins.
    ece, mce : float
        Plug-in ℓ1 ECE and MCE on the audit bins.
    levels : CalibrationPosterior or None
        Posterior of every level of the hierarchy; None on thin data.
    noise_floor : NoiseFloor
        The ECE a perfectly calibrated score would show on these scores and bins.
    verdict : str
        "calibrated", "miscalibrated" or "not yet".
    reason : str
        The verdict in one sentence, with its direction and numbers.
    findings : list of str
        Further observations (e.g. contradicted scores of exactly 0 or 1).
    more_leads : int or None
        Roughly how many more matured leads would settle a "not yet".
    extremes : list of Extreme
        Scores of exactly 0 or 1, with how many of those leads converted.
    tolerance : Tolerance
        The tolerances the verdict judged against.
    probability : float
        Posterior probability a verdict needs.
    credibility : float
        Mass of the reported credible intervals.
    seed : int
        Seed of the posterior draws and the noise floor.
    settings : PosteriorSettings
        Priors and grid sizes of the posterior.
    companions : dict of str to float or None
        Brier score, debiased ℓ2 error, smooth ECE, log loss, AUC and Spiegelhalter's test
        (None where undefined or when rows are not available).

    References
    ----------
    .. [1] B. Van Calster, D. Nieboer, Y. Vergouwe, B. De Cock, M. J. Pencina and
       E. W. Steyerberg, "A calibration hierarchy for risk models was defined: from utopia
       to empirical data", Journal of Clinical Epidemiology 74, 2016, pp. 167–176.
    .. [2] J. Bröcker and L. A. Smith, "Increasing the reliability of reliability diagrams",
       Weather and Forecasting 22(3), 2007, pp. 651–661 (the noise floor).
    .. [3] M. P. Naeini, G. F. Cooper and M. Hauskrecht, "Obtaining well calibrated
       probabilities using Bayesian binning", Proc. AAAI, 2015 (the plug-in ECE).

    Examples
    --------
    Scores 0.2, 0.5, 0.8 (100 leads each) that convert at 35%, 50%, 65%: every row's
    expected squared error is 0.25, and so is the Brier score. Equal-mass edges are observed
    scores (0, 0.2, 0.5, 0.8, 1), so the bin [0, 0.2) is kept, empty.

    >>> import numpy as np
    >>> from assay import calibration
    >>> p = np.repeat([0.2, 0.5, 0.8], 100)
    >>> y = np.concatenate([np.arange(100) < k for k in (35, 50, 65)]).astype(int)
    >>> report = calibration(y, p)
    >>> report.n, report.positives, round(report.mean_score, 4)
    (300, 150.0, 0.5)
    >>> report.table.n.tolist(), report.table.positives.tolist()
    ([0, 100, 100, 100], [0.0, 35.0, 50.0, 65.0])
    >>> round(report.companions["brier"], 4)
    0.25
    >>> report.to_dict()["verdict"]
    'miscalibrated'
    """

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
        """The reliability table of the audit bins."""
        return ReliabilityTable.from_stats(self.stats)

    @property
    def posterior(self) -> EcePosterior | None:
        """The posterior of the ECE (the curve level); None on thin data."""
        return None if self.levels is None else self.levels.ece

    @property
    def mean_score(self) -> float:
        """The mean promised probability Σwp / Σw."""
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


def levels_or_none(
    stats: BinStats,
    *,
    tolerance: Tolerance | None = None,
    credibility: float = 0.90,
    seed: int = 0,
    settings: PosteriorSettings | None = None,
) -> CalibrationPosterior | None:
    """Return the posterior of every level (:func:`calibration_posterior`), or None on thin data.

    Thin data means fewer than 100 rows or 10 of either outcome (:func:`thin_data_reason`).
    """
    if thin_data_reason(stats.total_count, round(float(stats.sum_y.sum()))) is not None:
        return None
    return calibration_posterior(
        stats, tolerance=tolerance, credibility=credibility, seed=seed, settings=settings
    )


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
    levels = levels_or_none(
        stats, tolerance=tolerance, credibility=credibility, seed=seed, settings=settings
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
    noise_floor: str = "auto",
) -> CalibrationReport:
    """Judge the calibration of a binary score, with credible intervals and a verdict.

    ``n_bins=None`` uses the audit binning B = clamp(⌊n/40⌋, 2, 15) on ``strategy`` (equal-mass
    by default). ``tolerance`` is a :class:`Tolerance` (None: the defaults; a bare number is
    the first version's absolute ECE tolerance). The verdict follows :mod:`assay.stats.verdict`:
    "not yet" below 100 rows or 10 of either outcome; "miscalibrated" when some level lies
    outside its tolerance with probability ≥ ``probability``; "calibrated" when all lie within
    jointly with that probability; else "not yet". The levels are those of the calibration
    hierarchy: observed/expected conversions (in the large), the calibration slope (weak) and
    the ECE of the curve (moderate), all from one posterior (:mod:`assay.stats.posterior`).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary outcomes, 0 or 1.
    y_prob : array-like of shape (n,)
        Probabilities P(y = 1) in [0, 1].
    n_bins : int or sequence of float, optional
        Audit bins: a count, explicit edges, or None for clamp(⌊n/40⌋, 2, 15).
    strategy : {"quantile", "uniform"}, default="quantile"
        Equal-mass or equal-width audit bins.
    tolerance : Tolerance or float, optional
        How far from perfect still counts as calibrated (None: ``Tolerance()``).
    probability : float, default=0.95
        Posterior probability a "calibrated" or "miscalibrated" verdict needs.
    credibility : float, default=0.90
        Mass of the reported credible intervals.
    seed : int, default=0
        Seed of the posterior draws and the noise floor.
    sample_weight : array-like of shape (n,), optional
        Non-negative row weights, not all zero.
    settings : PosteriorSettings, optional
        Priors and grid sizes of the posterior (None: the defaults).
    noise_floor : {"auto", "normal"}, default="auto"
        "auto" resamples the outcomes row by row (Bernoulli(p), exact) up to 10^5 unweighted
        rows and uses the per-bin normal approximation beyond; "normal" always uses the
        approximation, which needs no pass over the rows (for callers that do not show the
        floor, such as monthly cohorts).

    Returns
    -------
    CalibrationReport
        The verdict, its reason, the posterior of every level, the plug-in ECE and MCE, the
        noise floor and the companion metrics.

    Raises
    ------
    AssayInputError
        On NaN/inf, probabilities outside [0, 1], labels other than 0/1, length mismatch,
        empty input, negative or all-zero weights, invalid edges, an unknown ``strategy``,
        or an invalid ``tolerance``.

    References
    ----------
    .. [1] B. Van Calster, D. Nieboer, Y. Vergouwe, B. De Cock, M. J. Pencina and
       E. W. Steyerberg, "A calibration hierarchy for risk models was defined: from utopia
       to empirical data", Journal of Clinical Epidemiology 74, 2016, pp. 167–176.
    .. [2] J. Bröcker and L. A. Smith, "Increasing the reliability of reliability diagrams",
       Weather and Forecasting 22(3), 2007, pp. 651–661 (the noise floor).
    .. [3] M. P. Naeini, G. F. Cooper and M. Hauskrecht, "Obtaining well calibrated
       probabilities using Bayesian binning", Proc. AAAI, 2015 (the plug-in ECE).

    Examples
    --------
    Three score levels, 100 leads each, convert at 35%, 50% and 65% where the score
    promised 20%, 50% and 80%: the right average, but spread too far apart.

    >>> import numpy as np
    >>> from assay import calibration
    >>> p = np.repeat([0.2, 0.5, 0.8], 100)
    >>> y = np.concatenate([np.arange(100) < k for k in (35, 50, 65)]).astype(int)
    >>> report = calibration(y, p)
    >>> report.verdict
    'miscalibrated'
    >>> round(report.ece, 4)  # plug-in: (0.15 + 0 + 0.15) / 3
    0.1
    >>> report.levels.slope.upper < 0.8  # over-confident: slope credibly below 0.8
    True

    Under 100 rows (or 10 of either outcome) the answer is "not yet":

    >>> calibration(y[::10], p[::10]).verdict
    'not yet'
    """
    check_choice(strategy, "strategy", STRATEGIES)
    check_choice(noise_floor, "noise_floor", NOISE_FLOORS)
    labels, prob, weight = check_binary_inputs(y_true, y_prob, sample_weight)
    bins = audit_bin_count(len(prob)) if n_bins is None else n_bins
    stats = BinStats.accumulate(labels, prob, bin_edges(prob, bins, strategy), weight)
    both_classes = 0 < labels.sum() < len(labels)
    scores = SortedScores(labels, prob)  # one sort, shared by the smooth ECE and the AUC
    companions: dict[str, float | None] = {
        "smooth_ece": smooth_ece_of(scores),
        "log_loss": _log_loss(labels, prob, weight),
        "auc": scores.auc() if both_classes else None,
        "spiegelhalter_z": None,
        "spiegelhalter_pvalue": None,
    }
    if np.any((prob > 0) & (prob < 1) & (prob != 0.5)):
        test = _spiegelhalter(labels, prob)
        companions["spiegelhalter_z"] = test.statistic
        companions["spiegelhalter_pvalue"] = test.pvalue
    return _report(
        stats,
        strategy=strategy,
        prob=prob if weight is None and noise_floor == "auto" else None,
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
    """Judge calibration from merged or stored :class:`BinStats` alone (no rows needed).

    The same rule as :func:`calibration` on the bins of ``stats``: every binned quantity (the
    ECE, the posterior, the Brier score, the debiased ℓ2 error) is a function of the per-bin
    sums. Metrics that need rows (smooth ECE, log loss, AUC, Spiegelhalter) are reported as
    None, and the noise floor uses the per-bin normal approximation.

    Parameters
    ----------
    stats : BinStats
        Per-bin sums, e.g. merged from batches with ``+``.
    tolerance : Tolerance or float, optional
        How far from perfect still counts as calibrated (None: ``Tolerance()``).
    probability : float, default=0.95
        Posterior probability a "calibrated" or "miscalibrated" verdict needs.
    credibility : float, default=0.90
        Mass of the reported credible intervals.
    seed : int, default=0
        Seed of the posterior draws and the noise floor.
    settings : PosteriorSettings, optional
        Priors and grid sizes of the posterior (None: the defaults).

    Returns
    -------
    CalibrationReport
        As :func:`calibration`, with ``strategy`` "explicit".

    Raises
    ------
    AssayInputError
        On an invalid ``tolerance``.

    References
    ----------
    .. [1] B. Van Calster, D. Nieboer, Y. Vergouwe, B. De Cock, M. J. Pencina and
       E. W. Steyerberg, "A calibration hierarchy for risk models was defined: from utopia
       to empirical data", Journal of Clinical Epidemiology 74, 2016, pp. 167–176.
    .. [2] J. Bröcker and L. A. Smith, "Increasing the reliability of reliability diagrams",
       Weather and Forecasting 22(3), 2007, pp. 651–661 (the noise floor).
    .. [3] M. P. Naeini, G. F. Cooper and M. Hauskrecht, "Obtaining well calibrated
       probabilities using Bayesian binning", Proc. AAAI, 2015 (the plug-in ECE).

    Examples
    --------
    Two batches summed on the same explicit edges give the answer of all rows at once.

    Three score levels, 100 leads each, convert at 35%, 50% and 65% where the score
    promised 20%, 50% and 80%: the right average, but spread too far apart.

    >>> import numpy as np
    >>> from assay import calibration
    >>> p = np.repeat([0.2, 0.5, 0.8], 100)
    >>> y = np.concatenate([np.arange(100) < k for k in (35, 50, 65)]).astype(int)
    >>> from assay import BinStats, calibration_from_stats
    >>> edges = [0.0, 0.35, 0.65, 1.0]
    >>> first = BinStats.from_arrays(y[::2], p[::2], n_bins=edges)
    >>> second = BinStats.from_arrays(y[1::2], p[1::2], n_bins=edges)
    >>> report = calibration_from_stats(first + second)
    >>> report.verdict, round(report.ece, 4)
    ('miscalibrated', 0.1)
    >>> abs(report.ece - calibration(y, p, n_bins=edges).ece) < 1e-12
    True
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
