"""The access log of ``assay serve``: one line per request, on the ``assay.access`` logger.

``POST /v1/predictions 201 rows=2000 ms=41.7 key=0123456789ab`` — the method; the path as
the client sent it, without its query string (a client may put there what it should not);
the status; ``rows``, how many rows the request carried when the route knows (an ingest's
parsed batch), else ``-``; the milliseconds from the request's head to its response's last
byte; and ``key``, the public id of the API key the request authenticated with (what
``assay keys list`` shows and ``assay keys revoke`` takes), else ``-``. Never the key's
secret nor the ``Authorization`` header: the line is built from the fields above only.

A route tells the log what only it knows through the request's state: :func:`note_key` once
the key is authenticated, :func:`note_rows` once the batch is parsed.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from assay.report.safe_text import visible_controls

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOGGER = logging.getLogger("assay.access")
#: A path longer than this is cut in the log (the line stays one screen wide).
MAX_PATH = 200
_KEY, _ROWS = "access_key_id", "access_rows"


def note_key(request: Request, key_id: str) -> None:
    """Record the authenticated key's public id for the request's log line."""
    setattr(request.state, _KEY, key_id)


def note_rows(request: Request, rows: int) -> None:
    """Record how many rows the request carried for its log line."""
    setattr(request.state, _ROWS, rows)


def _path(scope: Scope) -> str:
    """Return the path as sent (percent-encoded, no query string), controls made visible."""
    raw = scope.get("raw_path")
    path = raw.partition(b"?")[0].decode("latin-1") if raw else scope["path"]
    shown = visible_controls(path)
    return shown if len(shown) <= MAX_PATH else shown[:MAX_PATH] + "…"


class AccessLog:
    """ASGI middleware: log each HTTP request's line (module docstring) once it is answered.

    A request the app fails on without answering is logged with status 500, the answer the
    server then sends.
    """

    def __init__(self, app: ASGIApp, logger: logging.Logger = LOGGER) -> None:
        self.app, self.logger = app, logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Call the app, noting the status it sends, then log the request's line."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self.logger.info(
                "%s %s %d rows=%s ms=%.1f key=%s",
                scope["method"],
                _path(scope),
                status,
                state.get(_ROWS, "-"),
                1000 * (time.perf_counter() - started),
                state.get(_KEY, "-"),
            )


def log_to_stderr() -> None:
    """Print the access log on stderr, each line stamped with the UTC time it was written."""
    handler = logging.StreamHandler(sys.stderr)
    stamped = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
    stamped.converter = time.gmtime
    handler.setFormatter(stamped)
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False
