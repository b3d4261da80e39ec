"""The README's Python runs: every ```python block, in order, in one namespace.

The blocks build on each other the way a reader types them (``y`` and ``p`` from "In Python",
the ledger file written under "Conventions"), so they run as one script in a temporary
directory. A block that cannot run here (it needs a warehouse, a server, an account) is marked
by an HTML comment on the line before it, ``<!-- not-run: the reason -->``, and is counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    code: str
    not_run: str | None  # the reason it is not run, or None


def python_blocks(text: str) -> list[Block]:
    """Every ```python block of ``text``, with its line and its not-run reason (if marked)."""
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marked = NOT_RUN.search(before)
        blocks.append(
            Block(
                line=text.count("\n", 0, match.start()) + 1,
                code=match.group(1),
                not_run=marked.group(1) if marked else None,
            )
        )
    return blocks


def test_the_parser_finds_blocks_and_marks() -> None:
    """The extraction itself can fail: a plain, a marked and a shell block."""
    text = (
        "# t\n\n```python\nx = 1\n```\n\n<!-- not-run: needs a server -->\n```python\n"
        "serve()\n```\n\n```sh\nls\n```\n"
    )
    assert python_blocks(text) == [
        Block(line=3, code="x = 1\n", not_run=None),
        Block(line=8, code="serve()\n", not_run="needs a server"),
    ]


@pytest.mark.usefixtures("fast_posterior")  # the blocks must run; their numbers are not checked
def test_every_python_block_of_the_readme_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = python_blocks(README.read_text())
    runnable = [b for b in blocks if b.not_run is None]
    assert len(runnable) >= 6, "the README lost its examples"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in runnable:
        try:
            exec(compile(block.code, f"README.md:{block.line}", "exec"), namespace)
        except Exception as error:
            pytest.fail(f"the block at README.md line {block.line} fails: {error!r}")
    assert (tmp_path / "assay.duckdb").exists()  # the ledger example wrote where it said


def test_marked_blocks_are_few_and_say_why() -> None:
    """Blocks that are not run are counted, each with a reason."""
    marked = [b for b in python_blocks(README.read_text()) if b.not_run is not None]
    assert all(b.not_run for b in marked)
    assert len(marked) <= 2, [b.line for b in marked]
