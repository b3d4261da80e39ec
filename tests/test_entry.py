"""A cheap entry: ``import assay`` and ``assay --help`` load none of the heavy libraries.

Each check runs in a fresh interpreter (this process has long imported everything) and reads
``sys.modules`` there. Speed itself is measured in ``benchmarks/bench_startup.py``.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import assay

#: Modules whose import takes tenths of seconds; none may load before it is used.
HEAVY = (
    "duckdb",
    "ibis",
    "fastapi",
    "uvicorn",
    "sklearn",
    "matplotlib",
    "pandas",
    "polars",
    "scipy.stats",
    "scipy.optimize",
)


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return [name for name in HEAVY if name in modules]


def test_the_probe_sees_a_heavy_import() -> None:
    """The check itself can fail: a module imported by the code is reported."""
    assert "scipy.stats" in heavy_in(loaded_after("import scipy.stats"))


def test_import_assay_loads_nothing_heavy() -> None:
    assert heavy_in(loaded_after("import assay")) == []


def test_help_loads_nothing_heavy() -> None:
    code = (
        "import sys\nfrom assay.cli.main import app\nsys.argv = ['assay', '--help']\n"
        "try:\n    app()\nexcept SystemExit as stop:\n    assert stop.code == 0, stop.code"
    )
    assert heavy_in(loaded_after(code)) == []


@pytest.mark.parametrize(
    "call",
    [
        "assay.expected_calibration_error([0, 1], [0.2, 0.7])",
        "assay.calibration([0, 1] * 60, [0.3, 0.6] * 60).verdict",
    ],
)
def test_the_metrics_load_only_numpy_and_scipy_special(call: str) -> None:
    """A metric and the rich calibration report: no storage, no scipy.stats/optimize."""
    loaded = loaded_after(f"import assay\n{call}")
    assert {"numpy", "scipy.special"} <= loaded
    assert heavy_in(loaded) == []


@pytest.mark.parametrize("name", assay.__all__)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(assay, name)
    assert value is not None
    if name != "__version__":
        assert value.__name__ == name  # the object itself, not a module of the same name


def test_dir_lists_every_public_name_and_unknown_names_fail() -> None:
    assert set(assay.__all__) <= set(dir(assay))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        assay.not_a_name  # noqa: B018


def test_the_table_the_type_imports_and_all_agree() -> None:
    """``_EXPORTS``, the ``TYPE_CHECKING`` imports and ``__all__`` name the same objects."""
    tree = ast.parse(Path(assay.__file__).read_text())
    typed = {
        alias.name: node.module
        for block in tree.body
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert typed == assay._EXPORTS
    assert sorted(assay.__all__) == sorted([*assay._EXPORTS, "__version__"])
    for name, module in assay._EXPORTS.items():
        assert getattr(importlib.import_module(module), name) is getattr(assay, name)


def test_segment_functions_are_public() -> None:
    """The README's ``assay.segment_rates`` and ``assay.segment_calibration`` exist and run."""
    y = [1, 0, 0, 1, 0, 0, 0, 1] * 10
    p = [0.6, 0.2, 0.1, 0.5, 0.3, 0.2, 0.1, 0.7] * 10
    segments = ["a", "b"] * 40
    rates = assay.segment_rates(y, segments, min_size=5)
    by_name = {row.segment: row for row in rates.rows}
    assert by_name["a"].conversions == sum(y[i] for i in range(0, 80, 2))
    rows = assay.segment_calibration(y, p, segments, min_size=5)
    assert {row.segment for row in rows} == {"a", "b"}
    for row in rows:
        mask = [s == row.segment for s in segments]
        assert row.observed == sum(v for v, m in zip(y, mask, strict=True) if m)
        expected = sum(v for v, m in zip(p, mask, strict=True) if m)
        assert row.expected == pytest.approx(expected)
