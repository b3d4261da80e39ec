"""Empirical-Bayes segment rates: simulation with known truth, agreement, degenerate cases."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import beta

from assay.stats.segments import (
    M_CAP,
    _pool_small,
    normalise_labels,
    segment_calibration,
    segment_rates,
)
from assay.stats.tolerance import Tolerance


def simulate(seed: int, j: int = 40) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 401, j)
    truth = rng.beta(0.1 * 50, 0.9 * 50, j)
    y = np.concatenate([rng.random(n) < t for n, t in zip(sizes, truth, strict=True)])
    labels = np.concatenate([[f"s{i:02d}"] * n for i, n in enumerate(sizes)])
    return y.astype(int), labels, {f"s{i:02d}": float(t) for i, t in enumerate(truth)}


@pytest.mark.slow
def test_shrinkage_beats_raw_rates_and_intervals_cover():
    wins, covered, total = 0, 0, 0
    for seed in range(100):
        y, labels, truth = simulate(seed)
        result = segment_rates(y, labels, min_size=1, seed=seed)
        raw = np.array([r.raw_rate for r in result.rows])
        shrunk = np.array([r.shrunken_rate for r in result.rows])
        true = np.array([truth[r.segment] for r in result.rows])
        wins += np.mean((shrunk - true) ** 2) < np.mean((raw - true) ** 2)
        covered += sum(r.lower <= truth[r.segment] <= r.upper for r in result.rows)
        total += len(result.rows)
    assert wins >= 95, wins
    assert 0.90 <= covered / total <= 0.98, covered / total


def test_methods_agree_on_well_behaved_data():
    rng = np.random.default_rng(1)
    truth = rng.beta(4, 16, 30)
    y = np.concatenate([rng.random(500) < t for t in truth]).astype(int)
    labels = np.repeat([f"s{i}" for i in range(30)], 500)
    fits = {m: segment_rates(y, labels, method=m) for m in ("grid", "mle", "moments")}
    for method in ("mle", "moments"):
        assert fits[method].mu == pytest.approx(fits["grid"].mu, abs=0.01)
        for a, b in zip(fits[method].rows, fits["grid"].rows, strict=True):
            assert a.segment == b.segment
            assert a.shrunken_rate == pytest.approx(b.shrunken_rate, abs=0.005)
    assert fits["mle"].concentration == pytest.approx(fits["moments"].concentration, rel=0.5)


def test_one_segment_has_its_own_interval():
    result = segment_rates([1, 0, 0, 1] * 20, ["a"] * 80)
    assert result.rule.startswith("one segment")
    assert result.rows[0].shrunken_rate == pytest.approx((40 + 0.5) / 81)
    assert result.rows[0].shrinkage is None


def test_two_segments_hand_over_to_the_grid():
    y = [1] * 30 + [0] * 70 + [1] * 10 + [0] * 90
    labels = ["a"] * 100 + ["b"] * 100
    result = segment_rates(y, labels, method="mle")
    assert result.method == "grid" and result.rule.startswith("two segments")
    a, b = result.rows
    assert a.raw_rate == 0.3 and b.raw_rate == 0.1
    assert 0.1 < b.shrunken_rate < a.shrunken_rate < 0.3


@pytest.mark.parametrize("outcome", [0, 1])
def test_all_outcomes_equal(outcome):
    labels = np.repeat(["a", "b", "c", "d"], 50)
    result = segment_rates(np.full(200, outcome), labels, method="moments")
    assert result.rule.startswith(f"all outcomes are {outcome}")
    for row in result.rows:
        assert row.lower <= outcome <= row.upper + 1e-12
        assert row.raw_rate == outcome


def test_tiny_segments_are_pooled_into_other():
    labels = ["big"] * 1000 + [f"tiny{i}" for i in range(30) for _ in range(3)]
    y = np.random.default_rng(2).random(len(labels)) < 0.2
    result = segment_rates(y, labels, min_size=10)
    names = {r.segment for r in result.rows}
    assert names == {"big", "other"}
    other = next(r for r in result.rows if r.segment == "other")
    assert other.n == 90 and len(other.pooled_from) == 30
    assert any("pooled 30 segments" in note for note in result.notes)


def test_identical_rates_pool_fully():
    labels = np.repeat([f"s{i}" for i in range(10)], 100)
    y = np.tile(np.r_[np.ones(10), np.zeros(90)], 10)
    result = segment_rates(y, labels, method="mle")
    assert result.concentration == M_CAP
    assert result.rule.startswith("no spread between segments")
    for row in result.rows:
        assert row.shrunken_rate == pytest.approx(0.1, abs=1e-4)


def test_labels_are_normalised_with_a_note():
    result = segment_rates(
        [1, 0, 1, 0] * 30, ["SaaS", " saas", "Retail", "retail "] * 30, min_size=1
    )
    assert {r.segment for r in result.rows} == {"saas", "retail"}
    assert any("merged ' saas', 'SaaS' into 'saas'" in note for note in result.notes)


SPELLINGS = [
    "SaaS", " saas", "Retail", "retail ", "Straße", "STRASSE", "ǅemal", "ǆEMAL", "日本", " 日本\t",
    "", "  ", "(Missing)", "Other", "other", "a b", 7, 7.0, True,
]  # fmt: skip


def reference_labels(values: list) -> tuple[list[str], list[str]]:
    """The first version, label by label: None is "(missing)", anything else str(v) stripped
    and casefolded; a note for every label that several distinct spellings became."""
    cleaned = ["(missing)" if v is None else str(v).strip().casefold() for v in values]
    spellings: dict[str, set[str]] = {}
    for value, label in zip(values, cleaned, strict=True):
        if value is not None:
            spellings.setdefault(label, set()).add(str(value))
    notes = [
        f"merged {', '.join(repr(s) for s in sorted(spellings[label]))} into {label!r}"
        for label in sorted(spellings)
        if len(spellings[label]) > 1
    ]
    return cleaned, notes


@pytest.mark.parametrize("seed", range(8))
def test_encoded_labels_equal_the_label_by_label_cleaning(seed):
    """Random labels (unicode case folding, whitespace, None, numbers) as a list, a NumPy array,
    an Arrow string, chunked or dictionary array: every lead gets the reference's label, the
    names come sorted by code point as np.unique sorted them, and the notes are the same."""
    rng = np.random.default_rng(seed)
    pool = [*SPELLINGS[: rng.integers(2, len(SPELLINGS) + 1)], None]
    values = [pool[i] for i in rng.integers(0, len(pool), rng.integers(1, 400))]
    cleaned, notes = reference_labels(values)
    text = [None if v is None else str(v) for v in values]
    half = len(text) // 2
    inputs = [values, np.array(values, dtype=object), pa.array(text)]
    inputs += [pa.chunked_array([text[:half], text[half:]], pa.string())]
    inputs += [pa.array(text).dictionary_encode()]
    for given in inputs:
        labels = normalise_labels(given)
        assert [labels.names[c] for c in labels.codes] == cleaned
        assert labels.names == sorted(set(cleaned)) == list(np.unique(cleaned))
        assert labels.notes == notes
    pooled, small = _pool_small(normalise_labels(values), 5)
    counts = {label: cleaned.count(label) for label in set(cleaned)}
    tiny = sorted(label for label, count in counts.items() if count < 5)
    if 0 < len(tiny) < len(counts):
        assert small == tiny
        assert [pooled.names[c] for c in pooled.codes] == [
            "other" if label in tiny else label for label in cleaned
        ]
    else:
        assert small == [] and pooled.codes.tolist() == normalise_labels(values).codes.tolist()


def test_verdicts_and_reasons():
    rng = np.random.default_rng(3)
    labels = np.repeat(["high", "low", "mid", "small"], [2000, 2000, 2000, 12])
    rates = {"high": 0.3, "low": 0.05, "mid": 0.15, "small": 0.5}
    y = np.array([rng.random() < rates[s] for s in labels])
    rows = {r.segment: r for r in segment_rates(y, labels).rows}
    assert rows["high"].verdict == "above" and rows["low"].verdict == "below"
    assert rows["small"].verdict == "not yet"
    assert rows["small"].reason == "not yet: only 12 leads; at least 30 are needed"


def test_segment_calibration_finds_the_miscalibrated_segment():
    rng = np.random.default_rng(4)
    n = 6000
    labels = rng.choice(["a", "b", "c"], n)
    p = rng.beta(2, 5, n)
    truth = np.where(labels == "c", np.minimum(p * 1.6, 1), p)  # the score under-promises for c
    y = (rng.random(n) < truth).astype(int)
    rows = {r.segment: r for r in segment_calibration(y, p, labels)}
    assert rows["c"].lower > 1.0
    assert rows["a"].lower < 1.0 < rows["a"].upper
    assert rows["c"].verdict == "miscalibrated"
    assert rows["a"].observed == int(y[labels == "a"].sum())


def test_funnel_limits_exact_and_overdispersed():
    from scipy.stats import binom

    from assay.stats.segments import funnel_limits

    labels = np.repeat(["a", "b", "c", "d"], [100, 400, 1600, 6400])
    rng = np.random.default_rng(9)
    y = rng.random(len(labels)) < 0.2
    rates = segment_rates(y, labels)
    limits = funnel_limits(rates)
    if not limits.adjusted:
        i = int(np.searchsorted(limits.n, 400))
        assert limits.upper_95[i] == binom.ppf(0.975, limits.n[i], rates.reference) / limits.n[i]
    spread = np.concatenate(
        [rng.random(n) < r for n, r in zip([500] * 6, [0.05, 0.1, 0.2, 0.3, 0.4, 0.5], strict=True)]
    )
    wide = funnel_limits(segment_rates(spread, np.repeat(list("abcdef"), 500)))
    assert wide.adjusted and wide.overdispersion > 10


@pytest.mark.integration
def test_cli_segments_on_the_ledger(tmp_path):
    from typer.testing import CliRunner

    from assay.cli.main import app
    from assay.demo.build import build_synthetic_demo

    result = build_synthetic_demo(tmp_path / "demo", n=2000)
    assert "Segments by" in result.html.read_text()
    output = CliRunner().invoke(
        app,
        [
            "segments",
            "--by",
            "industry",
            "--ledger",
            str(result.ledger),
            "--as-of",
            "2024-09-01T00:00:00Z",
        ],
    )
    assert output.exit_code == 0, output.output
    assert "saas" in output.output and "shrunken" in output.output
    page = tmp_path / "compare.html"
    arguments = ["compare", "--ledger", str(result.ledger), "--as-of", "2024-09-01T00:00:00Z"]
    compared = CliRunner().invoke(
        app, [*arguments, "--segment-by", "industry", "--html", str(page)]
    )
    assert compared.exit_code == 0, compared.output
    assert "vendor-a vs vendor-b" in compared.output
    html = page.read_text()
    assert "Leaderboard" in html and "http" not in html and "<script" not in html
    assert result.compare_html.exists()


def counted(spec: dict[str, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes and labels with exactly k of n leads converted per segment."""
    y = np.concatenate([np.r_[np.ones(k), np.zeros(n - k)] for n, k in spec.values()])
    return y.astype(int), np.repeat(list(spec), [n for n, _ in spec.values()])


# The real case: 2,872 leads at 39.9% ± 1.8 against 38.5% overall was "not yet".
REAL = {
    "a": (2872, 1146),
    "b": (6000, 2160),
    "c": (5000, 2050),
    "d": (3000, 1110),
    "e": (3128, 1234),
}


@pytest.mark.parametrize("method", ["grid", "mle", "moments"])
def test_a_segment_inside_the_band_is_in_line(method):
    result = segment_rates(*counted(REAL), method=method)
    assert result.reference == 0.385
    assert result.band == pytest.approx((0.385 / 1.25, 0.385 * 1.25))
    rows = {r.segment: r for r in result.rows}
    assert rows["a"].verdict == "in line"
    assert rows["a"].reason.startswith(
        "in line with the overall rate 38.5% (within 0.80×–1.25×, i.e. 30.8%–48.1%; interval "
    )
    assert rows["b"].verdict == "below" and rows["c"].verdict == "above"
    assert rows["c"].reason.endswith(", but within the tolerance of 0.80×–1.25×, i.e. 30.8%–48.1%")


def test_a_tighter_tolerance_leaves_it_open_and_says_how_many_more_leads():
    result = segment_rates(*counted(REAL), tolerance=Tolerance(ratio=1.02))
    a = next(r for r in result.rows if r.segment == "a")
    assert a.verdict == "not yet"
    assert "contains the overall rate 38.5% and reaches outside 0.98×–1.02×" in a.reason
    more = int(a.reason.split("roughly ")[1].split(" more leads")[0].replace(",", ""))
    # Half-widths ∝ 1/sqrt(n): the own interval must shrink until it excludes 38.5%.
    half = beta.ppf(0.975, 1146.5, 1726.5) - beta.ppf(0.025, 1146.5, 1726.5)
    expected = 2872 * (half / 2 / (1146 / 2872 - 0.385)) ** 2 - 2872
    assert more == pytest.approx(expected, rel=0.15)


def test_small_segments_stay_not_yet():
    y, labels = counted({**REAL, "f": (30, 12), "g": (29, 20)})
    rows = {r.segment: r for r in segment_rates(y, labels).rows}
    assert rows["g"].reason == "not yet: only 29 leads; at least 30 are needed"
    assert rows["f"].verdict == "not yet"
    assert "more leads would settle it" in rows["f"].reason
    assert rows["a"].verdict == "in line"


def test_in_line_needs_the_segments_own_data():
    """Twelve segments at 30% pull a 250-lead segment at 40% into the band; its own data
    (34–46%) do not place it there, so it is not "in line"."""
    spec = {f"s{i:02d}": (3000, 900) for i in range(12)} | {"odd": (250, 100)}
    rows = {r.segment: r for r in segment_rates(*counted(spec)).rows}
    odd = rows["odd"]
    assert odd.verdict == "not yet"
    assert "leaning on the other segments" in odd.reason or "contains" in odd.reason
    assert rows["s00"].verdict == "in line"


@pytest.mark.parametrize("method", ["grid", "mle", "moments"])
def test_no_events_never_tighter_than_its_own_jeffreys_bound(method):
    spec = {f"s{i}": (4000, 8) for i in range(6)} | {"none": (200, 0)}
    rows = {r.segment: r for r in segment_rates(*counted(spec), method=method).rows}
    assert rows["none"].upper >= beta.ppf(0.975, 0.5, 200.5)  # 1.2%
    assert rows["none"].upper == pytest.approx(0.01247, abs=5e-5) or method == "grid"
    spec = {f"s{i}": (4000, 3992) for i in range(6)} | {"all": (200, 200)}
    rows = {r.segment: r for r in segment_rates(*counted(spec), method=method).rows}
    assert rows["all"].lower <= beta.ppf(0.025, 200.5, 0.5)


def test_grid_resolves_rates_of_a_tenth_of_a_percent():
    rng = np.random.default_rng(12)
    sizes = np.full(8, 20_000)
    spec = {f"s{i}": (int(n), int(rng.binomial(n, 0.001))) for i, n in enumerate(sizes)}
    result = segment_rates(*counted(spec))
    assert 0.0007 < result.mu < 0.0014  # the old grid's smallest μ was 0.0042
    for row in result.rows:
        assert row.lower <= 0.001 <= row.upper


def rare(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """8 segments of 500–5,000 leads at true rates between 0.1% and 0.5%."""
    return rng.integers(500, 5001, 8), rng.uniform(0.001, 0.005, 8)


def common(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """8 segments of 500–5,000 leads at true rates between 25% and 50%."""
    return rng.integers(500, 5001, 8), rng.uniform(0.25, 0.50, 8)


def outlier(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """12 segments of 200–3,000 leads at 30%, one of them at 22% or 40% instead."""
    truth = np.full(12, 0.30)
    truth[0] = rng.choice([0.22, 0.40])
    return rng.integers(200, 3001, 12), truth


def error_table(scenario, datasets: int, ratio: float = 1.25) -> dict[str, float]:
    """Coverage and the verdicts' errors over seeded datasets. Truth for a verdict is the
    population rate, the lead-weighted mean of the true segment rates: "above" is false when
    the segment's true rate is at or below it, "in line" is false when the true rate lies
    outside [population / ratio, population · ratio]."""
    rng = np.random.default_rng(2025)
    count = dict.fromkeys(
        ("rows", "covered", "false_side", "sides", "outside", "false_in_line", "inside"), 0
    )
    count |= {"in_line": 0, "not_yet": 0}
    for seed in range(datasets):
        sizes, truth = scenario(rng)
        spec = {
            f"s{j:02d}": (int(n), int(rng.binomial(n, t)))
            for j, (n, t) in enumerate(zip(sizes, truth, strict=True))
        }
        rows = segment_rates(*counted(spec), seed=seed).rows
        true = {f"s{j:02d}": t for j, t in enumerate(truth)}
        population = float(np.sum(sizes * truth) / sizes.sum())
        false_side = False
        for row in rows:
            t = true[row.segment]
            count["rows"] += 1
            count["covered"] += row.lower <= t <= row.upper
            count["sides"] += row.verdict in ("above", "below")
            count["not_yet"] += row.verdict == "not yet"
            false_side |= (row.verdict == "above" and t <= population) or (
                row.verdict == "below" and t >= population
            )
            key = "inside" if population / ratio <= t <= population * ratio else "outside"
            count[key] += 1
            count["in_line" if key == "inside" else "false_in_line"] += row.verdict == "in line"
        count["false_side"] += false_side
    return {
        "coverage": count["covered"] / count["rows"],
        "false_side": count["false_side"] / datasets,
        "false_in_line": count["false_in_line"] / max(count["outside"], 1),
        "in_line": count["in_line"] / max(count["inside"], 1),
        "sides": count["sides"] / count["rows"],
        "not_yet": count["not_yet"] / count["rows"],
    }


@pytest.mark.slow
def test_error_table_at_rare_and_common_rates():
    """Prints the table with ``pytest -s``; 200 datasets per scenario (about 30 s)."""
    print(
        "\nscenario  datasets  coverage  false above/below (datasets)  false in line  "
        "in line (true in band)  above/below  not yet"
    )
    for scenario in (rare, common, outlier):
        table = error_table(scenario, 200)
        print(
            f"{scenario.__name__:9s} {200:8d}  {table['coverage']:8.3f}  "
            f"{table['false_side']:28.3f}  {table['false_in_line']:13.3f}  "
            f"{table['in_line']:22.3f}  {table['sides']:11.3f}  {table['not_yet']:7.3f}"
        )
        assert table["coverage"] >= 0.92, (scenario.__name__, table)
        assert table["false_side"] <= 0.05, (scenario.__name__, table)
        assert table["false_in_line"] <= 0.05, (scenario.__name__, table)
