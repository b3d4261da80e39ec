"""Leads as the monitor consumes them: each labelled as of its own maturity, by the label rule.

Which emission is a lead, and whether it converted, come from the one label rule
(:func:`assay.ledger.rules.consumed`, compiled with the rest of it): an emission of the
scorer (of one model version, if named) is consumed at its maturity m if it is scored (not
abstained, with a probability; points and ranks are not probabilities) and is its entity's
lead at m under the rule's "first" policy — so a lead whose first emission abstained is never
consumed through a later one, and a prediction recorded after it matured (history that could
have seen its outcome) is left out — once per entity. It is **positive** if an outcome of its
target event occurred in [scored_at, scored_at + horizon) and was recorded by m, otherwise
**negative**; an outcome recorded after m is a *late flip*, counted but never changing the
label. What this module adds is when m is:

m = scored_at + horizon + grace. The grace is a fixed wait, or (``grace=None``) the **measured
recording lag** L_e(t) of the lead's target event e (:mod:`assay.ledger.lag`, from the
outcomes recorded by t). The lead then matures at the first moment its window has been closed
for as long as the lag measured then:

    m = min { t ≥ c : t − c ≥ L_e(t) },   c = scored_at + horizon,

a stopping time (at t everything it needs is recorded) that depends on the ledger alone, so any
schedule of updates consumes the same stream as one replay. Measuring at m rather than at c
matters early in a ledger's life: at c only the short lags of the first outcomes are recorded,
and the estimate keeps growing while the lead waits. Before the first outcome of e is recorded
nothing is known and L_e = ∞ (the lead waits; a target event that is never recorded keeps its
leads waiting); while every recorded outcome of e had its recorded_at filled in at ingest there
is nothing to measure and L_e = 0.

L_e is a step function: on a step [s_k, s_{k+1}) with lag l_k the lead may mature from
max(s_k, c + l_k) on if c < u_k = s_{k+1} − l_k, and m is reached on the first such step, which
is the first step whose u_k exceeds c and every earlier u (an ASOF join on the running maximum).

Rows come ordered by (maturity, prediction_id), the fixed order the e-processes consume them in.
A monitor update reads the leads matured since its last update and the late flips of all of
them up to the same time: both come from one query (:func:`consumed_leads`).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING

import ibis

from assay.ledger.compiled import Arguments
from assay.ledger.lag import LAG_STEPS, MEASURED
from assay.ledger.rules import (
    UTC_TIMESTAMP,
    consumed,
    emissions,
    ledger_tables,
    scored,
    window_closes,
)

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from assay.ledger.schema import ColumnType

#: Microseconds standing in for ±infinity on the lag's time axis.
_FOREVER = 2**63 - 1


def _waited(measured: bool) -> str:
    """Return the CTEs from ``emissions`` to ``waited``.

    ``emissions`` holds the scored emissions, with ``closes``; ``waited`` adds ``matures``
    (NULL while nothing tells how long the lead must wait).
    """
    if not measured:
        return """
        waited AS (
            SELECT e.*, e.closes + to_microseconds($grace_us) AS matures FROM emissions e
        )"""
    return f"""
        measured AS (
            {MEASURED} AND o.event IN (SELECT target_event FROM emissions)
        ),
        lag_steps AS ({LAG_STEPS}),
        unmeasured AS (  -- first record of each event, if none before it was measured
            SELECT o.event, epoch_us(min(o.recorded_at)) AS s FROM outcomes o
            WHERE o.event IN (SELECT target_event FROM emissions) GROUP BY o.event
        ),
        steps AS (
            SELECT event, epoch_us(since) AS s, CAST(ceil(lag_us) AS BIGINT) AS l FROM lag_steps
            UNION ALL
            SELECT u.event, u.s, 0 AS l FROM unmeasured u WHERE u.s < coalesce(
                (SELECT epoch_us(min(m.recorded_at)) FROM measured m WHERE m.event = u.event),
                {_FOREVER})
        ),
        reach AS (
            SELECT event, s, l,
                   lead(s, 1, {_FOREVER}) OVER (PARTITION BY event ORDER BY s) - l AS u
            FROM steps
        ),
        records AS (
            SELECT * FROM reach QUALIFY u > coalesce(max(u) OVER (
                PARTITION BY event ORDER BY s ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                {-_FOREVER})
        ),
        waited AS (  -- no step reached: nothing recorded yet, matures stays NULL (waits)
            SELECT e.*, e.closes + to_microseconds(
                       greatest(r.s, epoch_us(e.closes) + r.l) - epoch_us(e.closes)) AS matures
            FROM emissions e ASOF LEFT JOIN records r
              ON e.target_event = r.event AND epoch_us(e.closes) < r.u
        )"""


@functools.lru_cache(maxsize=8)
def _consumed_sql(by_version: bool, measured: bool) -> str:
    """``WITH …, consumed AS (…)``: the leads consumed by $until (:func:`rules.consumed`)."""
    types: dict[str, ColumnType] = {"until": "timestamp", "scorer": "text"}
    if by_version:
        types["model_version"] = "text"
    args = Arguments(types)
    predictions, outcomes = ledger_tables()
    spans = emissions(
        predictions, as_of=args.value("until"), scorer=args.value("scorer"),
        model_version=args.value("model_version") if by_version else None, policy="first",
    )  # fmt: skip
    candidates = spans.filter(scored(spans))
    candidates = candidates.mutate(closes=window_closes(candidates))
    waited = ibis.table({**candidates.schema(), "matures": UTC_TIMESTAMP}, name="waited")
    leads = consumed(waited, outcomes, until=args.value("until"))
    return (
        f"WITH emissions AS (\n{args.compile(candidates)}\n),{_waited(measured)},\n"
        f"consumed AS (\n{args.compile(leads)}\n)\n"
    )


def _params(
    scorer: str, model_version: str | None, until: dt.datetime, grace: dt.timedelta | None
) -> dict[str, object]:
    params: dict[str, object] = {"scorer": scorer, "until": until}
    if grace is not None:
        params["grace_us"] = int(grace / dt.timedelta(microseconds=1))
    if model_version is not None:
        params["model_version"] = model_version
    return params


def consumed_leads(
    con: duckdb.DuckDBPyConnection,
    *,
    scorer: str,
    model_version: str | None,
    until: dt.datetime,
    grace: dt.timedelta | None,
) -> pa.Table:
    """Return every lead consumed by ``until``, in consumption order.

    The columns are prediction_id, matures_us,
    probability, positive (as of its maturity) and late (a conversion recorded after its
    maturity, by ``until``: a late flip). ``grace=None``: each lead waits its event's measured
    recording lag (module docstring).
    """
    query = _consumed_sql(model_version is not None, grace is None) + (
        "SELECT c.prediction_id, epoch_us(c.matures) AS matures_us, c.probability, c.positive, "
        "coalesce(c.late, false) AS late FROM consumed c ORDER BY c.matures, c.prediction_id"
    )
    return con.sql(query, params=_params(scorer, model_version, until, grace)).to_arrow_table()
