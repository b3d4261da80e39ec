"""The JSON report and the re-verification that proves it.

The report holds every audit's numbers and the ledger history they came from.

**Frozen.** A report is as of a time no later than when it is made (:func:`frozen_as_of`):
labels count what the ledger recorded by the as-of, so a report as of a later time would change
with the next ingest. It records ``ledger_head``, the chain head of the ledger it read
(:class:`assay.ledger.integrity.ChainHead`), which anchors that history.

**Verified.** :func:`verify_document` checks, in this order, and stops at the first failure:

1. the settings that drive the computation, types and bounds (:mod:`assay.audit.settings`),
   before anything is computed;
2. that the report is still frozen: its as-of is not later than now; the ledger verifies and
   still holds the recorded head (no batch of that history removed or rewritten); and no batch
   after the head was ingested at or before the as-of (that would make it a report as of a time
   after it was made);
3. the WHOLE document, rebuilt through the one report seam (:func:`assay.audit.report.build_report`)
   from the first audit's recorded settings at its as-of (the report's own ``as_of`` must be
   that time; every audit, the comparison when the report has one, and the recorded monitors),
   and compared field by field. Only :data:`VARYING_FIELDS` may differ; a report without
   audits proves nothing and fails.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay._validation import AssayInputError
from assay.audit.monitor import Monitor
from assay.audit.report import Report, build_report, frozen_as_of
from assay.audit.scorer import AuditConfig
from assay.audit.settings import check_settings
from assay.ledger.integrity import ChainHead, ingested_at

if TYPE_CHECKING:
    from assay.ledger import Ledger

REPORT_SCHEMA_VERSION = 1
#: The fields a faithful re-run may change: where the ledger file lives is not evidence (nor
#: the next-step command that names it).
#: (``ledger_head`` is checked by containment instead: the ledger may have grown since.)
VARYING_FIELDS = ("audits[*].reproducibility.ledger", "answers[*].command")


def report_document(report: Report) -> dict[str, Any]:
    """Return the report as JSON-safe data.

    Its as-of, the chain head of the ledger it read, every audit, the comparison, the
    monitors and the honest scores beside their vendors (``honest``) when it has them, and why
    a section is missing.
    """
    document: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "assay-report",
        "as_of": report.as_of,
    }
    if report.ledger_head is not None:
        document["ledger_head"] = str(report.ledger_head)
    document["audits"] = [a.to_dict() for a in report.audits]
    if report.answers:
        document["answers"] = [a.to_dict() for a in report.answers]
    if report.comparison is not None:
        document["comparison"] = report.comparison.comparison.to_dict()
    if report.monitors:
        document["monitors"] = [m.to_dict() for m in report.monitors]
    if report.honest:
        document["honest"] = [h.to_dict() for h in report.honest]
    if report.notes:
        document["notes"] = list(report.notes)
    return document


def dumps(document: dict[str, Any]) -> str:
    """Return ``document`` as indented JSON text ending with a newline."""
    return json.dumps(document, indent=2) + "\n"


def verify_document(document: dict[str, Any], ledger: Ledger) -> list[str]:
    """Check and recompute a report (module docstring); the fields that differ, by path.

    Raises :class:`AssayInputError` when the report cannot be verified at all: a setting out
    of bounds, an as-of in the future, or a ledger that no longer holds the report's history.
    """
    _check_settings(document)
    recorded = document["audits"]
    if not recorded:
        return ["audits: the report holds no audits; a report audits at least one scorer"]
    settings = recorded[0]["reproducibility"]
    as_of = settings["as_of"]
    head = _anchor(document, as_of, ledger)
    report = build_report(
        ledger,
        as_of=as_of,
        scorers=[item["reproducibility"]["scorer"] for item in recorded],
        model_version=settings["model_version"],
        policy=settings["policy"],
        config=AuditConfig.from_dict(settings["config"]),
        compare_scorers="comparison" in document,
        monitors=[
            Monitor.from_settings(item["monitor"]) for item in document.get("monitors") or []
        ],
    )
    fresh = _json_safe(report_document(replace(report, ledger_head=head)))
    for item, again in zip(recorded, fresh["audits"], strict=True):
        again["reproducibility"]["ledger"] = item["reproducibility"]["ledger"]  # VARYING_FIELDS
    for told, again in zip(document.get("answers") or [], fresh.get("answers") or [], strict=False):
        if isinstance(told, dict) and "command" in told:
            again["command"] = told["command"]  # VARYING_FIELDS
    return _differences(document, fresh, "")


def recorded_ledger(document: dict[str, Any]) -> Path:
    """Return the ledger file a report names (its first audit's)."""
    _check_settings(document)
    if not document["audits"]:
        raise AssayInputError("audits: the report holds no audits, so it names no ledger")
    return Path(document["audits"][0]["reproducibility"]["ledger"])


def read_document(path: Path) -> dict[str, Any]:
    """Read a report's JSON object from ``path``; unreadable text or non-objects are refused."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AssayInputError(f"cannot read report {path}: {exc}") from None
    if not isinstance(data, dict):
        raise AssayInputError(f"{path} is not an assay report: its JSON is not an object")
    return data


def _check_settings(document: dict[str, Any]) -> None:
    if document.get("kind") != "assay-report":
        raise AssayInputError("this JSON is not an assay report (kind != 'assay-report')")
    if document.get("schema_version") != REPORT_SCHEMA_VERSION:
        raise AssayInputError(
            f"report schema_version {document.get('schema_version')!r} is not supported"
        )
    check_settings(document)


def _anchor(document: dict[str, Any], as_of: str, ledger: Ledger) -> ChainHead | None:
    """Return the report's recorded head, once the report is shown to be still frozen (step 2)."""
    moment = frozen_as_of(as_of)
    if document.get("ledger_head") is None:
        return None
    head = ChainHead.parse(document["ledger_head"])
    result = ledger.verify(expect=head)
    if not result.ok:
        raise AssayInputError(
            f"the ledger no longer holds the history this report was computed from (ledger "
            f"head {head}): {result.problem}"
        )
    after = ingested_at(ledger.con, head.batches + 1)
    if after is not None and after <= moment:
        raise AssayInputError(
            f"the report is as of {as_of}, but batch {head.batches + 1}, ingested after it was "
            f"made (its ledger head is batch {head.batches}), was ingested at "
            f"{after.isoformat()}: a report as of a time after it was made cannot be frozen"
        )
    return head


def _differences(expected: Any, actual: Any, path: str) -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        # In the recorded document's order (what the answers restate comes after the audits).
        for key in [*expected, *(k for k in actual if k not in expected)]:
            out += _differences(
                expected.get(key), actual.get(key), f"{path}.{key}" if path else key
            )
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(expected)} items recorded, {len(actual)} now"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out += _differences(e, a, f"{path}[{i}]")
        return out
    return [] if expected == actual else [f"{path}: recorded {expected!r}, now {actual!r}"]


def _json_safe(data: dict[str, Any]) -> Any:
    """Return ``data`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(data))
