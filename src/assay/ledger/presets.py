"""How real CRM exports become ledger rows (see ``tests/fixtures/crm/SPEC.md`` for the formats).

Export headers are matched case-insensitively (Salesforce Data Loader writes ``ID`` or ``Id``
depending on its version) and each ledger column may come from the first of several headers
(a HubSpot UI export writes labels, an API export internal names).

**A score in an export is a snapshot**: the value at export time. No CRM export says when it
was computed, and "last modified" dates move when the record converts, so a snapshot preset
needs the export time as ``scored_at`` (``--scored-at``); records that had already converted at
the export are not open predictions (their score was computed after the conversion) and are
left out, counted in a note.

Predictions:

* ``hubspot`` — a contacts export: ``Record ID``/``hs_object_id`` is the entity,
  ``Likelihood to close``/``hs_predictivecontactscore_v2`` a percent ("chance of becoming a
  customer in the next 90 days"), target event "customer", 90 days. Contacts with a
  ``Became a Customer Date`` at or before the export are left out.
* ``salesforce`` — a Lead extract: ``Id`` is the entity; the score is the org's own field, so
  map it (``--map Lead_Score__c=score``), percent, target "converted", 90 days; converted
  leads (``IsConverted`` true) are left out.

Outcomes:

* ``hubspot`` — a contacts export: event "customer" at ``Became a Customer Date`` where it is
  set (not ``Lifecycle Stage == Customer``: an Evangelist keeps the date).
* ``hubspot-deals`` — a deals export: each Closed Won deal is a "customer" event for every
  contact in ``Associated Contact IDs`` (``;``-separated), at ``Date entered "Closed Won
  (…)"`` (set by HubSpot), else ``Close Date`` (editable by reps).
* ``salesforce`` — a Lead extract: event "converted" at ``ConvertedDate`` (a day) where
  ``IsConverted`` is true.

HubSpot UI exports write wall-clock times in the portal's zone without an offset, so they need
``--assume-timezone`` (the error says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError


@dataclass(frozen=True)
class Preset:
    """How one CRM export becomes ledger columns.

    ``columns``: ledger name → candidate export headers, the first present wins (a trailing
    ``*`` matches a prefix); ``defaults``: constants; ``event_when``: keep only rows where the
    (ledger) column is non-empty and, if a value is given, equals it (case-insensitive);
    ``explode``: a ledger column holding several ``;``-separated values, one row each;
    ``snapshot``: scores are as of the export, so ``scored_at`` must be given; ``converted``:
    an export header whose non-empty value (other than ``false``) marks a record already
    converted at the export, left out of a snapshot.
    """

    label: str
    columns: dict[str, tuple[str, ...]]
    defaults: dict[str, str] = field(default_factory=dict)
    event_when: tuple[str, str | None] | None = None
    explode: str | None = None
    snapshot: bool = False
    converted: str | None = None
    #: Ledger columns the export cannot name for the preset, and how the user supplies them.
    needs: dict[str, str] = field(default_factory=dict)

    def prepare(self, table: pa.Table, notes: list[str]) -> pa.Table:
        """Rename, filter and fan out the export's rows; say what was left out in ``notes``."""
        headers = {name.lower(): name for name in table.column_names}
        renames: dict[str, str] = {}
        for target, candidates in self.columns.items():
            found = next((h for c in candidates for h in _matches(c, headers)), None)
            if found is not None and target not in table.column_names:
                renames[found] = target
        table = table.rename_columns([renames.get(n, n) for n in table.column_names])
        for column, advice in self.needs.items():
            if column not in table.column_names:
                raise AssayInputError(f"the {self.label} preset needs {column!r}: {advice}")
        if self.converted is not None:
            table = self._drop_converted(table, notes)
        if self.event_when is not None:
            table = self._events(table)
        if self.explode is not None and self.explode in table.column_names:
            table = _explode(table, self.explode)
        return table

    def _drop_converted(self, table: pa.Table, notes: list[str]) -> pa.Table:
        """Leave out records already converted at the export.

        In a snapshot a set conversion
        date (or ``IsConverted`` true) can only lie before the export (see module docs).
        """
        assert self.converted is not None
        headers = {name.lower(): name for name in table.column_names}
        column = headers.get(self.converted.lower())
        if column is None:
            return table
        text = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(table[column], pa.string())))
        done = pc.fill_null(
            pc.and_(pc.greater(pc.utf8_length(text), 0), pc.not_equal(text, "false")), False
        )
        left = int(pc.sum(pc.cast(done, pa.int64())).as_py() or 0)
        if left:
            notes.append(
                f"{left:,} record(s) had already converted at the export ({column} set) and "
                "were left out: their score was computed after the conversion"
            )
        return table.filter(pc.invert(done))

    def snapshot_advice(self) -> str:
        """Return the advice for a snapshot export: pass ``--scored-at`` with the export time."""
        return (
            f"a {self.label} export holds each record's score as of the export, not when it "
            "was scored: pass --scored-at with the export time, e.g. --scored-at "
            "2024-06-30T18:00:00Z (Python: defaults={'scored_at': ...}); a modification date "
            "is not a scoring time"
        )

    def _events(self, table: pa.Table) -> pa.Table:
        assert self.event_when is not None
        column, value = self.event_when
        if column not in table.column_names:
            wanted = self.columns.get(column, (column,))
            raise AssayInputError(
                f"the {self.label} preset needs a column {' or '.join(map(repr, wanted))}; the "
                f"input has {', '.join(table.column_names)}"
            )
        text = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(table[column], pa.string())))
        keep = pc.fill_null(pc.greater(pc.utf8_length(text), 0), False)
        if value is not None:
            keep = pc.and_(keep, pc.fill_null(pc.equal(text, value.lower()), False))
        return table.filter(keep)


def _matches(candidate: str, headers: dict[str, str]) -> list[str]:
    """Return the export headers a candidate names (case-insensitive; ``*`` = prefix)."""
    key = candidate.lower()
    if key.endswith("*"):
        return [original for lower, original in headers.items() if lower.startswith(key[:-1])]
    return [headers[key]] if key in headers else []


def _explode(table: pa.Table, column: str) -> pa.Table:
    """One row per ``;``-separated value of ``column``; rows with no value are dropped."""
    parts = pc.split_pattern(pc.cast(table[column], pa.string()), ";")
    lengths = np.asarray(pc.fill_null(pc.list_value_length(parts), 0))
    rows = np.repeat(np.arange(table.num_rows), lengths)
    values = pc.utf8_trim_whitespace(pc.list_flatten(parts))
    exploded = table.take(pa.array(rows)).set_column(
        table.column_names.index(column), column, values
    )
    return exploded.filter(pc.greater(pc.utf8_length(exploded[column]), 0))


_HUBSPOT_ID = ("Record ID", "hs_object_id")
_CUSTOMER_DATE = ("Became a Customer Date", "hs_lifecyclestage_customer_date")

PREDICTION_PRESETS = {
    "hubspot": Preset(
        label="HubSpot contacts",
        columns={
            "entity_id": _HUBSPOT_ID,
            "score": ("Likelihood to close", "hs_predictivecontactscore_v2"),
        },
        defaults={
            "scorer": "hubspot",
            "score_kind": "percent",
            "horizon_days": "90",
            "target_event": "customer",
            "source": "hubspot",
        },
        snapshot=True,
        converted="Became a Customer Date",
    ),
    "salesforce": Preset(
        label="Salesforce leads",
        columns={"entity_id": ("Id", "Lead ID")},
        defaults={
            "scorer": "salesforce",
            "score_kind": "percent",
            "horizon_days": "90",
            "target_event": "converted",
            "source": "salesforce",
        },
        snapshot=True,
        converted="IsConverted",
        needs={"score": "map your org's score field to it, e.g. --map Lead_Score__c=score"},
    ),
}

OUTCOME_PRESETS = {
    "hubspot": Preset(
        label="HubSpot contacts",
        columns={"entity_id": _HUBSPOT_ID, "occurred_at": _CUSTOMER_DATE},
        defaults={"event": "customer", "source": "hubspot"},
        event_when=("occurred_at", None),
    ),
    "hubspot-deals": Preset(
        label="HubSpot deals",
        columns={
            "entity_id": ("Associated Contact IDs",),
            "occurred_at": ('Date entered "Closed Won*', "Close Date", "closedate"),
            "deal_stage": ("Deal Stage", "dealstage"),
        },
        defaults={"event": "customer", "source": "hubspot-deals"},
        event_when=("deal_stage", "closed won"),
        explode="entity_id",
    ),
    "salesforce": Preset(
        label="Salesforce leads",
        columns={
            "entity_id": ("Id", "Lead ID"),
            "occurred_at": ("ConvertedDate", "Converted Date"),
            "converted": ("IsConverted", "Converted"),
        },
        defaults={"event": "converted", "source": "salesforce"},
        event_when=("converted", "true"),
    ),
}


def get_preset(kind: str, name: str | None) -> Preset | None:
    """Return the ``kind`` preset called ``name`` (None for None); refuse an unknown name."""
    if name is None:
        return None
    presets = PREDICTION_PRESETS if kind == "predictions" else OUTCOME_PRESETS
    if name not in presets:
        raise AssayInputError(
            f"unknown preset {name!r} for {kind}; choose one of {', '.join(sorted(presets))}"
        )
    return presets[name]
