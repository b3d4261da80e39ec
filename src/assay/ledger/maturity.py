"""Leads as the monitor consumes them: each labelled as of its own maturity.

A lead (the first emission per entity of a scorer with a probability, optionally one model
version; points and ranks are not probabilities and never enter) matures at
m = scored_at + horizon + grace. It is **positive** if an outcome of its target event occurred
in [scored_at, scored_at + horizon) and was recorded by m, otherwise **negative**; an outcome
recorded after m is a *late flip*, counted but never changing the label. A prediction recorded
after it matured is a backfill that could have seen its outcome, and is left out.

The grace is a fixed wait, or (``grace=None``) the **measured recording lag** L_e(t) of the
lead's target event e (:mod:`assay.ledger.lag`, from the outcomes recorded by t). The lead then
matures at the first moment its window has been closed for as long as the lag measured then:

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
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

from assay.ledger._db import first_row
from assay.ledger.lag import LAG_STEPS, MEASURED

#: Microseconds standing in for ±infinity on the lag's time axis.
_FOREVER = 2**63 - 1


def _leads(scorer_filter: str, measured: bool) -> str:
    """The CTEs ``chosen`` (first non-backfilled emission per entity, with closes and matures)
    and ``consumed`` (those matured by $until)."""
    if measured:
        lag = f"""
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
        ),"""
    else:
        lag = """
        waited AS (
            SELECT e.*, e.closes + to_microseconds($grace_us) AS matures FROM emissions e
        ),"""
    return f"""
        WITH emissions AS (
            SELECT p.prediction_id, p.entity_id, p.target_event, p.scored_at, p.probability,
                   p.recorded_at, p.scored_at + to_days(p.horizon_days) AS closes
            FROM predictions p
            WHERE {scorer_filter} AND p.recorded_at <= $until AND NOT p.abstained
              AND p.probability IS NOT NULL
        ),{lag}
        chosen AS (
            SELECT * FROM waited WHERE recorded_at <= matures
            QUALIFY row_number() OVER (
                PARTITION BY entity_id ORDER BY scored_at, prediction_id) = 1
        ),
        consumed AS (
            SELECT * FROM chosen WHERE matures <= $until
        )
    """


def _filter(model_version: str | None) -> str:
    version = "" if model_version is None else " AND p.model_version = $model_version"
    return "p.scorer = $scorer" + version


def _params(
    scorer: str, model_version: str | None, until: dt.datetime, grace: dt.timedelta | None
) -> dict[str, object]:
    params: dict[str, object] = {"scorer": scorer, "until": until}
    if grace is not None:
        params["grace_us"] = int(grace / dt.timedelta(microseconds=1))
    if model_version is not None:
        params["model_version"] = model_version
    return params


def matured_leads(
    con: duckdb.DuckDBPyConnection,
    *,
    scorer: str,
    model_version: str | None,
    since: dt.datetime | None,
    until: dt.datetime,
    grace: dt.timedelta | None,
) -> pa.Table:
    """Leads maturing in (since, until]: prediction_id, matures_us, probability, positive
    (``grace=None``: each waits its event's measured recording lag, module docstring)."""
    params = _params(scorer, model_version, until, grace)
    after = ""
    if since is not None:
        after = "WHERE c.matures > $since"
        params["since"] = since
    query = (
        _leads(_filter(model_version), grace is None)
        + f"""
        SELECT c.prediction_id, epoch_us(c.matures) AS matures_us, c.probability,
               EXISTS (SELECT 1 FROM outcomes o
                        WHERE o.entity_id = c.entity_id AND o.event = c.target_event
                          AND o.occurred_at >= c.scored_at AND o.occurred_at < c.closes
                          AND o.recorded_at <= c.matures) AS positive
        FROM consumed c {after}
        ORDER BY c.matures, c.prediction_id
    """
    )
    return con.sql(query, params=params).to_arrow_table()


def late_flips(
    con: duckdb.DuckDBPyConnection,
    *,
    scorer: str,
    model_version: str | None,
    until: dt.datetime,
    grace: dt.timedelta | None,
) -> int:
    """Consumed leads negative at maturity whose converting outcome was recorded later."""
    query = (
        _leads(_filter(model_version), grace is None)
        + """
        SELECT count(*) FROM consumed c WHERE EXISTS (
            SELECT 1 FROM outcomes o
             WHERE o.entity_id = c.entity_id AND o.event = c.target_event
               AND o.occurred_at >= c.scored_at AND o.occurred_at < c.closes
               AND o.recorded_at > c.matures AND o.recorded_at <= $until)
          AND NOT EXISTS (
            SELECT 1 FROM outcomes o
             WHERE o.entity_id = c.entity_id AND o.event = c.target_event
               AND o.occurred_at >= c.scored_at AND o.occurred_at < c.closes
               AND o.recorded_at <= c.matures)
    """
    )
    row = first_row(con.execute(query, _params(scorer, model_version, until, grace)))
    return int(row[0]) if row else 0
