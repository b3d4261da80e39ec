"""Every public name documents itself in numpydoc: sections, parameters, references, examples.

The examples run as doctests (``pytest --doctest-modules src``, part of ``make test``); this
module checks, for every name in ``assay.__all__``, that numpydoc's own validator accepts the
docstring (summary, extended summary, Parameters matching the signature, Returns, Examples,
formatting), that it cites its sources and says what ``AssayInputError`` is raised for, that an
example shows a checkable output, and that public methods say what they do.
"""

from __future__ import annotations

import doctest
import inspect
from typing import Any

import pytest
from numpydoc.docscrape import NumpyDocString, get_doc_object
from numpydoc.validate import validate

import assay

PUBLIC = sorted(name for name in assay.__all__ if name != "__version__")
CLASSES = [name for name in PUBLIC if inspect.isclass(getattr(assay, name))]
#: "See Also" is optional; every other check of numpydoc's validator applies.
OPTIONAL = {"SA01"}


def _validation_errors(obj: Any) -> list[tuple[str, str]]:
    report = validate(get_doc_object(obj))
    return [(code, message) for code, message in report["errors"] if code not in OPTIONAL]


def _own_doc(obj: Any) -> NumpyDocString:
    """The object's own docstring, parsed: inherited text and the signature a dataclass
    without a docstring gets (``Name(field: type, ...)``) do not count."""
    text = obj.__doc__ or ""
    assert text and not text.startswith(f"{obj.__name__}("), f"{obj.__name__}: no docstring"
    return NumpyDocString(inspect.cleandoc(text))


@pytest.mark.parametrize("name", PUBLIC)
def test_numpydoc_validator_accepts_the_docstring(name: str) -> None:
    errors = _validation_errors(getattr(assay, name))
    assert not errors, f"{name}: {errors}"


@pytest.mark.parametrize("name", PUBLIC)
def test_references_and_raises(name: str) -> None:
    obj = getattr(assay, name)
    doc = _own_doc(obj)
    assert any(line.startswith(".. [1]") for line in doc["References"]), (
        f"{name}: no numbered reference"
    )
    if not inspect.isclass(obj):
        raised = [entry.type or entry.name for entry in doc["Raises"]]
        assert "AssayInputError" in raised, f"{name}: Raises does not cover AssayInputError"


@pytest.mark.parametrize("name", PUBLIC)
def test_examples_show_checkable_output(name: str) -> None:
    """At least one example prints a value (or an expected error) the doctest compares."""
    doc = _own_doc(getattr(assay, name))
    examples = doctest.DocTestParser().get_examples("\n".join(doc["Examples"]))
    assert any(example.want.strip() for example in examples), f"{name}: no checked output"


def _public_members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties that assay defines along the class's MRO."""
    members = []
    for owner in cls.__mro__:
        if not owner.__module__.startswith("assay."):
            continue
        for member, value in vars(owner).items():
            function = value.fget if isinstance(value, property) else value
            function = getattr(function, "__func__", function)  # classmethod, staticmethod
            if not member.startswith("_") and inspect.isfunction(function):
                members.append((f"{owner.__name__}.{member}", function))
    return members


@pytest.mark.parametrize("name", CLASSES)
def test_public_methods_have_a_summary(name: str) -> None:
    members = _public_members(getattr(assay, name))
    undocumented = [member for member, function in members if not (function.__doc__ or "")]
    assert not undocumented, f"{name}: {undocumented} have no docstring"


def test_the_validator_sees_missing_sections() -> None:
    """The checks can fail: a function with a bare summary misses every required section."""

    def bare(x: float) -> float:
        """Return x."""
        return x

    codes = {code for code, _ in _validation_errors(bare)}
    assert {"ES01", "PR01", "RT01", "EX01"} <= codes
    assert not _own_doc(bare)["References"]
