"""Compute where the data lives: the label join and BinStats as Ibis expressions."""

from assay.remote.expressions import DIALECTS, compile_sql, labelled, ledger_tables
from assay.remote.sources import Source, open_source
from assay.remote.stats import binstats, equal_mass_edges, grouped_binstats, stats_from_rows

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
