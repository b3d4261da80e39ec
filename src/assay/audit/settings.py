"""What a report file may ask ``assay verify`` to compute: the types and bounds of its settings.

A report is input like any other. Before anything is recomputed, every field that drives the
computation (each audit's scorer, as-of, policy and configuration; each monitor's
configuration; the ledger head) is checked here against the type and range the library accepts,
plus a bound where the library has none (at most :data:`MAX_BINS` bins, :data:`MAX_ENTRIES`
audits or monitors, a monitor window of :data:`MAX_WINDOW` leads). A crafted report can then
neither make verification allocate without bound nor end in a traceback: the first field that
fails is refused in one line, by its path. Every other field is compared with the recomputed
report, never used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from assay._validation import AssayInputError, to_utc
from assay.audit.monitor import STATE_VERSION
from assay.ledger.integrity import ChainHead

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: More bins than this is no longer a reliability diagram.
MAX_BINS = 1_000
#: Audits (and monitors) one report may hold.
MAX_ENTRIES = 1_000
#: A monitor's window, refit interval and minimum fit, in leads.
MAX_WINDOW = 1_000_000
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Value:
    """A leaf: ``test`` says whether a value is acceptable, ``what`` says what it must be."""

    test: Callable[[Any], bool]
    what: str


@dataclass(frozen=True)
class Record:
    """A JSON object.

    ``exact``: its keys must be exactly ``fields`` (they become keyword arguments); otherwise only
    ``fields`` are checked, a missing one reading as null.
    """

    fields: Mapping[str, Spec]
    exact: bool = False


@dataclass(frozen=True)
class Items:
    """A JSON array of at most ``most`` elements, each checked by ``item``.

    ``optional``: the array may also be absent.
    """

    item: Spec
    most: int
    optional: bool = False


Spec = Value | Record | Items


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(low: int, high: int) -> Value:
    return Value(
        lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high,
        f"a whole number in [{low:,}, {high:,}]",
    )


def _optional(value: Value) -> Value:
    return Value(lambda v: v is None or value.test(v), f"null or {value.what}")


def _one_of(*options: Any) -> Value:
    return Value(lambda v: any(v == o and type(v) is type(o) for o in options), f"one of {options}")


def _parses(parse: Callable[[str], Any], value: Any) -> bool:
    try:
        parse(value)
    except AssayInputError:
        return False
    return True


FRACTION = Value(lambda v: _is_number(v) and 0 < v < 1, "a number strictly between 0 and 1")
POSITIVE = Value(lambda v: _is_number(v) and v > 0, "a finite number above 0")
NON_NEGATIVE = Value(lambda v: _is_number(v) and v >= 0, "a finite number of at least 0")
TEXT = Value(lambda v: isinstance(v, str), "text")
TIMESTAMP = Value(
    lambda v: isinstance(v, str) and _parses(to_utc, v), "an ISO 8601 time with a zone"
)
HEAD = Value(lambda v: isinstance(v, str) and _parses(ChainHead.parse, v), "N:HASH (a chain head)")

TOLERANCE = Record(
    {name: POSITIVE for name in ("ratio", "slope", "curve", "curve_floor", "curve_cap")},
    exact=True,
)
#: Every field of :class:`assay.audit.scorer.AuditConfig`.
AUDIT_CONFIG = Record(
    {
        "n_bins": _optional(_whole(1, MAX_BINS)),
        "strategy": _one_of("uniform", "quantile"),
        "tolerance": TOLERANCE,
        "probability": FRACTION,
        "credibility": FRACTION,
        "seed": _whole(0, INT64_MAX),
        "thin_bucket": _whole(0, INT64_MAX),
        "min_cohort": _whole(0, INT64_MAX),
        "target_precision": _optional(FRACTION),
        "delta": FRACTION,
        "value_per_conversion": _optional(NON_NEGATIVE),
        "cost_per_action": _optional(NON_NEGATIVE),
        "segment_by": _optional(TEXT),
        "recording_lag_days": _optional(NON_NEGATIVE),
    },
    exact=True,
)
AUDIT = Record(
    {
        "reproducibility": Record(
            {
                "scorer": TEXT,
                "as_of": TIMESTAMP,
                "model_version": _optional(TEXT),
                "policy": _one_of("first", "last", "all"),
                "config": AUDIT_CONFIG,
                "ledger": TEXT,
            }
        )
    }
)
#: Every field of :class:`assay.stats.eprocess.StreamConfig`.
STREAM_CONFIG = Record(
    {
        "alpha": FRACTION,
        "window": _whole(1, MAX_WINDOW),
        "refit_every": _whole(1, MAX_WINDOW),
        "min_fit": _whole(1, MAX_WINDOW),
        "gate_z": NON_NEGATIVE,
        "shrinkage": NON_NEGATIVE,
        "slope_gate": NON_NEGATIVE,
        "drift_threshold": POSITIVE,
        "ratio": POSITIVE,
        "slope": POSITIVE,
    },
    exact=True,
)
MONITOR = Record(
    {
        "monitor": Record(
            {
                "version": _one_of(STATE_VERSION),
                "scorer": TEXT,
                "model_version": _optional(TEXT),
                "grace_days": _optional(NON_NEGATIVE),
                "config": STREAM_CONFIG,
            }
        )
    }
)
REPORT = Record(
    {
        "audits": Items(AUDIT, MAX_ENTRIES),
        "monitors": Items(MONITOR, MAX_ENTRIES, optional=True),
        "ledger_head": _optional(HEAD),
    }
)


def check_settings(document: Mapping[str, Any]) -> None:
    """Refuse, in one line naming the field, the first setting outside its type or bounds."""
    _check(document, REPORT, "")


def _check(value: Any, spec: Spec, path: str) -> None:
    if isinstance(spec, Value):
        if not spec.test(value):
            _refuse(path, f"= {_shown(value)}; it must be {spec.what}")
    elif isinstance(spec, Items):
        if value is None and spec.optional:
            return
        if not isinstance(value, list) or len(value) > spec.most:
            _refuse(path, f"must be a list of at most {spec.most:,} items")
        for index, item in enumerate(value):
            _check(item, spec.item, f"{path}[{index}]")
    else:
        if not isinstance(value, dict):
            _refuse(path, f"= {_shown(value)}; it must be an object")
        if spec.exact and set(value) != set(spec.fields):
            extra, lacking = (
                sorted(set(value) - set(spec.fields)),
                sorted(set(spec.fields) - set(value)),
            )
            _refuse(
                path, f"must hold exactly {sorted(spec.fields)} (extra {extra}, lacking {lacking})"
            )
        for name, field_spec in spec.fields.items():
            _check(value.get(name), field_spec, f"{path}.{name}" if path else name)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _refuse(path: str, problem: str) -> NoReturn:
    raise AssayInputError(f"report setting {path} {problem}; refused before computing anything")
