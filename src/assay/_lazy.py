"""Lazy package attributes (PEP 562): a public name loads its module on first access.

A package lists ``name → defining module`` and installs the two hooks this returns::

    __getattr__, __dir__ = lazy_exports(__name__, {"Ledger": "assay.ledger.store"})

so ``import assay.ledger`` (or ``import assay``) runs no heavy import, while
``from assay.ledger import Ledger`` and ``assay.ledger.Ledger`` work as if imported eagerly.
The package keeps a literal ``__all__`` and ``TYPE_CHECKING`` imports for type checkers.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Build the ``__getattr__`` and ``__dir__`` hooks of ``package`` for the names in ``exports``.

    ``__getattr__(name)`` imports ``exports[name]``, stores the value in the package's globals
    (so later lookups never reach the hook again) and returns it; an unknown name raises
    ``AttributeError`` as for any module. ``__dir__()`` lists the package's globals and every
    exported name, loaded or not.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
