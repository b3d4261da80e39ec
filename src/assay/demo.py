"""``assay demo``: a real ledger from the bank-marketing calls, audited end to end.

Two scorers (logistic regression and gradient boosting) are trained on the earlier half of the
calls and score the later half. Calls are spread evenly over the campaign (May 2008 to November
2010) in their original order; a subscription occurs 0–20 days after the call and reaches the
ledger 0–10 days later. The audit runs as of the campaign's end, so the last month's calls are
still pending. Everything is seeded: the same seed gives the same ledger and report bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from assay.audit import Audit, audit
from assay.datasets import score_bank_calls
from assay.ledger import Ledger
from assay.report.document import dumps, report_document
from assay.report.html import render_html

CAMPAIGN_START = dt.datetime(2008, 5, 1, tzinfo=dt.UTC)
CAMPAIGN_END = dt.datetime(2010, 11, 30, tzinfo=dt.UTC)
HORIZON_DAYS = 30
SEGMENTS = ("job", "education", "contact")


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    ledger: Path
    html: Path
    json: Path
    audits: list[Audit]


def _timestamps(positions: np.ndarray, total: int) -> np.ndarray:
    span = (CAMPAIGN_END - CAMPAIGN_START).total_seconds()
    seconds = np.floor(positions / total * span).astype("int64")
    start = np.datetime64(CAMPAIGN_START.replace(tzinfo=None), "s")
    return (start + seconds.astype("timedelta64[s]")).astype("datetime64[us]")


def build_demo(directory: Path, *, seed: int = 0) -> DemoResult:
    """Write ``directory/ledger.duckdb``, ``report.html`` and ``report.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    ledger_path = directory / "ledger.duckdb"
    for stale in (ledger_path, ledger_path.with_name(ledger_path.name + ".wal")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(directory / "ledger.duckdb.tmp", ignore_errors=True)

    scored = score_bank_calls(seed=seed)
    total = len(scored.y) * 2 if len(scored.y) else 1
    first = total - len(scored.y)
    positions = np.arange(first, first + len(scored.y))
    scored_at = _timestamps(positions, total)
    as_of = CAMPAIGN_END
    utc = pa.timestamp("us", tz="UTC")
    calls = scored.calls
    segment_columns = {name: calls[name] for name in SEGMENTS}
    rng = np.random.default_rng(seed)

    with Ledger(ledger_path) as ledger:
        for name, prob in scored.scores.items():
            ids = [f"{name}-{i}" for i in positions]
            table = pa.table(
                {
                    "prediction_id": ids,
                    "entity_id": [f"call-{i}" for i in positions],
                    "scorer": [name] * len(ids),
                    "model_version": ["trained-on-calls-0-20593"] * len(ids),
                    "score": prob,
                    "scored_at": pa.array(scored_at, utc),
                    "recorded_at": pa.array(scored_at, utc),
                    "horizon_days": pa.array(np.full(len(ids), HORIZON_DAYS, np.int32)),
                    "target_event": ["subscribed"] * len(ids),
                    "input_hash": [
                        hashlib.sha256(f"call-{i}".encode()).hexdigest()[:16] for i in positions
                    ],
                    "seed": pa.array(np.full(len(ids), seed, np.int64)),
                    "source": ["bank-marketing demo"] * len(ids),
                    **segment_columns,
                }
            )
            ledger.ingest_predictions(table, segments=SEGMENTS, now=as_of)
        won = np.flatnonzero(scored.y == 1)
        occurred = scored_at[won] + (rng.uniform(0, 20, len(won)) * 86_400e6).astype(
            "timedelta64[us]"
        )
        recorded = occurred + (rng.uniform(0, 10, len(won)) * 86_400e6).astype("timedelta64[us]")
        known = recorded <= np.datetime64(as_of.replace(tzinfo=None), "us")
        ledger.ingest_outcomes(
            pa.table(
                {
                    "entity_id": [f"call-{positions[i]}" for i in won[known]],
                    "event": ["subscribed"] * int(known.sum()),
                    "occurred_at": pa.array(occurred[known], utc),
                    "recorded_at": pa.array(recorded[known], utc),
                    "source": ["bank-marketing demo"] * int(known.sum()),
                }
            ),
            now=as_of,
        )
        audits = [audit(ledger, scorer=name, as_of=as_of) for name in sorted(scored.scores)]
    html_path, json_path = directory / "report.html", directory / "report.json"
    html_path.write_text(render_html(audits, as_of=as_of.isoformat()))
    json_path.write_text(dumps(report_document(audits, as_of=as_of.isoformat())))
    return DemoResult(directory, ledger_path, html_path, json_path, audits)
