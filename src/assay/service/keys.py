"""API keys: who may do what, in which workspace.

A key reads ``ak_<id>_<secret>``: ``id`` is 12 hex digits (public, the lookup handle) and
``secret`` 43 URL-safe characters (256 random bits). Only sha256(secret) is stored, and a
presented secret is compared with :func:`hmac.compare_digest` (constant time). The workspace
comes from the key alone, never from the request path or body. Scopes:

* ``predictions:write``, ``outcomes:write`` — ingest;
* ``scores:write`` — ``POST /v1/score``: serve a vendor's honest score, which records every
  lead served (a write);
* ``reports:read`` — status, audits, segments, thresholds, comparisons, the HTML report;
* ``admin`` — everything above, and the Parquet export.

A key may be restricted to one scorer: a vendor writes only its own predictions and serves
only its own honest score. Keys live in SQLite (WAL), so ``assay keys revoke`` in another
process takes effect on the server's next request; rotation is creating the new key before
revoking the old one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from assay._validation import AssayInputError

SCOPES = ("predictions:write", "outcomes:write", "scores:write", "reports:read", "admin")
_KEY = re.compile(r"^ak_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_WORKSPACE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY, workspace TEXT NOT NULL, secret_sha256 TEXT NOT NULL,
    scopes TEXT NOT NULL, scorer TEXT, label TEXT, created_at TEXT NOT NULL, revoked_at TEXT
);
"""


@dataclass(frozen=True)
class ApiKey:
    """A stored key without its secret."""

    key_id: str
    workspace: str
    scopes: tuple[str, ...]
    scorer: str | None
    label: str | None
    created_at: str
    revoked_at: str | None

    def allows(self, scope: str) -> bool:
        """Tell whether the key grants ``scope`` (an admin key grants every scope)."""
        return scope in self.scopes or "admin" in self.scopes


def check_workspace(name: str) -> str:
    """Return ``name`` if it is a valid workspace name, else raise AssayInputError.

    A workspace name is 1-63 lowercase letters, digits or '-', starting with a letter or digit.
    """
    if not _WORKSPACE.match(name):
        raise AssayInputError(
            f"workspace {name!r} must be 1-63 lowercase letters, digits or '-', starting with a "
            "letter or digit"
        )
    return name


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """API keys in a SQLite file shared by the server and the ``assay keys`` command."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA busy_timeout=5000")
        self._con.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the SQLite connection."""
        self._con.close()

    def create(
        self,
        workspace: str,
        scopes: tuple[str, ...] | list[str],
        *,
        scorer: str | None = None,
        label: str | None = None,
    ) -> tuple[str, ApiKey]:
        """Create a key: return the full token (shown once, never stored) and its record."""
        check_workspace(workspace)
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise AssayInputError(
                f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {list(scopes)}"
            )
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = dt.datetime.now(dt.UTC).isoformat()
        ordered = tuple(s for s in SCOPES if s in scopes)
        self._con.execute(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            (key_id, workspace, _digest(secret), " ".join(ordered), scorer, label, now),
        )
        return f"ak_{key_id}_{secret}", ApiKey(key_id, workspace, ordered, scorer, label, now, None)

    def _row(self, row: tuple[str, ...]) -> ApiKey:
        key_id, workspace, scopes, scorer, label, created, revoked = row
        return ApiKey(key_id, workspace, tuple(scopes.split()), scorer, label, created, revoked)

    def list(self, workspace: str | None = None) -> list[ApiKey]:
        """List the keys (revoked ones too) of ``workspace``, or of every workspace if None."""
        query = (
            "SELECT key_id, workspace, scopes, scorer, label, created_at, revoked_at FROM api_keys"
        )
        rows = (
            self._con.execute(query + " ORDER BY workspace, created_at").fetchall()
            if workspace is None
            else self._con.execute(
                query + " WHERE workspace = ? ORDER BY created_at", (workspace,)
            ).fetchall()
        )
        return [self._row(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke the live key ``key_id`` and return its record; raise if there is none."""
        now = dt.datetime.now(dt.UTC).isoformat()
        cursor = self._con.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
            (now, key_id),
        )
        if cursor.rowcount == 0:
            raise AssayInputError(f"no live key with id {key_id!r}; see `assay keys list`")
        return next(k for k in self.list() if k.key_id == key_id)

    def authenticate(self, token: str) -> ApiKey | None:
        """Return the live key ``token`` names, or None.

        None when the token is malformed, unknown, has the wrong secret or is revoked.
        """
        match = _KEY.match(token)
        if match is None:
            return None
        key_id, secret = match.groups()
        row = self._con.execute(
            "SELECT key_id, workspace, scopes, scorer, label, created_at, revoked_at, "
            "secret_sha256 FROM api_keys WHERE key_id = ?",
            (key_id,),
        ).fetchone()
        presented = _digest(secret)
        stored = row[7] if row else _digest("")  # compare even when unknown: same timing
        if not hmac.compare_digest(presented, stored) or row is None or row[6] is not None:
            return None
        return self._row(row[:7])
