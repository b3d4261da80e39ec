"""``POST /v1/score``: a vendor's honest score, served over HTTP and recorded in the ledger.

The body is a batch of leads, NDJSON or CSV, read like an ingest body
(:mod:`assay.service.batches`, kind ``scores``): per lead ``entity_id`` and the vendor's raw
``score``; optionally ``prediction_id``, ``scored_at``, ``horizon_days``, ``target_event``,
``source`` and segments (the one the map is built by is used). At most :data:`MAX_LEADS` leads.

Everything that can refuse the request is checked **before anything is written**: the leads
(:func:`checked_leads`: the ledger's own row checker, every bad row named with its field, value
and reason), the vendor (a scorer of the workspace), the segment the map needs, and the evidence
(a first map needs matured leads: "not yet: no matured outcomes"). Then
:func:`assay.models.honest.score_honestly` builds or updates the map (a version younger than the
server's freshness window is reused without reading the vendor's history) and records every
lead as a prediction of ``VENDOR~honest`` with the map version as model version; a lead whose
status is not "ok" is recorded as an abstention. :func:`answer` is the response: the map
version, when it was built and from how many newly matured leads, the count of leads per status
and, per lead, the honest probability with its 90% interval and status.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay.ledger import LedgerIngestError
from assay.ledger.checks import closest
from assay.ledger.columns import column
from assay.ledger.parse import BadRow, RowChecker
from assay.models.honest import (
    SUFFIX,
    NoMaturedLeads,
    honest_scorer,
    latest_map,
    score_honestly,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from assay.ledger import Ledger
    from assay.models.honest import HonestScores

#: A score request holds at most this many leads.
MAX_LEADS = 10_000
#: The raw score's range per score kind a request may declare.
SCORE_RANGE = {"probability": 1.0, "percent": 100.0}
#: The statuses a lead may have (the text before the reason); the answer counts each.
STATUSES = ("ok", "not yet", "out of range")
#: Per lead in the answer, in this order.
LEAD_FIELDS = ("entity_id", "prediction_id", "probability", "lower", "upper", "status")


class ScoreRefused(Exception):
    """A score request refused before anything was written: HTTP status, reason, bad rows."""

    def __init__(self, status: int, message: str, bad_rows: list[BadRow] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.bad_rows = status, message, bad_rows


def checked_leads(table: pa.Table, score_kind: str) -> pa.Table:
    """Return the leads as the ledger reads them; refuse (422, every bad row) what it would not.

    The text fields come back trimmed (what the ledger stores, so the answer names the same
    ids) and ``score`` as float64. Row numbers count leads from 1, as an ingest's do.
    ``entity_id`` and ``score`` are needed in every lead, the score a number in [0, 1]
    (``score_kind`` probability) or [0, 100] (percent); an optional column sent for some leads
    needs a value in all of them (``source`` excepted);
    ``scored_at`` is ISO 8601 with a zone, ``horizon_days`` a whole number within the ledger's
    bounds. The checks are the ledger's row checker's (:class:`assay.ledger.parse.RowChecker`),
    so the reasons read as an ingest's do.
    """
    top = SCORE_RANGE[score_kind]
    for name in ("entity_id", "score"):  # a field no lead sent: every lead lacks it
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    checker = RowChecker(table)
    read = {"entity_id": checker.text("entity_id", required=True)}
    raw = checker.require("score")
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(raw), ""), True)
    checker.flag(np.asarray(blank), "score", raw, "empty; every lead needs its raw score")
    read["score"] = checker.number("score", pc.if_else(blank, pa.scalar(None, pa.string()), raw))
    score = np.asarray(read["score"].to_numpy(zero_copy_only=False), np.float64)  # NaN: null, bad
    checker.flag(
        (score < 0) | (score > top), "score", raw,
        f"a raw {score_kind} score must lie in [0, {top:g}]"
        + (" (for a 0-100 score send score_kind=percent)" if score_kind == "probability" else ""),
    )  # fmt: skip
    for name in ("prediction_id", "target_event", "source"):
        if name in table.column_names:
            read[name] = checker.text(name, required=name != "source")
    if "scored_at" in table.column_names:
        stamp = checker.require("scored_at")
        checker.timestamp("scored_at", stamp, None)
        empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(stamp), ""), True)
        checker.flag(np.asarray(empty), "scored_at", stamp, "empty; every lead needs a time")
    if "horizon_days" in table.column_names:
        declared = column("predictions", "horizon_days")
        days = checker.require("horizon_days")
        checker.flag(np.asarray(pc.is_null(days)), "horizon_days", days, "empty")
        assert declared.bounds is not None
        checker.integer("horizon_days", days, declared.bounds, "a whole number of days")
    if checker.bad:
        bad = sorted(checker.bad, key=lambda b: (b.row, b.column))
        raise ScoreRefused(
            422, f"score request refused: {len(bad):,} bad value(s), nothing was written", bad
        )
    for name, values in read.items():
        table = table.set_column(table.column_names.index(name), name, values)
    return table


def serve(
    ledger: Ledger,
    vendor: str,
    leads: pa.Table,
    *,
    segment_by: str | None,
    score_kind: str,
    fresh_for: dt.timedelta,
    name_scorers: bool,
) -> HonestScores:
    """Check the vendor, its map's segment and its evidence; then serve and record the leads.

    ``leads`` are :func:`checked_leads`. ``segment_by`` is the segment attribute of a
    first map (an existing map keeps its own). ``name_scorers``: whether a refusal for an
    unknown vendor may list the workspace's scorers (not to a key bound to one vendor).
    Raises :class:`ScoreRefused` (404 unknown vendor, 409 no matured outcomes yet or an id
    frozen with other content, 422 otherwise).
    """
    if not ledger.has_scorer(vendor):
        scorers = ledger.scorers()
        vendors = [s for s in scorers if not s.endswith(SUFFIX)]
        known = (
            f"{closest(vendor, vendors)}; scorers: {', '.join(vendors) or 'none yet'}"
            if name_scorers
            else ""
        )
        raise ScoreRefused(404, f"the workspace holds no scorer {vendor!r}{known}")
    honest_scorer(vendor)  # a VENDOR~honest name is refused (422)
    now = dt.datetime.now(dt.UTC)
    previous = latest_map(ledger, vendor)
    key = previous.map.segment_key if previous is not None else segment_by
    if previous is not None and segment_by not in (None, key):
        built = f"segmented by {key!r}" if key is not None else "not segmented"
        raise ScoreRefused(
            422,
            f"{vendor}'s honest map is {built}; segment_by ({segment_by!r}) chooses the "
            "segment of a first map only: leave it out",
        )
    if key is not None and key not in leads.column_names:
        raise ScoreRefused(
            422,
            f"{vendor}'s honest map is segmented by {key!r}: send it with every lead "
            f'({{"segments": {{"{key}": …}}}} in NDJSON, a segment:{key} column in CSV)',
        )
    try:
        return score_honestly(
            ledger, vendor, leads, segment_key=segment_by, score_kind=score_kind, now=now,
            fresh_for=fresh_for,
        )  # fmt: skip
    except NoMaturedLeads:
        raise ScoreRefused(
            409,
            f"not yet: no matured outcomes: scorer {vendor!r} has no matured leads, and the "
            "honest map learns from outcomes; send outcomes (POST /v1/outcomes) or wait until "
            "its leads' conversion windows close",
        ) from None
    except LedgerIngestError as error:
        frozen = all(b.reason.startswith("frozen") for b in error.bad_rows)
        raise ScoreRefused(
            409 if frozen else 422,
            "score request refused: the leads were not recorded"
            + (" (a prediction_id already holds another score: send a new id)" if frozen else ""),
            error.bad_rows,
        ) from None


def answer(scores: HonestScores, segments: Sequence[str]) -> dict[str, Any]:
    """Return the response body: map version, count per status, every lead served.

    ``segments`` are the segment names the request carried; those the map is not built by
    were not used, and a note says so.
    """
    version, leads = scores.version, scores.leads
    statuses = Counter(s.partition(":")[0] for s in leads["status"].to_pylist())
    key = version.map.segment_key
    unused = [s for s in segments if s != key]
    notes = (
        [f"segments not used (the map is {'segmented by ' + repr(key) if key else 'one map'}): "
         + ", ".join(map(repr, unused))]
        if unused
        else []
    )  # fmt: skip
    columns = [leads[name].to_pylist() for name in LEAD_FIELDS]
    return {
        "scorer": version.record.name,
        "map": version.record.ref,
        "map_version": version.record.version,
        "built_as_of": version.built_as_of.isoformat(),
        "new_leads": version.new_leads,
        "evidence_leads": version.map.evidence.total,
        "counts": {status: statuses.get(status, 0) for status in STATUSES},
        "leads": [dict(zip(LEAD_FIELDS, row, strict=True)) for row in zip(*columns, strict=True)],
        "notes": notes,
    }
