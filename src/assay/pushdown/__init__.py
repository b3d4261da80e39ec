"""Compute where the data lives: the label join and BinStats as Ibis expressions.

The names below load on first use (:mod:`assay._lazy`): ``import assay.pushdown`` does not
import Ibis. Add a re-export to ``_EXPORTS``, the ``TYPE_CHECKING`` block and ``__all__``.
"""

from typing import TYPE_CHECKING

from assay._lazy import lazy_exports

#: The SQL dialects ``compile_sql`` and ``assay sql`` print (here, so the CLI's help needs no Ibis).
DIALECTS = ("duckdb", "bigquery", "snowflake", "databricks", "postgres", "trino")

if TYPE_CHECKING:
    from assay.pushdown.expressions import compile_sql, labelled, ledger_tables
    from assay.pushdown.sources import Source, open_source
    from assay.pushdown.stats import binstats, equal_mass_edges, grouped_binstats, stats_from_rows

_EXPORTS = {
    "compile_sql": "assay.pushdown.expressions",
    "labelled": "assay.pushdown.expressions",
    "ledger_tables": "assay.pushdown.expressions",
    "Source": "assay.pushdown.sources",
    "open_source": "assay.pushdown.sources",
    "binstats": "assay.pushdown.stats",
    "equal_mass_edges": "assay.pushdown.stats",
    "grouped_binstats": "assay.pushdown.stats",
    "stats_from_rows": "assay.pushdown.stats",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
