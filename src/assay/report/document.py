"""The JSON report: every audit's numbers with a schema version, and its re-verification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assay._validation import AssayInputError
from assay.audit import Audit, AuditConfig, audit
from assay.monitor import Monitor, MonitorSummary, replay_summary

REPORT_SCHEMA_VERSION = 1


def report_document(
    audits: list[Audit], *, as_of: str, monitors: list[MonitorSummary] | None = None
) -> dict[str, Any]:
    document = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "assay-report",
        "as_of": as_of,
        "audits": [a.to_dict() for a in audits],
    }
    if monitors:
        document["monitors"] = [m.to_dict() for m in monitors]
    return document


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def _differences(expected: Any, actual: Any, path: str) -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            out += _differences(expected.get(key), actual.get(key), f"{path}.{key}")
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
    """``data`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(data))


def verify_document(document: dict[str, Any], ledger: Any) -> list[str]:
    """Recompute every audit with its recorded scorer, as-of, policy, config and seed.

    Returns the numbers that differ (empty when the report reproduces exactly).
    """
    if document.get("kind") != "assay-report":
        raise AssayInputError("this JSON is not an assay report (kind != 'assay-report')")
    if document.get("schema_version") != REPORT_SCHEMA_VERSION:
        raise AssayInputError(
            f"report schema_version {document.get('schema_version')!r} is not supported"
        )
    differences = []
    for index, recorded in enumerate(document["audits"]):
        repro = recorded["reproducibility"]
        again = audit(
            ledger,
            scorer=repro["scorer"],
            as_of=repro["as_of"],
            model_version=repro["model_version"],
            policy=repro["policy"],
            config=AuditConfig.from_dict(repro["config"]),
        )
        fresh = _json_safe(again.to_dict())
        fresh["reproducibility"]["ledger"] = repro["ledger"]  # where it lives is not evidence
        differences += _differences(recorded, fresh, f"audits[{index}]")
    for index, recorded in enumerate(document.get("monitors", [])):
        monitor = Monitor.from_dict(recorded["monitor"])
        fresh = _json_safe(replay_summary(monitor, ledger, as_of=document["as_of"]).to_dict())
        differences += _differences(recorded, fresh, f"monitors[{index}]")
    return differences


def read_document(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AssayInputError(f"cannot read report {path}: {exc}") from None
    return data
