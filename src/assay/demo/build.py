"""``assay demo``: a ledger built from scratch, audited end to end, written as a report.

*Bank marketing* (the default, real data): two scorers (logistic regression and gradient
boosting) are trained on the earlier half of the UCI bank-marketing calls and score the later
half. Calls are spread evenly over the campaign (May 2008 to November 2010) in their original
order; a subscription occurs 0–20 days after the call and reaches the ledger 0–10 days later.
The audit runs as of the campaign's end, so the last month's calls are still pending.

*Synthetic* (``--synthetic``): a CRM whose true conversion probabilities are known. Leads in
four industries get a true probability; "vendor-a" reports it exactly, "vendor-b" is
over-confident (logit scaled by 1.6). The report draws the true curve beside the estimate.

Everything is seeded: the same seed gives the same ledger and report bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from scipy.special import expit, logit

from assay._validation import FloatArray
from assay.audit.document import dumps, report_document
from assay.audit.monitor import Monitor
from assay.audit.report import Report, build_report
from assay.audit.scorer import AuditConfig
from assay.demo.datasets import score_bank_calls
from assay.ledger import Ledger
from assay.report.html import render_comparison_html, render_html

if TYPE_CHECKING:
    from pathlib import Path

CAMPAIGN_START = dt.datetime(2008, 5, 1, tzinfo=dt.UTC)
CAMPAIGN_END = dt.datetime(2010, 11, 30, tzinfo=dt.UTC)
HORIZON_DAYS = 30
BANK_SEGMENTS = ("job", "education", "contact")
UTC = pa.timestamp("us", tz="UTC")
DAY_US = 86_400e6

TrueCurve = Callable[[FloatArray], FloatArray]
#: The demo also asks when an outbound action may fire: precision ≥ 50%, a conversion worth
#: 200 and an action costing 30 (break-even probability 0.15).
DEMO_CONFIG = AuditConfig(target_precision=0.5, value_per_conversion=200.0, cost_per_action=30.0)


@dataclass(frozen=True)
class DemoResult:
    """The files a demo wrote (its directory, ledger, HTML and JSON reports) and the report."""

    directory: Path
    ledger: Path
    html: Path
    json: Path
    compare_html: Path | None  # None when the scorers share no lead
    report: Report


def _spread(start: dt.datetime, end: dt.datetime, fractions: FloatArray) -> np.ndarray:
    """Timestamps at the given fractions of [start, end), to the second."""
    seconds = np.floor(fractions * (end - start).total_seconds()).astype("int64")
    origin = np.datetime64(start.replace(tzinfo=None), "s")
    return (origin + seconds.astype("timedelta64[s]")).astype("datetime64[us]")


def _fresh_ledger(
    path: Path,
    predictions: list[pa.Table],
    outcomes: pa.Table,
    *,
    as_of: dt.datetime,
    segments: tuple[str, ...],
) -> Ledger:
    """Create a new ledger at ``path`` holding the rows, recorded at ``as_of``.

    An old ledger at ``path`` (with its WAL and temporary directory) is removed first.
    """
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(path.with_name(path.name + ".tmp"), ignore_errors=True)
    ledger = Ledger(path)
    for table in predictions:
        ledger.ingest_predictions(table, segments=segments, now=as_of)
    ledger.ingest_outcomes(outcomes, now=as_of)
    return ledger


def _write(
    directory: Path,
    predictions: list[pa.Table],
    outcomes: pa.Table,
    *,
    as_of: dt.datetime,
    segments: tuple[str, ...],
    true_curves: dict[str, TrueCurve] | None = None,
) -> DemoResult:
    """Ingest into a fresh ledger, build the report through the one seam, write HTML and JSON.

    The report holds every scorer's audit, their comparison and a monitor per scorer whose
    state the ledger then keeps, so ``assay report`` on this ledger shows the same sections.
    """
    config = replace(DEMO_CONFIG, segment_by=segments[0])
    directory.mkdir(parents=True, exist_ok=True)
    ledger_path = directory / "ledger.duckdb"
    with _fresh_ledger(
        ledger_path, predictions, outcomes, as_of=as_of, segments=segments
    ) as ledger:
        monitors = [Monitor(scorer=name) for name in ledger.scorers()]
        report = build_report(ledger, as_of=as_of, config=config, monitors=monitors)
        for summary in report.monitors:
            ledger.save_monitor_state(summary.monitor.key, summary.monitor.to_json())
    grid = np.linspace(0, 1, 201)
    curves = {name: (grid, curve(grid)) for name, curve in (true_curves or {}).items()}
    html_path, json_path = directory / "report.html", directory / "report.json"
    html_path.write_text(render_html(report, true_curves=curves, json_path=str(json_path)))
    json_path.write_text(dumps(report_document(report)))
    compare_path = None
    if report.comparison is not None:
        compare_path = directory / "compare.html"
        compare_path.write_text(render_comparison_html(report.comparison, as_of=report.as_of))
    return DemoResult(directory, ledger_path, html_path, json_path, compare_path, report)


def _outcomes(
    entities: list[str],
    scored_at: np.ndarray,
    converted: np.ndarray,
    as_of: dt.datetime,
    rng: np.random.Generator,
    *,
    max_delay: float,
    max_lag: float,
    event: str,
) -> pa.Table:
    """Events 0–max_delay days after scoring, recorded 0–max_lag days later, known by as_of."""
    won = np.flatnonzero(converted)
    occurred = scored_at[won] + (rng.uniform(0, max_delay, len(won)) * DAY_US).astype(
        "timedelta64[us]"
    )
    recorded = occurred + (rng.uniform(0, max_lag, len(won)) * DAY_US).astype("timedelta64[us]")
    known = recorded <= np.datetime64(as_of.replace(tzinfo=None), "us")
    return pa.table(
        {
            "entity_id": [entities[i] for i in won[known]],
            "event": [event] * int(known.sum()),
            "occurred_at": pa.array(occurred[known], UTC),
            "recorded_at": pa.array(recorded[known], UTC),
            "source": ["demo"] * int(known.sum()),
        }
    )


def _predictions(
    scorer: str,
    entities: list[str],
    scores: FloatArray,
    scored_at: np.ndarray,
    *,
    model_version: str,
    horizon_days: int,
    event: str,
    seed: int,
    segments: dict[str, pa.Array],
) -> pa.Table:
    n = len(entities)
    return pa.table(
        {
            "prediction_id": [f"{scorer}-{e}" for e in entities],
            "entity_id": entities,
            "scorer": [scorer] * n,
            "model_version": [model_version] * n,
            "score": scores,
            "scored_at": pa.array(scored_at, UTC),
            "recorded_at": pa.array(scored_at, UTC),
            "horizon_days": pa.array(np.full(n, horizon_days, np.int32)),
            "target_event": [event] * n,
            "input_hash": [hashlib.sha256(e.encode()).hexdigest()[:16] for e in entities],
            "seed": pa.array(np.full(n, seed, np.int64)),
            "source": ["demo"] * n,
            **segments,
        }
    )


def build_demo(directory: Path, *, seed: int = 0) -> DemoResult:
    """Build the bank-marketing demo in ``directory``.

    It writes ``directory/ledger.duckdb``, ``report.html`` and ``report.json``.
    """
    scored = score_bank_calls(seed=seed)
    total = 2 * len(scored.y)
    positions = np.arange(total - len(scored.y), total)
    scored_at = _spread(CAMPAIGN_START, CAMPAIGN_END, positions / total)
    entities = [f"call-{i}" for i in positions]
    segments = {name: scored.calls[name] for name in BANK_SEGMENTS}
    tables = [
        _predictions(
            name,
            entities,
            prob,
            scored_at,
            model_version="trained-on-first-half",
            horizon_days=HORIZON_DAYS,
            event="subscribed",
            seed=seed,
            segments=segments,
        )
        for name, prob in scored.scores.items()
    ]
    rng = np.random.default_rng(seed)
    outcomes = _outcomes(
        entities,
        scored_at,
        scored.y == 1,
        CAMPAIGN_END,
        rng,
        max_delay=20,
        max_lag=10,
        event="subscribed",
    )
    return _write(directory, tables, outcomes, as_of=CAMPAIGN_END, segments=BANK_SEGMENTS)


#: Over-confidence of the synthetic "vendor-b": its logit is the true logit times this.
SYNTHETIC_STRETCH = 1.6


def _synthetic(
    n: int, seed: int
) -> tuple[list[pa.Table], pa.Table, dt.datetime, dict[str, TrueCurve]]:
    """Simulate the CRM: each vendor's predictions, the outcomes, the as-of, the true curves."""
    rng = np.random.default_rng(seed)
    start, as_of = dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 9, 1, tzinfo=dt.UTC)
    industries = np.array(["saas", "retail", "finance", "health"])
    industry = industries[rng.integers(0, 4, n)]
    lift = {"saas": 0.4, "retail": -0.5, "finance": 0.1, "health": -0.2}
    truth = expit(logit(rng.beta(2, 6, n)) + np.vectorize(lift.get)(industry))
    converted = rng.random(n) < truth
    scored_at = _spread(start, as_of, np.sort(rng.uniform(0, 1, n)))
    entities = [f"lead-{i:05d}" for i in range(n)]
    segments = {"industry": pa.array(industry)}
    vendors = {
        "vendor-a": (truth, lambda s: s),
        "vendor-b": (
            expit(SYNTHETIC_STRETCH * logit(truth)),
            lambda s: expit(logit(np.clip(s, 1e-9, 1 - 1e-9)) / SYNTHETIC_STRETCH),
        ),
    }
    tables = [
        _predictions(
            name,
            entities,
            np.round(score, 4),
            scored_at,
            model_version="v1",
            horizon_days=60,
            event="closed-won",
            seed=seed,
            segments=segments,
        )
        for name, (score, _) in vendors.items()
    ]
    outcomes = _outcomes(
        entities, scored_at, converted, as_of, rng, max_delay=50, max_lag=5, event="closed-won"
    )
    curves = {name: curve for name, (_, curve) in vendors.items()}
    return tables, outcomes, as_of, curves


def build_synthetic_demo(directory: Path, *, seed: int = 0, n: int = 6000) -> DemoResult:
    """Build a CRM with known truth: one calibrated, one over-confident vendor, pending leads."""
    tables, outcomes, as_of, curves = _synthetic(n, seed)
    return _write(
        directory, tables, outcomes, as_of=as_of, segments=("industry",), true_curves=curves
    )


def synthetic_ledger(path: Path, *, n: int = 6000, seed: int = 0) -> dt.datetime:
    """Write the synthetic CRM's ledger alone at ``path`` (no report; for benchmarks).

    Returns the ledger's as-of.
    """
    tables, outcomes, as_of, _ = _synthetic(n, seed)
    _fresh_ledger(path, tables, outcomes, as_of=as_of, segments=("industry",)).close()
    return as_of
