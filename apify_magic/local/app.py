"""The HTTP API: the platform's routes on loopback, answered in the platform's wire format.

Both `/v2/acts/...` and `/v2/actors/...` are served. Every error answers
`{"error": {"type", "message"}}` with its status; unknown routes are 404 `page-not-found`.
Request bodies: at most `MAX_BODY_BYTES` (413 `request-too-large`), gzip and deflate are
decoded, any other Content-Encoding is 415 `unsupported-content-encoding`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import math
import sys
import threading
import traceback
import zlib
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from apify_magic.local import inputs, storage, webhooks
from apify_magic.local.errors import ApiError, invalid_request
from apify_magic.local.registry import (
    MAX_MEMORY_MBYTES,
    MIN_MEMORY_MBYTES,
    USERNAME,
    ActorDef,
    Registry,
    safe_segment,
)
from apify_magic.local.runner import Run, Runner, RunOptions, iso

MAX_BODY_BYTES = 9_437_184
# A body just over the limit is read and dropped so the client gets the 413 instead of a
# reset connection; beyond this the connection is closed unread.
_DRAIN_LIMIT_BYTES = 64 * 2**20
MAX_WAIT_FOR_FINISH_SECS = 60.0
LOG_STREAM_POLL_SECS = 0.2


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json; charset=utf-8"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    stream: Callable[[Callable[[bytes], None]], None] | None = None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    body = json.dumps(data, ensure_ascii=False).encode()
    return Response(status, body, headers=headers or {})


def _flag(query: dict[str, str], name: str) -> bool | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise invalid_request(f"Parameter {name} must be true, false, 1 or 0")


def _number(query: dict[str, str], name: str) -> float | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise invalid_request(f"Parameter {name} must be a number") from None
    if not math.isfinite(value):
        raise invalid_request(f"Parameter {name} must be a number")
    return value


def run_options(actor: ActorDef, query: dict[str, str]) -> RunOptions:
    """The run's options from the query, checked like the platform does."""
    build = query.get("build") or "latest"
    if not actor.matches_build(build):
        known = ", ".join(dict.fromkeys(
            ["latest", actor.build_tag, actor.version, actor.build_number]))
        raise ApiError(400, "unknown-build-tag",
                       f'Build with tag or number "{build}" was not found for Actor '
                       f"{actor.name} (local builds: {known})")
    timeout = _number(query, "timeout")
    if timeout is not None and timeout < 0:
        raise invalid_request("Parameter timeout must be >= 0 seconds")
    memory = _number(query, "memory")
    memory_mb = actor.default_memory_mbytes if memory is None else int(memory)
    if (memory is not None and (memory != memory_mb or memory_mb < MIN_MEMORY_MBYTES
                                or memory_mb > MAX_MEMORY_MBYTES
                                or memory_mb & (memory_mb - 1))):
        raise invalid_request(f"Parameter memory must be a power of 2 between "
                              f"{MIN_MEMORY_MBYTES} and {MAX_MEMORY_MBYTES} MB, got {memory:g}")
    if not actor.min_memory_mbytes <= memory_mb <= actor.max_memory_mbytes:
        raise invalid_request(f"Actor {actor.name} needs between {actor.min_memory_mbytes} and "
                              f"{actor.max_memory_mbytes} MB of memory, got {memory_mb}")
    max_items = _number(query, "maxItems")
    if max_items is not None and max_items <= 0:
        raise ApiError(400, "max-items-must-be-greater-than-zero",
                       "Parameter maxItems must be greater than zero")
    max_charge = _number(query, "maxTotalChargeUsd")
    if max_charge is not None and max_charge <= 0:
        raise ApiError(400, "max-total-charge-usd-must-be-greater-than-zero",
                       "Parameter maxTotalChargeUsd must be greater than zero")
    return RunOptions(
        build=build,
        timeout_secs=float(actor.default_timeout_secs) if timeout is None else timeout,
        memory_mbytes=memory_mb,
        max_items=int(max_items) if max_items is not None else None,
        max_total_charge_usd=max_charge,
        restart_on_error=bool(_flag(query, "restartOnError")),
    )


class Api:
    """The routes, over a registry and a runner; `handle` never raises."""

    def __init__(self, registry: Registry, runner: Runner, *, sync_wait_secs: float,
                 token: str | None, base_url: Callable[[], str]) -> None:
        self.registry = registry
        self.runner = runner
        self.sync_wait_secs = sync_wait_secs
        self.token = token
        self.base_url = base_url

    # -- dispatch --------------------------------------------------------------------

    def route(self, method: str, path: str, query: dict[str, str]
              ) -> tuple[Callable[..., Response], tuple[str, ...], bool]:
        """The handler, its path arguments, and whether it needs the token."""
        raw = path.split("/")
        if len(raw) < 2 or raw[0] != "" or raw[1] != "v2":
            raise ApiError(404, "page-not-found", f"The requested URL {path} was not found")
        parts = tuple(safe_segment(p, "Path segment") for p in raw[2:] if p != "")
        get = method in ("GET", "HEAD")
        match parts:
            case ("acts" | "actors",) if get:
                return self.list_actors, (), True
            case ("acts" | "actors", actor_id) if get:
                return self.get_actor, (actor_id,), True
            case ("acts" | "actors", actor_id, "builds", "default") if get:
                return self.get_build, (actor_id,), False
            case ("acts" | "actors", actor_id, "run-sync") if method in ("GET", "POST"):
                return self.run_sync, (actor_id,), True
            case ("acts" | "actors", actor_id, "run-sync-get-dataset-items") if method in (
                    "GET", "POST"):
                return self.run_sync_items, (actor_id,), True
            case ("acts" | "actors", actor_id, "runs") if method == "POST":
                return self.start_run, (actor_id,), True
            case ("acts" | "actors", actor_id, "runs") if get:
                return self.list_runs, (actor_id,), True
            case ("actor-builds", build_id) if get:
                return self.get_build_by_id, (build_id,), False
            case ("actor-runs", run_id) if get:
                return self.get_run, (run_id,), True
            case ("actor-runs", run_id, "abort") if method == "POST":
                return self.abort_run, (run_id,), True
            case ("actor-runs", run_id, "log") | ("logs", run_id) if get:
                return self.get_log, (run_id,), True
            case ("actor-runs", run_id, "key-value-store", "records", key) if get:
                return self.get_run_record, (run_id, key), True
            case ("actor-runs", run_id, "key-value-store") if get:
                return self.get_run_store, (run_id,), True
            case ("actor-runs", run_id, "dataset", "items") if get:
                return self.get_run_items, (run_id,), True
            case ("actor-runs", run_id, "dataset") if get:
                return self.get_run_dataset, (run_id,), True
            case ("key-value-stores", store_id) if get:
                return self.get_store, (store_id,), True
            case ("key-value-stores", store_id, "keys") if get:
                return self.list_keys, (store_id,), True
            case ("key-value-stores", store_id, "records", key) if get:
                return self.get_record, (store_id, key), True
            case ("datasets", dataset_id) if get:
                return self.get_dataset, (dataset_id,), True
            case ("datasets", dataset_id, "items") if get:
                return self.get_items, (dataset_id,), True
        raise ApiError(404, "page-not-found",
                       f"The requested URL {path} was not found (method {method})")

    def check_token(self, authorization: str | None, query: dict[str, str]) -> None:
        if self.token is None:
            return
        given = query.get("token")
        if authorization and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        if not given:
            raise ApiError(401, "token-not-provided", "Authentication token was not provided")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise ApiError(401, "invalid-token", "Authentication token is not valid")

    # -- Actors and builds -----------------------------------------------------------

    def actor_dict(self, actor: ActorDef) -> dict[str, Any]:
        created = iso(actor.modified_at)
        runs = [r for r in list(self.runner.runs.values()) if r.act_id == actor.id]
        return {
            "id": actor.id,
            "userId": USERNAME,
            "name": actor.name,
            "username": USERNAME,
            "title": actor.title,
            "description": actor.description,
            "isPublic": False,
            "createdAt": created,
            "modifiedAt": created,
            "stats": {"totalRuns": len(runs), "totalBuilds": 1},
            "versions": [{
                "versionNumber": actor.version,
                "sourceType": "SOURCE_FILES",
                "buildTag": actor.build_tag,
                "envVars": [{"name": k, "value": v} for k, v in actor.environment.items()],
            }],
            "defaultRunOptions": {
                "build": actor.build_tag,
                "timeoutSecs": actor.default_timeout_secs,
                "memoryMbytes": actor.default_memory_mbytes,
            },
            "taggedBuilds": {actor.build_tag: {
                "buildId": actor.build_id, "buildNumber": actor.build_number,
                "finishedAt": created}},
            "folder": str(actor.folder),
        }

    def list_actors(self, req: Request) -> Response:
        actors = [self.actor_dict(a) for a in self.registry.actors()]
        return json_response({"data": {"total": len(actors), "count": len(actors),
                                       "offset": 0, "limit": len(actors), "desc": False,
                                       "items": actors}})

    def get_actor(self, req: Request, actor_id: str) -> Response:
        return json_response({"data": self.actor_dict(self.registry.find(actor_id))})

    def get_build(self, req: Request, actor_id: str) -> Response:
        return json_response({"data": self.build_dict(self.registry.find(actor_id))})

    def get_build_by_id(self, req: Request, build_id: str) -> Response:
        for actor in self.registry.actors():
            if actor.build_id == build_id:
                return json_response({"data": self.build_dict(actor)})
        raise ApiError(404, "record-not-found", "Actor build was not found")

    def build_dict(self, actor: ActorDef) -> dict[str, Any]:
        created = iso(actor.modified_at)
        definition: dict[str, Any] = {
            "actorSpecification": 1,
            "name": actor.name,
            "version": actor.version,
            "buildTag": actor.build_tag,
            "title": actor.title,
            "description": actor.description,
            "environmentVariables": actor.environment,
            "defaultMemoryMbytes": actor.default_memory_mbytes,
            "minMemoryMbytes": actor.min_memory_mbytes,
            "maxMemoryMbytes": actor.max_memory_mbytes,
        }
        if actor.input_schema is not None:
            definition["input"] = actor.input_schema
        return {
            "id": actor.build_id,
            "actId": actor.id,
            "userId": USERNAME,
            "startedAt": created,
            "finishedAt": created,
            "status": "SUCCEEDED",
            "meta": {"origin": "API"},
            "stats": {"durationMillis": 0, "runTimeSecs": 0, "computeUnits": 0},
            "options": {"useCache": True, "memoryMbytes": actor.default_memory_mbytes},
            "buildNumber": actor.build_number,
            "actorDefinition": definition,
            "inputSchema": (json.dumps(actor.input_schema)
                            if actor.input_schema is not None else None),
        }

    # -- starting runs ---------------------------------------------------------------

    def _start(self, req: Request, actor_id: str) -> Run:
        actor = self.registry.find(actor_id)
        options = run_options(actor, req.query)
        hooks = webhooks.parse(req.query["webhooks"]) if req.query.get("webhooks") else []
        body = req.body if req.method == "POST" else b""
        content_type = req.content_type or "application/json"
        input_body, input_type = inputs.prepare(actor.input_schema, body, content_type)
        return self.runner.start(actor, options, input_body, input_type, webhooks=hooks,
                                 user_agent=req.user_agent)

    def _wait_sync(self, run: Run) -> None:
        if not run.wait(self.sync_wait_secs):
            raise ApiError(408, "run-timeout-exceeded",
                           f"Actor run exceeded the timeout of {self.sync_wait_secs:g} seconds "
                           "for this API endpoint",
                           headers={"X-Apify-Run-Id": run.id})
        if run.status != "SUCCEEDED":
            raise ApiError(400, "run-failed",
                           f"Actor run did not succeed (run ID: {run.id}, status: {run.status})",
                           headers={"X-Apify-Run-Id": run.id})

    def run_sync(self, req: Request, actor_id: str) -> Response:
        key = storage.check_key(req.query.get("outputRecordKey") or "OUTPUT")
        run = self._start(req, actor_id)
        self._wait_sync(run)
        record = run.folder.read_record(key)
        headers = {"X-Apify-Run-Id": run.id}
        if record is None:
            return Response(201, b"", None, headers)
        return Response(201, record.value, record.content_type, headers)

    def run_sync_items(self, req: Request, actor_id: str) -> Response:
        storage.items_page(_EmptyFolder(), req.query)  # bad parameters: 400 before any run
        run = self._start(req, actor_id)
        self._wait_sync(run)
        page = storage.items_page(run.folder, req.query, finished=run.is_terminal)
        return Response(201, page.body, page.content_type,
                        {**page.headers(), "X-Apify-Run-Id": run.id})

    def start_run(self, req: Request, actor_id: str) -> Response:
        run = self._start(req, actor_id)
        self._wait_for_finish(run, req.query)
        return json_response({"data": run.to_dict()}, 201)

    def list_runs(self, req: Request, actor_id: str) -> Response:
        actor = self.registry.find(actor_id)
        runs = sorted((r for r in list(self.runner.runs.values()) if r.act_id == actor.id),
                      key=lambda r: r.started_at, reverse=storage.is_true(req.query.get("desc")))
        items = [r.to_dict() for r in runs]
        return json_response({"data": {"total": len(items), "count": len(items), "offset": 0,
                                       "limit": len(items), "desc": False, "items": items}})

    # -- runs ------------------------------------------------------------------------

    def _wait_for_finish(self, run: Run, query: dict[str, str]) -> None:
        wait = _number(query, "waitForFinish")
        if wait is not None and wait > 0:
            run.wait(min(wait, MAX_WAIT_FOR_FINISH_SECS))

    def get_run(self, req: Request, run_id: str) -> Response:
        run = self.runner.get(run_id)
        self._wait_for_finish(run, req.query)
        return json_response({"data": run.to_dict()})

    def abort_run(self, req: Request, run_id: str) -> Response:
        run = self.runner.get(run_id)
        gracefully = bool(_flag(req.query, "gracefully"))
        self.runner.abort(run, gracefully)
        if not gracefully:
            run.wait(2.0)  # a killed process ends at once: answer with ABORTED
        return json_response({"data": run.to_dict()})

    def get_log(self, req: Request, run_id: str) -> Response:
        run = self.runner.get(run_id)
        content_type = "text/plain; charset=utf-8"
        if not storage.is_true(req.query.get("stream")) or run.is_terminal:
            return Response(200, run.folder.log(), content_type)

        def stream(write: Callable[[bytes], None]) -> None:
            offset = 0
            while True:
                finished = run.done.is_set()
                data = run.folder.log()[offset:]
                if data:
                    write(data)
                    offset += len(data)
                if finished:
                    return
                run.wait(LOG_STREAM_POLL_SECS)

        return Response(200, b"", content_type, stream=stream)

    # -- storages --------------------------------------------------------------------

    def _record(self, req: Request, run: Run, key: str) -> Response:
        record = run.folder.read_record(storage.check_key(key))
        if record is None:
            raise storage.record_not_found()
        return Response(200, record.value, record.content_type)

    def get_record(self, req: Request, store_id: str, key: str) -> Response:
        return self._record(req, self._store_run(store_id, "kvs"), key)

    def get_run_record(self, req: Request, run_id: str, key: str) -> Response:
        return self._record(req, self.runner.get(run_id), key)

    def _store_run(self, store_id: str, kind: str) -> Run:
        run = self.runner.for_store(store_id)
        wanted = run.kvs_id if kind == "kvs" else run.dataset_id
        if wanted != store_id:
            raise ApiError(404, "record-not-found", "Storage was not found")
        return run

    def store_dict(self, run: Run) -> dict[str, Any]:
        stamp = iso(run.finished_at or datetime.now(timezone.utc))
        return {"id": run.kvs_id, "name": None, "userId": USERNAME,
                "createdAt": iso(run.started_at), "modifiedAt": stamp, "accessedAt": stamp,
                "actId": run.act_id, "actRunId": run.id}

    def get_store(self, req: Request, store_id: str) -> Response:
        return json_response({"data": self.store_dict(self._store_run(store_id, "kvs"))})

    def get_run_store(self, req: Request, run_id: str) -> Response:
        return json_response({"data": self.store_dict(self.runner.get(run_id))})

    def list_keys(self, req: Request, store_id: str) -> Response:
        run = self._store_run(store_id, "kvs")
        base = f"{self.base_url()}/v2/key-value-stores/{store_id}/records/"
        items = []
        for key in run.folder.record_keys():
            record = run.folder.read_record(key)
            size = len(record.value) if record else 0
            items.append({"key": key, "size": size, "recordPublicUrl": base + key})
        return json_response({"data": {"items": items, "count": len(items),
                                       "limit": max(len(items), 1), "isTruncated": False,
                                       "exclusiveStartKey": None, "nextExclusiveStartKey": None}})

    def dataset_dict(self, run: Run) -> dict[str, Any]:
        stamp = iso(run.finished_at or datetime.now(timezone.utc))
        count = len(run.folder.item_files())
        return {"id": run.dataset_id, "name": None, "userId": USERNAME,
                "createdAt": iso(run.started_at), "modifiedAt": stamp, "accessedAt": stamp,
                "itemCount": count, "cleanItemCount": count, "actId": run.act_id,
                "actRunId": run.id,
                "consoleUrl": f"{self.base_url()}/v2/datasets/{run.dataset_id}"}

    def get_dataset(self, req: Request, dataset_id: str) -> Response:
        return json_response({"data": self.dataset_dict(self._store_run(dataset_id, "dataset"))})

    def get_run_dataset(self, req: Request, run_id: str) -> Response:
        return json_response({"data": self.dataset_dict(self.runner.get(run_id))})

    def _items(self, run: Run, req: Request) -> Response:
        page = storage.items_page(run.folder, req.query, finished=run.is_terminal)
        return Response(200, page.body, page.content_type, page.headers())

    def get_items(self, req: Request, dataset_id: str) -> Response:
        return self._items(self._store_run(dataset_id, "dataset"), req)

    def get_run_items(self, req: Request, run_id: str) -> Response:
        return self._items(self.runner.get(run_id), req)


class _EmptyFolder(storage.RunFolder):
    """A folder with no items, to check dataset parameters before a run starts."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent-apify-magic-local"))


@dataclasses.dataclass
class Request:
    method: str
    query: dict[str, str]
    body: bytes
    content_type: str
    user_agent: str


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "apify-magic-local"
    timeout = 600  # an idle keep-alive connection is closed after this
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body
    # waits for the client's delayed ACK of the headers, and every small answer took 44 ms.
    disable_nagle_algorithm = True
    server: RuntimeServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        try:
            response = self._respond(method)
        except ApiError as err:
            response = json_response(err.envelope(), err.status, err.headers)
        except Exception as err:  # a bug must still answer in the envelope
            traceback.print_exc(file=sys.stderr)
            response = json_response(
                {"error": {"type": "internal-server-error", "message": str(err)}}, 500)
        with contextlib.suppress(OSError):
            self._send(method, response)

    def _respond(self, method: str) -> Response:
        api = self.server.api
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            handler, args, needs_token = api.route(method, url.path, query)
        except ApiError:
            self._drain_body()
            raise
        body = self._read_body() if method in ("POST", "PUT") else b""
        if needs_token:
            api.check_token(self.headers.get("Authorization"), query)
        request = Request(method, query, body, self.headers.get("Content-Type", ""),
                          self.headers.get("User-Agent", ""))
        return handler(request, *args)

    def _drain_body(self) -> None:
        with contextlib.suppress(ApiError):
            self._read_body()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = self._read_chunked()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._too_large(length)
            raw = self.rfile.read(length) if length > 0 else b""
        return self._decode(raw)

    def _too_large(self, length: int) -> None:
        if length <= _DRAIN_LIMIT_BYTES:
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 2**20))
                if not chunk:
                    break
                remaining -= len(chunk)
        else:
            self.close_connection = True
        raise ApiError(413, "request-too-large",
                       f"The request body is larger than the limit of {MAX_BODY_BYTES} bytes")

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024).strip()
            length = int(line.split(b";")[0] or b"0", 16)
            if length == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b"".join(parts)
            size += length
            if size > MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, "request-too-large", f"The request body is larger than "
                                                         f"the limit of {MAX_BODY_BYTES} bytes")
            parts.append(self.rfile.read(length))
            self.rfile.readline(16)

    def _decode(self, raw: bytes) -> bytes:
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("", "identity"):
            return raw
        if encoding not in ("gzip", "x-gzip", "deflate"):
            raise ApiError(415, "unsupported-content-encoding",
                           f"Content-Encoding {encoding!r} is not supported "
                           "(use gzip or deflate)")
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

    def _send(self, method: str, response: Response) -> None:
        self.send_response(response.status)
        if response.content_type is not None:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        if response.stream is not None and method != "HEAD":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def write(data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            response.stream(write)
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)


class RuntimeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128  # many clients connecting at once (listen backlog)

    def __init__(self, address: tuple[str, int], api: Api, verbose: bool = False) -> None:
        self.api = api
        self.verbose = verbose
        super().__init__(address, Handler)


class LocalRuntime:
    """The whole runtime: Actors from folders, runs in a data dir, the API on a port."""

    def __init__(self, actor_dirs: list[Path], *, data_dir: Path, host: str = "127.0.0.1",
                 port: int = 0, memory_budget_mbytes: int = 8192,
                 sync_wait_secs: float = 300.0, token: str | None = None,
                 kill_grace_secs: float = 5.0, keep_runs: int = 1000,
                 verbose: bool = False, warm_starts: bool = True) -> None:
        self.registry = Registry(actor_dirs)
        self.data_dir = data_dir
        self.runner = Runner(data_dir / "runs", memory_budget_mbytes=memory_budget_mbytes,
                             kill_grace_secs=kill_grace_secs, keep_runs=keep_runs,
                             on_event=self._on_event, warm_starts=warm_starts)
        self.api = Api(self.registry, self.runner, sync_wait_secs=sync_wait_secs, token=token,
                       base_url=lambda: self.url)
        try:
            self.server = RuntimeServer((host, port), self.api, verbose)
        except OSError:
            self.runner.stop()
            raise
        bound_host, bound_port = self.server.server_address[:2]
        shown = bound_host if isinstance(bound_host, str) else host
        self.url = f"http://{shown}:{bound_port}"
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"LocalRuntime({self.url!r})"

    def _on_event(self, run: Run, event: str) -> None:
        webhooks.deliver_all(run.to_dict(), run.webhooks, event)

    def start(self) -> LocalRuntime:
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={
            "poll_interval": 0.1}, name="apify-local-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop answering, then kill every Actor process."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5.0)
            self._thread = None
        self.server.server_close()
        self.runner.stop()

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

