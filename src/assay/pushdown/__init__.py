"""Compute where the data lives: the label join and BinStats as Ibis expressions."""

from assay.pushdown.expressions import DIALECTS, compile_sql, labelled, ledger_tables
from assay.pushdown.sources import Source, open_source
from assay.pushdown.stats import binstats, equal_mass_edges, grouped_binstats, stats_from_rows

__all__ = [
    "DIALECTS",
    "Source",
    "binstats",
    "compile_sql",
    "equal_mass_edges",
    "grouped_binstats",
    "labelled",
    "ledger_tables",
    "open_source",
    "stats_from_rows",
]
