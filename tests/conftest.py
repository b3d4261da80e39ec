"""Shared generators and fixtures for the test suite."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest
from tests.pgcluster import PostgresCluster, postgres_bin

import assay.stats.calibration
from assay import BinStats, PosteriorSettings

#: Scripts that regenerate fixtures (run by hand; relplot is only in the bench extra).
collect_ignore_glob = ["fixtures/make_*.py"]

AS_OF = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class FastPosteriorSettings(PosteriorSettings):
    """Coarser grids and a tenth of the draws: what plumbing tests default to.

    Tests of the CLI, report files, ``verify``, the service and hostile text check that
    numbers travel intact (same bytes, same fields, printed literally), not what the
    posterior says; statistical tests and the golden report keep :class:`PosteriorSettings`.
    """

    tau_points: int = 8
    hyper_points: int = 9
    spike_points: int = 21
    quadrature_nodes: int = 5
    draws: int = 400


@pytest.fixture
def fast_posterior(monkeypatch: pytest.MonkeyPatch) -> type[PosteriorSettings]:
    """Audits and reports in this test default to :class:`FastPosteriorSettings`.

    ``calibration`` and ``calibration_from_stats`` build ``PosteriorSettings()`` when given
    none; that default is replaced here. Settings passed explicitly are used as given, and the
    report records whichever settings it used. Use it with
    ``pytestmark = pytest.mark.usefixtures("fast_posterior")``.
    """
    monkeypatch.setattr(assay.stats.calibration, "PosteriorSettings", FastPosteriorSettings)
    return FastPosteriorSettings


DAY_US = 86_400_000_000
UTC = pa.timestamp("us", tz="UTC")


def beta_scores(n: int, seed: int, exponent: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """p ~ Beta(2, 5) and y ~ Bernoulli(p ** exponent) (exponent 1 is perfectly calibrated)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p**exponent).astype(np.int64)
    return y, p


@pytest.fixture
def scores() -> tuple[np.ndarray, np.ndarray]:
    return beta_scores(3000, seed=7, exponent=1.3)


def build_small_ledger(path):  # type: ignore[no-untyped-def]
    """A seeded 800-lead ledger: scorer "alpha" calibrated, "beta" over-promising; the last
    weeks are pending as of 2024-05-01. Used by the report tests and the golden fixture."""
    import datetime as dt

    import pyarrow as pa

    from assay.ledger import Ledger

    rng = np.random.default_rng(42)
    n = 800
    start = np.datetime64("2024-01-01T00:00:00", "us")
    scored = start + (np.sort(rng.uniform(0, 110, n)) * 86_400e6).astype("timedelta64[us]")
    truth = rng.beta(2, 5, n)
    converted = rng.random(n) < truth
    utc = pa.timestamp("us", tz="UTC")
    now = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    ledger = Ledger(path)
    for name, score in {"alpha": truth, "beta": np.minimum(truth * 1.6, 1.0)}.items():
        ledger.ingest_predictions(
            pa.table(
                {
                    "prediction_id": [f"{name}-{i}" for i in range(n)],
                    "entity_id": [f"lead-{i}" for i in range(n)],
                    "scorer": [name] * n,
                    "model_version": ["m1"] * n,
                    "score": np.round(score, 4),
                    "scored_at": pa.array(scored, utc),
                    "recorded_at": pa.array(scored, utc),
                    "horizon_days": pa.array(np.full(n, 21, np.int32)),
                    "target_event": ["won"] * n,
                }
            ),
            now=now,
        )
    won = np.flatnonzero(converted)
    occurred = scored[won] + (rng.uniform(0, 14, len(won)) * 86_400e6).astype("timedelta64[us]")
    keep = occurred <= np.datetime64("2024-05-01T00:00:00", "us")
    ledger.ingest_outcomes(
        pa.table(
            {
                "entity_id": [f"lead-{i}" for i in won[keep]],
                "event": ["won"] * int(keep.sum()),
                "occurred_at": pa.array(occurred[keep], utc),
                "recorded_at": pa.array(occurred[keep], utc),
            }
        ),
        now=now,
    )
    return ledger


def make_lake(n: int, seed: int, *, emissions: int = 1) -> tuple[pa.Table, pa.Table]:
    """Predictions (``emissions`` per lead, two scorers) and outcomes with recording delays.

    Scores are rounded to two decimals, so many sit exactly on the 0.01-grid edges (0.29 among
    them, which ``floor(0.29 * 100)`` puts in the wrong bin).
    """
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    rows = n * emissions
    entity = np.repeat(np.arange(n), emissions)
    scored = start + (rng.uniform(0, 115, rows) * 86_400e6).astype("timedelta64[us]")
    recorded = scored + (rng.exponential(0.5, rows) * 86_400e6).astype("timedelta64[us]")
    prob = np.round(rng.beta(2, 5, rows), 2)
    predictions = pa.table(
        {
            "prediction_id": [f"p{i}" for i in range(rows)],
            "entity_id": [f"lead-{e}" for e in entity],
            "scorer": np.where(rng.random(rows) < 0.5, "alpha", "beta").tolist(),
            "model_version": np.where(rng.random(rows) < 0.3, "m2", "m1").tolist(),
            "probability": prob,
            "abstained": rng.random(rows) < 0.03,
            "scored_at": pa.array(scored, UTC),
            "recorded_at": pa.array(recorded, UTC),
            "horizon_days": pa.array(rng.choice([14, 30], rows).astype(np.int32)),
            "target_event": np.where(rng.random(rows) < 0.9, "won", "demo").tolist(),
        }
    )
    converts = rng.random(n) < 0.35
    first_scored = np.full(n, np.datetime64("2100-01-01", "us"))
    np.minimum.at(first_scored, entity, scored)
    won = np.flatnonzero(converts)
    occurred = first_scored[won] + (rng.uniform(-2, 40, len(won)) * 86_400e6).astype(
        "timedelta64[us]"
    )
    outcome_recorded = occurred + (rng.exponential(3, len(won)) * 86_400e6).astype(
        "timedelta64[us]"
    )
    outcomes = pa.table(
        {
            "outcome_id": [f"o{i}" for i in range(len(won))],
            "entity_id": [f"lead-{e}" for e in won],
            "event": np.where(rng.random(len(won)) < 0.95, "won", "demo").tolist(),
            "occurred_at": pa.array(occurred, UTC),
            "recorded_at": pa.array(outcome_recorded, UTC),
        }
    )
    return predictions, outcomes


def _us(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.cast(pa.int64()).to_numpy())


def reference_labels(
    predictions: pa.Table, outcomes: pa.Table, as_of: dt.datetime, policy: str
) -> dict[str, tuple[str, bool]]:
    """The label rule written out row by row in plain Python: prediction_id → (label, matured)."""
    t = int(as_of.timestamp() * 1_000_000)
    p = predictions.to_pydict()
    scored, recorded = _us(predictions["scored_at"]), _us(predictions["recorded_at"])
    visible = [i for i in range(len(scored)) if recorded[i] <= t and scored[i] <= t]
    if policy != "all":
        best: dict[tuple[str, str], int] = {}
        for i in visible:
            key = (p["entity_id"][i], p["scorer"][i])
            rank = (scored[i], p["prediction_id"][i])
            j = best.get(key)
            if j is None:
                best[key] = i
                continue
            other = (scored[j], p["prediction_id"][j])
            if (rank < other) if policy == "first" else (rank > other):
                best[key] = i
        visible = sorted(best.values())
    o = outcomes.to_pydict()
    occurred, o_recorded = _us(outcomes["occurred_at"]), _us(outcomes["recorded_at"])
    known: dict[tuple[str, str], list[int]] = {}
    for k in range(len(occurred)):
        if o_recorded[k] <= t:
            known.setdefault((o["entity_id"][k], o["event"][k]), []).append(int(occurred[k]))
    out = {}
    for i in visible:
        closes = scored[i] + int(p["horizon_days"][i]) * DAY_US
        times = known.get((p["entity_id"][i], p["target_event"][i]), [])
        hit = any(scored[i] <= s < closes for s in times)
        matured = closes <= t
        out[p["prediction_id"][i]] = (
            "positive" if hit else "negative" if matured else "pending",
            matured,
        )
    return out


def usable_reference(predictions: pa.Table, outcomes: pa.Table, policy: str = "first"):  # type: ignore[no-untyped-def]
    """(labels, probabilities, row index) of matured, scored predictions, by the reference."""
    ref = reference_labels(predictions, outcomes, AS_OF, policy)
    ids = predictions["prediction_id"].to_pylist()
    abstained = predictions["abstained"].to_pylist()
    rows = [i for i, pid in enumerate(ids) if pid in ref and ref[pid][1] and not abstained[i]]
    y = np.array([ref[ids[i]][0] == "positive" for i in rows], dtype=np.float64)
    p = predictions["probability"].to_numpy()[rows]
    return y, p, np.array(rows)


def assert_same_stats(got: BinStats, want: BinStats) -> None:
    np.testing.assert_array_equal(got.edges, want.edges)
    np.testing.assert_array_equal(got.count, want.count)
    for field in ("weight", "sum_p", "sum_p2", "sum_y", "sum_py"):
        np.testing.assert_allclose(getattr(got, field), getattr(want, field), rtol=1e-9, atol=0)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are missing (`make test` installs them)")
    cluster = PostgresCluster(bin_dir)
    yield cluster
    cluster.stop()
