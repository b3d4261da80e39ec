"""Compare scorers on the same leads: calibration with intervals, discrimination, honesty.

Definitions (precise, because vendors will read them):

* **Common set**: leads (entities) for which every compared scorer has a matured prediction with
  a probability (not an abstention). Summaries on the common set are the fair comparison; each
  scorer's summary on its own full set is shown beside, so a vendor cannot win by scoring only
  easy leads.
* **Per scorer**: n, ECE with its credible interval and verdict (:func:`assay.stats.calibration`),
  Brier score, log loss, AUC with a Bayesian-bootstrap interval, Cox calibration slope and
  intercept, and the abstention rate.
* **Paired comparison** of scorers A and B on the common set. Every scorer gets the same
  Bayesian-bootstrap weights w (Dirichlet(1, ..., 1) over leads, scaled to sum to n), so noise
  shared by the leads cancels. The calibration quantity is the *debiased squared calibration
  error* (Kumar, Liang & Ma 2019, "Verified uncertainty calibration", NeurIPS) on the scorer's
  own equal-mass audit bins (B = clamp(⌊n/40⌋, 2, 15), tied scores never split),

      CE² = Σ_b (n_b/n) [(ȳ_b − p̄_b)² − ȳ_b(1 − ȳ_b)/(n_b − 1)],

  left unclipped so the difference A − B stays unbiased. The subtracted term estimates the
  sampling variance of the bin rate, so a perfectly calibrated scorer has E[CE²] ≈ 0 whatever
  its number of bins or distinct scores. Each draw uses the effective counts N_b = Σ_{i∈b} w_i
  and the weighted bin means ȳ*_b, p̄*_b:

      CE²* = Σ_b (N_b/n) [(ȳ*_b − p̄*_b)² − 2 ȳ*_b(1 − ȳ*_b)/(n_b − 1)],

  the denominator keeping the bin's number of leads n_b (an effective count near 1 in a small
  bin would blow the term up).

  The correction is subtracted twice because resampling adds its own variance ≈ ȳ_b(1 − ȳ_b)/n_b
  to every squared gap: with one correction the draws sit Σ_b ȳ_b(1 − ȳ_b)/n ≈ B·ȳ(1 − ȳ)/n
  above the estimate, a penalty on the bin count again (a calibrated 5-level scorer then beat
  an equally calibrated continuous one in 19–28% of simulated datasets). The second one is the
  bootstrap bias correction (Efron & Tibshirani 1993, §10.3) done per draw, so the draws centre
  on the estimate. P(A better calibrated) (``prob_a_lower_ece``) is the share of draws with
  CE²*_A < CE²*_B, ties counting one half. The Brier difference A − B has an equal-tailed
  interval; Brier rewards resolution as well as calibration, so it may favour the other scorer.
* **Verdict of a pair**: "A is better calibrated" if P ≥ 0.95, "B is better calibrated" if
  P ≤ 0.05, else "cannot tell apart". Chosen on the error table of ``tests/test_compare.py``
  (100–200 seeded datasets per row, n = 1,000 and 5,000, base rates 0.29 and 0.04): equally
  calibrated scorers, both continuous or one with 5 score levels, get a winner in at most 2%
  of datasets. A scorer over-promising by 0.05 loses to a calibrated one of its resolution in
  55–58% of datasets at n = 1,000 (28–34% against a calibrated one of the other resolution:
  the bins differ, so less noise cancels; 400 datasets) and in ≥ 97% at n = 5,000; it never
  wins. At the base rate 0.04, one over-promising ×1.5 loses in about 90% at n = 5,000.
  0.90 gave a winner to 6% of equal pairs; 0.975 cut the power at n = 1,000 to 46%.
  The draws are conservative near zero (resampling a squared gap of pure noise triples its
  variance), which errs towards "cannot tell apart".
* **Why not the plug-in ECE** (the first version): its noise floor, what a *perfectly*
  calibrated scorer shows, is ≈ Σ_b (n_b/n)·sqrt(2 p̄_b(1 − p̄_b)/(π n_b)) ≈ sqrt(2B·ȳ(1 − ȳ)/(πn)):
  it grows with the number of bins B and the spread of the scores. A scorer with 5 distinct
  scores has at most 5 bins, so its lower floor crowned it over an equally calibrated
  continuous scorer in 95–99% of simulated datasets.
* **Honesty rate**: a scorer's abstention rate overall, on *thin-evidence* leads and on the
  rest. With a segment attribute, a lead is thin-evidence when its segment holds fewer than 30
  leads in the comparison (the threshold below which a segment verdict is "not yet").
  Abstaining on thin leads is honest; abstaining on well-evidenced leads is not.
* **One set of draws, on distinct rows.** The AUC intervals on the common set come from the
  paired comparison's own draws (the same weights), and a scorer whose own set is the common
  set has one summary for both. Every statistic depends on a lead only through its row
  (outcome, every compared score), and the Dirichlet weights of the c leads sharing a row sum
  to a Gamma(c, 1) draw over the total (the aggregation property), so the bootstrap draws one
  Gamma(c, 1) weight per distinct row: the same distribution as a weight per lead, at a cost
  that grows with the distinct rows, not the leads (10⁶ leads scored in whole percent by two
  vendors hold a few 10⁴ distinct rows). Weights are drawn a chunk of draws at a time, never
  draws × rows at once; continuous scores leave one row per lead, the slowest case.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError, FloatArray, check_binary_inputs
from assay.stats.binning import assign_bins, bin_edges
from assay.stats.calibration import CalibrationReport, audit_bin_count, calibration
from assay.stats.metrics.scores import brier_score, log_loss, roc_auc
from assay.stats.metrics.significance import calibration_slope_intercept
from assay.stats.segments import MIN_VERDICT_SIZE, normalise_labels

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from assay.stats.tolerance import Tolerance

DRAWS = 1000
#: Bootstrap weights generated at once: draws per chunk × distinct rows stays under this many
#: numbers (16 MB of float64), whatever the number of leads.
WEIGHT_BUDGET = 1 << 21
DECISIVE = 0.95


@dataclass(frozen=True)
class ScorerSummary:
    """One scorer on one set of leads: calibration (ECE, verdict, slope), accuracy, abstention."""

    scorer: str
    n: int
    ece: float
    ece_lower: float | None
    ece_upper: float | None
    verdict: str
    brier: float
    log_loss: float
    auc: float | None
    auc_lower: float | None
    auc_upper: float | None
    slope: float | None
    intercept: float | None
    abstention_rate: float
    abstention_thin: float | None  # on thin-evidence leads (None without a segment attribute)
    abstention_rest: float | None


@dataclass(frozen=True)
class PairComparison:
    """Scorers A and B on the common set: P(A better calibrated) and the Brier difference."""

    a: str
    b: str
    prob_a_lower_ece: float  # P(debiased CE²_A < CE²_B): A better calibrated (module docstring)
    brier_difference: float  # A − B on the common set (negative: A is better)
    brier_lower: float
    brier_upper: float
    verdict: str


@dataclass(frozen=True, eq=False)
class Comparison:
    """Every scorer on the common set and on its own leads, and every pair compared."""

    n_common: int
    common: list[ScorerSummary]
    own: list[ScorerSummary]
    pairs: list[PairComparison]
    credibility: float
    #: Outcomes and each scorer's probabilities on the common set (for plots; not serialised).
    common_y: FloatArray = field(repr=False)
    common_scores: dict[str, FloatArray] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready comparison (without the arrays kept for plots)."""
        return {
            "n_common": self.n_common,
            "common": [asdict(s) for s in self.common],
            "own": [asdict(s) for s in self.own],
            "pairs": [asdict(p) for p in self.pairs],
            "credibility": self.credibility,
        }


def _distinct_rows(columns: list[FloatArray]) -> tuple[np.ndarray, FloatArray]:
    """Return one representative lead per distinct row of ``columns``, and its lead count.

    A row is the outcome and every score; the count is how many leads share that row.
    """
    n = len(columns[0])
    order = np.lexsort(columns[::-1])
    starts = np.zeros(n, dtype=bool)
    starts[:1] = True
    for column in columns:
        ordered = column[order]
        starts[1:] |= ordered[1:] != ordered[:-1]
    first = np.flatnonzero(starts)
    return order[first], np.diff(np.append(first, n)).astype(np.float64)


@dataclass(frozen=True)
class _Levels:
    """One scorer's distinct scores and audit bins, for statistics of weighted outcomes.

    ``column`` sends each row's weight to [positives at s | negatives at s], s over the
    scorer's S distinct scores in ascending order; every statistic here is a function of those
    2S weighted counts, since a score's bin, value and squared error are the same for every
    lead holding it. The non-empty audit bins are runs of consecutive scores, the b-th
    starting at ``starts[b]``.
    """

    column: np.ndarray  # per row: its score's index, plus S when its outcome is 0
    scores: FloatArray  # the S distinct scores, ascending
    starts: np.ndarray  # index of the first score of each non-empty audit bin
    leads: FloatArray  # leads in each bin (n_b)

    @classmethod
    def build(cls, y: FloatArray, p: FloatArray, counts: FloatArray, edges: FloatArray) -> _Levels:
        """From distinct rows (``counts`` leads each) and the audit bin ``edges``."""
        scores, level = np.unique(p, return_inverse=True)
        bins = assign_bins(scores, edges)  # non-decreasing, as the scores ascend
        starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
        leads = np.add.reduceat(np.bincount(level, weights=counts, minlength=len(scores)), starts)
        return cls(level + len(scores) * (y == 0), scores, starts, leads)

    def outcomes(self, weights: FloatArray) -> FloatArray:
        """Return weighted [positives | negatives] per distinct score (draws × 2S).

        From the rows' weights (draws × rows): one bincount, draw d's columns shifted by d · 2S.
        """
        draws, width = len(weights), 2 * len(self.scores)
        index = (self.column + width * np.arange(draws)[:, None]).ravel()
        counted = np.bincount(index, weights=weights.ravel(), minlength=draws * width)
        return np.asarray(counted, dtype=np.float64).reshape(draws, width)  # (no copy)

    def auc(self, outcomes: FloatArray) -> FloatArray:
        """Return the AUC per draw (row) of weighted [positives P_s | negatives N_s] (draws × 2S).

        AUC = Σ_s P_s (Σ_{s' < s} N_s' + N_s / 2) / (ΣP · ΣN), ties counting one half.
        """
        positive, negative = np.split(outcomes, 2, axis=1)
        up_to = np.cumsum(negative, axis=1)  # Σ_{s' ≤ s} N_s'
        pairs = np.einsum("ij,ij->i", positive, up_to - 0.5 * negative)
        result: FloatArray = pairs / (positive.sum(axis=1) * up_to[:, -1])
        return result

    def bin_sums(self, outcomes: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per draw and bin (draws × B): the weighted count, positives and score sum."""
        positive, negative = np.split(outcomes, 2, axis=1)
        total = positive + negative
        count = np.add.reduceat(total, self.starts, axis=1)
        positives = np.add.reduceat(positive, self.starts, axis=1)
        score = np.add.reduceat(total * self.scores, self.starts, axis=1)
        return count, positives, score

    def squared_error(self, outcomes: FloatArray) -> FloatArray:
        """Σ w (p − y)² per draw: Σ_s P_s (s − 1)² + N_s s²."""
        positive, negative = np.split(outcomes, 2, axis=1)
        positives = np.einsum("ij,j->i", positive, (self.scores - 1) ** 2)
        result: FloatArray = positives + np.einsum("ij,j->i", negative, self.scores**2)
        return result


def _debiased_ce2(
    count: FloatArray, positives: FloatArray, score: FloatArray, leads: FloatArray, n: int
) -> FloatArray:
    """Bootstrap draws of the debiased squared calibration error (module docstring).

    From the bin sums (draws × B) under weights that sum to n and the leads n_b per bin:
    CE²* = Σ_b (N_b/n) [(ȳ*_b − p̄*_b)² − 2 ȳ*_b(1 − ȳ*_b)/(n_b − 1)]; a single-lead bin's
    rate is 0 or 1, so its term is 0 (the denominator is floored at 1).
    """
    rate = positives / count
    gap = rate - score / count
    noise = rate * (1 - rate) / np.maximum(leads - 1, 1)
    result: FloatArray = np.sum(count / n * (gap**2 - 2 * noise), axis=1)
    return result


@dataclass(frozen=True)
class _Draws:
    """Bootstrap draws per scorer: AUC, debiased CE² and Brier score.

    AUC is None without both outcomes; CE² and Brier are present when the draws are paired.
    """

    auc: dict[str, FloatArray | None]
    ce2: dict[str, FloatArray]
    brier: dict[str, FloatArray]


def _bootstrap(
    y: FloatArray, scores: dict[str, FloatArray], rng: np.random.Generator, *, paired: bool
) -> _Draws:
    """Draw DRAWS Bayesian-bootstrap replicates over one set of leads, shared by every scorer.

    Each draw's weights are shared by every scorer; per scorer it yields the AUC (when both
    outcomes occur) and, if ``paired``, the debiased CE² and Brier score.

    Leads are collapsed to their distinct rows (outcome and every score): every statistic
    depends on a lead only through its row, and the Dirichlet(1, ..., 1) weights of the c
    leads sharing a row sum to one Gamma(c, 1) draw over the total (the aggregation property
    of the Dirichlet distribution), so drawing a Gamma(c, 1) per row gives exactly the lead-level
    draw's distribution. Each draw's weights are summed per scorer into its weighted outcomes
    per distinct score (:class:`_Levels`), from which every statistic follows.
    """
    n = len(y)
    both = bool(0 < y.sum() < n)
    if not (both or paired):
        return _Draws({name: None for name in scores}, {}, {})
    rows, counts = _distinct_rows([y, *scores.values()])
    # Rows of one lead first: their Gamma(1, 1) weights are Exp(1) draws, the cheaper sampler,
    # from a stream of their own so that no stream's order depends on the chunking.
    ones = int(np.sum(counts == 1))
    order = np.argsort(counts > 1, kind="stable")
    rows, counts = rows[order], counts[order]
    one, several = rng.spawn(2)
    n_bins = audit_bin_count(n)
    levels = {
        name: _Levels.build(y[rows], p[rows], counts, bin_edges(p, n_bins, "quantile"))
        for name, p in scores.items()
    }
    auc: dict[str, list[FloatArray]] = {name: [] for name in scores}
    ce2: dict[str, list[FloatArray]] = {name: [] for name in scores}
    brier: dict[str, list[FloatArray]] = {name: [] for name in scores}
    widest = max(len(rows), *(2 * len(level.scores) for level in levels.values()))
    chunk = max(1, min(DRAWS, WEIGHT_BUDGET // widest))  # bounds the weights and the outcomes
    for start in range(0, DRAWS, chunk):
        size = min(chunk, DRAWS - start)
        weights = np.concatenate(
            [
                one.standard_exponential((size, ones)),
                several.standard_gamma(counts[ones:], (size, len(rows) - ones)),
            ],
            axis=1,
        )
        weights *= (n / weights.sum(axis=1))[:, None]  # one draw per row, summing to n
        for name, level in levels.items():
            outcomes = level.outcomes(weights)
            if both:
                auc[name].append(level.auc(outcomes))
            if paired:
                ce2[name].append(_debiased_ce2(*level.bin_sums(outcomes), level.leads, n))
                brier[name].append(level.squared_error(outcomes) / n)
    return _Draws(
        {name: np.concatenate(parts) if both else None for name, parts in auc.items()},
        {name: np.concatenate(parts) for name, parts in ce2.items() if paired},
        {name: np.concatenate(parts) for name, parts in brier.items() if paired},
    )


def _summary(
    name: str,
    y: FloatArray,
    p: FloatArray,
    abstention: tuple[float, float | None, float | None],
    credibility: float,
    tolerance: Tolerance | float | None,
    auc_draws: FloatArray | None,
    report: CalibrationReport | None = None,
) -> ScorerSummary:
    """Summarise one scorer on one set of leads.

    ``auc_draws`` are its bootstrap AUCs there (None when only one outcome occurs).
    """
    if report is None:  # else the caller's calibration of these very leads
        options: dict[str, Any] = {} if tolerance is None else {"tolerance": tolerance}
        report = calibration(y, p, credibility=credibility, **options)
    posterior = report.posterior
    auc = auc_lower = auc_upper = slope = intercept = None
    tail = (1 - credibility) / 2
    if auc_draws is not None:  # both outcomes occur
        auc = roc_auc(y, p)
        auc_lower = float(np.quantile(auc_draws, tail))
        auc_upper = float(np.quantile(auc_draws, 1 - tail))
        if np.all((p > 0) & (p < 1)):
            line = calibration_slope_intercept(y, p)
            slope, intercept = line.slope, line.intercept
    return ScorerSummary(
        scorer=name,
        n=len(y),
        ece=report.ece,
        ece_lower=None if posterior is None else posterior.lower,
        ece_upper=None if posterior is None else posterior.upper,
        verdict=report.verdict,
        brier=brier_score(y, p),
        log_loss=log_loss(y, p),
        auc=auc,
        auc_lower=auc_lower,
        auc_upper=auc_upper,
        slope=slope,
        intercept=intercept,
        abstention_rate=abstention[0],
        abstention_thin=abstention[1],
        abstention_rest=abstention[2],
    )


def _pairs(
    y: FloatArray, scores: dict[str, FloatArray], credibility: float, draws: _Draws
) -> list[PairComparison]:
    """Every pair (A, B) of scorers, A listed first, compared on shared (paired) draws."""
    names = list(scores)
    if len(names) < 2:
        return []
    ce2, brier = draws.ce2, draws.brier
    tail = (1 - credibility) / 2
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            lower = ce2[a] - ce2[b]
            prob = float(np.mean(lower < 0) + 0.5 * np.mean(lower == 0))
            diff = brier[a] - brier[b]
            pairs.append(
                PairComparison(
                    a=a,
                    b=b,
                    prob_a_lower_ece=prob,
                    brier_difference=brier_score(y, scores[a]) - brier_score(y, scores[b]),
                    brier_lower=float(np.quantile(diff, tail)),
                    brier_upper=float(np.quantile(diff, 1 - tail)),
                    verdict=_pair_verdict(a, b, prob),
                )
            )
    return pairs


def _pair_verdict(a: str, b: str, prob: float) -> str:
    """Decisive at P ≥ 0.95 either way (threshold chosen in the module docstring)."""
    if prob >= DECISIVE:
        return f"{a} is better calibrated"
    if prob <= 1 - DECISIVE:
        return f"{b} is better calibrated"
    return "cannot tell apart"


def _abstention(
    abstained: np.ndarray, thin: np.ndarray | None
) -> tuple[float, float | None, float | None]:
    overall = float(abstained.mean()) if len(abstained) else 0.0
    if thin is None:
        return overall, None, None
    on_thin = float(abstained[thin].mean()) if thin.any() else None
    on_rest = float(abstained[~thin].mean()) if (~thin).any() else None
    return overall, on_thin, on_rest


def thin_evidence(segments: Any) -> np.ndarray:
    """Flag the leads whose segment holds fewer than 30 leads.

    A segment verdict there would be "not yet" for want of data.
    """
    labels = normalise_labels(segments)
    return np.asarray(labels.counts()[labels.codes] < MIN_VERDICT_SIZE)


def compare_arrays(
    y_true: Any,
    scores: dict[str, Any],
    *,
    segments: Any = None,
    scored: dict[str, Any] | None = None,
    credibility: float = 0.90,
    tolerance: Tolerance | float | None = None,
    seed: int = 0,
    calibrations: Mapping[str, CalibrationReport] | None = None,
) -> Comparison:
    """Compare scorers on one set of outcomes; NaN in a scorer's scores marks an abstention.

    ``scored[name]`` (default: every lead) marks the leads a scorer made a prediction for at
    all; leads it never scored are neither abstentions nor part of the common set.
    ``tolerance`` goes to each scorer's :func:`assay.stats.calibration` (None: its default).
    ``calibrations[name]``: the scorer's calibration on its own full set, when the caller
    already has it (a report's audit of the same leads); its posterior is not run again.
    """
    if len(scores) < 1:
        raise AssayInputError("compare needs at least one scorer")
    y = np.asarray(y_true, dtype=np.float64)
    matrix = {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
    present = {
        name: np.ones(len(y), dtype=bool)
        if scored is None
        else np.asarray(scored[name], dtype=bool)
        for name in matrix
    }
    abstained = {name: np.isnan(values) & present[name] for name, values in matrix.items()}
    usable = {name: present[name] & ~abstained[name] for name in matrix}
    thin = None if segments is None else thin_evidence(segments)
    common = np.all(np.stack(list(usable.values())), axis=0)
    rng = np.random.default_rng(seed)
    on_common = {}
    for name, values in matrix.items():
        y_common, on_common[name], _ = check_binary_inputs(y[common], values[common])
    # One set of draws on the common set serves the AUC intervals and the paired comparison.
    draws = _bootstrap(y_common, on_common, rng, paired=len(on_common) > 1)
    own_summaries, common_summaries = [], []
    for name, values in matrix.items():
        mine = present[name]
        rates = _abstention(abstained[name][mine], None if thin is None else thin[mine])
        known = None if calibrations is None else calibrations.get(name)
        if np.array_equal(usable[name], common):  # its own set is the common set
            summary = _summary(
                name, y_common, on_common[name], rates, credibility, tolerance, draws.auc[name],
                known,
            )  # fmt: skip
            own_summaries.append(summary)
            common_summaries.append(summary)
            continue
        labels, prob, _ = check_binary_inputs(y[usable[name]], values[usable[name]])
        own_auc = _bootstrap(labels, {name: prob}, rng, paired=False).auc[name]
        own_summaries.append(
            _summary(name, labels, prob, rates, credibility, tolerance, own_auc, known)
        )
        common_summaries.append(
            _summary(
                name, y_common, on_common[name], rates, credibility, tolerance, draws.auc[name]
            )
        )
    pairs = _pairs(y_common, on_common, credibility, draws)
    return Comparison(
        int(common.sum()), common_summaries, own_summaries, pairs, credibility,
        y_common, on_common,
    )  # fmt: skip


def compare(
    ledger: Any,
    *,
    scorers: list[str] | None = None,
    as_of: dt.datetime | str | None = None,
    policy: str = "first",
    segment_by: str | None = None,
    credibility: float = 0.90,
    tolerance: Tolerance | float | None = None,
    seed: int = 0,
    calibrations: Mapping[str, CalibrationReport] | None = None,
) -> Comparison:
    """Compare scorers in the ledger on their matured predictions as of T (leads = entities).

    ``tolerance`` goes to each scorer's :func:`assay.stats.calibration` (None: its default);
    ``calibrations`` as for :func:`compare_arrays`.
    """
    names = scorers or ledger.scorers()
    for name in names:
        ledger.require_scorer(name)
    frames = []
    for name in names:
        table = ledger.judged_labels(as_of=as_of, scorer=name, policy=policy).table
        table = table.filter(table["matured"])
        frames.append(
            pa.table(
                {
                    "entity_id": table["entity_id"],
                    "scorer": table["scorer"],
                    "y": pc.cast(pc.equal(table["label"], "positive"), pa.float64()),
                    "p": pc.if_else(
                        table["abstained"], pa.scalar(None, pa.float64()), table["probability"]
                    ),
                    "segment": pc.map_lookup(table["segments"], pa.scalar(segment_by), "first")
                    if segment_by
                    else pa.nulls(table.num_rows, pa.string()),
                }
            )
        )
    ids = pa.chunked_array([f["entity_id"] for f in frames], pa.string()).combine_chunks()
    entities = pc.unique(ids)
    entities = entities.take(pc.array_sort_indices(entities))  # in code-point order
    y = np.full(len(entities), np.nan)
    segment = np.full(len(entities), None, dtype=object)
    matrix, scored = {}, {}
    for name, frame in zip(names, frames, strict=True):
        rows = np.asarray(pc.index_in(frame["entity_id"], value_set=entities), dtype=np.int64)
        values = np.full(len(entities), np.nan)
        values[rows] = frame["p"].to_numpy().astype(np.float64)
        y[rows] = frame["y"].to_numpy()
        segment[rows] = frame["segment"].to_numpy()
        matrix[name] = values
        scored[name] = np.zeros(len(entities), dtype=bool)
        scored[name][rows] = True
    return compare_arrays(
        y,
        matrix,
        segments=segment if segment_by else None,
        scored=scored,
        credibility=credibility,
        tolerance=tolerance,
        seed=seed,
        calibrations=calibrations,
    )
