"""`/v2/webhooks` and `/v2/webhook-dispatches`: saved webhooks and what they delivered.

A webhook's `condition` names an Actor, a task or a run (by id or by name; it is saved
with the id); `webhooks.Dispatcher` fires it on the matching runs' events. `lastDispatch`
and `stats` are read from the dispatches when the webhook is shown, so a delivery never
rewrites its webhook.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, ClassVar

from apify_magic.local import params, webhooks
from apify_magic.local.errors import ApiError
from apify_magic.local.records import Records
from apify_magic.local.registry import USERNAME, new_id
from apify_magic.local.tasks import find_task
from apify_magic.local.webhooks import condition_owner, now_iso
from apify_magic.local.wire import Request, Response, data_response, json_response, paginated

if TYPE_CHECKING:
    from apify_magic.local.app import Api, RouteTable

EVENT_TYPES = frozenset({
    "ACTOR.BUILD.ABORTED", "ACTOR.BUILD.CREATED", "ACTOR.BUILD.FAILED",
    "ACTOR.BUILD.SUCCEEDED", "ACTOR.BUILD.TIMED_OUT", "ACTOR.RUN.ABORTED",
    "ACTOR.RUN.CREATED", "ACTOR.RUN.FAILED", "ACTOR.RUN.RESURRECTED",
    "ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.TIMED_OUT",
})
_URL = re.compile(r"^https?://[^\s/]+\S*$")
_FLAGS = ("isAdHoc", "ignoreSslErrors", "doNotRetry", "shouldInterpolateStrings")
_TEXTS = ("payloadTemplate", "headersTemplate", "description")
# What a test dispatch sends as its resource: the platform sends a dummy payload too.
TEST_RESOURCE = {"id": "test-resource", "status": "SUCCEEDED",
                 "note": "a test dispatch of the local runtime: no run happened"}


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid-input", message)


def _webhook_not_found() -> ApiError:
    return ApiError(404, "record-not-found", "Webhook was not found")


class WebhooksApi:
    """Webhook records, their tests, and the dispatches of every delivery."""

    ROUTES: ClassVar[RouteTable] = [
        (("GET",), "/v2/webhooks", "list_webhooks", False),
        (("POST",), "/v2/webhooks", "create_webhook", False),
        (("GET",), "/v2/webhooks/{webhookId}", "get_webhook", False),
        (("PUT",), "/v2/webhooks/{webhookId}", "update_webhook", False),
        (("DELETE",), "/v2/webhooks/{webhookId}", "delete_webhook", False),
        (("POST",), "/v2/webhooks/{webhookId}/test", "test_webhook", False),
        (("GET",), "/v2/webhooks/{webhookId}/dispatches", "list_webhook_dispatches", False),
        (("GET",), "/v2/webhook-dispatches", "list_dispatches", False),
        (("GET",), "/v2/webhook-dispatches/{dispatchId}", "get_dispatch", False),
        (("GET",), "/v2/actors/{actorId}/webhooks", "list_actor_webhooks", False),
        (("GET",), "/v2/actor-tasks/{actorTaskId}/webhooks", "list_task_webhooks", False),
    ]

    def __init__(self, api: Api) -> None:
        self.api = api
        self.data_dir = api.runner.runs_dir.parent
        self.records = Records(self.data_dir)

    # -- showing ---------------------------------------------------------------------

    def webhook_dict(self, hook: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in hook.items() if k != "idempotencyKey"}
        last, total = self.records.page("dispatches", 0, 1, True, owner=hook["id"])
        shown["lastDispatch"] = ({"status": last[0]["status"],
                                  "finishedAt": _finished_at(last[0])} if last else None)
        shown["stats"] = {"totalDispatches": total}
        return shown

    def _short(self, hook: dict[str, Any]) -> dict[str, Any]:
        full = self.webhook_dict(hook)
        keys = ("id", "createdAt", "modifiedAt", "userId", "isAdHoc",
                "shouldInterpolateStrings", "eventTypes", "condition", "ignoreSslErrors",
                "doNotRetry", "requestUrl", "lastDispatch", "stats")
        return {**{k: full.get(k) for k in keys}, "isApifyIntegration": False,
                "isEnabled": True, "actionType": "HTTP_REQUEST"}

    def _find(self, webhook_id: str) -> dict[str, Any]:
        hook = self.records.get("webhooks", webhook_id)
        if hook is None:
            raise _webhook_not_found()
        return hook

    def _list(self, req: Request, hooks: list[dict[str, Any]], full: bool) -> Response:
        offset, limit, desc = params.page(req.query)
        ordered = sorted(hooks, key=lambda h: (h["createdAt"], h["id"]), reverse=desc)
        page = [self.webhook_dict(h) if full else self._short(h)
                for h in ordered[offset:offset + limit]]
        return data_response(paginated(page, offset, limit, desc, total=len(ordered)))

    def list_webhooks(self, req: Request) -> Response:
        offset, limit, desc = params.page(req.query)
        hooks, total = self.records.page("webhooks", offset, limit, desc)
        return data_response(paginated([self._short(h) for h in hooks], offset, limit, desc,
                                       total=total))

    def list_actor_webhooks(self, req: Request, actor_id: str) -> Response:
        act_id = self.api.registry.find(actor_id).id
        return self._list(req, [h for h in self.records.all("webhooks")
                                if h["condition"].get("actorId") == act_id], full=False)

    def list_task_webhooks(self, req: Request, task_ref: str) -> Response:
        task_id = find_task(self.records, task_ref)["id"]
        return self._list(req, [h for h in self.records.all("webhooks")
                                if h["condition"].get("actorTaskId") == task_id], full=True)

    def get_webhook(self, req: Request, webhook_id: str) -> Response:
        return data_response(self.webhook_dict(self._find(webhook_id)))

    # -- changing --------------------------------------------------------------------

    def create_webhook(self, req: Request) -> Response:
        body = _json_object(req.body)
        for required in ("eventTypes", "condition", "requestUrl"):
            if body.get(required) is None:
                raise _invalid(f"Field {required} is required")
        key = body.get("idempotencyKey")
        if key is not None and (not isinstance(key, str) or not key):
            raise _invalid("Field idempotencyKey must be a non-empty string")
        if key:
            existing = self.records.by_key("webhooks", key)
            if existing is not None:  # the same create again: the webhook it made
                return json_response({"data": self.webhook_dict(existing)}, 201)
        stamp = now_iso()
        hook: dict[str, Any] = {
            "id": new_id(), "createdAt": stamp, "modifiedAt": stamp, "userId": USERNAME,
            "isAdHoc": False, "shouldInterpolateStrings": False, "ignoreSslErrors": False,
            "doNotRetry": False, "payloadTemplate": None, "headersTemplate": None,
            "description": None,
        }
        self._apply(hook, body)
        if key:
            hook["idempotencyKey"] = key
        self.records.put("webhooks", hook, key=key, owner=condition_owner(hook["condition"]))
        return json_response({"data": self.webhook_dict(hook)}, 201,
                             {"Location": f"{self.api.base_url()}/v2/webhooks/{hook['id']}"})

    def _apply(self, hook: dict[str, Any], change: dict[str, Any]) -> None:
        """Check a create's or update's fields and set them on the webhook."""
        if change.get("eventTypes") is not None:
            events = change["eventTypes"]
            if (not isinstance(events, list) or not events
                    or not all(isinstance(e, str) and e in EVENT_TYPES for e in events)):
                raise _invalid("Field eventTypes must be a non-empty array of: "
                               + ", ".join(sorted(EVENT_TYPES)))
            hook["eventTypes"] = list(dict.fromkeys(events))
        if change.get("requestUrl") is not None:
            url = change["requestUrl"]
            if not isinstance(url, str) or not _URL.match(url):
                raise _invalid(f"Field requestUrl must be an http(s) URL, got {url!r}")
            hook["requestUrl"] = url
        if change.get("condition") is not None:
            hook["condition"] = self._condition(change["condition"])
        for flag in _FLAGS:
            if change.get(flag) is not None:
                if not isinstance(change[flag], bool):
                    raise _invalid(f"Field {flag} must be true or false")
                hook[flag] = change[flag]
        for text in _TEXTS:
            if text in change:
                if change[text] is not None and not isinstance(change[text], str):
                    raise _invalid(f"Field {text} must be a string")
                hook[text] = change[text]
        for name, headers in (("payloadTemplate", False), ("headersTemplate", True)):
            problem = webhooks.template_problem(name, hook.get(name), headers=headers)
            if problem:
                raise _invalid(problem)

    def _condition(self, condition: object) -> dict[str, Any]:
        """The condition with the ids of what it names (404 for what does not exist)."""
        if not isinstance(condition, dict):
            raise _invalid("Field condition must be an object")
        out: dict[str, Any] = {}
        for field in ("actorId", "actorTaskId", "actorRunId"):
            value = condition.get(field)
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise _invalid(f"Field condition.{field} must be a string")
            if field == "actorId":
                out[field] = self.api.registry.find(value).id
            elif field == "actorTaskId":
                out[field] = find_task(self.records, value)["id"]
            else:
                out[field] = self.api.runner.get(value).id
        if not out:
            raise _invalid("Field condition must name an actorId, actorTaskId or actorRunId")
        return out

    def update_webhook(self, req: Request, webhook_id: str) -> Response:
        hook = self._find(webhook_id)
        self._apply(hook, _json_object(req.body))
        hook["modifiedAt"] = now_iso()
        self.records.put("webhooks", hook, key=hook.get("idempotencyKey"),
                         owner=condition_owner(hook["condition"]))
        return data_response(self.webhook_dict(hook))

    def delete_webhook(self, req: Request, webhook_id: str) -> Response:
        if not self.records.delete("webhooks", webhook_id):
            raise _webhook_not_found()
        return Response(204, b"", None)

    def test_webhook(self, req: Request, webhook_id: str) -> Response:
        hook = self._find(webhook_id)
        variables = {"userId": USERNAME, "createdAt": now_iso(), "eventType": "TEST",
                     "eventData": None, "resource": dict(TEST_RESOURCE)}
        dispatch = webhooks.dispatcher(self.data_dir).deliver(hook, "TEST", variables)
        return json_response({"data": dispatch}, 201)

    # -- dispatches ------------------------------------------------------------------

    def _dispatches(self, req: Request, owner: str | None) -> Response:
        offset, limit, desc = params.page(req.query)
        items, total = self.records.page("dispatches", offset, limit, desc, owner=owner)
        return data_response(paginated(items, offset, limit, desc, total=total))

    def list_webhook_dispatches(self, req: Request, webhook_id: str) -> Response:
        return self._dispatches(req, self._find(webhook_id)["id"])

    def list_dispatches(self, req: Request) -> Response:
        return self._dispatches(req, None)

    def get_dispatch(self, req: Request, dispatch_id: str) -> Response:
        dispatch = self.records.get("dispatches", dispatch_id)
        if dispatch is None:
            raise ApiError(404, "record-not-found", "Webhook dispatch was not found")
        return data_response(dispatch)


def _finished_at(dispatch: dict[str, Any]) -> str | None:
    calls = dispatch.get("calls") or []
    if dispatch.get("status") == "ACTIVE" or not calls:
        return None
    return str(calls[-1].get("finishedAt"))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body) if body.strip() else {}
    except ValueError:
        raise _invalid("The request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise _invalid("The request body must be a JSON object")
    return value
