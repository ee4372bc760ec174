"""Runs, builds and the account: listing runs, acting on one, and what `users/me` tells.

Run actions (`RUN_ACTIONS`) take the run itself: `app` serves each under every way the
spec names a run (`/v2/actor-runs/{runId}`, `/v2/actors/{actorId}/runs/last`,
`/v2/actor-tasks/{actorTaskId}/runs/last`, `/v2/actors/{actorId}/runs/{runId}`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from apify_magic.local import inputs, params
from apify_magic.local.errors import ApiError, invalid_request
from apify_magic.local.registry import USERNAME
from apify_magic.local.run_options import run_options
from apify_magic.local.runner import TERMINAL, Run, iso, parse_iso
from apify_magic.local.wire import (
    INLINE_BYTES,
    Request,
    Response,
    data_response,
    file_response,
    json_response,
    paginated,
)

if TYPE_CHECKING:
    from apify_magic.local.app import Api, RouteTable

MAX_WAIT_FOR_FINISH_SECS = 60.0
LOG_STREAM_POLL_SECS = 0.2
_ANSI = re.compile(rb"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")


# A streamed log is read in pieces of about this size (then to the end of a line).
LOG_PIECE_BYTES = INLINE_BYTES


def read_log_piece(path: Path, offset: int, whole_lines: bool) -> bytes:
    """About `LOG_PIECE_BYTES` of a log from `offset`, to the end of a line; with
    `whole_lines` (a running run's log) a line still being written is left for later,
    unless it is longer than a piece."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(LOG_PIECE_BYTES)
            if len(data) == LOG_PIECE_BYTES:
                data += f.readline(LOG_PIECE_BYTES)
    except OSError:
        return b""
    if whole_lines and not data.endswith(b"\n"):
        end = data.rfind(b"\n") + 1
        if end or len(data) < LOG_PIECE_BYTES:
            data = data[:end]
    return data


def printable(log: bytes) -> bytes:
    """A log without ANSI escape codes (colours, cursor moves), as the platform serves it."""
    return _ANSI.sub(b"", log)


TEXT_TYPE = "text/plain; charset=utf-8"
# Which ways of naming a run each action is served under, as in the spec.
ALL = frozenset({"run", "actor-last", "task-last", "actor-run"})
LAST = frozenset({"run", "actor-last", "task-last"})
BY_ID = frozenset({"run", "actor-run"})


def wait_for_finish(run: Run, query: Mapping[str, str]) -> None:
    """`waitForFinish=S`: wait up to S seconds (at most 60, as the platform caps it)."""
    wait = params.number(query, "waitForFinish")
    if wait is not None and wait > 0:
        run.wait(min(wait, MAX_WAIT_FOR_FINISH_SECS))


def statuses(query: Mapping[str, str]) -> set[str] | None:
    """`status=SUCCEEDED,FAILED`: the statuses asked for, each a real one, or None."""
    wanted = set(params.names(query.get("status")))
    unknown = wanted - TERMINAL - {"READY", "RUNNING", "TIMING-OUT", "ABORTING"}
    if unknown:
        raise invalid_request("Parameter status has unknown statuses: "
                              + ", ".join(sorted(unknown)))
    return wanted or None


def filter_runs(runs: list[Run], query: Mapping[str, str]) -> list[Run]:
    wanted = statuses(query)
    after = _moment(query, "startedAfter")
    before = _moment(query, "startedBefore")
    return [r for r in runs
            if (wanted is None or r.status in wanted)
            and (after is None or r.started_at >= after)
            and (before is None or r.started_at <= before)]


def _moment(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    moment = parse_iso(raw)
    if moment is None:
        raise invalid_request(f"Parameter {name} must be an ISO 8601 date and time")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def run_list(runs: list[Run], query: Mapping[str, str]) -> Response:
    """A page of runs as `GET /v2/actor-runs` gives it: by `startedAt`, `desc` reversed."""
    offset, limit, desc = params.page(query)
    chosen = sorted(filter_runs(runs, query), key=lambda r: r.started_at, reverse=desc)
    page = [r.to_dict() for r in chosen[offset:offset + limit]]
    return data_response(paginated(page, offset, limit, desc, total=len(chosen)))


class RunsApi:
    """The run, build and account handlers over the core `Api`."""

    ROUTES: ClassVar[RouteTable] = [
        (("GET",), "/v2/actor-runs", "list_all_runs", False),
        (("POST",), "/v2/actors/{actorId}/validate-input", "validate_input", False),
        (("GET",), "/v2/actors/{actorId}/builds", "list_builds", False),
        (("GET",), "/v2/actors/{actorId}/builds/{buildId}", "get_actor_build", True),
        (("GET",), "/v2/actor-builds", "list_all_builds", False),
        (("GET",), "/v2/actor-builds/{buildId}/log", "get_build_log", False),
        (("GET",), "/v2/users/me", "get_me", False),
        (("GET",), "/v2/users/me/limits", "get_limits", False),
        (("GET",), "/v2/users/{userId}", "get_user", True),
    ]

    # (methods, suffix after the run's path, handler name, ways of naming the run)
    RUN_ACTIONS: ClassVar[list[tuple[tuple[str, ...], str, str, frozenset[str]]]] = [
        (("GET",), "", "get_run", ALL),
        (("PUT",), "", "update_run", frozenset({"run"})),
        (("DELETE",), "", "delete_run", frozenset({"run"})),
        (("POST",), "/abort", "abort_run", ALL),
        (("POST",), "/metamorph", "metamorph_run", ALL),
        (("POST",), "/reboot", "reboot_run", LAST),
        (("POST",), "/resurrect", "resurrect_run", BY_ID),
        (("POST",), "/charge", "charge_run", frozenset({"run"})),
        (("GET",), "/log", "get_log", LAST),
    ]

    def __init__(self, api: Api) -> None:
        self.api = api

    # -- lists -----------------------------------------------------------------------

    def list_all_runs(self, req: Request) -> Response:
        return run_list(list(self.api.runner.runs.values()), req.query)

    # -- one run ---------------------------------------------------------------------

    def get_run(self, req: Request, run: Run) -> Response:
        wait_for_finish(run, req.query)
        return data_response(run.to_dict())

    def update_run(self, req: Request, run: Run) -> Response:
        change = _json_object(req.body)
        with run.lock:
            if "statusMessage" in change:
                message = change["statusMessage"]
                if message is not None and not isinstance(message, str):
                    raise invalid_request("Field statusMessage must be a string")
                run.status_message = message
            if "isStatusMessageTerminal" in change:
                run.status_message_terminal = bool(change["isStatusMessageTerminal"])
            if "generalAccess" in change:
                run.general_access = str(change["generalAccess"])
        return data_response(run.to_dict())

    def delete_run(self, req: Request, run: Run) -> Response:
        self.api.runner.delete(run)
        return Response(204, b"", None)

    def abort_run(self, req: Request, run: Run) -> Response:
        gracefully = bool(params.flag(req.query, "gracefully"))
        self.api.runner.abort(run, gracefully)
        if not gracefully:
            run.wait(2.0)  # a killed process ends at once: answer with ABORTED
        return data_response(run.to_dict())

    def reboot_run(self, req: Request, run: Run) -> Response:
        self.api.runner.reboot(run)
        return data_response(run.to_dict())

    def metamorph_run(self, req: Request, run: Run) -> Response:
        target_id = req.query.get("targetActorId")
        if not target_id:
            raise invalid_request("Parameter targetActorId is required")
        target = self.api.registry.find(target_id)
        build = req.query.get("build") or "latest"
        if not target.matches_build(build):
            raise ApiError(400, "unknown-build-tag",
                           f'Build with tag or number "{build}" was not found for Actor '
                           f"{target.name}")
        body, content_type = inputs.prepare(target.input_schema, req.body,
                                            req.content_type or "application/json")
        self.api.runner.metamorph(run, target, body, content_type, target.build_id)
        return data_response(run.to_dict())

    def resurrect_run(self, req: Request, run: Run) -> Response:
        actor = self.api.registry.find(run.act_id)
        defaults = run.options.to_dict()
        query = {"build": defaults["build"], "timeout": str(defaults["timeoutSecs"]),
                 "memory": str(defaults["memoryMbytes"]), **req.query}
        self.api.runner.resurrect(run, actor, run_options(actor, query))
        return data_response(run.to_dict())

    def charge_run(self, req: Request, run: Run) -> Response:
        charge = _json_object(req.body)
        event, count = charge.get("eventName"), charge.get("count", 1)
        if not isinstance(event, str) or not event:
            raise invalid_request("Field eventName must be a non-empty string")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise invalid_request("Field count must be an integer >= 1")
        key = req.headers.get("idempotency-key")
        with run.lock:
            if run.is_terminal:
                raise invalid_request(f"The run {run.id} has finished: it cannot be charged")
            if key is None or key not in run.charge_keys:
                run.charged_events[event] = run.charged_events.get(event, 0) + count
                if key is not None:
                    run.charge_keys.add(key)
        return json_response({}, 201)  # the spec's 201: an empty JSON object

    def get_log(self, req: Request, run: Run) -> Response:
        # The platform removes ANSI escape codes unless `raw` asks for the log verbatim.
        raw = params.is_true(req.query.get("raw"))
        keep: Callable[[bytes], bytes] = (lambda data: data) if raw else printable
        path = run.folder.log_path
        if not params.is_true(req.query.get("stream")) or run.is_terminal:
            # Read whole when small, else streamed from the file in pieces (whole lines
            # when the escape codes are taken out): never the whole of a large log at once.
            try:
                return file_response(200, path, TEXT_TYPE, path.stat().st_size,
                                     transform=None if raw else printable)
            except OSError:
                return Response(200, b"", TEXT_TYPE)

        async def stream() -> AsyncIterator[bytes]:
            offset = 0
            while True:
                finished = run.done.is_set()
                # Only what came since the last look, read from where that one ended.
                data = await asyncio.to_thread(read_log_piece, path, offset, not finished)
                if data:
                    yield keep(data)
                    offset += len(data)
                if len(data) >= LOG_PIECE_BYTES:
                    continue  # more is waiting: no pause
                if finished:
                    return
                await anyio.sleep(LOG_STREAM_POLL_SECS)

        return Response(200, b"", TEXT_TYPE, stream=stream)

    # -- Actors' input and builds ----------------------------------------------------

    def validate_input(self, req: Request, actor_id: str) -> Response:
        actor = self.api.registry.find(actor_id)
        inputs.prepare(actor.input_schema, req.body, req.content_type or "application/json")
        return json_response_valid()

    def _builds(self, query: Mapping[str, str], actor_id: str | None) -> Response:
        actors = ([self.api.registry.find(actor_id)] if actor_id
                  else self.api.registry.actors())
        offset, limit, desc = params.page(query)
        builds = sorted((self.api.build_dict(a) for a in actors),
                        key=lambda b: str(b["startedAt"]), reverse=desc)
        page = [_build_short(b) for b in builds[offset:offset + limit]]
        return data_response(paginated(page, offset, limit, desc, total=len(builds)))

    def list_builds(self, req: Request, actor_id: str) -> Response:
        return self._builds(req.query, actor_id)

    def list_all_builds(self, req: Request) -> Response:
        return self._builds(req.query, None)

    def get_actor_build(self, req: Request, actor_id: str, build_id: str) -> Response:
        actor = self.api.registry.find(actor_id)
        if build_id not in (actor.build_id, actor.build_number) and build_id != "default":
            raise ApiError(404, "record-not-found", "Actor build was not found")
        return data_response(self.api.build_dict(actor))

    def get_build_log(self, req: Request, build_id: str) -> Response:
        for actor in self.api.registry.actors():
            if actor.build_id == build_id:
                return Response(200, f"The local runtime runs {actor.name} from its folder "
                                     f"{actor.folder}: there is no build step.\n".encode(),
                                TEXT_TYPE)
        raise ApiError(404, "record-not-found", "Actor build was not found")

    # -- the account -----------------------------------------------------------------

    def get_me(self, req: Request) -> Response:
        return data_response(self._user(private=True))

    def get_user(self, req: Request, user_id: str) -> Response:
        if user_id not in (USERNAME, "me"):
            raise ApiError(404, "record-not-found", "User was not found")
        return data_response(self._user(private=False))

    def _user(self, private: bool) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": USERNAME, "username": USERNAME,
            "profile": {"name": "Local runtime", "bio": None, "pictureUrl": None,
                        "githubUsername": None, "websiteUrl": None, "twitterUsername": None},
        }
        if private:
            budget_gb = self.api.runner.memory_budget_mbytes / 1024
            user.update({
                "email": "local@localhost",
                "proxy": {"password": "", "groups": []},
                "plan": {"id": "LOCAL", "description": "The local runtime",
                         "isEnabled": True, "maxActorMemoryGbytes": budget_gb,
                         "availableProxyGroups": {}, "maxConcurrentActorRuns": 1000},
                "effectivePlatformFeatures": _features(),
                "createdAt": iso(datetime(2024, 1, 1, tzinfo=timezone.utc)),
                "isPaying": False,
            })
        return user

    def get_limits(self, req: Request) -> Response:
        runner = self.api.runner
        now = datetime.now(timezone.utc)
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        runs = list(runner.runs.values())
        active = runner.active_runs()
        month = [r for r in runs if r.started_at >= start]
        units = sum(float(r.to_dict()["stats"]["computeUnits"]) for r in month)
        usage = sum(float(r.to_dict()["usageTotalUsd"] or 0) for r in month)
        return data_response({
            "monthlyUsageCycle": {"startAt": iso(start),
                                  "endAt": iso((start + timedelta(days=32)).replace(day=1))},
            "limits": {
                "maxMonthlyUsageUsd": 0.0, "maxMonthlyActorComputeUnits": 0.0,
                "maxMonthlyExternalDataTransferGbytes": 0.0, "maxMonthlyProxySerps": 0,
                "maxMonthlyResidentialProxyGbytes": 0.0,
                "maxActorMemoryGbytes": runner.memory_budget_mbytes / 1024,
                "maxActorCount": 1000, "maxActorTaskCount": 1000,
                "maxConcurrentActorJobs": 1000, "maxTeamAccountSeatCount": 1,
                "dataRetentionDays": 7,
            },
            "current": {
                "monthlyUsageUsd": round(usage, 6), "monthlyActorComputeUnits": round(units, 6),
                "monthlyExternalDataTransferGbytes": 0.0, "monthlyProxySerps": 0,
                "monthlyResidentialProxyGbytes": 0.0,
                "actorMemoryGbytes": runner.memory_in_use_mbytes() / 1024,
                "actorCount": len(self.api.registry.actors()), "actorTaskCount": 0,
                "activeActorJobCount": len(active), "teamAccountSeatCount": 1,
            },
        })


def json_response_valid() -> Response:
    return Response(200, b'{"valid": true}')


def _build_short(build: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "actId", "userId", "status", "startedAt", "finishedAt", "meta",
            "buildNumber")
    return {**{k: build[k] for k in keys if k in build}, "usageTotalUsd": 0.0}


def _features() -> dict[str, Any]:
    feature = {"isEnabled": True, "disabledReason": None, "disabledReasonType": None,
               "isTrial": False, "trialExpirationAt": None}
    names = ("ACTORS", "STORAGE", "SCHEDULER", "PROXY", "PROXY_EXTERNAL_ACCESS",
             "PROXY_RESIDENTIAL", "PROXY_SERPS", "WEBHOOKS", "ACTORS_PUBLIC_ALL",
             "ACTORS_PUBLIC_DEVELOPER")
    return {name: dict(feature) for name in names}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body) if body.strip() else {}
    except ValueError:
        raise invalid_request("The request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise invalid_request("The request body must be a JSON object")
    return value
