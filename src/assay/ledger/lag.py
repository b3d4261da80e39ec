"""The recording lag: how long after an outcome occurs the CRM records it (DESIGN §5).

Conversions reach a CRM weeks after they happen, so a lead whose window closed yesterday may
still have its conversion on the way; counting it negative at once reads the recording lag as
miscalibration. The lag is measured from the ledger, never assumed:

**Rule.** For a target event e as of T, L_e(T) is the 99th percentile (linear interpolation,
numpy's default) of ``recorded_at − occurred_at`` over the *measured* outcomes of event e
recorded by T. With no measured outcome of e, L_e(T) = 0.

**Measured** means the outcome came with its own ``recorded_at``. When a batch has none (the
column is missing or the cell empty) the ledger fills in the batch's ingest time, exactly to
the microsecond, and that stamps when a file was loaded (history loaded after the fact), not
when the CRM learned of the event. So an outcome whose ``recorded_at`` equals its batch's
``ingested_at`` is left out. Both timestamps are covered by the hash chain, so the rule needs
no extra column and holds for ledgers written before it existed. History loaded with
``--backfill`` and no ``recorded_at`` counts as recorded when it occurred (so past as-ofs see
it); those rows carry no lag either and are left out the same way.

**Why the 99th percentile.** A lead counts as negative once s + h + L ≤ T, so a conversion is
missed only when its own lag exceeds L: at most 1% of conversions, and only for leads that
matured within the last lag or so. The maximum would let one mistyped date hold every lead
pending; the median would miss half the late records.

**Known bias.** As of T the longest lags of the latest outcomes are not recorded yet (right
truncation), which pulls the estimate down a little when the history is short next to the lag.

The audit waits L_e(T) (``recording_lag``). The monitor's stream must not depend on when it
is updated, so each lead waits the lag as measured while it waits (a stopping time, see
:mod:`assay.ledger.maturity`); ``LAG_STEPS`` gives L_e(t) at every t where it changes.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    import duckdb

#: The quantile of measured lags a lead waits for.
LAG_QUANTILE = 0.99
DAY_US = 86_400_000_000

#: Measured outcomes (event, recorded_at, lag_us): those with a recorded_at of their own.
MEASURED = """
    SELECT o.event, o.recorded_at, epoch_us(o.recorded_at) - epoch_us(o.occurred_at) AS lag_us
    FROM outcomes o JOIN batches b ON b.batch_id = o.batch_id
    WHERE o.recorded_at <> b.ingested_at
      AND NOT (coalesce(b.backfill, false) AND o.recorded_at = o.occurred_at)
"""

#: L_e(t) as a step function: per event, the lag (µs) from each distinct recorded_at on.
#: Reads a CTE ``measured`` shaped as ``MEASURED``.
LAG_STEPS = f"""
    SELECT DISTINCT event, recorded_at AS since,
           quantile_cont(lag_us, {LAG_QUANTILE}) OVER (
               PARTITION BY event ORDER BY recorded_at
               RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS lag_us
    FROM measured
"""


@dataclass(frozen=True)
class RecordingLag:
    """The wait per target event as of ``as_of``: measured, or ``fixed_days`` for every event.

    ``days`` and ``measured`` hold, per event with at least one measured outcome, L_e(T) in
    days and how many outcomes measured it; ``defaulted`` counts outcomes recorded by T that
    were left out because their recorded_at was filled in at ingest.
    """

    as_of: dt.datetime
    days: Mapping[str, float] = field(default_factory=dict)
    measured: Mapping[str, int] = field(default_factory=dict)
    defaulted: int = 0
    fixed_days: float | None = None

    def for_event(self, event: str) -> float:
        """L_e in days (0 for an event without measured outcomes)."""
        if self.fixed_days is not None:
            return self.fixed_days
        return self.days.get(event, 0.0)

    def waits(self) -> dict[str, dt.timedelta] | dt.timedelta:
        """Return the label rule's parameter: whole microseconds, rounded up, per event or all."""
        if self.fixed_days is not None:
            return _microseconds(self.fixed_days)
        return {event: _microseconds(days) for event, days in self.days.items()}

    def to_dict(self) -> dict[str, float]:
        """Per event, the days waited (``{"*": days}`` when fixed for every event)."""
        return {"*": self.fixed_days} if self.fixed_days is not None else dict(self.days)


def _microseconds(days: float) -> dt.timedelta:
    return dt.timedelta(microseconds=math.ceil(days * DAY_US))


def recording_lag(con: duckdb.DuckDBPyConnection, *, as_of: dt.datetime) -> RecordingLag:
    """L_e(T) for every event with measured outcomes recorded by ``as_of`` (module rule)."""
    rows = con.execute(
        f"""
        SELECT event, quantile_cont(lag_us, {LAG_QUANTILE}), count(*)
        FROM ({MEASURED}) WHERE recorded_at <= $as_of GROUP BY event ORDER BY event
        """,
        {"as_of": as_of},
    ).fetchall()
    defaulted = con.execute(
        """
        SELECT count(*) FROM outcomes o JOIN batches b ON b.batch_id = o.batch_id
        WHERE o.recorded_at <= $as_of AND (o.recorded_at = b.ingested_at
              OR (coalesce(b.backfill, false) AND o.recorded_at = o.occurred_at))
        """,
        {"as_of": as_of},
    ).fetchall()
    return RecordingLag(
        as_of,
        days={str(event): float(lag) / DAY_US for event, lag, _ in rows},
        measured={str(event): int(n) for event, _, n in rows},
        defaulted=int(defaulted[0][0]),
    )
