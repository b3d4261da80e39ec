"""Column mappings and defaults for common CRM exports.

* ``hubspot`` (predictions, a contact export): ``hs_object_id`` is the entity,
  ``hs_predictivecontactscore_v2`` a percent score ("Likelihood to close"), scored at
  ``lastmodifieddate``; 90-day horizon, target event "customer".
* ``hubspot`` (outcomes, the same export): the event "customer" occurred at
  ``hs_lifecyclestage_customer_date``; contacts without that date have no outcome yet.
* ``salesforce`` (predictions, a lead export): ``Id`` is the entity, scored at
  ``CreatedDate``; the score column is custom, so map it (``--map Lead_Score__c=score``).
* ``salesforce`` (outcomes, a lead export): event "converted" at ``ConvertedDate`` for leads
  with ``IsConverted`` true; others have no outcome yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError


@dataclass(frozen=True)
class Preset:
    """How one CRM export becomes ledger columns.

    ``mapping`` renames export columns to ledger names; ``defaults`` fills constants;
    ``event_when`` keeps only rows that record the event: the (mapped) column is non-empty
    and, if a value is given, equals it (case-insensitive); ``snapshot`` marks an export of
    today's scores, which carries no scoring time, so ``scored_at`` must be given
    (``--scored-at``); ``date_format`` reads the export's own date style.
    """

    mapping: dict[str, str]
    defaults: dict[str, str] = field(default_factory=dict)
    event_when: tuple[str, str | None] | None = None
    snapshot: bool = False
    date_format: str | None = None
    label: str = ""

    def select(self, table: pa.Table) -> pa.Table:
        """The rows that are events (all rows when the preset has no event rule)."""
        if self.event_when is None:
            return table
        column, value = self.event_when
        if column not in table.column_names:
            raise AssayInputError(
                f"the {self.label} preset needs column {column!r}; the input lacks it "
                f"(columns: {', '.join(table.column_names)})"
            )
        text = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(table[column], pa.string())))
        keep = pc.fill_null(pc.greater(pc.utf8_length(text), 0), False)
        if value is not None:
            keep = pc.and_(keep, pc.fill_null(pc.equal(text, value.lower()), False))
        return table.filter(keep)

    def snapshot_advice(self) -> str:
        return (
            f"a {self.label} export holds each record's score as of the export, not when it "
            "was scored: pass --scored-at with the export time, e.g. --scored-at "
            "2024-06-30T18:00:00Z (Python: defaults={'scored_at': ...}); a modification date "
            "is not a scoring time"
        )


PREDICTION_PRESETS = {
    "hubspot": Preset(
        mapping={
            "hs_object_id": "entity_id",
            "hs_predictivecontactscore_v2": "score",
        },
        snapshot=True,
        label="HubSpot contacts",
        defaults={
            "scorer": "hubspot",
            "score_kind": "percent",
            "horizon_days": "90",
            "target_event": "customer",
            "source": "hubspot-export",
        },
    ),
    "salesforce": Preset(
        mapping={"Id": "entity_id", "CreatedDate": "scored_at"},
        defaults={"scorer": "salesforce", "score_kind": "percent", "source": "salesforce-export"},
    ),
}

OUTCOME_PRESETS = {
    "hubspot": Preset(
        mapping={"hs_object_id": "entity_id", "hs_lifecyclestage_customer_date": "occurred_at"},
        defaults={"event": "customer", "source": "hubspot-export"},
        event_when=("occurred_at", None),
    ),
    "salesforce": Preset(
        mapping={"Id": "entity_id", "ConvertedDate": "occurred_at"},
        defaults={"event": "converted", "source": "salesforce-export"},
        event_when=("IsConverted", "true"),
    ),
}


def get_preset(kind: str, name: str | None) -> Preset | None:
    if name is None:
        return None
    presets = PREDICTION_PRESETS if kind == "predictions" else OUTCOME_PRESETS
    if name not in presets:
        raise AssayInputError(
            f"unknown preset {name!r} for {kind}; choose one of {sorted(presets)}"
        )
    return presets[name]
