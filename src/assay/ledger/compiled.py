"""Rule expressions compiled once per shape and bound per call with DuckDB query parameters.

Compiling an Ibis expression to SQL costs about 0.1 s — several times what the query itself
costs on a ledger of thousands of leads — and a ledger read would pay it on every call. So the
ledger builds the rule (:mod:`assay.ledger.rules`) over **arguments**: every value that changes
between calls (the as-of, the scorer, a deadline) enters the expression as a placeholder literal
(:meth:`Arguments.value`), one no ledger value can equal, and the compiled text swaps each
placeholder for a named parameter, ``CAST($as_of AS TIMESTAMPTZ)``. The text then depends only
on the expression's shape and is cached by it; a call binds the values. DuckDB binds
parameters before it plans, so the plan is the one the literals would get.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from assay.ledger.schema import DUCKDB_TYPES, ColumnType

if TYPE_CHECKING:
    from collections.abc import Mapping


class Arguments:
    """The named, typed values a compiled rule takes as ``$name`` parameters."""

    def __init__(self, types: Mapping[str, ColumnType]) -> None:
        self.types = dict(types)
        self._placeholders: dict[str, ir.Scalar] = {}
        for number, (name, kind) in enumerate(self.types.items()):
            if kind == "timestamp":  # a year before any lead was scored, one per argument
                moment = dt.datetime(1001 + number, 1, 1, tzinfo=dt.UTC)
                self._placeholders[name] = ibis.literal(moment, type="timestamp('UTC')")
            elif kind == "text":
                self._placeholders[name] = ibis.literal(f"assay-argument:{name}", type="string")
            else:
                raise ValueError(f"argument {name!r}: no placeholder for a {kind} value")

    def value(self, name: str) -> ir.Scalar:
        """Return the argument ``name`` as a value the rule's expressions can compare with."""
        return self._placeholders[name]

    def compile(self, expr: ir.Expr) -> str:
        """``expr`` as DuckDB SQL, each argument a ``$name`` parameter of its type."""
        text = str(ibis.to_sql(expr, dialect="duckdb"))
        read = set(expr.op().find(ops.Literal))
        for name, placeholder in self._placeholders.items():
            if placeholder.op() not in read:
                continue
            shown = _rendered(placeholder)
            if shown not in text:  # never bind a placeholder as if it were the value
                raise RuntimeError(f"argument {name!r}: its placeholder is not {shown} in {text}")
            text = text.replace(shown, f"CAST(${name} AS {DUCKDB_TYPES[self.types[name]]})")
        return text


def _rendered(literal: ir.Scalar) -> str:
    """How DuckDB SQL from Ibis writes ``literal`` (read off a one-column probe query)."""
    probe = ibis.table({"x": "int64"}, name="probe").select(v=literal)
    sql = str(ibis.to_sql(probe, dialect="duckdb"))
    return sql.split("SELECT", 1)[1].rsplit('AS "v"', 1)[0].strip()
