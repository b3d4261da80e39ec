"""Small DuckDB helpers shared by the ledger modules."""

from __future__ import annotations

from typing import Any

import duckdb


def first_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of an executed query, fetching the result to the end.

    DuckDB 2 refuses new work on a connection while a result is only partly fetched, so
    ``fetchone`` would leave it unusable.
    """
    rows = result.fetchall()
    return tuple(rows[0]) if rows else None
