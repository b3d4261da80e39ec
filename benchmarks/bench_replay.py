"""Replay 10^5 predictions through the logistic pipeline vs its own ``predict_proba``.

The pipeline of ``tests/model_fixtures.py`` (scaler + one-hot encoder + logistic regression,
saved with skops) is registered and scores 10^5 leads through the ledger
(:func:`assay.models.scoring.score_leads`). Timed in this run:

* ``assay.models.replay.replay``: fetch the predictions and the scoring batch's typed input copy
  (the records read back, kept by ``score_leads``), predict, compare bit for bit (target: at
  most 1.5× the peer);
* peer: ``pipe.predict_proba`` on the same rows as a pandas DataFrame;

the two in turn, best of five each (a shared machine's load then weighs on both alike); then
the replay's parts, best of three: loading the registered artefact (``get_model``, kept per
thread after the first load), the fetch (``Ledger.replay_inputs``: rows and typed copy) and
the prediction of the loaded model on the copy; and, for comparison, what a batch without a
typed copy (inputs ingested with ``--inputs``) costs instead: fetching the records
(``Ledger.prediction_inputs``) and parsing them (``records_frame``).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._timing import best_time

N = 100_000
TARGET = 1.5
REPEAT = 5


def alternating_best(
    first: Callable[[], object], second: Callable[[], object], repeat: int = REPEAT
) -> tuple[float, float]:
    """Best wall time of each of two calls, run in turn ``repeat`` times.

    Alternating them lets a shared machine's load weigh on both alike.
    """
    times: list[list[float]] = [[], []]
    for _ in range(repeat):
        for slot, func in enumerate((first, second)):
            start = time.perf_counter()
            func()
            times[slot].append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def run(console: Console) -> None:
    """Print the replay-versus-predict_proba table."""
    from tests.model_fixtures import FEATURES, fitted_pipeline, lead_frame, skops_bytes

    from assay.ledger import Ledger
    from assay.ledger.inputs import records_frame
    from assay.models.registry import get_model, register_model
    from assay.models.replay import replay
    from assay.models.scoring import score_leads

    pipe = fitted_pipeline()
    leads = lead_frame(N, 11).drop(columns="converted")
    leads.insert(0, "entity_id", [f"lead-{i:06d}" for i in range(N)])
    frame = leads[list(FEATURES)]
    with tempfile.TemporaryDirectory() as directory, Ledger(Path(directory) / "b.duckdb") as ledger:
        now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        register_model(ledger, "leads", "1", skops_bytes(pipe), now=now)
        score_leads(
            ledger, "leads@1", leads, defaults={"horizon_days": 90, "target_event": "won"}, now=now
        )
        result = replay(ledger)
        assert result.ok and result.replayed == N, result.verdict()
        replayed, direct = alternating_best(
            lambda: replay(ledger), lambda: pipe.predict_proba(frame)
        )
        rows = ledger.prediction_inputs()
        _, copy = ledger.replay_inputs()
        assert copy is not None and copy.equals(records_frame(rows["record"]))
        _, model = get_model(ledger, "leads", "1")
        parts = {
            "load (get_model)": best_time(lambda: get_model(ledger, "leads", "1")),
            "fetch (replay_inputs: rows, copy)": best_time(lambda: ledger.replay_inputs()),
            "predict (loaded model, copy)": best_time(lambda: model.predict(copy, None)),
            "without a copy: fetch records": best_time(lambda: ledger.prediction_inputs()),
            "without a copy: parse records": best_time(lambda: records_frame(rows["record"])),
        }
    table = Table(title=f"Replay {N:,} predictions (this run)")
    for column in ("path", "seconds", "× predict_proba"):
        table.add_column(column, justify="left" if column == "path" else "right")
    table.add_row("pipe.predict_proba (pandas)", f"{direct:.3f}", "1.00")
    table.add_row("assay replay", f"{replayed:.3f}", f"{replayed / direct:.2f}")
    for name, seconds in parts.items():
        table.add_row(f"  {name}", f"{seconds:.3f}", f"{seconds / direct:.2f}")
    console.print(table)
    verdict = "meets" if replayed / direct <= TARGET else "MISSES"
    console.print(
        f"replay / predict_proba = {replayed / direct:.2f}: {verdict} the ≤ {TARGET}× target"
    )


if __name__ == "__main__":
    run(Console(width=120))
