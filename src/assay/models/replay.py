"""Re-run stored inputs through the registered artefact and compare with the stored scores.

A prediction is **replayable** when its ``(scorer, model_version)`` is a registered model
``(name, version)`` (registered by the as-of) and its input record is stored
(:meth:`assay.ledger.Ledger.prediction_inputs`). :func:`replay` groups the replayable
predictions by model version, then into **runs**: the rows of one ingest batch scored with one
seed, what one scoring call predicted. Each run's records are parsed back into a frame
(:func:`assay.ledger.inputs.records_frame`) and predicted with the loaded artefact
(:meth:`LoadedModel.predict`, the seed set as at scoring). Rows scored by
:func:`assay.models.scoring.score_leads` are read from their batch's typed input copy instead
(:meth:`assay.ledger.Ledger.replay_inputs`): the same table the records parse into, which
``assay ledger verify`` re-derives from them. Each recomputed probability p' is compared with
the stored p:

* **identical**: the same float64, bit for bit (``p'.view(int64) == p.view(int64)``);
* **within tolerance**: not identical, but ``|p' − p| ≤ tolerance`` (default 1e-9, stated in
  the result);
* **different**: anything else, including a stored probability that is missing (an ingested
  score that is not a probability) where the recomputed one is a number, or the reverse. A
  missing probability recomputed as NaN is identical: the model abstained again (the honest
  map's "not yet" is recorded as an abstention and re-derived as one).

A run is predicted whole, in ``prediction_id`` order, as :func:`assay.models.scoring.score_leads`
scored it: the model sees the same frame, so a model that draws at random per row (with its
seed) draws the same numbers, and a product whose last bit depends on a row's place in the
matrix (BLAS kernels treat the rows past a multiple of their block apart) lands bit for bit. A
sample of a run is a different frame: it may draw differently or land within the tolerance,
and the replay says so.

``sample=N`` replays N replayable predictions drawn at random without replacement
(``numpy.random.default_rng(seed)`` over the replayable rows in ``prediction_id`` order), so the
same ledger, as-of, N and seed replay the same predictions. ``as_of`` reads the ledger as it
stood then: predictions and models recorded by that time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError, FloatArray, to_utc

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from assay.ledger import Ledger
    from assay.models.registry import ModelRecord

#: A (scorer, model_version) pair; the version may be missing.
Key = tuple[str, str | None]
#: Differing prediction ids a result names per model version (the first, by prediction_id).
SHOWN_IDS = 10
#: The default numerical tolerance: |recomputed − stored| at most this counts as reproduced.
TOLERANCE = 1e-9
#: Predictions per model version the report's reproducibility block replays (seeded sample).
REPORT_SAMPLE = 2_000


@dataclass(frozen=True)
class Comparison:
    """Recomputed against stored probabilities: counts, the largest |Δ|, which rows differ."""

    identical: int
    within_tolerance: int
    different: int
    largest_difference: float  # max |p' − p| over the rows; inf when one side is missing
    differs: np.ndarray = field(repr=False)  # boolean mask of the different rows


def compare_probabilities(
    stored: FloatArray, recomputed: FloatArray, tolerance: float = TOLERANCE
) -> Comparison:
    """Compare recomputed probabilities with the stored ones (module docstring).

    Parameters
    ----------
    stored, recomputed : array of float64, same length
        NaN in ``stored`` is a missing probability.
    tolerance : float
        The largest |p' − p| that still counts as reproduced (``>= 0``).

    Returns
    -------
    Comparison
        identical (bitwise equal) + within tolerance (|Δ| ≤ tolerance) + different = n;
        ``largest_difference`` = max |Δ| (0 for no rows; inf when a side is NaN).
    """
    stored = np.ascontiguousarray(stored, dtype=np.float64)
    recomputed = np.ascontiguousarray(recomputed, dtype=np.float64)
    if stored.shape != recomputed.shape:
        raise AssayInputError(
            f"the model returned {recomputed.shape[0]:,} probabilities for {stored.shape[0]:,} rows"
        )
    both_missing = np.isnan(stored) & np.isnan(recomputed)  # an abstention, abstained again
    missing = (np.isnan(stored) | np.isnan(recomputed)) & ~both_missing
    same_bits = (stored.view(np.int64) == recomputed.view(np.int64)) | both_missing
    delta = np.where(missing, np.inf, np.where(both_missing, 0.0, np.abs(recomputed - stored)))
    identical = same_bits & ~missing
    within = ~identical & (delta <= tolerance)
    differs = ~identical & ~within
    return Comparison(
        identical=int(identical.sum()),
        within_tolerance=int(within.sum()),
        different=int(differs.sum()),
        largest_difference=float(delta.max()) if len(delta) else 0.0,
        differs=differs,
    )


@dataclass(frozen=True)
class VersionReplay:
    """The replay of one registered model version: counts, the largest |Δ|, differing ids."""

    scorer: str
    model_version: str
    fingerprint: str  # sha256 of the registered artefact
    format: str
    replayable: int  # predictions with stored inputs (as of), sampled or not
    replayed: int
    identical: int
    within_tolerance: int
    different: int
    largest_difference: float
    first_different: tuple[str, ...]  # at most SHOWN_IDS prediction ids, in id order

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; an infinite largest difference (a missing side) is written null."""
        data = {
            "scorer": self.scorer,
            "model_version": self.model_version,
            "fingerprint": self.fingerprint,
            "format": self.format,
            "replayable": self.replayable,
            "replayed": self.replayed,
            "identical": self.identical,
            "within_tolerance": self.within_tolerance,
            "different": self.different,
            "largest_difference": _finite(self.largest_difference),
            "first_different": list(self.first_different),
        }
        return data


@dataclass(frozen=True)
class Unreplayable:
    """Predictions of one (scorer, model version) that cannot be replayed, and why."""

    scorer: str
    model_version: str | None
    predictions: int
    reason: str  # "no inputs" or "no registered model"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {
            "scorer": self.scorer,
            "model_version": self.model_version,
            "predictions": self.predictions,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ReplayResult:
    """What :func:`replay` re-ran and found, per model version, and what it could not re-run."""

    as_of: str  # ISO 8601, UTC
    tolerance: float
    sample: int | None
    seed: int
    versions: list[VersionReplay]
    unreplayable: list[Unreplayable]

    @property
    def replayed(self) -> int:
        """Predictions re-run."""
        return sum(v.replayed for v in self.versions)

    @property
    def different(self) -> int:
        """Re-run predictions that landed elsewhere (beyond the tolerance)."""
        return sum(v.different for v in self.versions)

    @property
    def ok(self) -> bool:
        """Whether every re-run prediction is identical or within the tolerance."""
        return self.different == 0

    def verdict(self) -> str:
        """Return the result in one sentence."""
        skipped = sum(u.predictions for u in self.unreplayable)
        left = f"; {skipped:,} predictions not replayable (listed above)" if skipped else ""
        if not self.versions:
            return (
                "nothing replayed: no prediction has both stored inputs and a registered "
                f"model{left}"
            )
        if self.ok:
            identical = sum(v.identical for v in self.versions)
            within = self.replayed - identical
            how = (
                "all identical"
                if within == 0
                else f"{identical:,} identical, {within:,} within ±{self.tolerance:g}"
            )
            return f"reproduced: {self.replayed:,} predictions replayed, {how}{left}"
        largest = max(v.largest_difference for v in self.versions)
        return (
            f"DIFFERENT: {self.different:,} of {self.replayed:,} replayed predictions differ "
            f"beyond ±{self.tolerance:g} (largest |Δ| {largest:.3g}){left}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, with a stable key order."""
        return {
            "as_of": self.as_of,
            "tolerance": self.tolerance,
            "sample": self.sample,
            "seed": self.seed,
            "replayed": self.replayed,
            "different": self.different,
            "ok": self.ok,
            "verdict": self.verdict(),
            "versions": [v.to_dict() for v in self.versions],
            "unreplayable": [u.to_dict() for u in self.unreplayable],
        }


def replay(
    ledger: Ledger,
    *,
    scorer: str | None = None,
    model_version: str | None = None,
    sample: int | None = None,
    as_of: dt.datetime | str | None = None,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> ReplayResult:
    """Re-run stored inputs through their registered model versions (module docstring).

    Parameters
    ----------
    ledger : Ledger
    scorer, model_version : str, optional
        Only this scorer / model version (default: all).
    sample : int, optional
        Replay this many replayable predictions, drawn at random (``seed``); default all.
    as_of : datetime or ISO 8601 text, optional
        The ledger as it stood then: predictions and models recorded by that time (default now).
    seed : int
        Seed of the sample (not of the model: each prediction's own seed is used).
    tolerance : float
        |recomputed − stored| at most this counts as "within tolerance" (default 1e-9).

    Returns
    -------
    ReplayResult
        Per registered model version: replayed, identical, within tolerance, different, the
        largest |Δ| and the first differing ids; per (scorer, model version) the predictions
        without stored inputs or without a registered model.
    """
    moment = to_utc(as_of)
    if not (isinstance(tolerance, int | float) and math.isfinite(tolerance) and tolerance >= 0):
        raise AssayInputError(f"tolerance={tolerance!r}; pass a finite number >= 0, e.g. 1e-9")
    if sample is not None and (
        isinstance(sample, bool) or not isinstance(sample, int) or sample < 1
    ):
        raise AssayInputError(f"sample={sample!r}; pass a whole number of predictions >= 1")
    if scorer is not None:
        ledger.require_scorer(scorer)
    from assay.models.registry import list_models

    models: dict[Key, ModelRecord] = {
        (m.name, m.version): m for m in list_models(ledger) if to_utc(m.registered_at) <= moment
    }
    rows, copy = ledger.replay_inputs(scorer=scorer, model_version=model_version, as_of=moment)
    groups = _groups(rows)
    registered = np.zeros(rows.num_rows, dtype=bool)
    for key, where in groups.items():
        registered |= where if key in models else False
    unreplayable = _unreplayable(ledger, scorer, model_version, moment, groups, models)
    chosen = np.zeros(rows.num_rows, dtype=bool)
    chosen[_sampled(np.flatnonzero(registered), sample, seed)] = True
    try:
        versions = [
            _replay_version(
                ledger, models[key], _rows_where(rows, where & chosen), int(where.sum()),
                tolerance, copy,
            )
            for key, where in sorted(groups.items(), key=lambda item: _order(item[0]))
            if key in models and (where & chosen).any()
        ]  # fmt: skip
    except ImportError as error:
        raise AssayInputError(
            f"cannot load the registered models: {error.name} is not installed; install the "
            "models extra (pip install 'assay[models]')"
        ) from None
    return ReplayResult(
        as_of=moment.isoformat(),
        tolerance=float(tolerance),
        sample=sample,
        seed=seed,
        versions=versions,
        unreplayable=unreplayable,
    )


def replay_record(
    ledger: Ledger,
    *,
    scorer: str,
    as_of: dt.datetime,
    model_version: str | None = None,
    seed: int = 0,
    limit: int = REPORT_SAMPLE,
) -> dict[str, Any]:
    """Return a scorer's replay summary for the report's reproducibility block.

    ``predictions`` (as of), ``with_inputs`` (their input record is stored), and per model
    version registered under the scorer's name a seeded replay of at most ``limit`` of its
    predictions (:func:`replay` with ``sample=limit``), or a ``note`` saying plainly why nothing
    was replayed. Deterministic for a ledger, as-of and seed, so ``assay verify`` re-derives it;
    a ledger without inputs or registered models costs one count query.
    """
    if ledger.schema_version < 5:
        return {"note": "not replayable: the ledger predates stored inputs (schema version < 5)"}
    with_inputs, total = ledger.input_coverage(as_of=as_of, scorer=scorer).get(scorer, (0, 0))
    summary: dict[str, Any] = {"predictions": total, "with_inputs": with_inputs}
    if with_inputs == 0:
        return {**summary, "note": "not replayable: scores without inputs"}
    from assay.models.registry import list_models

    versions = sorted(
        m.version
        for m in list_models(ledger)
        if m.name == scorer
        and to_utc(m.registered_at) <= as_of
        and model_version in (None, m.version)
    )
    if not versions:
        return {**summary, "note": f"not replayable: no model is registered as {scorer!r}"}
    try:
        results = [
            replay(
                ledger, scorer=scorer, model_version=version, sample=limit, as_of=as_of, seed=seed
            )
            for version in versions
        ]
    except AssayInputError as error:  # the models extra missing, an artefact altered
        return {**summary, "note": f"not replayed: {error}"}
    replayed = [v.to_dict() for result in results for v in result.versions]
    for item in replayed:
        del item["scorer"]
    return {**summary, "tolerance": TOLERANCE, "sample_seed": seed, "versions": replayed}


# ---------------------------------------------------------------------- helpers
def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _order(key: Key) -> tuple[str, str]:
    return key[0], key[1] or ""


def _groups(rows: pa.Table) -> dict[Key, np.ndarray]:
    """Return each (scorer, model version) of ``rows`` with the mask of its rows."""
    if rows.num_rows and all(
        pc.count_distinct(rows[name], mode="all").as_py() == 1
        for name in ("scorer", "model_version")
    ):  # one group (as a scoring batch is): every row
        return {(rows["scorer"][0].as_py(), rows["model_version"][0].as_py()): np.ones(
            rows.num_rows, dtype=bool)}  # fmt: skip
    found = rows.group_by(["scorer", "model_version"]).aggregate([]).to_pylist()
    groups = {}
    for group in found:
        name, version = group["scorer"], group["model_version"]
        same = pc.equal(rows["scorer"], name)
        same = pc.and_(
            same,
            pc.is_null(rows["model_version"])
            if version is None
            else pc.equal(rows["model_version"], version),
        )
        groups[(name, version)] = np.asarray(pc.fill_null(same, False), dtype=bool)
    return groups


def _sampled(index: np.ndarray, sample: int | None, seed: int) -> np.ndarray:
    """Return the rows to replay: ``index``, or ``sample`` of them at random (in row order)."""
    if sample is None or sample >= len(index):
        return index
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(index, size=sample, replace=False))


def _replay_version(
    ledger: Ledger,
    model: ModelRecord,
    rows: pa.Table,
    replayable: int,
    tolerance: float,
    copy: pa.Table | None,
) -> VersionReplay:
    """Re-run one model version's rows, run by run, and compare with the stored scores."""
    from assay.models.registry import load_registered

    loaded = load_registered(ledger, model)
    stored = np.asarray(
        pc.fill_null(rows["probability"], np.nan).to_numpy(zero_copy_only=False), np.float64
    )
    recomputed = np.empty(rows.num_rows, dtype=np.float64)
    for seed, index in _runs(rows):
        run = rows if len(index) == rows.num_rows else rows.take(pa.array(index))
        recomputed[index] = loaded.predict(_frame(run, copy), seed)
    found = compare_probabilities(stored, recomputed, tolerance)
    ids = rows["prediction_id"].filter(pa.array(found.differs)).to_pylist()
    return VersionReplay(
        scorer=model.name,
        model_version=model.version,
        fingerprint=model.fingerprint,
        format=model.format,
        replayable=replayable,
        replayed=rows.num_rows,
        identical=found.identical,
        within_tolerance=found.within_tolerance,
        different=found.different,
        largest_difference=found.largest_difference,
        first_different=tuple(ids[:SHOWN_IDS]),
    )


def _runs(rows: pa.Table) -> list[tuple[int | None, np.ndarray]]:
    """Return each run of ``rows``: its seed and its rows' places, in row order.

    A run is the rows of one ingest batch with one seed (module docstring), so when every row
    of a version is replayed, each run is the frame one scoring call predicted.
    """
    grouped = (
        rows.select(["batch_id", "seed"])
        .append_column("place", pa.array(np.arange(rows.num_rows)))
        .group_by(["batch_id", "seed"], use_threads=False)  # keeps the row order within
        .aggregate([("place", "list")])
    )
    places = grouped["place_list"].combine_chunks()
    index = np.asarray(pc.list_flatten(places).to_numpy(), dtype=np.int64)
    ends = np.cumsum(np.asarray(pc.list_value_length(places).to_numpy(), dtype=np.int64))
    return list(zip(grouped["seed"].to_pylist(), np.split(index, ends[:-1]), strict=True))


def _frame(run: pa.Table, copy: pa.Table | None) -> pa.Table:
    """Return the typed inputs of one run's rows, in order.

    From the typed copy when the run's batch has one (the copy itself when the run is all of
    it, in order); else :func:`assay.ledger.inputs.records_frame` of the rows' records. A
    batch has a typed copy for all its rows or for none.
    """
    from assay.ledger.inputs import records_frame

    places = run["copy_row"].combine_chunks()
    if copy is None or places.null_count:
        return records_frame(run["record"].combine_chunks())
    index = np.asarray(places.to_numpy(), dtype=np.int64)
    if len(index) == copy.num_rows and np.array_equal(index, np.arange(len(index))):
        return copy
    return copy.take(pa.array(index))


def _rows_where(rows: pa.Table, where: np.ndarray) -> pa.Table:
    """Return the rows of ``rows`` where ``where`` holds (all of them without a copy)."""
    return rows if bool(where.all()) else rows.filter(pa.array(where))


def _unreplayable(
    ledger: Ledger,
    scorer: str | None,
    model_version: str | None,
    moment: dt.datetime,
    groups: Mapping[Key, np.ndarray],
    models: Mapping[Key, ModelRecord],
) -> list[Unreplayable]:
    """Per (scorer, model version): predictions without stored inputs or a registered model."""
    with_inputs = {key: int(where.sum()) for key, where in groups.items()}
    found = [
        Unreplayable(key[0], key[1], count, "no inputs")
        for key, count in _without_inputs(ledger, scorer, model_version, moment, with_inputs)
    ]
    found += [
        Unreplayable(key[0], key[1], count, "no registered model")
        for key, count in with_inputs.items()
        if key not in models
    ]
    return sorted(found, key=lambda u: (*_order((u.scorer, u.model_version)), u.reason))


def _without_inputs(
    ledger: Ledger,
    scorer: str | None,
    model_version: str | None,
    moment: dt.datetime,
    with_inputs: Mapping[Key, int],
) -> list[tuple[Key, int]]:
    """Per (scorer, model version): predictions recorded by ``moment`` minus those with inputs."""
    totals = ledger.con.execute(
        """
        SELECT scorer, model_version, count(*) FROM predictions
        WHERE recorded_at <= ? AND (? IS NULL OR scorer = ?)
          AND (? IS NULL OR model_version = ?)
        GROUP BY ALL
        """,
        [moment, scorer, scorer, model_version, model_version],
    ).fetchall()
    out = []
    for name, version, count in totals:
        missing = int(count) - with_inputs.get((name, version), 0)
        if missing > 0:
            out.append(((str(name), None if version is None else str(version)), missing))
    return out
