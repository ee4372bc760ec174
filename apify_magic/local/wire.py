"""The platform's wire format over Starlette: requests in, envelopes and records out.

Handlers are plain functions `handler(req, *path_args) -> Response` that raise `ApiError`;
`endpoint` turns one into a Starlette endpoint that checks the token *before* it reads a
byte of the body, reads the body within `MAX_BODY_BYTES` and `BODY_TIMEOUT_SECS`,
decodes gzip and deflate, and runs the handler in a worker thread (handlers block on
files and on runs), at most `WORKER_THREADS` at a time. A handler that is a coroutine
function runs on the event loop instead (run-sync, which mostly waits for its run).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import inspect
import json
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO

from starlette.requests import ClientDisconnect
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.responses import StreamingResponse

from apify_magic.local.errors import ApiError, invalid_request
from apify_magic.local.registry import safe_segment
from apify_magic.local.workers import Workers

MAX_BODY_BYTES = 9_437_184
# A body just over the limit is read and dropped, so the client reads the 413 instead of
# a reset connection; a larger one is refused from its Content-Length, unread.
DRAIN_LIMIT_BYTES = 64 * 2**20
# A declared body that never arrives must not hold a worker: the platform answers 408.
BODY_TIMEOUT_SECS = 60.0
# Handlers block (files, run waits up to 300 s): this many at once, the rest queue.
WORKER_THREADS = 256
JSON_TYPE = "application/json; charset=utf-8"
# A file (a record, a log) up to this size is answered from memory; a larger one is
# streamed in pieces of this size, so the runtime's memory does not grow with what an
# Actor writes (in the embedded runtime, the kernel's memory).
INLINE_BYTES = 1 << 20


@dataclasses.dataclass
class Request:
    method: str
    query: dict[str, str]
    body: bytes
    content_type: str
    user_agent: str
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    # A body that grows while it is sent (a running run's log).
    stream: Callable[[], AsyncIterator[bytes]] | None = None


def file_response(status: int, path: Path, content_type: str, size: int,
                  headers: dict[str, str] | None = None, *, offset: int = 0,
                  transform: Callable[[bytes], bytes] | None = None) -> Response:
    """A file's bytes from `offset` on (`size` is the whole file's), whole or streamed.

    `transform` maps each piece; it must not need to see across pieces (the pieces of a
    streamed file end at line ends when it is given)."""
    change = transform or (lambda data: data)
    if size - offset <= INLINE_BYTES:
        with open(path, "rb") as f:
            f.seek(offset)
            return Response(status, change(f.read()), content_type, headers or {})

    async def stream() -> AsyncIterator[bytes]:
        with open(path, "rb") as f:
            f.seek(offset)
            read = (lambda: _read_lines(f)) if transform is not None else (
                lambda: f.read(INLINE_BYTES))
            while chunk := await asyncio.to_thread(read):
                yield change(chunk)

    return Response(status, b"", content_type, headers or {}, stream=stream)


def _read_lines(f: BinaryIO) -> bytes:
    """About `INLINE_BYTES`, up to a line end, so a piece never cuts an escape code."""
    chunk = f.read(INLINE_BYTES)
    if len(chunk) == INLINE_BYTES:
        chunk += f.readline(INLINE_BYTES)  # a line longer than that is cut all the same
    return chunk


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    body = json.dumps(data, ensure_ascii=False).encode()
    return Response(status, body, headers=headers or {})


def data_response(data: Any, status: int = 200) -> Response:
    """`{"data": ...}`, the platform's wrapper for every object it answers with."""
    return json_response({"data": data}, status)


def paginated(items: list[Any], offset: int, limit: int, desc: bool,
              total: int | None = None) -> dict[str, Any]:
    """The platform's list shape, for items already cut to the page."""
    return {"total": len(items) if total is None else total, "offset": offset,
            "limit": limit, "count": len(items), "desc": desc, "items": items}


def error_response(err: ApiError) -> StarletteResponse:
    body = json.dumps(err.envelope(), ensure_ascii=False).encode()
    return StarletteResponse(body, err.status, headers=err.headers, media_type=JSON_TYPE)


Handler = Callable[..., Any]  # (req, *path_args) -> Response, or a coroutine of one


@dataclasses.dataclass(frozen=True)
class Guard:
    """What every endpoint shares: the token to require (None: any), the other tokens
    accepted (the runs' own), and the worker threads of blocking handlers."""

    token: str | None
    workers: Workers = dataclasses.field(default_factory=lambda: Workers(WORKER_THREADS))
    also_accepted: Callable[[str], bool] = dataclasses.field(default=lambda token: False)


class SegmentGuard:
    """ASGI middleware: 400 for a path segment that could leave its folder, in any encoding.

    The server decodes `%2F` into `/` before routing, so such a path would just not match
    (404); checking the raw segments keeps the answer what it means: not allowed.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode()
            try:
                for segment in raw.split(b"?", 1)[0].split(b"/")[2:]:
                    if segment:
                        safe_segment(segment.decode("utf-8", "replace"), "Path segment")
            except ApiError as err:
                await error_response(err)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def check_token(guard: Guard, authorization: str | None, query: dict[str, str]) -> None:
    if guard.token is None:
        return
    given = query.get("token")
    if authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if not given:
        raise ApiError(401, "token-not-provided", "Authentication token was not provided")
    if not (hmac.compare_digest(given.encode(), guard.token.encode())
            or guard.also_accepted(given)):
        raise ApiError(401, "invalid-token", "Authentication token is not valid")


def endpoint(handler: Handler, guard: Callable[[], Guard], *, public: bool = False
             ) -> Callable[[StarletteRequest], Any]:
    async def serve(request: StarletteRequest) -> StarletteResponse:
        try:
            return await _serve(request, handler, guard(), public)
        except ApiError as err:
            return error_response(err)

    serve.__name__ = getattr(handler, "__name__", "endpoint")
    return serve


async def _serve(request: StarletteRequest, handler: Handler, guard: Guard, public: bool
                 ) -> StarletteResponse:
    query = dict(request.query_params)
    args = [safe_segment(v, "Path segment") for v in request.path_params.values()]
    if not public:
        check_token(guard, request.headers.get("authorization"), query)
    body = b""
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):  # a batch delete has a body
        try:
            body = await asyncio.wait_for(read_body(request), BODY_TIMEOUT_SECS)
        except asyncio.TimeoutError:
            raise ApiError(408, "request-timeout",
                           "The request body did not arrive in time") from None
        except ClientDisconnect:  # the client went away, or h11 refused a bad chunk
            raise invalid_request("The request body was cut off") from None
    req = Request(request.method, query, body, request.headers.get("content-type", ""),
                  request.headers.get("user-agent", ""), dict(request.headers))
    if inspect.iscoroutinefunction(handler):
        response = await handler(req, *args)
    else:
        response = await guard.workers.run(lambda: handler(req, *args))
    return to_starlette(response)


def to_starlette(response: Response) -> StarletteResponse:
    if response.stream is not None:
        return StreamingResponse(response.stream(), response.status, headers=response.headers,
                                 media_type=response.content_type)
    return StarletteResponse(response.body, response.status, headers=response.headers,
                             media_type=response.content_type)


async def read_body(request: StarletteRequest) -> bytes:
    """The body, decoded, within `MAX_BODY_BYTES` (413 `request-too-large` beyond)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > DRAIN_LIMIT_BYTES:
        raise _too_large()
    parts: list[bytes] = []
    size = 0
    too_large = False
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            too_large = True  # keep reading (and dropping) so the client sees the 413
            parts.clear()
            if size > DRAIN_LIMIT_BYTES:
                break
        elif chunk:
            parts.append(chunk)
    if too_large:
        raise _too_large()
    return decode(b"".join(parts), request.headers.get("content-encoding", ""))


def _too_large() -> ApiError:
    return ApiError(413, "request-too-large",
                    f"The request body is larger than the limit of {MAX_BODY_BYTES} bytes")


def decode(raw: bytes, content_encoding: str) -> bytes:
    """gzip or deflate (with or without the zlib header) within `MAX_BODY_BYTES`."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ApiError(415, "unsupported-content-encoding",
                       f"Content-Encoding {encoding!r} is not supported (use gzip or deflate)")
    wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
    try:
        decompressor = zlib.decompressobj(wbits)
        body = decompressor.decompress(raw, MAX_BODY_BYTES + 1)
        if encoding == "deflate" and not body and raw:
            raise zlib.error("empty")
    except zlib.error:
        if encoding != "deflate":
            raise invalid_request("The request body is not valid gzip") from None
        try:  # some clients send raw deflate without the zlib header
            decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
            body = decompressor.decompress(raw, MAX_BODY_BYTES + 1)
        except zlib.error:
            raise invalid_request("The request body is not valid deflate") from None
    if len(body) > MAX_BODY_BYTES or decompressor.unconsumed_tail:
        raise ApiError(413, "request-too-large", "The decompressed request body is larger "
                                                 f"than the limit of {MAX_BODY_BYTES} bytes")
    return body
