"""One label rule (assay.ledger.rules): the audit's labels and the monitor's matured leads agree.

Pinned by hand: a lead whose first emission abstained is an abstention on both paths (the
monitor does not judge its second emission); a lead recorded after it matured is left out by
the monitor without a stand-in; a lead consumed stays consumed when an earlier emission shows
up later. Then 50 seeded random ledgers (abstentions, re-scores, points, backfills, late
emissions, late and off-target outcomes): the monitor's consumed leads equal a row-by-row
reference of "the label rule's lead at its own maturity" (tests.conftest.reference_labels),
and — when every emission was recorded before the others matured — exactly the scored,
matured leads of ``Ledger.labels``, each with the label ``Ledger.labels`` gives it as of its
maturity, the rest of the positives being the late flips.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.conftest import DAY_US, UTC, reference_labels

from assay.ledger import Ledger

START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
GRACE = dt.timedelta(days=2)
GRACE_US = 2 * DAY_US
#: Everything has matured and been recorded by then (still in the past: ingest allows it).
FINAL = START + dt.timedelta(days=400)


def at(days: float) -> dt.datetime:
    return START + dt.timedelta(days=days)


@dataclass(frozen=True)
class Emission:
    pid: str
    entity: str
    score: float | None  # None: the scorer abstained
    scored: float  # days after START
    recorded: float
    horizon: int = 30
    kind: str = "probability"


@dataclass(frozen=True)
class Outcome:
    entity: str
    occurred: float
    recorded: float
    event: str = "won"


def _stamps(days: list[float]) -> pa.Array:
    return pa.array([at(d) for d in days], UTC)


def make_ledger(emissions: list[Emission], outcomes: list[Outcome]) -> Ledger:
    ledger = Ledger(":memory:")
    ledger.ingest_predictions(
        pa.table({
            "prediction_id": [e.pid for e in emissions],
            "entity_id": [e.entity for e in emissions],
            "scorer": ["s"] * len(emissions),
            "score": ["" if e.score is None else repr(e.score) for e in emissions],
            "score_kind": [e.kind for e in emissions],
            "scored_at": _stamps([e.scored for e in emissions]),
            "recorded_at": _stamps([e.recorded for e in emissions]),
            "horizon_days": pa.array([e.horizon for e in emissions], pa.int32()),
            "target_event": ["won"] * len(emissions),
        }),
        now=FINAL,
    )  # fmt: skip
    if outcomes:
        ledger.ingest_outcomes(
            pa.table({
                "entity_id": [o.entity for o in outcomes],
                "event": [o.event for o in outcomes],
                "occurred_at": _stamps([o.occurred for o in outcomes]),
                "recorded_at": _stamps([o.recorded for o in outcomes]),
            }),
            now=FINAL,
        )  # fmt: skip
    return ledger


def consumed(
    ledger: Ledger,
    until: dt.datetime = FINAL,
    *,
    since: dt.datetime | None = None,
    grace: dt.timedelta | None = GRACE,
) -> list[tuple[str, int, bool]]:
    """The monitor path: (prediction_id, maturity µs, positive) in consumption order."""
    table = ledger.matured_leads(
        scorer="s", model_version=None, since=since, until=until, grace=grace
    )
    return list(
        zip(
            table["prediction_id"].to_pylist(),
            table["matures_us"].to_pylist(),
            table["positive"].to_pylist(),
            strict=True,
        )
    )


def labels(
    ledger: Ledger, as_of: dt.datetime, policy: str = "first"
) -> dict[str, tuple[str, bool]]:
    """The audit path: prediction_id → (label, abstained) of each lead as of ``as_of``."""
    table = ledger.labels(as_of=as_of, scorer="s", policy=policy).table
    return {
        pid: (label, abstained)
        for pid, label, abstained in zip(
            table["prediction_id"].to_pylist(),
            table["label"].to_pylist(),
            table["abstained"].to_pylist(),
            strict=True,
        )
    }


def us(days: float) -> int:
    return int((at(days) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1))


# ---------------------------------------------------------------------- pinned by hand
@pytest.fixture
def abstained_first() -> Iterator[Ledger]:
    """Lead "a" abstains first and scores 0.8 five days later; it converts on day 10. Lead
    "b" scores once and converts on day 12."""
    ledger = make_ledger(
        [
            Emission("a1", "a", None, 0, 0),
            Emission("a2", "a", 0.8, 5, 5),
            Emission("b1", "b", 0.3, 1, 1),
        ],
        [Outcome("a", 10, 10), Outcome("b", 12, 12)],
    )
    yield ledger
    ledger.close()


def test_a_lead_whose_first_emission_abstained_is_an_abstention_on_both_paths(
    abstained_first: Ledger,
) -> None:
    ledger = abstained_first
    found = ledger.labels(as_of=FINAL, scorer="s")
    assert labels(ledger, FINAL) == {"a1": ("positive", True), "b1": ("positive", False)}
    assert (found.counts.positive, found.counts.abstained) == (1, 1)  # a counts as abstained
    # the monitor judges b alone, at its maturity: closes on day 31, plus the 2-day grace
    assert consumed(ledger) == [("b1", us(33), True)]
    assert [row[0] for row in consumed(ledger, grace=None)] == ["b1"]  # measured lag too
    # under "last" the lead is the later emission, which scored: both paths judge it
    assert labels(ledger, FINAL, policy="last")["a2"] == ("positive", False)


def test_a_lead_recorded_after_it_matured_is_left_out_without_a_stand_in() -> None:
    """c1 (day 0, matures day 32) reached the ledger on day 40; c2 (day 20) was recorded at
    once. The audit judges c1 (disclosed as history loaded late); the monitor judges neither:
    c1 could have seen its outcome, and c2 is not the lead once c1 is visible."""
    with make_ledger(
        [Emission("c1", "c", 0.4, 0, 40), Emission("c2", "c", 0.6, 20, 20)], []
    ) as ledger:
        assert labels(ledger, FINAL) == {"c1": ("negative", False)}
        assert consumed(ledger) == []


def test_a_consumed_lead_stays_consumed_when_an_earlier_emission_turns_up() -> None:
    """d1 (day 10, 30 days) matures on day 42 and is consumed; d0, scored on day 5 with a
    90-day window, is recorded on day 50. From then on the audit's lead is d0, but the
    monitor consumed d's lead already: any schedule of updates gives the same stream."""
    with make_ledger(
        [Emission("d1", "d", 0.5, 10, 10), Emission("d0", "d", 0.2, 5, 50, horizon=90)],
        [Outcome("d", 60, 61)],
    ) as ledger:
        assert labels(ledger, at(45)) == {"d1": ("negative", False)}
        assert labels(ledger, FINAL) == {"d0": ("positive", False)}
        replay = consumed(ledger)
        assert replay == [("d1", us(42), False)]
        assert consumed(ledger, at(45)) + consumed(ledger, since=at(45)) == replay


# ---------------------------------------------------------------------- random ledgers
def random_ledger(rng: np.random.Generator, *, late_emissions: bool) -> Ledger:
    """4–8 leads of one scorer with 1–3 emissions each: abstentions, a few points scores,
    windows of 14–60 days, emissions recorded at once, as history (recorded when scored) or
    (``late_emissions``) up to 120 days late; half the leads convert, recorded at once, a
    little later or 20–60 days late, and some outcomes are of another event."""
    emissions, outcomes = [], []
    for lead in range(int(rng.integers(4, 9))):
        entity = f"e{lead}"
        first = float(rng.uniform(0, 150))
        extra = rng.uniform(0, 40, int(rng.integers(0, 3)))
        for k, scored in enumerate(np.sort([first, *(first + extra)])):
            kind = "points" if rng.random() < 0.05 else "probability"
            score = None if rng.random() < 0.2 else round(float(rng.uniform(0, 1)), 3)
            if kind == "points" and score is not None:
                score = float(rng.integers(0, 100))
            draw = rng.random()
            if late_emissions and draw < 0.3:
                recorded = scored + float(rng.uniform(0, 120))
            elif draw < 0.6:
                recorded = float(scored)
            else:
                recorded = scored + float(rng.uniform(0, 0.5))
            emissions.append(
                Emission(
                    f"p{lead}-{k}",
                    entity,
                    score,
                    float(scored),
                    recorded,
                    int(rng.choice([14, 30, 60])),
                    kind,
                )
            )
        if rng.random() < 0.5:
            occurred = first + float(rng.uniform(-5, 70))
            delay = float(rng.choice([0.0, rng.uniform(0, 3), rng.uniform(20, 60)]))
            event = "won" if rng.random() < 0.85 else "demo"
            outcomes.append(Outcome(entity, occurred, occurred + delay, event))
    return make_ledger(emissions, outcomes)


def monitor_reference(ledger: Ledger) -> list[tuple[str, int, bool]]:
    """The monitor written out row by row: an emission is consumed at m = s + h + grace if it
    is scored and is its lead's emission in the label rule as of m (conftest's reference),
    labelled as the rule labels it then; each lead once, at its first such m."""
    predictions = ledger.con.sql("SELECT * FROM predictions").to_arrow_table()
    outcomes = ledger.con.sql("SELECT * FROM outcomes").to_arrow_table()
    scored_at = predictions["scored_at"].cast(pa.int64()).to_pylist()
    rows = predictions.to_pylist()
    eligible = []
    for row, start in zip(rows, scored_at, strict=True):
        if row["abstained"] or row["probability"] is None:
            continue
        matures = start + row["horizon_days"] * DAY_US + GRACE_US
        moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=matures)
        rule = reference_labels(predictions, outcomes, moment, "first")
        if row["prediction_id"] in rule:
            label = rule[row["prediction_id"]][0]
            eligible.append((matures, row["prediction_id"], row["entity_id"], label))
    seen, out = set(), []
    for matures, pid, entity, label in sorted(eligible):
        if entity not in seen:
            seen.add(entity)
            out.append((pid, matures, label == "positive"))
    return out


@pytest.mark.parametrize(  # make quick runs the first 5 seeds, make test all 50
    "seed", [*range(5), *(pytest.param(s, marks=pytest.mark.slow) for s in range(5, 50))]
)
def test_the_monitor_consumes_the_label_rule_at_each_maturity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    late_emissions = seed % 2 == 1
    with random_ledger(rng, late_emissions=late_emissions) as ledger:
        stream = consumed(ledger)
        assert stream == monitor_reference(ledger)
        cuts = sorted(at(float(day)) for day in rng.uniform(0, 300, 2))
        pieces = consumed(ledger, cuts[0]) + consumed(ledger, cuts[1], since=cuts[0])
        assert pieces + consumed(ledger, since=cuts[1]) == stream  # any schedule of updates
        for pid, matures, positive in stream:  # Ledger.labels as of the lead's maturity
            moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=matures)
            assert labels(ledger, moment)[pid] == ("positive" if positive else "negative", False)
        if late_emissions:
            return
        # every emission was recorded before the others matured: the same leads as the audit
        final = ledger.labels(as_of=FINAL, scorer="s").table
        judged = final.filter(
            pc.and_(pc.invert(final["abstained"]), pc.is_valid(final["probability"]))
        )
        assert sorted(pid for pid, _, _ in stream) == sorted(judged["prediction_id"].to_pylist())
        late = ledger.late_flips(scorer="s", model_version=None, until=FINAL, grace=GRACE)
        positives = judged["label"].to_pylist().count("positive")
        assert positives == sum(positive for _, _, positive in stream) + late
