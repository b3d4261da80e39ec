"""Never a silent zero: what the ledger holds that no label can use, counted with an example.

A report that says "0 converted" because every conversion was dated before its prediction,
or because the outcome file spells the event differently, is a confident wrong answer. These
checks run after every ingest and in every report, as of the report's cut-off T, over the rows
visible at T (``recorded_at ≤ T``), optionally for one scorer:

* **before_prediction** — an outcome of event e for an entity occurred before every
  prediction of e for that entity: it labels nothing (snapshot scores stamped after the
  conversion, or a modification date used as the scoring time);
* **unmatched** — an outcome whose entity has no prediction at all (ids written differently);
* **unknown_event** — an outcome event that is no prediction's ``target_event``;
* **future_scored** — a prediction recorded by T but scored after T (a year typo, a zone);
* **long_window** — a window that stays open more than two years past T;
* **hidden_history** — rows that happened by T but were loaded later without ``--backfill``
  (predictions a day or more after they were scored, outcomes without their own
  ``recorded_at`` 30 days or more after they occurred): T cannot see them;
* **backfilled** — (a disclosure, not a fault) predictions loaded after the fact: in a
  ``--backfill`` batch or recorded more than a day after they were scored.

Each check is one SQL aggregate with ``arg_min`` picking the earliest example, so it costs one
pass over the visible rows.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assay.ledger.session import first_row

if TYPE_CHECKING:
    import datetime as dt

    import duckdb

#: A window open longer than this past the as-of is reported (likely a unit mistake).
LONG_WINDOW_DAYS = 730


@dataclass(frozen=True)
class EvidenceWarning:
    """``count`` rows of one kind that no label uses, one example, and what to do."""

    kind: str
    count: int
    example: str
    advice: str

    def __str__(self) -> str:
        """Return the advice followed by the example, as a report line shows it."""
        return f"{self.advice} (e.g. {self.example})"

    def to_dict(self) -> dict[str, object]:
        """Return the warning as a JSON-ready mapping of its four fields."""
        return {
            "kind": self.kind,
            "count": self.count,
            "example": self.example,
            "advice": self.advice,
        }


def closest(name: str, known: list[str]) -> str:
    """' (did you mean 'x'?)' for the nearest known name, or ''."""
    match = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _visible(scorer: str | None) -> str:
    only = "AND scorer = $scorer" if scorer is not None else ""
    return f"""
        p AS (SELECT * FROM predictions WHERE recorded_at <= $as_of AND scored_at <= $as_of
              {only}),
        o AS (SELECT * FROM outcomes WHERE recorded_at <= $as_of)
    """


def _day(column: str) -> str:
    return f"strftime({column}, '%Y-%m-%d %H:%M')"


_CHECKS: dict[str, str] = {
    "before_prediction": f"""
        WITH {{visible}},
        first AS (SELECT entity_id, target_event AS event, min(scored_at) AS first_scored
                  FROM p GROUP BY ALL)
        SELECT count(*), arg_min('entity ' || o.entity_id || ': ' || o.event || ' at '
               || {_day("o.occurred_at")} || ', first scored ' || {_day("f.first_scored")},
               o.occurred_at)
        FROM o JOIN first f USING (entity_id, event) WHERE o.occurred_at < f.first_scored
    """,
    "unmatched": """
        WITH {visible}
        SELECT count(*), arg_min('entity ' || o.entity_id || ' (' || o.event || ')', o.entity_id)
        FROM o WHERE NOT EXISTS (SELECT 1 FROM p WHERE p.entity_id = o.entity_id)
          AND EXISTS (SELECT 1 FROM p)
    """,
    "unknown_event": """
        WITH {visible}
        SELECT count(*), arg_min(o.event, o.event) || '; target events: '
               || (SELECT string_agg(DISTINCT target_event, ', ' ORDER BY target_event) FROM p)
        FROM o WHERE o.event NOT IN (SELECT target_event FROM p) AND EXISTS (SELECT 1 FROM p)
    """,
    "future_scored": f"""
        SELECT count(*), arg_min('entity ' || entity_id || ' scored at '
               || {_day("scored_at")}, scored_at)
        FROM predictions WHERE recorded_at <= $as_of AND scored_at > $as_of
          AND ($scorer IS NULL OR scorer = $scorer)
    """,
    "long_window": f"""
        WITH {{visible}}
        SELECT count(*), arg_max('entity ' || entity_id || ': horizon_days '
               || horizon_days || ' from ' || {_day("scored_at")}, horizon_days)
        FROM p WHERE scored_at + to_days(horizon_days) > $as_of + to_days({LONG_WINDOW_DAYS})
    """,
    "hidden_history": f"""
        SELECT count(*), arg_min(x.what || ' loaded on ' || {_day("x.recorded_at")}, x.at)
        FROM (
            SELECT 'prediction of entity ' || entity_id || ' scored at '
                   || {_day("scored_at")} AS what, recorded_at, scored_at AS at
            FROM predictions p JOIN batches b USING (batch_id)
            WHERE scored_at <= $as_of AND recorded_at > $as_of AND NOT coalesce(b.backfill, false)
              AND recorded_at > scored_at + INTERVAL 1 DAY
              AND ($scorer IS NULL OR scorer = $scorer)
            UNION ALL
            SELECT 'outcome of entity ' || entity_id || ' on ' || {_day("occurred_at")},
                   recorded_at, occurred_at
            FROM outcomes o JOIN batches b USING (batch_id)
            WHERE occurred_at <= $as_of AND o.recorded_at > $as_of
              AND o.recorded_at = b.ingested_at AND NOT coalesce(b.backfill, false)
              AND o.recorded_at > occurred_at + INTERVAL 30 DAY
        ) x
    """,
}

_ADVICE = {
    "before_prediction": (
        "{n} outcome(s) occurred before their lead's first prediction and label nothing; "
        "a score exported after the conversion cannot be audited — give snapshot exports "
        "their export time as scored_at (--scored-at), never a modification date"
    ),
    "unmatched": (
        "{n} outcome(s) match no prediction's entity_id: leads never scored, left out at "
        "ingest (already converted at a snapshot), or ids written differently — check that "
        "both files use the same id column (e.g. HubSpot Record ID in both)"
    ),
    "unknown_event": (
        "{n} outcome(s) have an event that is no prediction's target_event, so they never "
        "count; make the names agree (--default event=NAME or --default target_event=NAME)"
    ),
    "future_scored": (
        "{n} prediction(s) are scored after the as-of, so no audit up to it sees them; check "
        "the year and the time zone of scored_at"
    ),
    "long_window": (
        "{n} prediction(s) keep their window open more than "
        f"{LONG_WINDOW_DAYS} days past the as-of; check horizon_days is in days"
    ),
    "hidden_history": (
        "{n} row(s) happened by the as-of but were loaded later without --backfill, so this "
        "as-of cannot see them; load history with `assay ingest predictions --backfill` "
        "(or `assay ingest outcomes --backfill`)"
    ),
}


#: Singular forms of the verbs that follow a "noun(s)" in the sentences above.
_SINGULAR = {"(s) are ": " is ", "(s) match ": " matches ", "(s) have ": " has ",
             "(s) keep ": " keeps ", "(s) were ": " was "}  # fmt: skip


def agree(sentence: str, n: int) -> str:
    """Return ``sentence`` with each "noun(s) verb" agreeing with the count ``n``.

    "3 row(s) were" reads "3 rows were"; "1 row(s) were" reads "1 row was".
    """
    if n != 1:
        return sentence.replace("(s)", "s")
    for plural, singular in _SINGULAR.items():
        sentence = sentence.replace(plural, singular)
    return sentence.replace("(s)", "")


def evidence_warnings(
    con: duckdb.DuckDBPyConnection, *, as_of: dt.datetime, scorer: str | None = None
) -> list[EvidenceWarning]:
    """Every non-zero check as of ``as_of`` (for ``scorer``, or all scorers)."""
    found = []
    params = {"as_of": as_of, "scorer": scorer}
    for kind, sql in _CHECKS.items():
        query = sql.replace("{visible}", _visible(scorer))
        used = {k: v for k, v in params.items() if f"${k}" in query}
        row = first_row(con.execute(query, used))
        if row is not None and row[0]:
            advice = agree(_ADVICE[kind].format(n=f"{int(row[0]):,}"), int(row[0]))
            found.append(EvidenceWarning(kind, int(row[0]), str(row[1]), advice))
    return found


@dataclass(frozen=True)
class Backfilled:
    """Predictions visible as of T that were loaded after the fact, and when."""

    predictions: int
    loaded_on: tuple[str, ...]

    def __str__(self) -> str:
        """Return the disclosure sentence: how many predictions, loaded on which days."""
        return (
            agree(f"{self.predictions:,} prediction(s) were", self.predictions)
            + f" loaded after the fact (on {', '.join(self.loaded_on)}); "
            + ("it was" if self.predictions == 1 else "they were")
            + " not frozen when scored"
        )


def backfilled(
    con: duckdb.DuckDBPyConnection, *, as_of: dt.datetime, scorer: str | None = None
) -> Backfilled | None:
    """Return the disclosure for predictions loaded after the fact (None when there are none).

    Such a prediction was in a
    ``--backfill`` batch, or recorded more than a day after they were scored (a snapshot
    ingested late, history loaded without the flag). Either way the ledger did not freeze them
    when they were scored.
    """
    only = "AND p.scorer = $scorer" if scorer is not None else ""
    row = first_row(
        con.execute(
            f"""
            SELECT count(*), string_agg(DISTINCT strftime(b.ingested_at, '%Y-%m-%d'), ', '
                                        ORDER BY strftime(b.ingested_at, '%Y-%m-%d'))
            FROM predictions p JOIN batches b USING (batch_id)
            WHERE (coalesce(b.backfill, false) OR p.recorded_at > p.scored_at + INTERVAL 1 DAY)
              AND p.recorded_at <= $as_of AND p.scored_at <= $as_of {only}
            """,
            {"as_of": as_of, **({"scorer": scorer} if scorer is not None else {})},
        )
    )
    if row is None or not row[0]:
        return None
    return Backfilled(int(row[0]), tuple(str(row[1]).split(", ")))
