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

from assay._validation import AssayInputError


@dataclass(frozen=True)
class Preset:
    mapping: dict[str, str]
    defaults: dict[str, str] = field(default_factory=dict)
    #: Only rows where this (mapped) column is non-empty and, if given, equals the value are events.
    event_when: tuple[str, str | None] | None = None


PREDICTION_PRESETS = {
    "hubspot": Preset(
        mapping={
            "hs_object_id": "entity_id",
            "hs_predictivecontactscore_v2": "score",
            "lastmodifieddate": "scored_at",
        },
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
