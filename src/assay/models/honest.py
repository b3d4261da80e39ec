"""The honest score, served from the ledger: build or update the map, score leads, record them.

**The map's evidence** is what an audit of the vendor as of the build time T judges
(:meth:`Ledger.judged_labels`: matured, not abstained, with a probability): the raw score, the
outcome and, with a ``segment_key``, the value of that segment attribute. A later build compares
the labels as of the last build with today's and hands the map only the difference
(:meth:`HonestMap.update`: new leads, and leads relabelled since — a conversion recorded late —
retracted with the old label and added with the new), so the new version equals a refit on
today's labels while the map's work is O(changed leads).

**Every version is a registered model** ``VENDOR~honest@vN-<fingerprint>`` (format ``honest``,
:mod:`assay.models.formats`) and a derivation of VENDOR fitted as of T (the ``derivations``
table): the versions form a history, each is replayable, and the derived scorer is judged only
on leads whose outcomes came after T (:mod:`assay.ledger.labels`).

**Serving** (:func:`score_honestly`) predicts each lead's honest probability, interval and
status from the newest version (built first when matured leads arrived since) and records it as
a prediction of ``VENDOR~honest`` with that version as model version and the inputs
``raw_score`` and ``segment``, so ``assay replay`` re-derives every served number. A lead the
map calls "not yet" or "out of range" is recorded as an abstention (no probability): the
served number is returned with its status, but it is no claim, and the audit of the honest
scorer judges only the leads it made a claim on (the report gives the share it abstained on).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError, to_utc
from assay.ledger.parse import apply_mapping, read_source
from assay.models.formats import HONEST_FEATURES as FEATURES
from assay.stats.honest import OK, HonestMap, HonestSettings, Prediction

if TYPE_CHECKING:
    from collections.abc import Mapping

    from assay.ledger import IngestReceipt, Ledger
    from assay.models.registry import ModelRecord

#: A vendor's honest scorer is named VENDOR + this suffix.
SUFFIX = "~honest"


class NoMaturedLeads(AssayInputError):
    """A vendor's first map cannot be built: none of its leads has matured yet."""


def honest_scorer(vendor: str) -> str:
    """Return the name of ``vendor``'s honest scorer (and of its map versions)."""
    if vendor.endswith(SUFFIX):
        raise AssayInputError(f"{vendor!r} is already an honest scorer; name the vendor")
    return f"{vendor}{SUFFIX}"


@dataclass(frozen=True)
class MapVersion:
    """A stored map version: the map, its registered model, and the as-of it was built at."""

    map: HonestMap
    record: ModelRecord
    built_as_of: dt.datetime
    new_leads: int  # matured leads this version added (0: an existing version was reused)


def latest_map(ledger: Ledger, vendor: str) -> MapVersion | None:
    """Return the newest map version of ``vendor``'s honest scorer, or None."""
    from assay.models.registry import list_models

    name = honest_scorer(vendor)
    records = [r for r in list_models(ledger) if r.name == name]
    if not records:
        return None
    record = max(records, key=lambda r: (int(r.details["map_version"]), r.registered_at))
    found = ledger.con.execute(
        "SELECT a.bytes, d.fitted_as_of FROM artefacts a, derivations d WHERE a.fingerprint = ? "
        "AND d.scorer = ? AND d.model_version = ?",
        [record.fingerprint, name, record.version],
    ).fetchall()
    assert found, f"{record.ref} has no artefact or derivation"
    return MapVersion(
        _parsed(record.fingerprint, bytes(found[0][0])), record, to_utc(found[0][1]), 0
    )


@functools.lru_cache(maxsize=16)
def _parsed(fingerprint: str, document: bytes) -> HonestMap:
    """Parse the map stored under ``fingerprint`` (immutable: once per process)."""
    return HonestMap.from_json(document)


#: (ledger file, vendor) → (fingerprint of the newest version, when its history was last read and
#: nothing had changed): ``fresh_for`` counts from that check, not from the build.
_UNCHANGED: dict[tuple[str, str], tuple[str, dt.datetime]] = {}


def _matured(ledger: Ledger, vendor: str, as_of: dt.datetime, segment_key: str | None) -> pa.Table:
    """prediction_id, raw_score, outcome, segment of the vendor's matured leads as of then.

    The leads an audit of the vendor as of then judges (:meth:`Ledger.judged_labels`: matured,
    not abstained, with a probability).
    """
    table = ledger.judged_labels(as_of=as_of, scorer=vendor).table
    keep = pc.and_(
        pc.and_(table["matured"], pc.invert(table["abstained"])),
        pc.is_valid(table["probability"]),
    )
    table = table.filter(keep)
    segment = (
        pc.map_lookup(table["segments"], pa.scalar(segment_key), "first")
        if segment_key is not None
        else pa.nulls(table.num_rows, pa.string())
    )
    return pa.table(
        {
            "prediction_id": table["prediction_id"],
            "raw_score": table["probability"],
            "outcome": pc.cast(pc.equal(table["label"], "positive"), pa.float64()),
            "segment": segment,
        }
    )


def _columns(table: pa.Table) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(raw score, outcome, segment) of a :func:`_matured` table."""
    return (
        table["raw_score"].to_numpy(),
        table["outcome"].to_numpy(),
        table["segment"].to_pylist(),
    )


def _changes(before: pa.Table, after: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Return the leads to add (new, or relabelled: new label) and to retract (old label)."""
    joined = after.join(
        before.select(["prediction_id", "outcome"]).rename_columns(["prediction_id", "was"]),
        "prediction_id",
        join_type="full outer",
    )
    relabelled = pc.fill_null(pc.not_equal(joined["outcome"], joined["was"]), False)
    gone = pc.is_null(joined["outcome"])
    added = joined.filter(pc.or_(pc.is_null(joined["was"]), relabelled))
    dropped_ids = joined.filter(pc.or_(relabelled, gone))["prediction_id"]
    retracted = before.filter(pc.is_in(before["prediction_id"], value_set=dropped_ids))
    return added.select(after.column_names), retracted


def build_map(
    ledger: Ledger,
    vendor: str,
    *,
    segment_key: str | None = None,
    settings: HonestSettings | None = None,
    now: dt.datetime | None = None,
    fresh_for: dt.timedelta = dt.timedelta(0),
) -> MapVersion:
    """Build (or update) ``vendor``'s honest map from its matured leads as of ``now``.

    With no version yet, a map of every matured lead (version 1). Otherwise the newest version
    is updated with the leads matured since it was built (a new version), or returned as it is
    when none did, or when it was built (or last found unchanged, in this process) less than
    ``fresh_for`` ago (a server sets this so a request does not read the vendor's history each
    time). The segment key and settings of an
    existing map are kept; asking for others is refused (start another vendor name to change
    them).
    """
    ledger.require_scorer(vendor)
    moment = dt.datetime.now(dt.UTC) if now is None else to_utc(now)
    return _build(
        ledger, vendor, latest_map(ledger, vendor), segment_key, settings, moment, fresh_for
    )


def _build(
    ledger: Ledger,
    vendor: str,
    previous: MapVersion | None,
    segment_key: str | None,
    settings: HonestSettings | None,
    moment: dt.datetime,
    fresh_for: dt.timedelta,
) -> MapVersion:
    """:func:`build_map` from ``previous``, the vendor's newest version (None: no version yet)."""
    if previous is None:
        leads = _matured(ledger, vendor, moment, segment_key)
        if leads.num_rows == 0:
            raise NoMaturedLeads(
                f"not yet: scorer {vendor!r} has no matured leads yet: the honest map learns "
                "from outcomes (ingest outcomes, or wait until leads mature)"
            )
        built = HonestMap.fit(
            *_columns(leads), settings or HonestSettings(), segment_key=segment_key
        )
        return _store(ledger, vendor, built, moment, leads.num_rows)
    old = previous.map
    if segment_key is not None and segment_key != old.segment_key:
        raise AssayInputError(
            f"{vendor}'s honest map is segmented by {old.segment_key!r}, not {segment_key!r}"
        )
    if settings is not None and settings != old.settings:
        raise AssayInputError(f"{vendor}'s honest map was built with {old.settings}")
    cache_key = (str(ledger.path), vendor)
    fingerprint, checked = _UNCHANGED.get(cache_key, ("", previous.built_as_of))
    if fingerprint != previous.record.fingerprint:
        checked = previous.built_as_of
    if moment < checked + fresh_for or moment <= previous.built_as_of:
        return previous
    added, retracted = _changes(
        _matured(ledger, vendor, previous.built_as_of, old.segment_key),
        _matured(ledger, vendor, moment, old.segment_key),
    )
    if added.num_rows == 0 and retracted.num_rows == 0:
        _UNCHANGED[cache_key] = (previous.record.fingerprint, moment)
        return previous
    updated = old.update(*_columns(added), retract=_columns(retracted))
    return _store(ledger, vendor, updated, moment, added.num_rows)


def _store(
    ledger: Ledger, vendor: str, built: HonestMap, moment: dt.datetime, new_leads: int
) -> MapVersion:
    """Register the version and record it as a derivation fitted as of ``moment``."""
    from assay.models.registry import register_model

    name = honest_scorer(vendor)
    document = built.to_json()
    record = register_model(
        ledger, name, built.version_name, document.encode(), format="honest", now=moment
    )
    ledger.record_derivation(
        scorer=name, base_scorer=vendor, fingerprint=record.fingerprint,
        calibrator_json=json.dumps({"honest_map": record.ref}), fitted_as_of=moment,
        model_version=built.version_name, now=moment,
    )  # fmt: skip
    return MapVersion(built, record, moment, new_leads)


@dataclass(frozen=True)
class HonestScores:
    """What :func:`score_honestly` served and recorded."""

    version: MapVersion
    #: entity_id, prediction_id, raw_score, segment, probability, lower, upper, status, map_version
    leads: pa.Table
    receipt: IngestReceipt


def score_honestly(
    ledger: Ledger,
    vendor: str,
    data: Any,
    *,
    score_column: str = "score",
    segment_key: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    mapping: Mapping[str, str] | None = None,
    score_kind: str | None = None,
    settings: HonestSettings | None = None,
    now: dt.datetime | None = None,
    fresh_for: dt.timedelta = dt.timedelta(0),
) -> HonestScores:
    """Serve the honest score of each lead in ``data`` and record it (module docstring).

    ``data`` (a path, Arrow table, pandas or polars frame) holds ``entity_id``, the vendor's raw
    score in ``score_column`` and, for a segmented map, the segment in a column named like the
    map's segment key; ``prediction_id``, ``scored_at``, ``horizon_days`` and ``target_event``
    are optional (default: derived ids, now, and the vendor's own horizon and target). The raw
    score is read as ``score_kind`` ("probability" or "percent"; default: the kind of the
    vendor's latest stored prediction). ``fresh_for`` as :func:`build_map` takes it.
    """
    from assay.models.scoring import _derived_ids

    moment = dt.datetime.now(dt.UTC) if now is None else to_utc(now)
    ledger.require_scorer(vendor)
    table = apply_mapping(read_source(data).table, dict(mapping or {}))
    for column in ("entity_id", score_column):
        if column not in table.column_names:
            raise AssayInputError(
                f"the leads have no {column} column; rename yours with --map SOURCE={column}"
            )
    stored = latest_map(ledger, vendor)
    key = segment_key if segment_key is not None or stored is None else stored.map.segment_key
    if key is not None and key not in table.column_names:
        raise AssayInputError(
            f"{vendor}'s honest map is segmented by {key!r}: the leads need a {key} column"
        )
    inherited = _vendor_defaults(ledger, vendor)
    kind = score_kind or str(inherited.pop("score_kind", "probability"))
    raw = _raw_scores(table[score_column], score_column, kind)  # refused before a map is built
    segment = (
        pc.cast(table[key], pa.string()) if key is not None else pa.nulls(len(raw), pa.string())
    )
    version = _build(ledger, vendor, stored, key, settings, moment, fresh_for)
    honest = version.map
    served = honest.predict(raw, segment.to_pylist())
    ok = np.array([status == OK for status in served.status], dtype=bool)
    name = honest_scorer(vendor)
    ref = f"{name}@{version.record.version}"
    given = {**inherited, **(defaults or {})}
    if "scored_at" not in table.column_names and "scored_at" not in given:
        given["scored_at"] = moment.isoformat()
    ids = (
        pc.binary_join_element_wise(
            pc.cast(table["prediction_id"], pa.string()), pa.scalar(SUFFIX), ""
        )
        if "prediction_id" in table.column_names
        else _derived_ids(ref, table, given)
    )
    batch = pa.table(
        {
            "prediction_id": ids,
            "entity_id": pc.cast(table["entity_id"], pa.string()),
            "scorer": pa.repeat(pa.scalar(name), len(raw)),
            "model_version": pa.repeat(pa.scalar(version.record.version), len(raw)),
            "score": pa.array(served.probability, pa.float64(), mask=~ok),
            "score_kind": pa.repeat(pa.scalar("probability"), len(raw)),
            "raw_score": pa.array(raw, pa.float64()),
            "segment": segment,
            **({key: segment} if key not in (None, "segment") else {}),
            **{
                column: table[column]
                for column in ("scored_at", "horizon_days", "target_event", "source")
                if column in table.column_names
            },
        }
    )
    receipt = ledger.ingest_predictions(
        batch, defaults=given, inputs=list(FEATURES),
        segments=[key] if key is not None else (), now=moment,
    )  # fmt: skip
    return HonestScores(version, _served_table(batch, served, honest.version_name), receipt)


def _raw_scores(column: pa.ChunkedArray, name: str, kind: str) -> np.ndarray:
    """Return the raw scores as probabilities (float64) read as ``kind``.

    Blanks, text and values outside [0, 1] (or [0, 100] for percent) are refused with the row
    (1 = the first lead) and the column.
    """
    top = {"probability": 1.0, "percent": 100.0}.get(kind)
    if top is None:
        raise AssayInputError(
            f"the honest map reads probabilities; scores of kind {kind!r} are not (give "
            "--score-kind probability or percent if the column holds one)"
        )
    try:
        values = np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise AssayInputError(
            f"column {name} holds values that are not numbers; the raw score must be a "
            f"{kind} in [0, {top:g}]"
        ) from None
    bad = np.flatnonzero(~((values >= 0) & (values <= top)))
    if len(bad):
        value = values[bad[0]]
        shown = "blank" if np.isnan(value) else f"{value:g}"
        hint = " (a 0-100 score: --score-kind percent)" if kind == "probability" else ""
        raise AssayInputError(
            f"row {bad[0] + 1}, column {name}: {shown} is not a {kind} in [0, {top:g}]{hint}; "
            f"{len(bad):,} row(s) like it"
        )
    return np.asarray(values / top, dtype=np.float64)


def _vendor_defaults(ledger: Ledger, vendor: str) -> dict[str, Any]:
    """Return the horizon, target and score kind of the vendor's latest prediction."""
    row = ledger.con.execute(
        "SELECT horizon_days, target_event, score_kind FROM predictions WHERE scorer = ? "
        "ORDER BY scored_at DESC, prediction_id DESC LIMIT 1",
        [vendor],
    ).fetchall()
    if not row:
        return {}
    return {"horizon_days": row[0][0], "target_event": row[0][1], "score_kind": row[0][2]}


def _served_table(batch: pa.Table, served: Prediction, version: str) -> pa.Table:
    return pa.table(
        {
            "entity_id": batch["entity_id"],
            "prediction_id": batch["prediction_id"],
            "raw_score": batch["raw_score"],
            "segment": batch["segment"],
            "probability": pa.array(served.probability),
            "lower": pa.array(served.lower),
            "upper": pa.array(served.upper),
            "status": pa.array(served.status, pa.string()),
            "map_version": pa.repeat(pa.scalar(version), batch.num_rows),
        }
    )
