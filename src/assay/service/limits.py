"""Slow clients cannot hold the server: deadlines on a request's head and on its body.

A connection that sends its request head (request line and headers) slowly, or never, or
trickles its body, would otherwise hold a connection and a task forever (slowloris).

* :func:`bounded_http` — the uvicorn HTTP protocol with a **head deadline**: once a connection
  opens, or its previous response is complete, the next request head must arrive whole within
  ``head_timeout`` seconds (else 408, close), and may hold at most ``max_head_bytes`` bytes
  (else 431, close). An idle keep-alive connection is closed sooner by uvicorn's own
  ``timeout_keep_alive``.
* :class:`BodyDeadline` — ASGI middleware with a **body deadline**: the body must arrive whole
  within ``seconds`` of the head, else :class:`RequestTimeout` (the app answers 408 and closes
  the connection).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestTimeout(Exception):
    """The request body did not arrive within the body deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the request body did not arrive within {seconds:g} s; send it at once "
            "(the connection is closed)"
        )


class BodyDeadline:
    """ASGI middleware bounding the time a request's body may take to arrive.

    Every ``receive`` of a request's body must return by ``seconds`` after the request
    started; later, :class:`RequestTimeout` is raised in the app.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Call the app with a ``receive`` that raises RequestTimeout past the deadline."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        complete = False

        async def receive_in_time() -> Message:
            nonlocal complete
            if complete:  # the body is in: later receives wait for a disconnect, unbounded
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(self.seconds) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, receive_in_time, send)


def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = orjson.dumps({"error": message})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def bounded_http(head_timeout: float, max_head_bytes: int) -> type[asyncio.Protocol]:
    """Uvicorn's httptools protocol with the head deadline and the head size limit."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class BoundedHttpProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None
        _head_open = False
        _head_bytes = 0
        _refused = False

        def _await_head(self) -> None:
            self._stop_head()
            self._head_open, self._head_bytes = True, 0
            self._head_timer = self.loop.call_later(head_timeout, self._head_late)

        def _stop_head(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _refuse(self, status: int, reason: str, message: str) -> None:
            self._stop_head()
            self._refused = True
            if not self.transport.is_closing():
                self.transport.write(_raw_response(status, reason, message))
                self.transport.close()

        def _head_late(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or not self._head_open:
                return
            if self._head_bytes == 0:  # nothing sent at all: just close
                self.transport.close()
                return
            self._refuse(
                408, "Request Timeout",
                f"the request head did not arrive within {head_timeout:g} s",
            )  # fmt: skip

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            if self._head_open:
                self._head_bytes += len(data)
                if self._head_bytes > max_head_bytes:
                    self._refuse(
                        431, "Request Header Fields Too Large",
                        f"a request head holds at most {max_head_bytes:,} bytes",
                    )  # fmt: skip

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_open = True

        def on_headers_complete(self) -> None:
            self._stop_head()
            self._head_open, self._head_bytes = False, 0
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            waiting = not self.pipeline
            super().on_response_complete()
            if waiting and not self.transport.is_closing():
                self._await_head()

    return BoundedHttpProtocol
