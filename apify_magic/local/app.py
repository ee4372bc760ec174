"""The platform's API v2 routes over the runtime's registry, runner and storages.

`ROUTES` is the table of what is served, written as the spec's paths (`/v2/actors/...`,
each also served under the legacy `/v2/acts/...`); `build_app` makes it a Starlette app
in which every error is `{"error": {"type", "message"}}` with its status, and anything
else is 404 `page-not-found`. Request handling (token, body limits, threads) is `wire`'s.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Protocol

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from apify_magic.local import inputs, params, storage, webhooks
from apify_magic.local.errors import ApiError, invalid_request
from apify_magic.local.registry import (
    MAX_MEMORY_MBYTES,
    MIN_MEMORY_MBYTES,
    USERNAME,
    ActorDef,
    Registry,
)
from apify_magic.local.runner import Run, Runner, RunOptions, iso
from apify_magic.local.wire import (
    WORKER_THREADS,
    Guard,
    Request,
    Response,
    SegmentGuard,
    endpoint,
    error_response,
    json_response,
)

MAX_WAIT_FOR_FINISH_SECS = 60.0
LOG_STREAM_POLL_SECS = 0.2


def run_options(actor: ActorDef, query: Mapping[str, str]) -> RunOptions:
    """The run's options from the query, checked like the platform does."""
    build = query.get("build") or "latest"
    if not actor.matches_build(build):
        known = ", ".join(dict.fromkeys(
            ["latest", actor.build_tag, actor.version, actor.build_number]))
        raise ApiError(400, "unknown-build-tag",
                       f'Build with tag or number "{build}" was not found for Actor '
                       f"{actor.name} (local builds: {known})")
    timeout = params.number(query, "timeout")
    if timeout is not None and timeout < 0:
        raise invalid_request("Parameter timeout must be >= 0 seconds")
    memory = params.number(query, "memory")
    memory_mb = actor.default_memory_mbytes if memory is None else int(memory)
    if (memory is not None and (memory != memory_mb or memory_mb < MIN_MEMORY_MBYTES
                                or memory_mb > MAX_MEMORY_MBYTES
                                or memory_mb & (memory_mb - 1))):
        raise invalid_request(f"Parameter memory must be a power of 2 between "
                              f"{MIN_MEMORY_MBYTES} and {MAX_MEMORY_MBYTES} MB, got {memory:g}")
    if not actor.min_memory_mbytes <= memory_mb <= actor.max_memory_mbytes:
        raise invalid_request(f"Actor {actor.name} needs between {actor.min_memory_mbytes} and "
                              f"{actor.max_memory_mbytes} MB of memory, got {memory_mb}")
    max_items = params.number(query, "maxItems")
    if max_items is not None and max_items <= 0:
        raise ApiError(400, "max-items-must-be-greater-than-zero",
                       "Parameter maxItems must be greater than zero")
    max_charge = params.number(query, "maxTotalChargeUsd")
    if max_charge is not None and max_charge <= 0:
        raise ApiError(400, "max-total-charge-usd-must-be-greater-than-zero",
                       "Parameter maxTotalChargeUsd must be greater than zero")
    return RunOptions(
        build=build,
        timeout_secs=float(actor.default_timeout_secs) if timeout is None else timeout,
        memory_mbytes=memory_mb,
        max_items=int(max_items) if max_items is not None else None,
        max_total_charge_usd=max_charge,
        restart_on_error=bool(params.flag(query, "restartOnError")),
    )


class Api:
    """The handlers, over a registry and a runner; each returns a `Response` or raises."""

    def __init__(self, registry: Registry, runner: Runner, *, sync_wait_secs: float,
                 token: str | None, base_url: Callable[[], str]) -> None:
        self.registry = registry
        self.runner = runner
        self.sync_wait_secs = sync_wait_secs
        self.token = token
        self.base_url = base_url
        self._guard: Guard | None = None

    def guard(self) -> Guard:
        # The thread cap is made on first use: anyio's limiter needs the server's loop.
        if self._guard is None:
            self._guard = Guard(self.token, anyio.CapacityLimiter(WORKER_THREADS))
        return self._guard

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

    def start(self, actor: ActorDef, query: Mapping[str, str], body: bytes,
              content_type: str, *, user_agent: str = "", task_id: str | None = None) -> Run:
        """Start a run as `POST .../runs` does: options from the query, INPUT prepared."""
        options = run_options(actor, query)
        hooks = webhooks.parse(query["webhooks"]) if query.get("webhooks") else []
        input_body, input_type = inputs.prepare(actor.input_schema, body,
                                                content_type or "application/json")
        return self.runner.start(actor, options, input_body, input_type, webhooks=hooks,
                                 user_agent=user_agent, task_id=task_id)

    def _start(self, req: Request, actor_id: str) -> Run:
        body = req.body if req.method == "POST" else b""
        return self.start(self.registry.find(actor_id), req.query, body, req.content_type,
                          user_agent=req.user_agent)

    def wait_sync(self, run: Run) -> None:
        """Wait as run-sync does: 408 past the endpoint's limit, 400 unless it succeeded."""
        if not run.wait(self.sync_wait_secs):
            raise ApiError(408, "run-timeout-exceeded",
                           f"Actor run exceeded the timeout of {self.sync_wait_secs:g} seconds "
                           "for this API endpoint",
                           headers={"X-Apify-Run-Id": run.id})
        if run.status != "SUCCEEDED":
            raise ApiError(400, "run-failed",
                           f"Actor run did not succeed (run ID: {run.id}, status: {run.status})",
                           headers={"X-Apify-Run-Id": run.id})

    def sync_output(self, run: Run, query: Mapping[str, str]) -> Response:
        """run-sync's answer: wait, then the output record as it is stored (201)."""
        key = storage.check_key(query.get("outputRecordKey") or "OUTPUT")
        self.wait_sync(run)
        record = run.folder.read_record(key)
        headers = {"X-Apify-Run-Id": run.id}
        if record is None:
            return Response(201, b"", None, headers)
        return Response(201, record.value, record.content_type, headers)

    @staticmethod
    def check_items_query(query: Mapping[str, str]) -> None:
        """Bad dataset parameters are a 400 before any run starts."""
        storage.items_page(_EmptyFolder(), dict(query))

    def sync_items(self, run: Run, query: Mapping[str, str]) -> Response:
        """run-sync-get-dataset-items' answer: wait, then a page of the default dataset."""
        self.wait_sync(run)
        page = storage.items_page(run.folder, dict(query), finished=run.is_terminal)
        return Response(201, page.body, page.content_type,
                        {**page.headers(), "X-Apify-Run-Id": run.id})

    def run_sync(self, req: Request, actor_id: str) -> Response:
        storage.check_key(req.query.get("outputRecordKey") or "OUTPUT")
        return self.sync_output(self._start(req, actor_id), req.query)

    def run_sync_items(self, req: Request, actor_id: str) -> Response:
        self.check_items_query(req.query)
        return self.sync_items(self._start(req, actor_id), req.query)

    def start_run(self, req: Request, actor_id: str) -> Response:
        run = self._start(req, actor_id)
        self._wait_for_finish(run, req.query)
        return json_response({"data": run.to_dict()}, 201)

    def list_runs(self, req: Request, actor_id: str) -> Response:
        actor = self.registry.find(actor_id)
        runs = sorted((r for r in list(self.runner.runs.values()) if r.act_id == actor.id),
                      key=lambda r: r.started_at, reverse=params.is_true(req.query.get("desc")))
        items = [r.to_dict() for r in runs]
        return json_response({"data": {"total": len(items), "count": len(items), "offset": 0,
                                       "limit": len(items), "desc": False, "items": items}})

    # -- runs ------------------------------------------------------------------------

    def _wait_for_finish(self, run: Run, query: Mapping[str, str]) -> None:
        wait = params.number(query, "waitForFinish")
        if wait is not None and wait > 0:
            run.wait(min(wait, MAX_WAIT_FOR_FINISH_SECS))

    def get_run(self, req: Request, run_id: str) -> Response:
        run = self.runner.get(run_id)
        self._wait_for_finish(run, req.query)
        return json_response({"data": run.to_dict()})

    def abort_run(self, req: Request, run_id: str) -> Response:
        run = self.runner.get(run_id)
        gracefully = bool(params.flag(req.query, "gracefully"))
        self.runner.abort(run, gracefully)
        if not gracefully:
            run.wait(2.0)  # a killed process ends at once: answer with ABORTED
        return json_response({"data": run.to_dict()})

    def get_log(self, req: Request, run_id: str) -> Response:
        run = self.runner.get(run_id)
        content_type = "text/plain; charset=utf-8"
        if not params.is_true(req.query.get("stream")) or run.is_terminal:
            return Response(200, run.folder.log(), content_type)

        async def stream() -> AsyncIterator[bytes]:
            offset = 0
            while True:
                finished = run.done.is_set()
                data = run.folder.log()[offset:]
                if data:
                    yield data
                    offset += len(data)
                if finished:
                    return
                await anyio.sleep(LOG_STREAM_POLL_SECS)

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


# (methods, path as in the spec, handler name, public: answered without a token)
RouteTable = list[tuple[tuple[str, ...], str, str, bool]]


class RouteGroup(Protocol):
    """A module's share of the API: handlers over the core `Api`, and their table.

    A group's module imports `Api` only for typing, so `app` can list the groups."""

    ROUTES: ClassVar[RouteTable]

    def __init__(self, api: Api) -> None: ...


ROUTES: RouteTable = [
    (("GET",), "/v2/actors", "list_actors", False),
    (("GET",), "/v2/actors/{actorId}", "get_actor", False),
    (("GET",), "/v2/actors/{actorId}/builds/default", "get_build", True),
    (("GET", "POST"), "/v2/actors/{actorId}/run-sync", "run_sync", False),
    (("GET", "POST"), "/v2/actors/{actorId}/run-sync-get-dataset-items", "run_sync_items",
     False),
    (("POST",), "/v2/actors/{actorId}/runs", "start_run", False),
    (("GET",), "/v2/actors/{actorId}/runs", "list_runs", False),
    (("GET",), "/v2/actor-builds/{buildId}", "get_build_by_id", True),
    (("GET",), "/v2/actor-runs/{runId}", "get_run", False),
    (("POST",), "/v2/actor-runs/{runId}/abort", "abort_run", False),
    (("GET",), "/v2/actor-runs/{runId}/log", "get_log", False),
    (("GET",), "/v2/logs/{buildOrRunId}", "get_log", False),
    (("GET",), "/v2/actor-runs/{runId}/key-value-store", "get_run_store", False),
    (("GET",), "/v2/actor-runs/{runId}/key-value-store/records/{recordKey}",
     "get_run_record", False),
    (("GET",), "/v2/actor-runs/{runId}/dataset", "get_run_dataset", False),
    (("GET",), "/v2/actor-runs/{runId}/dataset/items", "get_run_items", False),
    (("GET",), "/v2/key-value-stores/{storeId}", "get_store", False),
    (("GET",), "/v2/key-value-stores/{storeId}/keys", "list_keys", False),
    (("GET",), "/v2/key-value-stores/{storeId}/records/{recordKey}", "get_record", False),
    (("GET",), "/v2/datasets/{datasetId}", "get_dataset", False),
    (("GET",), "/v2/datasets/{datasetId}/items", "get_items", False),
]


# The other modules' route groups, served after the core table.
GROUPS: list[type[RouteGroup]] = []


def served_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation served, in the spec's form (HEAD with GET)."""
    tables = [ROUTES, *(group.ROUTES for group in GROUPS)]
    return [(method, path) for table in tables for methods, path, _, _ in table
            for method in methods]


def _paths(path: str) -> list[str]:
    """A spec path and, for Actors, its legacy `/v2/acts` twin."""
    if path.startswith("/v2/actors"):
        return [path, "/v2/acts" + path[len("/v2/actors"):]]
    return [path]


def build_app(api: Api) -> Starlette:
    handlers: list[tuple[object, RouteTable]] = [(api, ROUTES)]
    handlers += [(group(api), group.ROUTES) for group in GROUPS]
    routes = [Route(p, endpoint(getattr(owner, name), api.guard, public=public),
                    methods=list(methods))
              for owner, table in handlers for methods, path, name, public in table
              for p in _paths(path)]
    app = Starlette(routes=routes, exception_handlers={
        HTTPException: _http_error, Exception: _internal_error})
    app.add_middleware(SegmentGuard)
    return app


async def _http_error(request: StarletteRequest, exc: Exception) -> StarletteResponse:
    # Starlette's own 404 (no route) and 405 (a route, not this method): the platform
    # answers both as 404 page-not-found.
    return error_response(ApiError(
        404, "page-not-found",
        f"The requested URL {request.url.path} was not found (method {request.method})"))


async def _internal_error(request: StarletteRequest, exc: Exception) -> StarletteResponse:
    # A bug must still answer in the envelope; Starlette logs the traceback.
    return error_response(ApiError(500, "internal-server-error", str(exc)))
