"""uvicorn's h11 protocol, stricter: what the runtime's HTTP layer adds to uvicorn.

`StrictH11Protocol` adds what uvicorn leaves open: a request head must arrive within
`HEAD_TIMEOUT_SECS` (408, then closed; uvicorn's keep-alive timer restarts on every byte,
so a client sending a byte now and then held its connection, and `MAX_CONNECTIONS` of
them every slot); a request answered before its body was read (401, 413, 408) closes its
connection instead of reading and dropping whatever the client goes on sending; and a
request with both Content-Length and Transfer-Encoding, a control byte in a header value,
or a head over `MAX_HEADER_BYTES` that arrived in one read (h11 checks the limit only on
a head still incomplete) is a 400 too.

It subclasses uvicorn's `H11Protocol` and uses its attributes (`conn`, `transport`,
`server_state`): the framing tests (tests/local/test_framing.py) fail if a uvicorn release
changes them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_HEADER_BYTES = 64 * 1024
HEAD_TIMEOUT_SECS = 30

_BAD_REQUEST = b"Invalid HTTP request received."  # what uvicorn answers with its 400s
_BAD_VERSION = b"HTTP version not supported."
_CONTROL_BYTES = bytes(set(range(32)) - {9} | {127})


def _framing_problem(scope: dict[str, Any]) -> int | None:
    """The status for what h11 lets through but the runtime refuses (RFC 9112 2.3 and
    6.1, RFC 9110 5.5), None for a request it serves."""
    if not scope["http_version"].startswith("1."):  # h11 takes any digit.digit
        return 505
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    names = {name for name, _ in headers}
    if b"transfer-encoding" in names and b"content-length" in names:
        return 400
    size = len(scope["raw_path"]) + len(scope["query_string"])
    for name, value in headers:
        size += len(name) + len(value) + 4
        if value != value.translate(None, _CONTROL_BYTES):
            return 400
    return 400 if size > MAX_HEADER_BYTES else None


class StrictH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the request head, no reading of a body
    nobody will read, and the framing h11 accepts but the runtime refuses (see above)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_started = False
        inner = self.app

        async def strict(scope: Any, receive: Any, send: Any) -> None:
            status = _framing_problem(scope) if scope["type"] == "http" else None
            if status is not None:
                body = _BAD_VERSION if status == 505 else _BAD_REQUEST
                await send({"type": "http.response.start", "status": status, "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
                return
            await inner(scope, receive, send)

        self.app = strict

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._head_started = True
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the head has arrived
            self._cancel_head_deadline()

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            # Answered before the body was read: close rather than read what follows.
            self.conn.send(h11.ConnectionClosed())
            self.transport.close()
            self.server_state.total_requests += 1
            return
        self._head_started = False
        self._arm_head_deadline()
        super().on_response_complete()

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(HEAD_TIMEOUT_SECS, self._head_timed_out)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        if self._head_started:
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n"
                                 b"connection: close\r\n\r\n")
        self.transport.close()
