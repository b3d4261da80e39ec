"""Compare scorers on the same leads: calibration with intervals, discrimination, honesty.

Definitions (precise, because vendors will read them):

* **Common set**: leads (entities) for which every compared scorer has a matured prediction with
  a probability (not an abstention). Summaries on the common set are the fair comparison; each
  scorer's summary on its own full set is shown beside, so a vendor cannot win by scoring only
  easy leads.
* **Per scorer**: n, ECE with its credible interval and verdict (:func:`assay.calibration`),
  Brier score, log loss, AUC with a Bayesian-bootstrap interval, Cox calibration slope and
  intercept, and the abstention rate.
* **Paired comparison** of scorers A and B on the common set: the same Bayesian-bootstrap
  weights (Dirichlet(1, ..., 1) over leads) are applied to both, so noise shared by the leads
  cancels. P(ECE_A < ECE_B) is the share of draws in which A's weighted ECE (on A's audit bins)
  is lower; the Brier difference A − B has an equal-tailed interval. A pair is "cannot tell
  apart" unless P ≥ 0.95 or ≤ 0.05.
* **Honesty rate**: a scorer's abstention rate overall, on *thin-evidence* leads and on the
  rest. With a segment attribute, a lead is thin-evidence when its segment holds fewer than 30
  leads in the comparison (the threshold below which a segment verdict is "not yet").
  Abstaining on thin leads is honest; abstaining on well-evidenced leads is not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError, FloatArray, check_binary_inputs
from assay.binning import assign_bins, bin_edges
from assay.calibration import audit_bin_count, calibration
from assay.metrics.scores import brier_score, log_loss, roc_auc
from assay.metrics.significance import calibration_slope_intercept
from assay.segments import MIN_VERDICT_SIZE

DRAWS = 1000
DECISIVE = 0.95


@dataclass(frozen=True)
class ScorerSummary:
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
    a: str
    b: str
    prob_a_lower_ece: float
    brier_difference: float  # A − B on the common set (negative: A is better)
    brier_lower: float
    brier_upper: float
    verdict: str


@dataclass(frozen=True, eq=False)
class Comparison:
    n_common: int
    common: list[ScorerSummary]
    own: list[ScorerSummary]
    pairs: list[PairComparison]
    credibility: float
    #: Outcomes and each scorer's probabilities on the common set (for plots; not serialised).
    common_y: FloatArray = field(repr=False)
    common_scores: dict[str, FloatArray] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_common": self.n_common,
            "common": [asdict(s) for s in self.common],
            "own": [asdict(s) for s in self.own],
            "pairs": [asdict(p) for p in self.pairs],
            "credibility": self.credibility,
        }


def _dirichlet_weights(n: int, draws: int, rng: np.random.Generator) -> FloatArray:
    weights = rng.exponential(size=(draws, n))
    return weights / weights.sum(axis=1, keepdims=True)


def _weighted_ece(y: FloatArray, p: FloatArray, weights: FloatArray) -> FloatArray:
    """Weighted l1 ECE per draw on fixed audit bins: Σ_b |Σ_{i∈b} w_i (y_i − p_i)|."""
    edges = bin_edges(p, audit_bin_count(len(p)), "quantile")
    bins = assign_bins(p, edges)
    order = np.argsort(bins, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(bins[order]) != 0])
    residual = (y - p)[order]
    per_bin = np.add.reduceat(weights[:, order] * residual, starts, axis=1)
    return np.abs(per_bin).sum(axis=1)


def _weighted_auc(y: FloatArray, p: FloatArray, weights: FloatArray) -> FloatArray:
    """Weighted AUC per draw (ties count one half), after one sort by score."""
    order = np.argsort(p, kind="stable")
    sorted_p = p[order]
    starts = np.flatnonzero(np.r_[True, np.diff(sorted_p) != 0])
    w = weights[:, order]
    positive = np.add.reduceat(w * y[order], starts, axis=1)
    negative = np.add.reduceat(w * (1 - y[order]), starts, axis=1)
    below = np.cumsum(negative, axis=1) - negative
    numerator = np.sum(positive * (below + 0.5 * negative), axis=1)
    return numerator / (positive.sum(axis=1) * negative.sum(axis=1))


def _summary(
    name: str,
    y: FloatArray,
    p: FloatArray,
    abstention: tuple[float, float | None, float | None],
    credibility: float,
    rng: np.random.Generator,
) -> ScorerSummary:
    report = calibration(y, p, credibility=credibility)
    posterior = report.posterior
    both = 0 < y.sum() < len(y)
    auc = auc_lower = auc_upper = slope = intercept = None
    tail = (1 - credibility) / 2
    if both:
        auc = roc_auc(y, p)
        draws = np.concatenate(
            [_weighted_auc(y, p, _dirichlet_weights(len(y), 100, rng)) for _ in range(DRAWS // 100)]
        )
        auc_lower, auc_upper = float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))
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


def _pair(
    a: str,
    b: str,
    y: FloatArray,
    pa_: FloatArray,
    pb: FloatArray,
    credibility: float,
    rng: np.random.Generator,
) -> PairComparison:
    ece_a, ece_b, brier_diff = [], [], []
    for _ in range(DRAWS // 100):
        weights = _dirichlet_weights(len(y), 100, rng)
        ece_a.append(_weighted_ece(y, pa_, weights))
        ece_b.append(_weighted_ece(y, pb, weights))
        brier_diff.append(weights @ ((pa_ - y) ** 2 - (pb - y) ** 2))
    prob = float(np.mean(np.concatenate(ece_a) < np.concatenate(ece_b)))
    diff = np.concatenate(brier_diff)
    tail = (1 - credibility) / 2
    if prob >= DECISIVE:
        verdict = f"{a} is better calibrated"
    elif prob <= 1 - DECISIVE:
        verdict = f"{b} is better calibrated"
    else:
        verdict = "cannot tell apart"
    return PairComparison(
        a, b, prob, float(np.mean((pa_ - y) ** 2 - (pb - y) ** 2)),
        float(np.quantile(diff, tail)), float(np.quantile(diff, 1 - tail)), verdict,
    )  # fmt: skip


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
    """True for leads whose segment holds fewer than 30 leads (a segment verdict would be
    "not yet" for want of data)."""
    labels = np.asarray(
        ["(missing)" if s is None else str(s).strip().casefold() for s in segments], dtype=object
    )
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return np.asarray(counts[inverse] < MIN_VERDICT_SIZE)


def compare_arrays(
    y_true: Any,
    scores: dict[str, Any],
    *,
    segments: Any = None,
    scored: dict[str, Any] | None = None,
    credibility: float = 0.90,
    seed: int = 0,
) -> Comparison:
    """Compare scorers on one set of outcomes; NaN in a scorer's scores marks an abstention.

    ``scored[name]`` (default: every lead) marks the leads a scorer made a prediction for at
    all; leads it never scored are neither abstentions nor part of the common set.
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
    own_summaries, common_summaries = [], []
    for name, values in matrix.items():
        kept = usable[name]
        labels, prob, _ = check_binary_inputs(y[kept], values[kept])
        mine = present[name]
        rates = _abstention(abstained[name][mine], None if thin is None else thin[mine])
        own_summaries.append(_summary(name, labels, prob, rates, credibility, rng))
        labels, prob, _ = check_binary_inputs(y[common], values[common])
        common_summaries.append(_summary(name, labels, prob, rates, credibility, rng))
    names = list(matrix)
    pairs = [
        _pair(a, b, y[common], matrix[a][common], matrix[b][common], credibility, rng)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    return Comparison(
        int(common.sum()), common_summaries, own_summaries, pairs, credibility,
        y[common], {name: values[common] for name, values in matrix.items()},
    )  # fmt: skip


def compare(
    ledger: Any,
    *,
    scorers: list[str] | None = None,
    as_of: dt.datetime | str | None = None,
    policy: str = "first",
    segment_by: str | None = None,
    credibility: float = 0.90,
    seed: int = 0,
) -> Comparison:
    """Compare scorers in the ledger on their matured predictions as of T (leads = entities)."""
    names = scorers or ledger.scorers()
    frames = []
    for name in names:
        table = ledger.labels(as_of=as_of, scorer=name, policy=policy).table
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
    entities = sorted(set().union(*[set(f["entity_id"].to_pylist()) for f in frames]))
    index = {e: i for i, e in enumerate(entities)}
    y = np.full(len(entities), np.nan)
    segment = np.full(len(entities), None, dtype=object)
    matrix, scored = {}, {}
    for name, frame in zip(names, frames, strict=True):
        rows = np.array([index[e] for e in frame["entity_id"].to_pylist()], dtype=np.int64)
        values = np.full(len(entities), np.nan)
        values[rows] = frame["p"].to_numpy(zero_copy_only=False).astype(np.float64)
        y[rows] = frame["y"].to_numpy(zero_copy_only=False)
        segment[rows] = frame["segment"].to_pylist()
        matrix[name] = values
        scored[name] = np.zeros(len(entities), dtype=bool)
        scored[name][rows] = True
    return compare_arrays(
        y,
        matrix,
        segments=segment if segment_by else None,
        scored=scored,
        credibility=credibility,
        seed=seed,
    )
