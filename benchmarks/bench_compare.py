"""Comparing two scorers and segment rates at 10^6 leads, each stage in a fresh process.

``compare_arrays`` bootstraps 1,000 draws on the leads' distinct (outcome, score A, score B)
rows: CRM-style scores (whole percent, three decimals) collapse 10^6 leads to a few 10^4
rows; continuous scores leave a row per lead, the slowest case. ``segment_rates`` carries the
labels as Arrow dictionary codes. Each CPU time (all threads) is shown beside a plain NumPy
pass over the same data in the same process (one ``np.sort`` of a score column; ``np.unique``
of the labels as NumPy strings, the first version's route), and peak resident memory beside
the memory the process held before the call. Targets: compare ≤ 10 s and ≤ 1 GB, segments ≤ 2 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from rich.console import Console
from rich.table import Table

N = 1_000_000

STAGE = """
import json, resource, time
import numpy as np
rng = np.random.default_rng(0)
n = {n}
p = rng.beta(2, 5, n)
y = (rng.random(n) < p).astype(np.float64)
noisy = np.clip(p + rng.normal(0, 0.05, n), 1e-6, 1 - 1e-6)
{setup}
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before = rss_mb()
start, cpu = time.perf_counter(), time.process_time()
{call}
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = rss_mb()
start = time.process_time()
{peer}
peer = time.process_time() - start
print(json.dumps({{"seconds": seconds, "cpu": cpu, "peer": peer, "before_mb": before,
                  "peak_mb": peak}}))
"""

COMPARE = "from assay.stats.compare import compare_arrays\n"
SEGMENTS = (
    "from assay.stats.segments import segment_rates\n"
    "vocabulary = np.array([f'Segment {i}' for i in range(40)] + [f' segment {i}' for i in "
    "range(10)] + [None], dtype=object)\n"
    "labels = vocabulary[rng.integers(0, len(vocabulary), n)]\n"
)

STAGES = {
    "compare, CRM-style scores (whole percent, 3 decimals)": (
        COMPARE + "a, b = np.round(noisy * 100) / 100, np.round(p, 3)",
        "compare_arrays(y, {'a': a, 'b': b})",
        "np.sort(a)",
        "one np.sort",
    ),
    "compare, continuous scores (a row per lead)": (
        COMPARE + "a, b = noisy, np.clip(1.2 * p, 1e-6, 1 - 1e-6)",
        "compare_arrays(y, {'a': a, 'b': b})",
        "np.sort(a)",
        "one np.sort",
    ),
    "segment_rates, 51 labels as Python strings": (
        SEGMENTS + "given = list(labels)",
        "segment_rates(y, given)",
        "np.unique(np.where(labels == None, '', labels).astype(str), return_inverse=True)",
        "np.unique of str",
    ),
    "segment_rates, 51 labels as an Arrow string array": (
        SEGMENTS + "import pyarrow as pa\ngiven = pa.array(labels, pa.string())",
        "segment_rates(y, given)",
        "np.unique(np.where(labels == None, '', labels).astype(str), return_inverse=True)",
        "np.unique of str",
    ),
}


def _ratio(ratio: float) -> str:
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2f}×"


def run(console: Console) -> None:
    table = Table(title=f"Compare and segments at n = {N:,} (each stage in a fresh process)")
    for column in ("stage", "seconds", "CPU s", "peer CPU s", "× peer", "MB before", "peak MB"):
        table.add_column(column, justify="right")
    for name, (setup, call, peer, peer_name) in STAGES.items():
        script = STAGE.format(n=N, setup=setup, call=call, peer=peer)
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        data = json.loads(result.stdout.strip().splitlines()[-1])
        table.add_row(
            name, f"{data['seconds']:.2f}", f"{data['cpu']:.2f}",
            f"{peer_name} {data['peer']:.2f}", _ratio(data["cpu"] / data["peer"]),
            f"{data['before_mb']:,.0f}", f"{data['peak_mb']:,.0f}",
        )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    run(Console())
