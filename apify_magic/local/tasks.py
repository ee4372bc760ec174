"""Actor tasks: an Actor with saved options and input, kept in the runtime's records.

A task's run is its Actor's run with three layers of settings, as on the platform: the
query parameters of the request win over the task's `options`, which win over the
Actor's defaults; the POSTed JSON object is merged over the task's saved `input` one
level deep (a field the body leaves out keeps the task's value, a field it gives wins,
as the spec's "if the object in the POST payload does not define a particular input
property, the Actor run uses the default value defined by the task" says), and the
Actor's input schema then adds its defaults and validates. A body that is not JSON
replaces the task's input. The run records the task in `actorTaskId`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from apify_magic.local import inputs, params
from apify_magic.local.errors import ApiError
from apify_magic.local.records import Records
from apify_magic.local.registry import USERNAME, ActorDef, new_id
from apify_magic.local.run_options import run_options
from apify_magic.local.runner import Run
from apify_magic.local.runs_api import run_list, wait_for_finish
from apify_magic.local.webhooks import now_iso
from apify_magic.local.wire import Request, Response, data_response, json_response, paginated

if TYPE_CHECKING:
    from apify_magic.local.app import Api, RouteTable

TASK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$")
# A task's options as query parameters of a run: (option, parameter, JSON types allowed).
OPTION_PARAMS: tuple[tuple[str, str, tuple[type, ...]], ...] = (
    ("build", "build", (str,)),
    ("timeoutSecs", "timeout", (int, float)),
    ("memoryMbytes", "memory", (int,)),
    ("maxItems", "maxItems", (int,)),
    ("maxTotalChargeUsd", "maxTotalChargeUsd", (int, float)),
    ("restartOnError", "restartOnError", (bool,)),
)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid-input", message)


def _not_found() -> ApiError:
    return ApiError(404, "record-not-found", "Actor task was not found")


def find_task(records: Records, ref: str) -> dict[str, Any]:
    """A task by its id, or by `username~name` / `~name` (404 `record-not-found`)."""
    if "~" in ref:
        owner, _, name = ref.rpartition("~")
        task = records.by_key("tasks", name) if owner in ("", USERNAME) else None
    else:
        task = records.get("tasks", ref)
    if task is None:
        raise _not_found()
    return task


def options_query(options: Mapping[str, Any]) -> dict[str, str]:
    """A task's options as the query parameters `run_options` reads."""
    query = {}
    for option, param, _ in OPTION_PARAMS:
        value = options.get(option)
        if value is not None:
            query[param] = (str(value).lower() if isinstance(value, bool) else str(value))
    return query


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body) if body.strip() else {}
    except ValueError:
        raise _invalid(f"The {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise _invalid(f"The {what} must be a JSON object")
    return value


class TasksApi:
    """`/v2/actor-tasks`: task records, their input, and runs started from them."""

    ROUTES: ClassVar[RouteTable] = [
        (("GET",), "/v2/actor-tasks", "list_tasks", False),
        (("POST",), "/v2/actor-tasks", "create_task", False),
        (("GET",), "/v2/actor-tasks/{actorTaskId}", "get_task", False),
        (("PUT",), "/v2/actor-tasks/{actorTaskId}", "update_task", False),
        (("DELETE",), "/v2/actor-tasks/{actorTaskId}", "delete_task", False),
        (("GET",), "/v2/actor-tasks/{actorTaskId}/input", "get_input", False),
        (("PUT",), "/v2/actor-tasks/{actorTaskId}/input", "update_input", False),
        (("GET",), "/v2/actor-tasks/{actorTaskId}/runs", "list_runs", False),
        (("POST",), "/v2/actor-tasks/{actorTaskId}/runs", "start_run", False),
        (("GET", "POST"), "/v2/actor-tasks/{actorTaskId}/run-sync", "run_sync", False),
        (("GET", "POST"), "/v2/actor-tasks/{actorTaskId}/run-sync-get-dataset-items",
         "run_sync_items", False),
    ]

    def __init__(self, api: Api) -> None:
        self.api = api
        self.records = Records(api.runner.runs_dir.parent)
        # `runs/last` under a task is served by the core: it asks us for the task's id.
        api.find_task = self.task_id  # type: ignore[method-assign]

    def task_id(self, task_id: str) -> str:
        """A task's id from its id or name (`Api.find_task`'s contract)."""
        return str(find_task(self.records, task_id)["id"])

    # -- the records -----------------------------------------------------------------

    def task_dict(self, task: dict[str, Any]) -> dict[str, Any]:
        runs = sum(1 for r in list(self.api.runner.runs.values()) if r.task_id == task["id"])
        return {**task, "stats": {"totalRuns": runs}}

    def _short(self, task: dict[str, Any]) -> dict[str, Any]:
        try:
            act_name: str | None = self.api.registry.find(task["actId"]).name
        except ApiError:
            act_name = None  # the Actor's folder is gone; the task stays
        full = self.task_dict(task)
        keys = ("id", "userId", "actId", "name", "username", "createdAt", "modifiedAt",
                "stats")
        return {**{k: full[k] for k in keys}, "actName": act_name,
                "actUsername": USERNAME if act_name else None}

    def list_tasks(self, req: Request) -> Response:
        offset, limit, desc = params.page(req.query)
        tasks, total = self.records.page("tasks", offset, limit, desc)
        return data_response(paginated([self._short(t) for t in tasks], offset, limit, desc,
                                       total=total))

    def create_task(self, req: Request) -> Response:
        body = _json_object(req.body, "request body")
        act_id = body.get("actId")
        if not isinstance(act_id, str) or not act_id:
            raise _invalid("Field actId is required: the id or name of the task's Actor")
        actor = self.api.registry.find(act_id)
        stamp = now_iso()
        task_id = new_id()
        name = body.get("name")
        if name is None:
            name = f"{actor.name}-task-{task_id[:6].lower()}"
        task: dict[str, Any] = {
            "id": task_id, "userId": USERNAME, "actId": actor.id, "name": name,
            "username": USERNAME, "createdAt": stamp, "modifiedAt": stamp,
            "removedAt": None, "options": {}, "input": {}, "title": None,
            "description": None,
        }
        self._apply(task, body, actor)
        self.records.put("tasks", task, key=task["name"])
        return json_response({"data": self.task_dict(task)}, 201,
                             {"Location": f"{self.api.base_url()}/v2/actor-tasks/{task_id}"})

    def _apply(self, task: dict[str, Any], change: dict[str, Any], actor: ActorDef) -> None:
        """Check a create's or update's fields and set them on the task."""
        if "name" in change:
            name = change["name"]
            if not isinstance(name, str) or not TASK_NAME.match(name):
                raise _invalid("Field name must be 1 to 63 letters, digits or '-', starting "
                               "with a letter or digit")
            task["name"] = name
        for field in ("title", "description"):
            if field in change:
                if change[field] is not None and not isinstance(change[field], str):
                    raise _invalid(f"Field {field} must be a string")
                task[field] = change[field]
        if change.get("options") is not None:
            if not isinstance(change["options"], dict):
                raise _invalid("Field options must be an object")
            # Options not given keep their value: the client sends only those it changes.
            task["options"] = _checked_options({**task["options"], **change["options"]},
                                               actor)
        if "input" in change:
            value = change["input"]
            if value is not None and not isinstance(value, dict):
                raise _invalid("Field input must be a JSON object")
            task["input"] = value or {}

    def _actor(self, task: dict[str, Any]) -> ActorDef:
        return self.api.registry.find(task["actId"])

    def get_task(self, req: Request, ref: str) -> Response:
        return data_response(self.task_dict(find_task(self.records, ref)))

    def update_task(self, req: Request, ref: str) -> Response:
        task = find_task(self.records, ref)
        change = _json_object(req.body, "request body")
        self._apply(task, change, self._actor(task))
        task["modifiedAt"] = now_iso()
        self.records.put("tasks", task, key=task["name"])
        return data_response(self.task_dict(task))

    def delete_task(self, req: Request, ref: str) -> Response:
        self.records.delete("tasks", find_task(self.records, ref)["id"])
        return Response(204, b"", None)

    def get_input(self, req: Request, ref: str) -> Response:
        return json_response(find_task(self.records, ref).get("input") or {})

    def update_input(self, req: Request, ref: str) -> Response:
        # As the spec says, fields the body leaves out keep their value.
        task = find_task(self.records, ref)
        task["input"] = {**(task.get("input") or {}), **_json_object(req.body, "input")}
        task["modifiedAt"] = now_iso()
        self.records.put("tasks", task, key=task["name"])
        return json_response(task["input"])

    # -- runs ------------------------------------------------------------------------

    def start(self, req: Request, ref: str) -> Run:
        """Start the task's run: query over options, body over the saved input."""
        task = find_task(self.records, ref)
        actor = self._actor(task)
        query = {**options_query(task.get("options") or {}),
                 **{k: v for k, v in req.query.items() if v != ""}}
        saved = task.get("input") or {}
        body = req.body if req.method == "POST" else b""
        content_type = req.content_type or "application/json"
        if body.strip() and not inputs.is_json(content_type):
            input_body = body  # not JSON: nothing to merge, the body is the input
        else:
            merged = {**saved, **_json_object(body, "input")}
            input_body, content_type = json.dumps(merged).encode(), "application/json"
        return self.api.start(actor, query, input_body, content_type,
                              user_agent=req.user_agent, task_id=task["id"])

    def list_runs(self, req: Request, ref: str) -> Response:
        task_id = self.task_id(ref)
        return run_list([r for r in list(self.api.runner.runs.values())
                         if r.task_id == task_id], req.query)

    def start_run(self, req: Request, ref: str) -> Response:
        run = self.start(req, ref)
        wait_for_finish(run, req.query)
        return json_response({"data": run.to_dict()}, 201, {
            "Location": f"{self.api.base_url()}/v2/actor-tasks/{run.task_id}/runs/{run.id}"})

    async def run_sync(self, req: Request, ref: str) -> Response:
        return await self.api.sync_output(lambda: self.start(req, ref), req.query,
                                           len(req.body))

    async def run_sync_items(self, req: Request, ref: str) -> Response:
        return await self.api.sync_items(lambda: self.start(req, ref), req.query,
                                          len(req.body))


def _checked_options(options: dict[str, Any], actor: ActorDef) -> dict[str, Any]:
    """Task options as saved: known fields of the right types that a run would accept."""
    checked: dict[str, Any] = {}
    for option, _, types in OPTION_PARAMS:
        value = options.get(option)
        if value is None:
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise _invalid(f"Field options.{option} has the wrong type")
        checked[option] = value
    run_options(actor, options_query(checked))  # 400 now for what a run would refuse
    return checked
