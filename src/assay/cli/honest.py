"""``assay score --honest --scorer VENDOR leads.csv``: serve and record the honest score.

Prints the map version (built or updated first from the vendor's matured leads), the count of
leads per status, the first leads with their honest probability and 90% interval, and writes
every lead to a CSV (``--out``, default ``<leads>.honest.csv``): entity_id, prediction_id,
raw_score, segment, probability, lower, upper, status, map_version.
"""

from __future__ import annotations

import csv
from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.table import Table

from assay.cli.ledger import console
from assay.report.formatting import count, pct, pct_range
from assay.report.safe_text import csv_cell, terminal_text

if TYPE_CHECKING:
    from pathlib import Path

    from assay.ledger import Ledger
    from assay.models.honest import HonestScores

#: Leads shown in the terminal (all of them go to the CSV).
SHOWN = 10


def serve_honestly(
    store: Ledger,
    vendor: str,
    file: Path,
    *,
    score_column: str,
    score_kind: str | None,
    segment_key: str | None,
    mapping: dict[str, str],
    defaults: dict[str, Any],
    out: Path | None,
) -> HonestScores:
    """Score ``file`` honestly for ``vendor``, print the summary, write the per-lead CSV."""
    from assay.models.honest import score_honestly

    served = score_honestly(
        store, vendor, file, score_column=score_column, score_kind=score_kind,
        segment_key=segment_key, mapping=mapping, defaults=defaults,
    )  # fmt: skip
    _print_version(served)
    _print_leads(served)
    target = out or file.with_name(file.name + ".honest.csv")
    _write_csv(served, target)
    console.print(f"all {count(served.leads.num_rows)} leads with their intervals: {target}")
    return served


def _print_version(served: HonestScores) -> None:
    version = served.version
    evidence = version.map.evidence.total
    news = (
        f"{count(version.new_leads)} newly matured leads added"
        if version.new_leads
        else "no lead matured since it was built"
    )
    console.print(
        terminal_text(
            f"honest map {version.record.ref}: built from {count(evidence)} matured leads "
            f"of {version.record.name.removesuffix('~honest')} as of "
            f"{version.built_as_of:%Y-%m-%d %H:%M} UTC ({news})"
        ),
        soft_wrap=True,
    )
    if version.map.fall is not None:
        low, high = version.map.fall_scores
        console.print(
            f"note: the raw score does not rise with conversion everywhere: leads scored near "
            f"{pct(high)} convert less than those near {pct(low)}, so the map keeps that dip "
            "instead of forcing a monotone curve"
        )


def _print_leads(served: HonestScores) -> None:
    leads = served.leads
    statuses = Counter(s.split(":")[0] for s in leads["status"].to_pylist())
    parts = [f"{count(n)} {status}" for status, n in sorted(statuses.items())]
    console.print(f"served {count(leads.num_rows)} leads: {', '.join(parts)}")
    abstained = leads.num_rows - statuses.get("ok", 0)
    if abstained:
        console.print(
            f"{count(abstained)} recorded as abstentions: the map has too little evidence near "
            "their raw score to make a claim (the status column says why)"
        )
    table = Table(title=f"first {min(SHOWN, leads.num_rows)} of {count(leads.num_rows)} leads")
    for column in ("entity", "raw score", "honest", "90% interval", "status"):
        table.add_column(column, justify="left" if column in ("entity", "status") else "right")
    rows = leads.slice(0, SHOWN).to_pylist()
    for row in rows:
        table.add_row(
            terminal_text(str(row["entity_id"])), pct(row["raw_score"]), pct(row["probability"]),
            pct_range(row["lower"], row["upper"]), terminal_text(row["status"]),
        )  # fmt: skip
    console.print(table)


def _write_csv(served: HonestScores, target: Path) -> None:
    leads = served.leads
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(leads.column_names)
        for row in leads.to_pylist():
            writer.writerow([csv_cell("" if v is None else v) for v in row.values()])
