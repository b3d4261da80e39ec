"""DuckDB sessions: the settings every assay connection runs with, and a safe first-row fetch.

**Memory.** DuckDB spills to disk beyond ``ASSAY_MEMORY_LIMIT`` (DuckDB's size syntax, e.g.
``4GB``), default :data:`DEFAULT_MEMORY_LIMIT`: the ledger's connections (large ingests stay
inside a laptop's memory) and the in-process DuckDB that reads a Parquet lake in place
(:mod:`assay.pushdown.sources`) alike. Raise it for lakes of 10^8 rows to spill less.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

#: The memory DuckDB may use before it spills to disk, unless ``ASSAY_MEMORY_LIMIT`` says.
DEFAULT_MEMORY_LIMIT = "1GB"


def memory_limit() -> str:
    """``ASSAY_MEMORY_LIMIT``, or :data:`DEFAULT_MEMORY_LIMIT` when it is unset or empty."""
    return os.environ.get("ASSAY_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT


def session_settings() -> tuple[str, ...]:
    """Return the statements every session runs first.

    They set times in UTC, no progress bar (the CLI shows its own status), the memory limit.
    """
    return (
        "SET TimeZone = 'UTC'",
        "SET enable_progress_bar = false",
        f"SET memory_limit = '{memory_limit()}'",
    )


def first_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """Return the first row of an executed query, fetching the result to the end.

    DuckDB 2 refuses new work on a connection while a result is only partly fetched, so
    ``fetchone`` would leave it unusable.
    """
    rows = result.fetchall()
    return tuple(rows[0]) if rows else None
