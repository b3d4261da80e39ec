"""The model registry: model versions stored in the ledger by the fingerprint of their artefact.

``register_model`` checks the artefact (:func:`assay.models.formats.audit_artefact`: no code
from it runs), then records NAME@VERSION as a batch of kind "models" in the hash chain with the
artefact's bytes (:meth:`assay.ledger.Ledger.record_model`). The fingerprint is sha256 of the
bytes. A version is frozen: registering the same bytes again is a no-op, other bytes under an
existing NAME@VERSION are refused. ``get_model`` loads a version back for scoring and replay.

A model is immutable by its fingerprint, so ``get_model`` keeps the last :data:`CACHED` models it
loaded, per thread (a loaded model's seed is set on it before each prediction, so threads do not
share one), keyed by fingerprint, format and details: the stored bytes are still read and hashed
on every call, and a cached model is used only when they hash to the registered fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay._validation import AssayInputError, to_utc
from assay.models.formats import LoadedModel, audit_artefact, detect_format, load_model

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence

    from assay.ledger import Ledger

#: The longest name or version accepted.
MAX_NAME = 200
_BAD_CHARACTER = re.compile(r"[@\s]")
#: Loaded models kept per thread (:func:`get_model`).
CACHED = 8
_LOADED = threading.local()


@dataclass(frozen=True)
class ModelRecord:
    """A registered model version: NAME@VERSION, its artefact's fingerprint, format, details."""

    name: str
    version: str
    fingerprint: str
    format: str
    details: dict[str, Any]
    registered_at: dt.datetime

    @property
    def ref(self) -> str:
        """Return the version as ``NAME@VERSION`` (the ``model_id`` in the ledger)."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-safe fields: name, version, fingerprint, format, registered_at."""
        return {
            "name": self.name,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "format": self.format,
            "registered_at": self.registered_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }


def parse_model_ref(text: str) -> tuple[str, str]:
    """Split ``NAME@VERSION`` into its name and version.

    Parameters
    ----------
    text : str
        A model reference, e.g. ``lead-model@2024.06``.

    Returns
    -------
    tuple of str
        (name, version), both checked as :func:`register_model` checks them.

    Raises
    ------
    AssayInputError
        If there is not exactly one ``@`` or either part is invalid.
    """
    name, sep, version = text.partition("@")
    if not sep:
        raise AssayInputError(f"model {text[:80]!r} is not NAME@VERSION (e.g. lead-model@3)")
    return _checked("name", name), _checked("version", version)


def _checked(what: str, value: str) -> str:
    if not value or len(value) > MAX_NAME or _BAD_CHARACTER.search(value):
        raise AssayInputError(
            f"model {what} {value[:80]!r} is invalid: give 1 to {MAX_NAME} characters without "
            "'@' or whitespace"
        )
    if not value.isprintable():
        raise AssayInputError(f"model {what} {value[:80]!r} holds control characters")
    return value


def register_model(
    ledger: Ledger,
    name: str,
    version: str,
    artefact: bytes | Path,
    *,
    format: str | None = None,
    trusted: Sequence[str] = (),
    features: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> ModelRecord:
    """Register ``artefact`` as model version ``name@version`` in the ledger.

    The fingerprint is sha256(artefact bytes). The artefact is checked first and none of its
    code runs (:func:`assay.models.formats.audit_artefact`).

    Parameters
    ----------
    ledger : Ledger
        The ledger to record it in.
    name, version : str
        1 to 200 characters, no ``@``, no whitespace.
    artefact : bytes or pathlib.Path
        The artefact's bytes or its file.
    format : str, optional
        One of ``skops``, ``onnx``, ``calibrator`` (default: detected).
    trusted : sequence of str
        skops types trusted beyond the default list.
    features : sequence of str
        Input columns in order, for a model that does not name them.
    now : datetime, optional
        The registration time (default: now).

    Returns
    -------
    ModelRecord
        The record; the stored one when the same bytes were registered before (a no-op).

    Raises
    ------
    AssayInputError
        If a name is invalid, the artefact is refused, or NAME@VERSION is registered with
        other bytes.
    """
    name, version = _checked("name", name), _checked("version", version)
    label = f"{name}@{version}"
    if isinstance(artefact, Path):
        label_name = artefact.name
        try:
            data = artefact.read_bytes()
        except OSError as error:
            raise AssayInputError(
                f"cannot read the artefact {artefact}: {error.strerror}"
            ) from None
    else:
        label_name, data = "the artefact", bytes(artefact)
    fingerprint = hashlib.sha256(data).hexdigest()
    existing = _find(ledger, name, version)
    if existing is not None:
        if existing.fingerprint == fingerprint:
            return existing
        raise AssayInputError(
            f"{label} is registered with artefact {existing.fingerprint}; this artefact is "
            f"{fingerprint}. A version is frozen: register the new artefact as a new version"
        )
    kind = format or detect_format(data, label_name)
    details = audit_artefact(data, kind, trusted, features)
    ledger.record_model(
        name=name, version=version, fingerprint=fingerprint, format=kind,
        details_json=json.dumps(details, sort_keys=True), artefact=data, now=now,
    )  # fmt: skip
    found = _find(ledger, name, version)
    assert found is not None
    return found


_SELECT = "SELECT name, version, fingerprint, format, details, recorded_at FROM models"


def _record(row: tuple[Any, ...]) -> ModelRecord:
    name, version, fingerprint, kind, details, recorded_at = row
    return ModelRecord(
        str(name), str(version), str(fingerprint), str(kind), json.loads(details or "{}"),
        to_utc(recorded_at),
    )  # fmt: skip


def _find(ledger: Ledger, name: str, version: str) -> ModelRecord | None:
    row = ledger.con.execute(f"{_SELECT} WHERE name = ? AND version = ?", [name, version])
    found = row.fetchall()
    return _record(found[0]) if found else None


def list_models(ledger: Ledger) -> list[ModelRecord]:
    """Return every registered model version, by name then registration time.

    Parameters
    ----------
    ledger : Ledger
        The ledger to read.

    Returns
    -------
    list of ModelRecord
        Empty when none is registered.
    """
    rows = ledger.con.execute(f"{_SELECT} ORDER BY name, recorded_at, version").fetchall()
    return [_record(row) for row in rows]


def get_model(ledger: Ledger, name: str, version: str) -> tuple[ModelRecord, LoadedModel]:
    """Return a registered version and its model, loaded from the stored artefact.

    Parameters
    ----------
    ledger : Ledger
        The ledger holding it.
    name, version : str
        The version to load.

    Returns
    -------
    tuple
        (its :class:`ModelRecord`, the :class:`~assay.models.formats.LoadedModel`).

    Raises
    ------
    AssayInputError
        If no such version is registered, or its stored bytes no longer match the fingerprint.
    """
    record = _find(ledger, name, version)
    if record is None:
        known = ", ".join(r.ref for r in list_models(ledger)) or "none yet (assay models register)"
        raise AssayInputError(f"no model {name}@{version} is registered; registered: {known}")
    return record, load_registered(ledger, record)


def load_registered(ledger: Ledger, record: ModelRecord) -> LoadedModel:
    """Return the model of a registered version (from :func:`list_models`), loaded.

    Its stored bytes are read and must hash to its fingerprint; the model loaded from them is
    kept per thread (module docstring).

    Raises
    ------
    AssayInputError
        If the stored bytes no longer match the fingerprint.
    """
    row = ledger.con.execute(
        "SELECT bytes FROM artefacts WHERE fingerprint = ?", [record.fingerprint]
    ).fetchall()
    data = bytes(row[0][0]) if row else b""
    if hashlib.sha256(data).hexdigest() != record.fingerprint:
        raise AssayInputError(
            f"the stored artefact of {record.ref} no longer hashes to its fingerprint "
            f"{record.fingerprint}; run `assay ledger verify`"
        )
    return _loaded(data, record)


def _loaded(data: bytes, record: ModelRecord) -> LoadedModel:
    """Return the model of ``data`` (hashed to ``record.fingerprint``), cached per thread."""
    cache: OrderedDict[tuple[str, str, str], LoadedModel] = _LOADED.__dict__.setdefault(
        "models", OrderedDict()
    )
    key = (record.fingerprint, record.format, json.dumps(record.details, sort_keys=True))
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    model = load_model(data, record.format, record.details)
    cache[key] = model
    while len(cache) > CACHED:
        cache.popitem(last=False)
    return model
