"""The folders are the layers: every import in ``src/assay`` points down the flow.

ledger → stats → models → audit → report → faces (cli, service, demo). ``stats`` is pure
NumPy/SciPy and knows nothing of storage or screens; the ledger keeps the label rule and knows
nothing of the engine-side (pushdown) code built on it; ``models`` loads registered artefacts,
scores through the ledger and replays; renderers never reach past the audit objects they draw.
Imports inside functions and under ``TYPE_CHECKING`` count too: a door is a door.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "assay"

#: The layers each layer may import (besides itself and the shared ``_validation`` and ``_lazy``).
ALLOWED: dict[str, set[str]] = {
    "stats": set(),
    "ledger": set(),
    "pushdown": {"ledger", "stats"},
    "models": {"ledger", "stats"},
    "audit": {"ledger", "models", "pushdown", "stats"},
    "report": {"audit", "stats"},
    "demo": {"audit", "ledger", "models", "report", "stats"},
    "service": {"audit", "ledger", "models", "report", "stats"},
    "cli": {"audit", "demo", "ledger", "models", "pushdown", "report", "service", "stats"},
    "__init__": {"audit", "stats"},
}


def _layer(module: str) -> str:
    """The layer of ``assay.X[.Y]``: the first package below ``assay``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(relative: Path, text: str) -> list[tuple[int, str]]:
    """Every ``assay.*`` module a file imports, with its line, absolute or relative."""
    package = ".".join(("assay", *relative.with_suffix("").parts)).rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(text, str(relative))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("assay.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name == "assay":
                found += [(node.lineno, f"assay.{a.name}") for a in node.names]
            elif name.startswith("assay."):
                found.append((node.lineno, name))
    return found


def _wrong_doors(relative: Path, text: str) -> list[str]:
    """The imports of one file (``relative`` to ``src/assay``) that point the wrong way."""
    layer = _layer(".".join(("assay", *relative.with_suffix("").parts)))
    allowed = {layer, "_validation", "_lazy"} | ALLOWED.get(layer, set())
    return [
        f"{relative}:{line} imports {name}"
        for line, name in _imports(relative, text)
        if _layer(name) not in allowed
    ]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down_the_flow(path: Path) -> None:
    wrong = _wrong_doors(path.relative_to(SRC), path.read_text())
    assert not wrong, "\n".join(wrong)


def test_every_layer_is_declared() -> None:
    folders = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(ALLOWED) - {"__init__"}


def test_the_checker_sees_a_wrong_door() -> None:
    """The check itself can fail: imports in a function and relative imports are seen."""
    text = "from ..ledger import store\n\ndef f() -> None:\n    from assay.report import html\n"
    assert _wrong_doors(Path("stats/probe.py"), text) == [
        "stats/probe.py:1 imports assay.ledger",
        "stats/probe.py:4 imports assay.report",
    ]
    assert _wrong_doors(Path("audit/probe.py"), "from assay.stats import posterior\n") == []
