"""Leads as the monitor consumes them: each labelled as of its own maturity.

A lead (the first emission per entity of a scorer with a probability, optionally one model
version; points and ranks are not probabilities and never enter) matures at
m = scored_at + horizon + grace. It is **positive** if an outcome of its target event occurred
in [scored_at, scored_at + horizon) and was recorded by m, otherwise **negative**; an outcome
recorded after m is a *late flip*, counted but never changing the label. A prediction recorded
after it matured is a backfill that could have seen its outcome, and is left out.

Rows come ordered by (maturity, prediction_id), the fixed order the e-processes consume them in.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

from assay.ledger._db import first_row


def _leads(scorer_filter: str) -> str:
    return f"""
        WITH chosen AS (
            SELECT p.prediction_id, p.entity_id, p.target_event, p.scored_at, p.probability,
                   p.scored_at + to_days(p.horizon_days) AS closes,
                   p.scored_at + to_days(p.horizon_days) + to_microseconds($grace_us) AS matures,
                   p.recorded_at
            FROM predictions p
            WHERE {scorer_filter} AND p.recorded_at <= $until AND NOT p.abstained
              AND p.probability IS NOT NULL
              AND p.recorded_at <= p.scored_at + to_days(p.horizon_days)
                                   + to_microseconds($grace_us)
            QUALIFY row_number() OVER (
                PARTITION BY p.entity_id ORDER BY p.scored_at, p.prediction_id) = 1
        ),
        consumed AS (
            SELECT * FROM chosen WHERE matures <= $until
        )
    """


def _filter(model_version: str | None) -> str:
    version = "" if model_version is None else " AND p.model_version = $model_version"
    return "p.scorer = $scorer" + version


def _params(
    scorer: str, model_version: str | None, until: dt.datetime, grace: dt.timedelta
) -> dict[str, object]:
    params: dict[str, object] = {
        "scorer": scorer,
        "until": until,
        "grace_us": int(grace / dt.timedelta(microseconds=1)),
    }
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
    grace: dt.timedelta,
) -> pa.Table:
    """Leads maturing in (since, until]: prediction_id, matures_us, probability, positive."""
    params = _params(scorer, model_version, until, grace)
    after = ""
    if since is not None:
        after = "WHERE c.matures > $since"
        params["since"] = since
    query = (
        _leads(_filter(model_version))
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
    grace: dt.timedelta,
) -> int:
    """Consumed leads negative at maturity whose converting outcome was recorded later."""
    query = (
        _leads(_filter(model_version))
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
