"""Ledger: ingest 1e7 predictions from Parquet and 1e6 from CSV (every cell read as text and
typed by the ledger) beside the same 1e6 rows from Parquet; resolve labels for 1e7
predictions vs 1e6 outcomes.

Each stage runs in its own process so its peak resident memory can be read (ru_maxrss), and
reports wall and CPU seconds (CPU counts DuckDB's threads; on a shared machine it is the
steadier of the two). Targets on this machine: ingest within 30 s, labels within 10 s, peak
memory under 4 GB, CSV ingest at most 1.5× the Parquet ingest of the same rows.

Inputs (in this process): 1e5 predictions with 20 input columns (10 decimal, 5 integer, 5
categorical; half as many distinct records as rows) ingested with their inputs vs the same rows
without; target: throughput with inputs ≥ 50% of without; storage per prediction printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from assay.ledger import Ledger

N_PREDICTIONS = 10_000_000
N_OUTCOMES = 1_000_000

MAKE_DATA = """
import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.csv as pacsv
import pyarrow.parquet as pq
rng = np.random.default_rng(0)
n, m = {n}, {m}
start = np.datetime64("2024-01-01T00:00:00", "us")
scored = start + (rng.integers(0, 300 * 86400, n) * 1_000_000).astype("timedelta64[us]")
entities = pa.array(np.char.add("e", np.arange(n).astype(str)))
predictions = pa.table({{
    "prediction_id": pa.array(np.char.add("p", np.arange(n).astype(str))),
    "entity_id": entities,
    "scorer": pa.array(np.where(rng.random(n) < 0.5, "alpha", "beta")),
    "score": rng.random(n),
    "scored_at": pa.array(scored, pa.timestamp("us", tz="UTC")),
    "horizon_days": pa.array(np.full(n, 90, dtype=np.int32)),
    "target_event": pa.array(np.full(n, "won")),
}})
pq.write_table(predictions, "{dir}/predictions.parquet")
text = predictions.slice(0, {csv_rows})
pq.write_table(text, "{dir}/same_rows.parquet")  # the CSV's rows, typed as Parquet keeps them
seconds = pc.cast(text["scored_at"], pa.timestamp("s", tz="UTC"))
stamp = pc.strftime(seconds, "%Y-%m-%dT%H:%M:%SZ")
pacsv.write_csv(text.set_column(4, "scored_at", stamp), "{dir}/predictions.csv")
won = rng.choice(n, m, replace=False)
occurred = scored[won] + (rng.integers(0, 120 * 86400, m) * 1_000_000).astype("timedelta64[us]")
pq.write_table(pa.table({{
    "entity_id": entities.take(pa.array(won)),
    "event": pa.array(np.full(m, "won")),
    "occurred_at": pa.array(occurred, pa.timestamp("us", tz="UTC")),
    "recorded_at": pa.array(occurred, pa.timestamp("us", tz="UTC")),
}}), "{dir}/outcomes.parquet")
"""

STAGE = """
import json, resource, time, datetime as dt
from assay.ledger import Ledger
store = Ledger("{dir}/bench.duckdb")
now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
t0, c0 = time.perf_counter(), time.process_time()
{body}
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": seconds, "cpu": cpu, "peak_mb": peak_mb, "rows": rows}}))
"""

N_CSV = 1_000_000

CSV_STAGE = "ingest 1e6 predictions (CSV)"
SAME_ROWS_STAGE = "ingest the same 1e6 predictions (Parquet)"
STAGES = {
    CSV_STAGE: (
        "rows = Ledger('{dir}/csv.duckdb').ingest_predictions('{dir}/predictions.csv', "
        "now=now).rows_new"
    ),
    SAME_ROWS_STAGE: (
        "rows = Ledger('{dir}/same.duckdb').ingest_predictions('{dir}/same_rows.parquet', "
        "now=now).rows_new"
    ),
    "ingest 1e7 predictions (Parquet)": (
        "rows = store.ingest_predictions('{dir}/predictions.parquet', now=now).rows_new"
    ),
    "ingest 1e6 outcomes (Parquet)": (
        "rows = store.ingest_outcomes('{dir}/outcomes.parquet', now=now).rows_new"
    ),
    "labels as of T (1e7 vs 1e6)": (
        "rows = store.labels(as_of='2025-06-01T00:00:00Z', policy='all').table.num_rows"
    ),
    "verify (recompute every hash)": "rows = store.verify().batches",
}


N_INPUT_ROWS = 100_000


def input_leads(n: int, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """``n`` predictions over ``n // 2`` distinct 20-column input records."""
    rng = np.random.default_rng(seed)
    distinct = n // 2
    features: dict[str, np.ndarray] = {}
    for j in range(10):
        features[f"x_num{j}"] = np.round(rng.normal(50, 20, distinct), 3)
    for j in range(5):
        features[f"x_int{j}"] = rng.integers(0, 1000, distinct)
    for j in range(5):
        features[f"x_cat{j}"] = rng.choice(["EU", "US", "APAC", "LATAM", "MEA"], distinct)
    pick = rng.integers(0, distinct, n)
    pick[:distinct] = np.arange(distinct)
    frame = pd.DataFrame(
        {
            "prediction_id": np.char.add("p", np.arange(n).astype(str)),
            "entity_id": np.char.add("e", np.arange(n).astype(str)),
            "scorer": "alpha",
            "score": rng.random(n),
            "scored_at": pd.Timestamp("2024-05-01", tz="UTC"),
            "horizon_days": 90,
            "target_event": "won",
            "seed": 7,
            **{name: values[pick] for name, values in features.items()},
        }
    )
    return frame, list(features)


def inputs_ratio(console: Console, repeat: int = 5) -> float:
    """Ingest with 20 input columns vs without (same rows, one run); return the ratio.

    The two ingests alternate, ``repeat`` times each, each into a fresh ledger, and the best
    wall time of each counts: a shared machine's load then weighs on both alike. The ratio of
    the best CPU times (DuckDB's threads included) is printed beside it, the steadier of the
    two on a loaded machine, and so is the range of the ratios of each alternating pair (how
    far one pair of runs can stray).
    """
    frame, inputs = input_leads(N_INPUT_ROWS)
    cases = {"without inputs": None, "with 20 input columns": inputs}
    best = {label: [float("inf"), float("inf"), 0.0] for label in cases}  # wall, CPU, bytes
    pairs: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        for attempt in range(repeat):
            for label, names in cases.items():
                path = Path(directory, f"{label}-{attempt}.duckdb")
                with Ledger(path) as ledger:
                    ledger.con.execute("CHECKPOINT")
                    empty = path.stat().st_size
                    start, cpu = time.perf_counter(), time.process_time()
                    ledger.ingest_predictions(frame, inputs=names)
                    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
                    ledger.con.execute("CHECKPOINT")
                    size = (path.stat().st_size - empty) / N_INPUT_ROWS
                best[label] = [min(best[label][0], wall), min(best[label][1], cpu), size]
                pairs.append(wall)
    (plain, plain_cpu, plain_size), (full, full_cpu, full_size) = best.values()
    ratio = plain / full
    paired = [without / with_ for without, with_ in zip(pairs[::2], pairs[1::2], strict=True)]
    console.print(
        f"ingest {N_INPUT_ROWS:,} predictions: {N_INPUT_ROWS / plain:,.0f} rows/s without "
        f"inputs, {N_INPUT_ROWS / full:,.0f} rows/s with 20 input columns "
        f"({N_INPUT_ROWS // 2:,} distinct records): throughput ratio {ratio:.2f} (target ≥ 0.5; "
        f"CPU-time ratio {plain_cpu / full_cpu:.2f}; single pairs {min(paired):.2f}–"
        f"{max(paired):.2f})"
    )
    console.print(
        f"storage per prediction: {plain_size:,.0f} bytes without inputs, {full_size:,.0f} "
        f"bytes with them (file growth / rows)"
    )
    return ratio


def run(console: Console) -> None:
    inputs_ratio(console)
    with tempfile.TemporaryDirectory() as directory:
        data = MAKE_DATA.format(n=N_PREDICTIONS, m=N_OUTCOMES, csv_rows=N_CSV, dir=directory)
        subprocess.run([sys.executable, "-c", data], check=True)
        table = Table(title="Ledger at scale (each stage in a fresh process)")
        for column in ("stage", "rows", "seconds", "CPU s", "rows/s", "peak MB"):
            table.add_column(column, justify="right")
        measured = {}
        for name, body in STAGES.items():
            script = STAGE.format(dir=directory, body=body.format(dir=directory))
            result = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(script)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            data = json.loads(result.stdout.strip().splitlines()[-1].split("\r")[-1])
            measured[name] = data
            rate = data["rows"] / data["seconds"] if data["rows"] > 100 else float("nan")
            table.add_row(
                name, f"{data['rows']:,}", f"{data['seconds']:.1f}", f"{data['cpu']:.1f}",
                "—" if rate != rate else f"{rate:,.0f}", f"{data['peak_mb']:,.0f}",
            )  # fmt: skip
        size = Path(directory, "bench.duckdb").stat().st_size / 1e6
        console.print(table)
        console.print(f"ledger file: {size:,.0f} MB")
        csv, same = measured[CSV_STAGE], measured[SAME_ROWS_STAGE]
        console.print(
            f"CSV ingest / Parquet ingest of the same {N_CSV:,} rows: "
            f"{csv['seconds'] / same['seconds']:.2f}× wall, {csv['cpu'] / same['cpu']:.2f}× CPU "
            "(target ≤ 1.5×)"
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["inputs"]:
        inputs_ratio(Console())
    else:
        run(Console())
