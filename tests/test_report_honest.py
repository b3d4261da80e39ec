"""The honest score in the report: the raw vendor score and its honest version side by side.

One seeded ledger: a vendor over-promising (score = 1.6 × the true rate, ``tests/test_derived``)
scores 3,000 leads Jan–Apr 2024; its honest map v1 is built on their outcomes on 16 May; 4,000
new leads scored 16–26 May are served by v1 (and 50 old converted leads served again, whose
outcomes taught v1); their outcomes arrive by 9 June; v2 is built on 1 July and serves 600 leads
still pending at the report's as-of, 5 July. Every number of the block is checked against an
independent computation on the ledger's own rows (sklearn for the AUCs).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from rich.console import Console
from sklearn.metrics import roc_auc_score
from tests.test_derived import _leads

from assay.audit.document import dumps, report_document, verify_document
from assay.audit.report import build_report
from assay.ledger import Ledger
from assay.models.honest import build_map, score_honestly
from assay.report.html import render_html
from assay.report.terminal import print_report

if TYPE_CHECKING:
    from collections.abc import Iterator

    from assay.audit.report import Report
    from assay.models.honest import HonestScores

T1 = dt.datetime(2024, 5, 16, tzinfo=dt.UTC)  # map v1 built
SERVED_1 = dt.datetime(2024, 5, 27, tzinfo=dt.UTC)  # leads of 16–26 May served by v1
T2 = dt.datetime(2024, 7, 1, tzinfo=dt.UTC)  # map v2 built (their outcomes matured)
AS_OF = dt.datetime(2024, 7, 5, tzinfo=dt.UTC)


@dataclass(frozen=True)
class World:
    ledger: Ledger
    report: Report
    new: HonestScores  # the 4,000 leads of 16–26 May
    old: HonestScores  # 50 converted leads of Jan–Apr served again
    late: HonestScores  # 600 leads served by v2, pending at the as-of
    outcomes: pa.Table  # the new leads' outcomes


def _vendor(ledger: Ledger, predictions: pa.Table, now: dt.datetime) -> None:
    """Record the vendor's predictions as received at ``now`` (not backfilled)."""
    ledger.ingest_predictions(predictions.drop_columns(["recorded_at"]), now=now)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ledger = Ledger(tmp_path_factory.mktemp("honest") / "honest.duckdb")
    history, history_outcomes = _leads("a", 3000, "2024-01-01", 110, seed=1)
    ledger.ingest_predictions(history, now=T1 - dt.timedelta(days=1))
    ledger.ingest_outcomes(history_outcomes, now=T1 - dt.timedelta(days=1))
    assert build_map(ledger, "vendor", now=T1).new_leads == 3000
    predictions, outcomes = _leads("b", 4000, "2024-05-16", 10, seed=2)
    _vendor(ledger, predictions, SERVED_1)
    new = score_honestly(
        ledger, "vendor", predictions.select(["prediction_id", "entity_id", "score", "scored_at"]),
        now=SERVED_1,
    )  # fmt: skip
    converted = history_outcomes["entity_id"][:50]
    rows = pc.is_in(history["entity_id"], value_set=converted)
    old = score_honestly(ledger, "vendor", history.filter(rows), now=SERVED_1)
    ledger.ingest_outcomes(outcomes, now=T2)
    assert build_map(ledger, "vendor", now=T2).new_leads == 4000
    late_predictions, _ = _leads("c", 600, "2024-07-01", 1, seed=3)
    _vendor(ledger, late_predictions, T2 + dt.timedelta(days=2))
    late = score_honestly(
        ledger, "vendor",
        late_predictions.select(["prediction_id", "entity_id", "score", "scored_at"]),
        now=T2 + dt.timedelta(days=2),
    )  # fmt: skip
    assert late.version.built_as_of == T2 and late.version.new_leads == 0  # v2, reused
    report = build_report(ledger, as_of=AS_OF)
    yield World(ledger, report, new, old, late, outcomes)
    ledger.close()


def _judged(world: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcome, raw score and honest probability of the new leads the honest score claimed."""
    served = world.new.leads
    claimed = served.filter(pc.equal(served["status"], "ok"))
    y = np.asarray(pc.is_in(claimed["entity_id"], value_set=world.outcomes["entity_id"]))
    raw = np.asarray(claimed["raw_score"])
    return y.astype(np.float64), raw, np.asarray(claimed["probability"])


def test_the_raw_and_honest_scores_are_judged_on_the_same_held_out_leads(world: World) -> None:
    (block,) = world.report.honest
    y, raw, honest = _judged(world)
    assert (block.vendor, block.scorer) == ("vendor", "vendor~honest")
    assert block.n_judged == len(y)  # every claimed new lead matured; no old lead is judged
    assert block.in_sample == 50  # the old leads: their outcomes taught v1
    assert block.raw is not None and block.honest is not None
    assert block.observed_rate == pytest.approx(y.mean(), abs=1e-12)
    for side, p in ((block.raw, raw), (block.honest, honest)):
        assert side.summary.n == len(y)
        assert side.summary.auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert side.summary.auc_lower < side.summary.auc < side.summary.auc_upper
        assert side.expected_rate == pytest.approx(p.mean(), abs=1e-12)
        assert side.observed_expected == pytest.approx(y.sum() / p.sum(), abs=1e-12)
    # The vendor promises 1.6 × the true rate; the map learned that and the score says so.
    assert block.raw.summary.verdict == "miscalibrated"
    assert block.raw.observed_expected == pytest.approx(1 / 1.6, abs=0.05)
    assert block.honest.observed_expected == pytest.approx(1, abs=0.05)
    assert block.honest.summary.ece_upper < block.raw.summary.ece_lower
    assert block.prob_honest_closer >= 0.95  # the pair's decisive threshold
    assert block.pair_verdict == "vendor~honest is better calibrated"


def test_the_not_yet_share_counts_every_served_score_per_map_version(world: World) -> None:
    (block,) = world.report.honest
    by_call = [world.new, world.old, world.late]
    abstained = [int(pc.sum(pc.not_equal(s.leads["status"], "ok")).as_py()) for s in by_call]
    v1, v2 = world.new.version.record.version, world.late.version.record.version
    assert [(v.map_version, v.served, v.abstained) for v in block.served] == [
        (v1, 4000 + 50, abstained[0] + abstained[1]),
        (v2, 600, abstained[2]),
    ]
    assert [v.built_as_of for v in block.served] == [T1.isoformat(), T2.isoformat()]
    assert block.abstained_total > 0
    assert block.abstention_share == block.abstained_total / 4650
    # The ledger's own rows agree: abstentions are the served scores recorded without a score.
    rows = world.ledger.con.execute(
        "SELECT count(*), count(*) FILTER (WHERE score IS NULL) FROM predictions "
        "WHERE scorer = 'vendor~honest'"
    ).fetchone()
    assert rows == (block.served_total, block.abstained_total)


def test_the_json_document_carries_the_block_and_verifies(world: World) -> None:
    document = report_document(world.report)
    (block,) = document["honest"]
    assert block == json.loads(json.dumps(world.report.honest[0].to_dict()))
    assert block["raw"]["verdict"] == "miscalibrated"
    assert block["served_total"] == 4650
    assert verify_document(json.loads(dumps(document)), world.ledger) == []
    tampered = json.loads(dumps(document))
    tampered["honest"][0]["abstained_total"] += 1
    assert verify_document(tampered, world.ledger) == [
        f"honest[0].abstained_total: recorded {block['abstained_total'] + 1}, "
        f"now {block['abstained_total']}"
    ]


def test_the_block_is_rendered_in_the_terminal_and_the_html(world: World) -> None:
    console = Console(record=True, width=160)
    print_report(console, world.report)
    text = console.export_text()
    block = world.report.honest[0]
    share = f"{100 * block.abstention_share:.1f}%"
    assert "honest score vendor~honest beside the raw score of vendor" in text
    assert f"{block.abstained_total:,} ({share}) were" in text
    assert f"On {block.n_judged:,} leads both judged" in text
    page = render_html(world.report)
    assert "Honest score “vendor~honest” beside the raw score of “vendor”" in page
    assert f"{block.n_judged:,} leads both judged" in page
    assert f"{block.abstained_total:,} ({share}) were" in page


def test_the_block_is_absent_without_an_honest_scorer_or_its_vendor(world: World) -> None:
    alone = build_report(world.ledger, as_of=AS_OF, scorers=["vendor"])
    assert alone.honest == [] and "honest" not in report_document(alone)
    only = build_report(world.ledger, as_of=AS_OF, scorers=["vendor~honest"])
    assert only.honest == [] and "honest" not in report_document(only)


def test_a_ledger_without_an_honest_scorer_reports_as_before(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "plain.duckdb")
    predictions, outcomes = _leads("a", 600, "2024-01-01", 60, seed=4)
    ledger.ingest_predictions(predictions, now=T1)
    ledger.ingest_outcomes(outcomes, now=T1)
    report = build_report(ledger, as_of=AS_OF)
    assert report.honest == [] and "honest" not in report_document(report)
    ledger.close()


def test_an_honest_score_of_leads_the_vendor_never_scored_says_why_it_is_not_judged(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "apart.duckdb")
    history, history_outcomes = _leads("a", 3000, "2024-01-01", 110, seed=1)
    ledger.ingest_predictions(history, now=T1)
    ledger.ingest_outcomes(history_outcomes, now=T1)
    build_map(ledger, "vendor", now=T1)
    predictions, outcomes = _leads("b", 1000, "2024-05-16", 10, seed=2)  # never the vendor's
    served = score_honestly(
        ledger, "vendor", predictions.select(["prediction_id", "entity_id", "score", "scored_at"]),
        now=SERVED_1,
    )  # fmt: skip
    ledger.ingest_outcomes(outcomes, now=T2)
    (block,) = build_report(ledger, as_of=AS_OF).honest
    assert block.raw is None and block.honest is None and block.n_judged == 0
    assert block.note is not None and "are not compared: no matured lead" in block.note
    abstained = int(pc.sum(pc.not_equal(served.leads["status"], "ok")).as_py())
    assert (block.served_total, block.abstained_total) == (1000, abstained)
    assert block.sentences()[0] == block.note
    ledger.close()
