"""A record of every response the runtime gives, for the contract tests.

`TraceMiddleware(app, path)` wraps an ASGI app and appends one JSON line per response to
`path`: method, raw path, query string (a `token` value blanked), status, content type
and the body (its first `MAX_BODY_BYTES`, as text if it is UTF-8, else base64). A
streamed response is recorded once it ends or its first `MAX_BODY_BYTES` are sent.

Lines are appended by many threads and processes at once, and a line can be far above
PIPE_BUF, so each is one `os.write` on an O_APPEND descriptor under a thread lock and an
exclusive `flock`. `from_environment` gives the file when `APIFY_MAGIC_LOCAL_TRACE` names
a directory (`<dir>/trace-<pid>.jsonl`, one file per process).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

ENV_VAR = "APIFY_MAGIC_LOCAL_TRACE"
MAX_BODY_BYTES = 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TOKEN_VALUE = re.compile(r"(^|&)(token=)[^&]*", re.IGNORECASE)
_lock = threading.Lock()


def from_environment() -> Path | None:
    """This process's trace file, if `APIFY_MAGIC_LOCAL_TRACE` names a directory."""
    folder = os.environ.get(ENV_VAR, "").strip()
    if not folder:
        return None
    return Path(folder) / f"trace-{os.getpid()}.jsonl"


def append_line(path: Path, line: bytes) -> None:
    """Append one whole line, whoever else is appending to the same file."""
    with _lock:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(line)
            while view:  # a regular file takes it whole; a short write must not split it
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)  # closing releases the flock


def _body_fields(body: bytes, truncated: bool) -> dict[str, Any]:
    try:
        text = body.decode()
    except UnicodeDecodeError as err:
        # A cut can split the last character: UTF-8 up to it is still text.
        if truncated and err.start >= len(body) - 3 and err.reason == "unexpected end of data":
            text = body[:err.start].decode()
        else:
            return {"body": base64.b64encode(body).decode(), "body_encoding": "base64",
                    "truncated": truncated}
    return {"body": text, "body_encoding": "utf-8", "truncated": truncated}


class TraceMiddleware:
    """Pure ASGI: passes every message through, records each HTTP response once."""

    def __init__(self, app: ASGIApp, path: Path | str) -> None:
        self.app = app
        self.path = Path(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path")
        record: dict[str, Any] = {
            "method": scope["method"],
            "path": raw_path.decode("latin-1") if raw_path else scope["path"],
            "query": _TOKEN_VALUE.sub(r"\1\2***", scope.get("query_string", b"")
                                      .decode("latin-1")),
        }
        chunks: list[bytes] = []
        size = 0
        state = {"started": False, "written": False}

        def write(truncated: bool, complete: bool) -> None:
            state["written"] = True
            body = b"".join(chunks)[:MAX_BODY_BYTES]
            line = {**record, **_body_fields(body, truncated), "complete": complete,
                    "time": time.time()}
            append_line(self.path, json.dumps(line, ensure_ascii=False).encode() + b"\n")

        async def traced_send(message: Message) -> None:
            nonlocal size
            if message["type"] == "http.response.start":
                state["started"] = True
                record["status"] = message["status"]
                record["content_type"] = next(
                    (v.decode("latin-1") for k, v in message.get("headers", [])
                     if k.lower() == b"content-type"), None)
            elif message["type"] == "http.response.body" and not state["written"]:
                piece = message.get("body", b"")
                if size < MAX_BODY_BYTES:
                    chunks.append(piece)
                size += len(piece)
                if size > MAX_BODY_BYTES:
                    write(truncated=True, complete=False)
                elif not message.get("more_body", False):
                    write(truncated=False, complete=True)
            await send(message)

        try:
            await self.app(scope, receive, traced_send)
        finally:
            # The client went away or the app failed mid-stream: what was sent still counts.
            if state["started"] and not state["written"]:
                write(truncated=True, complete=False)
