"""The label rule, defined once as Ibis expressions.

The rule says which emission is the lead, and when it is
positive, negative or pending. The ledger (:mod:`assay.ledger.labels`), the monitor
(:mod:`assay.ledger.maturity`) and every engine of :mod:`assay.pushdown` compile these.

**Visible.** A prediction scored at s and recorded at r is visible from v = max(r, s) on: as
of T, the rule sees it if r ≤ T and s ≤ T. Every row the rule reads is filtered on what was
recorded by T, so a later re-run as of the same T sees the same rows and gives the same labels.

**The lead.** Per (entity, scorer) — of one model version, when the caller names one — the
emissions are ordered by (scored_at, prediction_id); ``policy`` says which one is the lead:
"first" (the default), "last" or "all" (every emission leads). An emission is the lead **at a
moment t** if it is visible at t and no emission that precedes it under the policy (an earlier
one for "first", a later one for "last") is visible at t. Its ``displaced_at`` is when the
first such emission became visible (NULL: none yet), so it is the lead on [v, displaced_at).

An abstention is an emission like any other. **A lead whose first emission abstained is an
abstention**: counted, never judged, and no later emission of the lead stands in for it — an
abstention is the scorer's answer for that lead ("not yet"), and judging the next emission
instead would let a scorer choose which leads it is judged on. The same holds for an emission
without a probability (points, ranks).

**Labels as of T.** A lead scored at s with horizon h days and target event e is

* **positive** if an outcome of event e for the same entity occurred in [s, s + h) and was
  recorded by T;
* **negative** if s + h ≤ T − L_e (it has ``matured``) and no such outcome was recorded by T;
* **pending** otherwise.

L_e is the recording lag waited for event e: none in DESIGN §6's plain rule, the measured lag
(:mod:`assay.ledger.lag`) for the labels a scorer is judged on. A positive can be known before
its window closes; only matured leads are unbiased evidence.

**The monitor** (:func:`consumed`) reads the same rule at each lead's own maturity m (its
window closed and its wait passed, :mod:`assay.ledger.maturity`): an emission is consumed at m
if it is scored (not abstained, with a probability) and is the lead at m — so a lead recorded
after it matured (history that could have seen its outcome) is left out — and it is labelled
positive iff the rule's positive holds as of m. An entity is consumed once, at the first such
m: a later-recorded emission that precedes it under the policy cannot replace a lead already
consumed. Each decision uses only rows recorded by m, so the stream does not depend on when
the monitor is updated. Once every lead has matured and every emission was recorded before the
others matured, the consumed leads are exactly the scored, matured leads of the labels, with
the labels' positive as of each lead's maturity (a conversion recorded later is a late flip).

As of T, the rule's expressions take ``as_of`` as a timezone-aware datetime (converted to UTC,
it enters as a ``TIMESTAMP WITH TIME ZONE`` literal; a naive one would compile to BigQuery's
DATETIME, which cannot be compared with TIMESTAMP columns) or as an Ibis timestamp value (the
ledger binds it as a query parameter, so one compiled text serves every as-of).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import ibis
import ibis.expr.datatypes as dt_types
import ibis.expr.types as ir

from assay._validation import AssayInputError, check_choice, to_utc
from assay.ledger.schema import ibis_fields

POLICIES = ("first", "last", "all")

#: Columns the label rule reads from the predictions and outcomes tables.
PREDICTION_FIELDS = (
    "prediction_id", "entity_id", "scorer", "scored_at", "recorded_at", "horizon_days",
    "target_event",
)  # fmt: skip
OUTCOME_FIELDS = ("entity_id", "event", "occurred_at", "recorded_at")

#: A lead is one (entity, scorer); its emissions are ordered by EMISSION_ORDER.
LEAD_KEYS = ("entity_id", "scorer")
EMISSION_ORDER = ("scored_at", "prediction_id")

#: The order labelled rows come in: the ledger's, fixed so snapshots hash the same every time.
LABEL_ORDER = ("scorer", "scored_at", "prediction_id")

UTC_TIMESTAMP = dt_types.Timestamp(timezone="UTC")

#: The ledger's predictions and outcomes as the label rule sees them (the chain's bookkeeping,
#: batch_id and row_hash, stays out), from the one schema declaration (:mod:`.schema`).
LEDGER_PREDICTIONS = ibis.schema(ibis_fields("predictions"))
LEDGER_OUTCOMES = ibis.schema(ibis_fields("outcomes"))

#: A moment: a timezone-aware datetime (a literal) or an Ibis timestamp value.
Moment: TypeAlias = dt.datetime | ir.TimestampValue
#: T − L_e: one moment for every target event, or one per event (unnamed events: T).
Deadline: TypeAlias = Moment | Mapping[str, Moment]


def ledger_tables() -> tuple[ir.Table, ir.Table]:
    """Unbound ``predictions`` and ``outcomes`` tables with the ledger's schemas."""
    return (
        ibis.table(LEDGER_PREDICTIONS, name="predictions"),
        ibis.table(LEDGER_OUTCOMES, name="outcomes"),
    )


def utc_literal(when: dt.datetime) -> ir.TimestampScalar:
    """``moment`` as a UTC ``TIMESTAMP WITH TIME ZONE`` literal; naive datetimes are refused."""
    return ibis.literal(to_utc(when), type=UTC_TIMESTAMP)


def moment(value: Moment) -> ir.TimestampValue:
    """Return a datetime as a UTC literal; an Ibis timestamp value as it is."""
    return utc_literal(value) if isinstance(value, dt.datetime) else value


def require_columns(table: ir.Table, fields: Sequence[str], what: str) -> None:
    """Refuse a table that lacks a column the rule reads, naming what it has."""
    missing = [f for f in fields if f not in table.columns]
    if missing:
        raise AssayInputError(
            f"the {what} table lacks column(s) {', '.join(missing)}; it has "
            f"{', '.join(table.columns)} (rename or add them to match the ledger's columns)"
        )


def window_closes(predictions: ir.Table) -> ir.TimestampValue:
    """S + h: the end (exclusive) of a prediction's conversion window."""
    return predictions.scored_at + predictions.horizon_days.as_interval("D")


def visible_from(predictions: ir.Table) -> ir.TimestampValue:
    """V = max(recorded_at, scored_at): from when a prediction is visible."""
    return ibis.greatest(predictions.recorded_at, predictions.scored_at)


def emissions(
    predictions: ir.Table,
    *,
    as_of: Moment,
    scorer: str | ir.StringValue | None = None,
    model_version: str | ir.StringValue | None = None,
    policy: str = "first",
) -> ir.Table:
    """Return the emissions visible as of ``as_of`` (of one scorer and model version, if named).

    Each comes with ``visible_from`` and ``displaced_at`` (module docstring: it leads until then).
    """
    check_choice(policy, "policy", POLICIES)
    require_columns(predictions, PREDICTION_FIELDS, "predictions")
    cutoff = moment(as_of)
    p = predictions
    keep = [p.recorded_at <= cutoff, p.scored_at <= cutoff]
    if scorer is not None:
        keep.append(p.scorer == scorer)
    if model_version is not None:
        keep.append(p.model_version == model_version)
    seen = p.filter(*keep)
    opened = visible_from(seen)
    if policy == "all":
        displaced: ir.TimestampValue = ibis.null(UTC_TIMESTAMP)
    else:
        frame = (None, -1) if policy == "first" else (1, None)
        displaced = opened.min().over(
            ibis.window(
                group_by=[seen[k] for k in LEAD_KEYS],
                order_by=[seen[k] for k in EMISSION_ORDER],
                rows=frame,
            )
        )
    return seen.mutate(visible_from=opened, displaced_at=displaced)


def is_lead_at(spans: ir.Table, at: Moment) -> ir.BooleanValue:
    """Tell whether each emission of ``spans`` (from :func:`emissions`) leads at ``at``."""
    t = moment(at)
    return (spans.visible_from <= t) & (spans.displaced_at.isnull() | (spans.displaced_at > t))


def scored(table: ir.Table) -> ir.BooleanValue:
    """Tell whether an emission can be judged: not an abstention, and with a probability.

    A lake without an ``abstained`` column holds no abstentions.
    """
    present = table.probability.notnull()
    return present & ~table.abstained if "abstained" in table.columns else present


def conversions(chosen: ir.Table, outcomes: ir.Table, known_by: Moment) -> ir.Table:
    """Add ``converted_at`` to ``chosen``.

    ``converted_at`` is when the ledger first recorded, by ``known_by``, an
    outcome of the prediction's target event, for its entity, that occurred inside its window
    [s, s + h) (NULL: none). It converted as of t ≤ ``known_by`` iff converted_at ≤ t.
    """
    require_columns(outcomes, OUTCOME_FIELDS, "outcomes")
    hits = (
        chosen.join(
            outcomes,
            [
                chosen.entity_id == outcomes.entity_id,
                chosen.target_event == outcomes.event,
                outcomes.occurred_at >= chosen.scored_at,
                outcomes.occurred_at < window_closes(chosen),
                outcomes.recorded_at <= moment(known_by),
            ],
        )
        .select(key=chosen.prediction_id, at=outcomes.recorded_at)
        .group_by("key")
        .aggregate(converted_at=ibis._.at.min())
    )
    joined = chosen.left_join(hits, chosen.prediction_id == hits.key)
    return joined.select(*[chosen[c] for c in chosen.columns], hits.converted_at)


def recording_deadline(chosen: ir.Table, as_of: Moment, deadline: Deadline | None) -> ir.Value:
    """T − L_e per prediction: the latest window close that has waited out its event's lag."""
    if deadline is None:
        return moment(as_of)
    if not isinstance(deadline, Mapping):
        return moment(deadline)
    cases = [(chosen.target_event == event, moment(at)) for event, at in sorted(deadline.items())]
    return ibis.cases(*cases, else_=moment(as_of)) if cases else moment(as_of)


def labelled(
    predictions: ir.Table,
    outcomes: ir.Table,
    *,
    as_of: Moment,
    scorer: str | ir.StringValue | None = None,
    model_version: str | ir.StringValue | None = None,
    policy: str = "first",
    deadline: Deadline | None = None,
) -> ir.Table:
    """Return every lead's columns plus ``label`` and ``matured`` as of ``as_of``.

    The rule is the module docstring's; ``deadline`` is T − L_e, ``as_of`` itself when None
    (no wait).
    """
    spans = emissions(
        predictions, as_of=as_of, scorer=scorer, model_version=model_version, policy=policy
    )
    chosen = spans.filter(is_lead_at(spans, as_of)).select(*predictions.columns)
    known = conversions(chosen, outcomes, as_of)
    matured = window_closes(known) <= recording_deadline(known, as_of, deadline)
    label = ibis.cases(
        (known.converted_at.notnull(), "positive"),
        (matured, "negative"),
        else_="pending",
    )
    return known.mutate(label=label, matured=matured).drop("converted_at")


def consumed(waited: ir.Table, outcomes: ir.Table, *, until: Moment) -> ir.Table:
    """Return the leads the monitor has consumed by ``until`` (module docstring).

    Each comes with ``positive`` (converted as of its maturity) and ``late`` (a conversion
    recorded after it, by ``until``).

    ``waited`` holds scored emissions as :func:`emissions` gives them, with ``closes`` (s + h)
    and ``matures`` (NULL while the lead still waits).
    """
    w = waited
    ready = conversions(
        w.filter(w.matures <= moment(until), is_lead_at(w, w.matures)), outcomes, until
    )
    first = ibis.row_number().over(
        group_by=[ready[k] for k in LEAD_KEYS], order_by=[ready.matures, ready.prediction_id]
    )
    leads = ready.filter(first == 0)
    positive = leads.converted_at.notnull() & (leads.converted_at <= leads.matures)
    return leads.mutate(positive=positive, late=leads.converted_at > leads.matures)
