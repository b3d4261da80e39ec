"""The honest score: a Bayesian calibration map from a vendor's raw score to a probability.

**Evidence.** Matured leads are counted on a fixed grid of the raw score s on the logit scale:
bin b holds the leads with logit(s) in [x_b − h/2, x_b + h/2) (h = ``GRID_WIDTH``, centres
x_b from ``GRID_LOW`` to ``GRID_HIGH``; scores are clipped to the grid's ends), and per segment
g the counts n_gb (leads) and k_gb (conversions). These counts are the whole evidence: an update
adds the new leads' counts (O(new leads)), and a map built from counts equals a map refitted
from every lead ever seen, bit for bit.

**Overall curve.** f_b = logit P(convert | bin b) over all leads, k_b ~ Binomial(n_b, σ(f_b)),
with a second-order random-walk (RW2) smoothness prior of precision τ on f − x (its null space
is every line a + c·logit(s): Platt scaling, shifts and over/under-confidence are free; only
curvature is penalised) and a weak ridge, Σ_b (f_b − x_b)² / (2·B·``RIDGE_SD``²) over the B
bins (per bin 1/B of the precision, so a line's level and slope keep prior standard deviations
of about RIDGE_SD and RIDGE_SD/rms(x) ≈ 2: a per-bin N(x_b, RIDGE_SD²) would add up to a slope
held near 1 ± 0.17 and pull an under-confident vendor's map toward its raw score), that makes it
proper: the map's
prior is "the vendor is calibrated", with intervals that no data can fill. The posterior for
each τ on a log grid is its Laplace approximation N(f̂_τ, (Q_τ + W)⁻¹) (Newton mode, W =
diag(n σ(f̂)(1 − σ(f̂)))); the τ are mixed by their Laplace evidence

    log p(k | τ) ≈ ℓ(f̂) − ½ (f̂ − x)ᵀ Q_τ (f̂ − x) + ½ log|Q_τ| − ½ log|Q_τ + W|

(empirical Bayes over a log-uniform prior, integrated over the grid rather than plugged in, so
the smoothness is uncertain where the data cannot pin it).

**Monotone.** Every posterior draw of f is projected onto the non-decreasing curves (weighted
least squares, weights n_b + 1: the projection-posterior of Chakraborty & Ghosal 2021, *Ann.
Statist.* 49(3)); point, lower and upper bound are the draws' mean and quantiles, so the map
and both bounds rise with the raw score. A fall the posterior holds with probability ≥
``DECISIVE_FALL`` (0.95) between two bins that hold leads is kept instead (the draws are not
projected) and named: measured on 240 fits of monotone vendors it never fired; on the
non-monotone vendor at 20,000 leads it fired 95% of the time.

**The 90% interval** runs between the posterior's (1 ± ``POSTERIOR_LEVEL``)/2 quantiles, with
``POSTERIOR_LEVEL`` = 0.86. Projection posteriors over-cover (Chakraborty & Ghosal 2021 prove it
for isotonic regression and recalibrate the level), and so does this one: its raw 90% sets
covered P(y | s) 92–96% of the time across over-, under-confident, shifted and non-monotone
vendors at 20,000 leads (96 replicates each). The level was chosen on the whole coverage table
(500 and 20,000 leads, base rates 2% and 30%): 0.86 keeps every cell within 85–95%, 0.84 let
the non-monotone vendor at 500 leads fall to 83%.

**Segments.** logit P(convert | b, g) = f_b + δ_g with δ_g ~ N(0, ω²): a segment's offset is
shrunk toward the overall curve by empirical Bayes over a log grid of ω (Laplace per segment,
mixed by evidence, like τ). A segment with fewer than ``min_segment`` matured leads gets the
overall map (δ = 0), as does a lead with no segment or one the map has not seen.

**Status** per served score: "out of range" when the raw score lies outside the range of the
matured scores the map was built on; "not yet" when the evidence near that score is thin: the
effective number of leads behind the estimate is n_eff = p(1 − p)/Var(p) − 1 (the size of a
Beta posterior with the same mean and variance), and the evidence is worth n_eff·min(p, 1 − p)
conversions (or non-conversions, above 50%); below ``min_events`` it is "not yet", else "ok".
Counting conversions rather than leads keeps rare events honest: 100 leads' worth of evidence
at a 2% rate is two conversions, a relative error near 70%.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from scipy.linalg import cho_solve_banded, cholesky_banded, solve_banded
from scipy.special import expit, logit

from assay._validation import AssayInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from assay._validation import FloatArray

#: The grid of raw scores, on the logit scale: bin centres from GRID_LOW to GRID_HIGH.
GRID_LOW = -8.0
GRID_HIGH = 8.0
GRID_WIDTH = 0.1
#: The ridge around the identity map (logit units): weak, only to make the prior proper.
RIDGE_SD = 10.0
#: The smoothness precisions τ mixed over (log-uniform prior on this grid).
TAU_GRID = tuple(10.0 ** np.arange(-1.0, 6.01, 0.5))
#: The segment-offset scales ω mixed over (log-uniform prior on this grid).
OMEGA_GRID = tuple(np.geomspace(0.02, 2.0, 11))
#: A fall of the curve this probable is kept, not projected away (the map says so).
DECISIVE_FALL = 0.95
#: The interval every served score carries: 90%, between the posterior quantiles that hold
#: POSTERIOR_LEVEL of the (projected) posterior (module docstring).
STATED_COVERAGE = 0.9
POSTERIOR_LEVEL = 0.86
#: Posterior draws behind every map (quantiles at 5% and 95% need a few thousand).
DRAWS = 2_000
#: The map's format and version, written into every map document.
MAP_FORMAT = "assay-honest-map"
MAP_FORMAT_VERSION = 1
#: Status words.
OK = "ok"
NOT_YET = "not yet"
OUT_OF_RANGE = "out of range"
#: The key of leads that have no segment (or one the map pools into the overall curve).
OVERALL = ""


def grid_centres() -> FloatArray:
    """Return the bin centres x_b (logit of the raw score)."""
    count = round((GRID_HIGH - GRID_LOW) / GRID_WIDTH) + 1
    return GRID_LOW + GRID_WIDTH * np.arange(count, dtype=np.float64)


def score_bins(score: FloatArray) -> np.ndarray:
    """Return the grid bin of each raw score (clipped to the grid's ends)."""
    centres = grid_centres()
    clipped = np.clip(np.asarray(score, dtype=np.float64), 1e-12, 1 - 1e-12)
    index = np.floor((logit(clipped) - GRID_LOW) / GRID_WIDTH + 0.5).astype(np.int64)
    return np.asarray(np.clip(index, 0, len(centres) - 1))


@dataclass(frozen=True)
class HonestSettings:
    """What a map is built with: posterior level, evidence threshold, segment size, draws, seed.

    ``posterior_level`` is the posterior mass between the quantiles of the stated 90% interval
    (module docstring: recalibrated so that the interval covers 90%).
    """

    posterior_level: float = POSTERIOR_LEVEL
    min_events: float = 30.0  # effective conversions (or non-conversions) below this: "not yet"
    min_segment: int = 30  # matured leads a segment needs for an offset of its own
    draws: int = DRAWS
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse settings outside their ranges."""
        if not 0 < self.posterior_level < 1:
            raise AssayInputError(f"posterior_level must lie in (0, 1), got {self.posterior_level}")
        if self.min_events < 0 or self.min_segment < 1 or self.draws < 100:
            raise AssayInputError(
                "min_events must be >= 0, min_segment >= 1 and draws >= 100, got "
                f"{self.min_events}, {self.min_segment}, {self.draws}"
            )


@dataclass(frozen=True)
class Evidence:
    """Matured leads counted per (segment, grid bin): the whole input of a map.

    ``segments`` are sorted; row 0 is :data:`OVERALL` (leads without a segment). ``low`` and
    ``high`` are the smallest and largest raw scores seen.
    """

    segments: tuple[str, ...]
    leads: np.ndarray  # int64, (segments, bins)
    conversions: np.ndarray  # int64, (segments, bins)
    low: float
    high: float

    @classmethod
    def empty(cls) -> Evidence:
        """No leads yet."""
        shape = (1, len(grid_centres()))
        zeros = np.zeros(shape, dtype=np.int64)
        return cls((OVERALL,), zeros, zeros.copy(), float("inf"), float("-inf"))

    @property
    def total(self) -> int:
        """Matured leads counted."""
        return int(self.leads.sum())

    def add(
        self,
        score: FloatArray,
        outcome: FloatArray,
        segment: Sequence[str | None] | None = None,
        *,
        sign: int = 1,
    ) -> Evidence:
        """Return these counts plus the leads (score, outcome, segment): O(new leads).

        ``sign=-1`` takes them out again (a lead whose label changed is retracted with its old
        label and added with its new one); taking out a lead the counts do not hold is refused.
        The seen range only widens: a retracted lead's score stays inside it.
        """
        score = np.asarray(score, dtype=np.float64)
        outcome = np.asarray(outcome, dtype=np.float64)
        _check_leads(score, outcome, segment)
        if not len(score):
            return self
        labels = [OVERALL if s is None else str(s) for s in (segment or [None] * len(score))]
        names = tuple(sorted(set(self.segments) | set(labels)))
        row_of = {name: row for row, name in enumerate(names)}
        bins = len(grid_centres())
        leads = np.zeros((len(names), bins), dtype=np.int64)
        conversions = np.zeros_like(leads)
        old_rows = [row_of[name] for name in self.segments]
        leads[old_rows] = self.leads
        conversions[old_rows] = self.conversions
        rows = np.fromiter((row_of[label] for label in labels), np.int64, len(labels))
        cells = rows * bins + score_bins(score)
        size = len(names) * bins
        leads += sign * np.bincount(cells, minlength=size).reshape(leads.shape)
        conversions += sign * (
            np.bincount(cells, weights=outcome, minlength=size)
            .astype(np.int64)
            .reshape(leads.shape)
        )
        if leads.min() < 0 or conversions.min() < 0 or np.any(conversions > leads):
            raise AssayInputError("the leads to take out are not all in the map's evidence")
        if sign < 0:
            return Evidence(names, leads, conversions, self.low, self.high)
        return Evidence(
            names, leads, conversions, min(self.low, float(score.min())),
            max(self.high, float(score.max())),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Sparse JSON form: per segment, the non-empty bins with their counts."""
        return {
            "low": self.low,
            "high": self.high,
            "segments": {
                name: [
                    [int(b), int(self.leads[row, b]), int(self.conversions[row, b])]
                    for b in np.flatnonzero(self.leads[row])
                ]
                for row, name in enumerate(self.segments)
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        """Inverse of :meth:`to_dict`."""
        names = tuple(sorted(data["segments"]))
        leads = np.zeros((len(names), len(grid_centres())), dtype=np.int64)
        conversions = np.zeros_like(leads)
        for row, name in enumerate(names):
            for b, n, k in data["segments"][name]:
                leads[row, b], conversions[row, b] = n, k
        return cls(names, leads, conversions, float(data["low"]), float(data["high"]))


def _check_leads(score: FloatArray, outcome: FloatArray, segment: Sequence[Any] | None) -> None:
    if score.ndim != 1 or outcome.shape != score.shape:
        raise AssayInputError(
            f"scores and outcomes must be 1-D of one length, got {score.shape} and {outcome.shape}"
        )
    if segment is not None and len(segment) != len(score):
        raise AssayInputError(f"{len(segment)} segments for {len(score)} scores: give one per lead")
    bad = np.flatnonzero(~((score >= 0) & (score <= 1)))
    if len(bad):
        raise AssayInputError(
            f"raw score {score[bad[0]]:g} (lead {bad[0] + 1}) is not a probability in [0, 1]; "
            "the honest map reads a vendor's probability"
        )
    bad = np.flatnonzero((outcome != 0) & (outcome != 1))
    if len(bad):
        raise AssayInputError(f"outcome {outcome[bad[0]]:g} (lead {bad[0] + 1}) is not 0 or 1")


def _rw2_penalty(size: int) -> FloatArray:
    """DᵀD for the second-difference operator D ((size − 2) × size)."""
    second = np.diff(np.eye(size), n=2, axis=0)
    return second.T @ second


def _upper_bands(matrix: FloatArray, extra_diagonal: FloatArray | None = None) -> FloatArray:
    """Return the upper banded form (``cholesky_banded``) of a pentadiagonal matrix."""
    bands = np.zeros((3, len(matrix)))
    for offset in range(3):
        bands[2 - offset, offset:] = np.diagonal(matrix, offset)
    if extra_diagonal is not None:
        bands[2] += extra_diagonal
    return bands


@dataclass(frozen=True)
class _Laplace:
    """A Laplace fit: mode f̂, banded Cholesky U of Q + W (UᵀU), log evidence."""

    mode: FloatArray
    factor: FloatArray
    log_evidence: float


def _laplace(
    n: FloatArray, k: FloatArray, x: FloatArray, precision: FloatArray, start: FloatArray
) -> _Laplace:
    """Fit the Laplace approximation of the curve's posterior under precision Q.

    The mode f̂ of ℓ(f) − ½(f − x)ᵀQ(f − x), the banded Cholesky factor U of Q + W (UᵀU) and
    the log evidence (module docstring). Newton from ``start``, halving a step that would lower
    the objective (the objective is concave, so the mode is unique).
    """

    def objective(f: FloatArray) -> float:
        return float(np.sum(k * f - n * np.logaddexp(0.0, f)) - 0.5 * (f - x) @ precision @ (f - x))

    f, value = start.copy(), objective(start)
    for _ in range(200):
        p = expit(f)
        gradient = k - n * p - precision @ (f - x)
        factor = cholesky_banded(_upper_bands(precision, n * p * (1 - p)))
        step = cho_solve_banded((factor, False), gradient)
        if float(gradient @ step) < 1e-12:  # the Newton decrement: at the mode
            break
        scale = 1.0
        while objective(f + scale * step) < value and scale > 1e-8:
            scale /= 2
        f = f + scale * step
        value = objective(f)
    p = expit(f)
    factor = cholesky_banded(_upper_bands(precision, n * p * (1 - p)))
    log_det_prior = 2 * float(np.sum(np.log(cholesky_banded(_upper_bands(precision))[2])))
    log_det_post = 2 * float(np.sum(np.log(factor[2])))
    return _Laplace(f, factor, value + 0.5 * log_det_prior - 0.5 * log_det_post)


def _mixture_counts(log_evidence: FloatArray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Draws per grid point, multinomial in the normalised evidence weights."""
    weights = np.exp(log_evidence - log_evidence.max())
    return rng.multinomial(draws, weights / weights.sum())


def _project_increasing(draws: FloatArray, weight: FloatArray) -> FloatArray:
    """Each row's weighted least-squares non-decreasing projection."""
    from scipy.optimize import isotonic_regression

    return np.stack([isotonic_regression(row, weights=weight).x for row in draws])


def curve_draws(
    leads: FloatArray, conversions: FloatArray, rng: np.random.Generator, draws: int
) -> FloatArray:
    """Draw the overall curve f from its posterior (draws × bins), before projection.

    From the evidence-weighted mixture of the Laplace approximations over the τ grid.
    """
    x = grid_centres()
    n, k = leads.astype(np.float64), conversions.astype(np.float64)
    penalty, ridge = _rw2_penalty(len(x)), np.eye(len(x)) / (len(x) * RIDGE_SD**2)
    fits, start = [], x
    for tau in TAU_GRID:  # each mode starts from the last: the curves are close
        fits.append(_laplace(n, k, x, tau * penalty + ridge, start))
        start = fits[-1].mode
    counts = _mixture_counts(np.array([fit.log_evidence for fit in fits]), draws, rng)
    parts = []
    for fit, count in zip(fits, counts, strict=True):
        if count:
            noise = rng.standard_normal((len(x), count))
            parts.append((fit.mode[:, None] + solve_banded((0, 2), fit.factor, noise)).T)
    return np.concatenate(parts)


def offset_draws(
    leads: FloatArray, conversions: FloatArray, curve: FloatArray, rng: np.random.Generator,
    draws: int,
) -> FloatArray:  # fmt: skip
    """Posterior draws of the segment offsets δ_g (draws × segments), module docstring.

    ``leads``/``conversions`` are (segments × bins); ``curve`` is the overall curve f the
    offsets are measured from (its posterior mean).
    """
    fits = []
    for omega in OMEGA_GRID:
        delta = np.zeros(len(leads))
        for _ in range(100):
            p = expit(curve[None, :] + delta[:, None])
            gradient = (conversions - leads * p).sum(axis=1) - delta / omega**2
            curvature = (leads * p * (1 - p)).sum(axis=1) + 1 / omega**2
            step = gradient / curvature
            delta = delta + step
            if np.max(np.abs(step)) < 1e-10:
                break
        eta = curve[None, :] + delta[:, None]
        p = expit(eta)
        curvature = (leads * p * (1 - p)).sum(axis=1) + 1 / omega**2
        loglik = np.sum(conversions * eta - leads * np.logaddexp(0.0, eta))
        evidence = loglik - np.sum(delta**2) / (2 * omega**2)
        evidence -= np.sum(np.log(omega) + 0.5 * np.log(curvature))
        fits.append((delta, curvature, float(evidence)))
    counts = _mixture_counts(np.array([fit[2] for fit in fits]), draws, rng)
    parts = [
        delta[None, :] + rng.standard_normal((count, len(delta))) / np.sqrt(curvature)[None, :]
        for (delta, curvature, _), count in zip(fits, counts, strict=True)
        if count
    ]
    return np.concatenate(parts)


class Prediction(NamedTuple):
    """Honest probabilities for a batch of leads: ``p, lower, upper, status = map.predict(...)``."""

    probability: FloatArray
    lower: FloatArray
    upper: FloatArray
    status: list[str]


@dataclass(frozen=True)
class HonestMap:
    """A built map: its evidence, settings, and per (segment, bin) mean and interval.

    ``table`` is (segments, 4, bins): mean, lower, upper probability and n_eff per bin, for
    :data:`OVERALL` (row 0) and each segment with an offset of its own (``table_segments``).
    """

    evidence: Evidence
    settings: HonestSettings
    table_segments: tuple[str, ...]
    table: np.ndarray
    fall: tuple[int, int] | None = None  # bins of a decisive fall kept unprojected
    segment_key: str | None = None  # the segment attribute the map reads (None: none)
    version: int = 1
    history: tuple[str, ...] = field(default=())  # fingerprints of the versions before this one

    @classmethod
    def fit(
        cls, score: FloatArray, outcome: FloatArray, segment: Sequence[str | None] | None = None,
        settings: HonestSettings | None = None, *, segment_key: str | None = None,
    ) -> HonestMap:  # fmt: skip
        """Build a map from matured leads (raw score, 0/1 outcome, optional segment)."""
        evidence = Evidence.empty().add(score, outcome, segment)
        return replace(build(evidence, settings or HonestSettings()), segment_key=segment_key)

    def update(
        self,
        score: FloatArray,
        outcome: FloatArray,
        segment: Sequence[str | None] | None = None,
        *,
        retract: tuple[FloatArray, FloatArray, Sequence[str | None] | None] | None = None,
    ) -> HonestMap:
        """Return the next version: these counts plus the new matured leads (O(new leads)).

        ``retract`` (score, outcome, segment) takes leads out first: a lead whose label changed
        since the last version (a conversion recorded late) is retracted with its old label and
        passed again with its new one, so the update still equals a refit on today's labels.
        """
        evidence = self.evidence
        if retract is not None:
            evidence = evidence.add(*retract, sign=-1)
        built = build(evidence.add(score, outcome, segment), self.settings)
        return replace(
            built, segment_key=self.segment_key, version=self.version + 1,
            history=(*self.history, self.fingerprint),
        )  # fmt: skip

    @property
    def fingerprint(self) -> str:
        """sha256 of the map's canonical JSON document."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def predict(
        self, score: FloatArray | float, segment: Sequence[str | None] | str | None = None
    ) -> Prediction:
        """Honest probability, interval and status per raw score (module docstring).

        The table is interpolated linearly in logit(score) between bin centres (on the logit
        scale of the probabilities), so point and bounds stay monotone in the raw score.
        """
        scores = np.atleast_1d(np.asarray(score, dtype=np.float64))
        labels = _segment_labels(segment, len(scores))
        _check_leads(scores, np.zeros_like(scores), labels)
        row_of = {name: row for row, name in enumerate(self.table_segments)}
        rows = np.fromiter((row_of.get(label or OVERALL, 0) for label in labels), np.int64)
        x = grid_centres()
        position = np.clip(logit(np.clip(scores, 1e-12, 1 - 1e-12)), x[0], x[-1])
        left = np.clip(np.searchsorted(x, position, side="right") - 1, 0, len(x) - 2)
        weight = (position - x[left]) / GRID_WIDTH
        values = []
        for column in range(4):
            table = self.table[:, column, :]
            if column < 3:
                table = logit(np.clip(table, 1e-15, 1 - 1e-15))
            value = (1 - weight) * table[rows, left] + weight * table[rows, left + 1]
            values.append(expit(value) if column < 3 else value)
        mean, lower, upper, n_eff = values
        status = [
            self._status(s, p, e)
            for s, p, e in zip(scores.tolist(), mean.tolist(), n_eff.tolist(), strict=True)
        ]
        return Prediction(mean, lower, upper, status)

    def claims(
        self, score: FloatArray | float, segment: Sequence[str | None] | str | None = None
    ) -> FloatArray:
        """Return the honest probability where the status is "ok", NaN (no claim) elsewhere."""
        served = self.predict(score, segment)
        ok = np.array([status == OK for status in served.status], dtype=bool)
        return np.where(ok, served.probability, np.nan)

    def _status(self, score: float, p: float, n_eff: float) -> str:
        if not self.evidence.low <= score <= self.evidence.high:
            return (
                f"{OUT_OF_RANGE}: raw score outside what the map has seen "
                f"({self.evidence.low:.2%}–{self.evidence.high:.2%})"
            )
        events = max(n_eff, 0.0) * min(p, 1 - p)
        if events < self.settings.min_events:
            rarer = "conversions" if p <= 0.5 else "non-conversions"
            return (
                f"{NOT_YET}: the evidence near this score is worth {max(n_eff, 0):,.0f} leads "
                f"and {events:,.0f} {rarer}; {self.settings.min_events:,.0f} are needed"
            )
        return OK

    @property
    def fall_scores(self) -> tuple[float, float]:
        """Return the raw scores (bin centres) of the decisive fall (the higher converts less)."""
        if self.fall is None:
            raise AssayInputError("the map is monotone: it has no fall")
        x = grid_centres()
        return float(expit(x[self.fall[0]])), float(expit(x[self.fall[1]]))

    @property
    def version_name(self) -> str:
        """The map version as a model version: ``v<N>-<first 12 hex of the fingerprint>``."""
        return f"v{self.version}-{self.fingerprint[:12]}"

    def to_dict(self) -> dict[str, Any]:
        """Return the map document (all predict and update need; canonical JSON-ready)."""
        return {
            "format": MAP_FORMAT,
            "format_version": MAP_FORMAT_VERSION,
            "version": self.version,
            "history": list(self.history),
            "segment_key": self.segment_key,
            "fall": None if self.fall is None else list(self.fall),
            "settings": {
                "posterior_level": self.settings.posterior_level,
                "min_events": self.settings.min_events,
                "min_segment": self.settings.min_segment,
                "draws": self.settings.draws,
                "seed": self.settings.seed,
            },
            "grid": {"low": GRID_LOW, "high": GRID_HIGH, "width": GRID_WIDTH},
            "evidence": self.evidence.to_dict(),
            "table_segments": list(self.table_segments),
            "table": self.table.tolist(),
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces; floats as Python's shortest repr."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> HonestMap:
        """Inverse of :meth:`to_json` (refuses another format or grid)."""
        data = json.loads(text)
        if data.get("format") != MAP_FORMAT or data.get("format_version") != MAP_FORMAT_VERSION:
            raise AssayInputError(
                f"not an honest map of format {MAP_FORMAT} v{MAP_FORMAT_VERSION}: "
                f"format {data.get('format')!r} v{data.get('format_version')!r}"
            )
        if data["grid"] != {"low": GRID_LOW, "high": GRID_HIGH, "width": GRID_WIDTH}:
            raise AssayInputError(f"the map's grid {data['grid']} is not this assay's grid")
        return cls(
            Evidence.from_dict(data["evidence"]), HonestSettings(**data["settings"]),
            tuple(data["table_segments"]), np.asarray(data["table"], dtype=np.float64),
            None if data["fall"] is None else (int(data["fall"][0]), int(data["fall"][1])),
            data["segment_key"], int(data["version"]), tuple(data["history"]),
        )  # fmt: skip


def _segment_labels(segment: Sequence[str | None] | str | None, size: int) -> list[str | None]:
    if segment is None or isinstance(segment, str):
        return [segment] * size
    return [None if s is None else str(s) for s in segment]


def build(evidence: Evidence, settings: HonestSettings) -> HonestMap:
    """Fit the map's table from the evidence (deterministic in ``settings.seed``)."""
    if evidence.total == 0:
        raise AssayInputError("no matured leads: the honest map needs outcomes to learn from")
    rng = np.random.default_rng(settings.seed)
    leads = evidence.leads.sum(axis=0).astype(np.float64)
    curve = curve_draws(leads, evidence.conversions.sum(axis=0), rng, settings.draws)
    fall = decisive_decrease(curve, leads, DECISIVE_FALL)
    if fall is None:
        curve = _project_increasing(curve, leads + 1.0)
    sized = [
        row for row, name in enumerate(evidence.segments)
        if name != OVERALL and evidence.leads[row].sum() >= settings.min_segment
    ]  # fmt: skip
    rows = [_summary(expit(curve), settings.posterior_level)]
    if sized:
        offsets = offset_draws(
            evidence.leads[sized].astype(np.float64),
            evidence.conversions[sized].astype(np.float64), curve.mean(axis=0), rng,
            settings.draws,
        )  # fmt: skip
        rows += [
            _summary(expit(curve + offsets[:, [column]]), settings.posterior_level)
            for column in range(len(sized))
        ]
    names = (OVERALL, *(evidence.segments[row] for row in sized))
    return HonestMap(evidence, settings, names, np.stack(rows), fall=fall)


def _summary(probability: FloatArray, credibility: float) -> FloatArray:
    """Summarise the draws per bin (4 × bins).

    Mean, lower and upper quantile, and n_eff = p(1 − p)/Var(p) − 1.
    """
    tail = (1 - credibility) / 2
    mean = probability.mean(axis=0)
    variance = np.maximum(probability.var(axis=0), 1e-300)
    lower, upper = np.quantile(probability, [tail, 1 - tail], axis=0)
    return np.stack((mean, lower, upper, mean * (1 - mean) / variance - 1))


def decisive_decrease(
    draws: FloatArray, leads: FloatArray, probability: float
) -> tuple[int, int] | None:
    """Bins (b1, b2), b1 < b2, both holding leads, with P(f_b2 < f_b1) ≥ ``probability``.

    The pair with the largest posterior probability of a fall (ties: the widest pair), or None
    when no fall between populated bins is that probable.
    """
    held = np.flatnonzero(leads > 0)
    if len(held) < 2:
        return None
    values = draws[:, held]
    falls = (values[:, None, :] < values[:, :, None]).mean(axis=0)  # [i, j]: P(f_j < f_i)
    falls = np.triu(falls, k=1)
    best = falls.max()
    if best < probability:
        return None
    i, j = np.argwhere(falls == best)[0]
    return int(held[i]), int(held[j])
