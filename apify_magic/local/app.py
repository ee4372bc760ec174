"""The platform's API v2 routes over the runtime's registry, runner and storages.

`ROUTES` is the table of what is served, written as the spec's paths (`/v2/actors/...`,
each also served under the legacy `/v2/acts/...`); `build_app` makes it a Starlette app
in which every error is `{"error": {"type", "message"}}` with its status, and anything
else is 404 `page-not-found`. Request handling (token, body limits, threads) is `wire`'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from apify_magic.local import inputs, params, storage, webhooks
from apify_magic.local.errors import ApiError
from apify_magic.local.registry import USERNAME, ActorDef, Registry
from apify_magic.local.run_options import run_options
from apify_magic.local.runner import Run, Runner, iso
from apify_magic.local.runs_api import RunsApi, filter_runs, run_list, wait_for_finish
from apify_magic.local.storages import StoragesApi
from apify_magic.local.tasks import TasksApi
from apify_magic.local.webhooks_api import WebhooksApi
from apify_magic.local.wire import (
    WORKER_THREADS,
    Guard,
    Request,
    Response,
    SegmentGuard,
    data_response,
    endpoint,
    error_response,
    file_response,
    json_response,
    paginated,
)
from apify_magic.local.workers import Workers

MAX_WAIT_FOR_FINISH_SECS = 60.0
LOG_STREAM_POLL_SECS = 0.2
START_ON_LOOP_BYTES = 64 * 1024


class Api:
    """The handlers, over a registry and a runner; each returns a `Response` or raises."""

    def __init__(self, registry: Registry, runner: Runner, *, sync_wait_secs: float,
                 token: str | None, base_url: Callable[[], str]) -> None:
        self.registry = registry
        self.runner = runner
        self.sync_wait_secs = sync_wait_secs
        self.token = token
        self.base_url = base_url
        self._guard = Guard(token, Workers(WORKER_THREADS), runner.accepts_run_token)
        self.runs_api = RunsApi(self)

    def guard(self) -> Guard:
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
                "envVars": env_vars(actor.environment),
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
            **({"pricingInfos": [pricing]} if (pricing := actor.pricing_at(created))
               else {}),
        }

    def list_actors(self, req: Request) -> Response:
        offset, limit, desc = params.page(req.query)
        actors = sorted(self.registry.actors(), key=lambda a: (a.modified_at, a.name),
                        reverse=desc)
        page = [_actor_short(self.actor_dict(a)) for a in actors[offset:offset + limit]]
        return data_response(paginated(page, offset, limit, desc, total=len(actors)))

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

    async def wait_sync(self, run: Run) -> None:
        """Wait as run-sync does: 408 past the endpoint's limit, 400 unless it succeeded."""
        if not await run.done.wait_async(self.sync_wait_secs):
            raise ApiError(408, "run-timeout-exceeded",
                           f"Actor run exceeded the timeout of {self.sync_wait_secs:g} seconds "
                           "for this API endpoint",
                           headers={"X-Apify-Run-Id": run.id})
        if run.status != "SUCCEEDED":
            raise ApiError(400, "run-failed",
                           f"Actor run did not succeed (run ID: {run.id}, status: {run.status})",
                           headers={"X-Apify-Run-Id": run.id})

    async def start_soon(self, start: Callable[[], Run], body_size: int) -> Run:
        """Start a run on the event loop when its INPUT is small, else in a worker.

        A start is a few file writes and a fork, well under the time a hop to a worker
        thread and back adds to every run-sync; a large INPUT is parsed and checked against
        the input schema, which must not hold up the loop's other requests."""
        if body_size <= START_ON_LOOP_BYTES:
            return start()
        return await self.guard().workers.run(start)

    async def sync_output(self, start: Callable[[], Run], query: Mapping[str, str],
                          body_size: int) -> Response:
        """run-sync's answer: start, wait, then the output record as it is stored (201)."""
        key = storage.check_key(query.get("outputRecordKey") or "OUTPUT")
        run = await self.start_soon(start, body_size)
        await self.wait_sync(run)
        headers = {"X-Apify-Run-Id": run.id}
        found = run.folder.record_file(key)
        if found is None:
            return Response(201, b"", None, headers)
        return file_response(201, found.path, found.content_type, found.size, headers)

    @staticmethod
    def check_items_query(query: Mapping[str, str]) -> None:
        """Bad dataset parameters are a 400 before any run starts."""
        storage.items_page(_EmptyFolder(), dict(query))

    async def sync_items(self, start: Callable[[], Run], query: Mapping[str, str],
                         body_size: int) -> Response:
        """run-sync-get-dataset-items' answer: start, wait, then a page of the dataset."""
        self.check_items_query(query)
        run = await self.start_soon(start, body_size)
        await self.wait_sync(run)

        def page() -> Response:
            page = storage.items_page(run.folder, dict(query), finished=run.is_terminal)
            return Response(201, page.body, page.content_type,
                            {**page.headers(), "X-Apify-Run-Id": run.id}, stream=page.stream)
        return await self.guard().workers.run(page)

    async def run_sync(self, req: Request, actor_id: str) -> Response:
        return await self.sync_output(lambda: self._start(req, actor_id), req.query,
                                      len(req.body))

    async def run_sync_items(self, req: Request, actor_id: str) -> Response:
        return await self.sync_items(lambda: self._start(req, actor_id), req.query,
                                     len(req.body))

    def start_run(self, req: Request, actor_id: str) -> Response:
        run = self._start(req, actor_id)
        wait_for_finish(run, req.query)
        return json_response({"data": run.to_dict()}, 201)

    def list_runs(self, req: Request, actor_id: str) -> Response:
        act_id = self.registry.find(actor_id).id
        return run_list([r for r in list(self.runner.runs.values()) if r.act_id == act_id],
                        req.query)

    # -- naming a run ----------------------------------------------------------------

    def select_run(self, kind: str, args: tuple[str, ...], query: Mapping[str, str]) -> Run:
        """The run a path names: by id, an Actor's or task's last (with `status=`)."""
        if kind == "run":
            return self.runner.get(args[0])
        if kind == "actor-run":
            actor, run = self.registry.find(args[0]), self.runner.get(args[1])
            if run.act_id != actor.id:
                raise ApiError(404, "record-not-found", "Actor run was not found")
            return run
        if kind == "actor-last":
            act_id = self.registry.find(args[0]).id
            runs = [r for r in list(self.runner.runs.values()) if r.act_id == act_id]
        else:
            task_id = self.find_task(args[0])
            runs = [r for r in list(self.runner.runs.values()) if r.task_id == task_id]
        runs = filter_runs(runs, query)
        if not runs:
            raise ApiError(404, "record-not-found", "Actor run was not found")
        return max(runs, key=lambda r: r.started_at)

    def find_task(self, task_id: str) -> str:
        """A task's id from its id or name; the tasks module replaces this."""
        raise ApiError(404, "record-not-found", "Actor task was not found")

    def get_any_log(self, req: Request, build_or_run_id: str) -> Response:
        """`/v2/logs/{id}`: a run's log by its id (builds have none here)."""
        return self.runs_api.get_log(req, self.runner.get(build_or_run_id))

    def storage_of(self, run: Run, kind: str) -> str:
        """The id of a run's default storage of a kind (`dataset`, `kvs`, `queue`)."""
        return {"dataset": run.dataset_id, "kvs": run.kvs_id, "queue": run.queue_id}[kind]


def env_vars(environment: dict[str, str]) -> list[dict[str, Any]]:
    """An Actor version's envVars: a value that names a secret (`@name`) is not shown."""
    return [{"name": k, "isSecret": True} if v.startswith("@")
            else {"name": k, "value": v, "isSecret": False} for k, v in environment.items()]


def _actor_short(actor: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "createdAt", "modifiedAt", "name", "username", "title", "stats")
    return {k: actor[k] for k in keys}


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
    (("GET",), "/v2/logs/{buildOrRunId}", "get_any_log", False),
]


# The other modules' route groups, served after the core table.
GROUPS: list[type[RouteGroup]] = [StoragesApi, TasksApi, WebhooksApi]

# Each way the spec names a run: (path, kind for `Api.select_run`), the last before an id.
RUN_PATHS = [
    ("/v2/actor-runs/{runId}", "run"),
    ("/v2/actors/{actorId}/runs/last", "actor-last"),
    ("/v2/actor-tasks/{actorTaskId}/runs/last", "task-last"),
    ("/v2/actors/{actorId}/runs/{runId}", "actor-run"),
]
# A run's default storages: (the storage's own path, its place under a run, its kind).
STORAGE_MOUNTS = [
    ("/v2/datasets/{datasetId}", "/dataset", "dataset"),
    ("/v2/key-value-stores/{storeId}", "/key-value-store", "kvs"),
    ("/v2/request-queues/{queueId}", "/request-queue", "queue"),
]
_STORAGE_UNDER = frozenset({"run", "actor-last", "task-last"})

Served = tuple[tuple[str, ...], str, Callable[..., Response], bool]


def _tables(api: Api | None) -> list[tuple[object | None, RouteTable]]:
    tables: list[tuple[object | None, RouteTable]] = [(api, ROUTES), (None, RunsApi.ROUTES)]
    if api is not None:
        tables[1] = (api.runs_api, RunsApi.ROUTES)
    for group in GROUPS:
        tables.append((group(api) if api is not None else None, group.ROUTES))
    return tables


def _served(api: Api | None) -> list[Served]:
    """Every route: the tables as written, then run actions and run storages per run path."""
    def handler(owner: object | None, name: str) -> Callable[..., Response]:
        return getattr(owner, name) if owner is not None else _unbound

    out: list[Served] = []
    plain = [(methods, path, handler(owner, name), public)
             for owner, table in _tables(api) for methods, path, name, public in table]
    for run_path, kind in RUN_PATHS:
        arity = run_path.count("{")
        for methods, suffix, name, kinds in RunsApi.RUN_ACTIONS:
            if kind in kinds:
                action = handler(api.runs_api if api else None, name)
                out.append((methods, run_path + suffix,
                            _on_run(api, kind, arity, action, None), False))
        if kind not in _STORAGE_UNDER:
            continue
        for methods, path, action, public in plain:
            for own, mount, storage_kind in STORAGE_MOUNTS:
                if path == own or path.startswith(own + "/"):
                    out.append((methods, run_path + mount + path[len(own):],
                                _on_run(api, kind, arity, action, storage_kind), public))
    return plain + out


def _unbound(*args: object) -> Response:
    raise AssertionError("a route listed without a runtime")


def _on_run(api: Api | None, kind: str, arity: int, action: Callable[..., Response],
            storage_kind: str | None) -> Callable[..., Response]:
    """A handler of a run (or of its default storage) under one way of naming the run."""
    def handle(req: Request, *args: str) -> Response:
        assert api is not None
        run = api.select_run(kind, args[:arity], req.query)
        if storage_kind is None:
            return action(req, run, *args[arity:])
        return action(req, api.storage_of(run, storage_kind), *args[arity:])

    handle.__name__ = getattr(action, "__name__", "handle")
    return handle


def served_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation served, in the spec's form (HEAD with GET)."""
    return [(method, path) for methods, path, _, _ in _served(None) for method in methods]


def _paths(path: str) -> list[str]:
    """A spec path and, for Actors, its legacy `/v2/acts` twin."""
    if path.startswith("/v2/actors"):
        return [path, "/v2/acts" + path[len("/v2/actors"):]]
    return [path]


def build_app(api: Api) -> Starlette:
    routes = [Route(p, endpoint(action, api.guard, public=public), methods=list(methods))
              for methods, path, action, public in _served(api) for p in _paths(path)]
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
