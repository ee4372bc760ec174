"""Webhooks: ad-hoc ones from the `webhooks` parameter, saved ones, and their delivery.

A run's event fires every webhook whose condition names the run, its Actor or its task
(`Dispatcher.on_run_event`); the ad-hoc webhooks of a run are saved as webhooks with
`isAdHoc` on its first event, so each delivery of either kind is one dispatch in the
records, with every call it made (`GET /v2/webhook-dispatches`). Events are matched to
webhooks on one thread of the dispatcher's, in the order they happened, and each delivery
happens on a daemon thread of its own, so neither a run's start nor a run-sync answer
waits for the records or for a slow receiver. A failed call
(no connection, or a status other than 2xx) is retried after 1, 2, 4 and 8 s
(`RETRY_DELAYS_SECS`) unless the webhook says `doNotRetry`; pending retries are dropped
when the runtime stops (the dispatch then ends FAILED).

Templates follow the platform's: `{{variable}}` outside a JSON string is replaced by the
value's JSON; inside a string it stays as written, unless `shouldInterpolateStrings`,
where a string that is just `"{{variable}}"` becomes the value and one that contains it
gets the value as text.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import queue
import re
import sqlite3
import ssl
import threading
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from apify_magic.local.errors import invalid_request
from apify_magic.local.records import RECORDS_FILE, Records
from apify_magic.local.registry import USERNAME, new_id
from apify_magic.options import webhooks_problem

DEFAULT_PAYLOAD_TEMPLATE = """{
    "userId": {{userId}},
    "createdAt": {{createdAt}},
    "eventType": {{eventType}},
    "eventData": {{eventData}},
    "resource": {{resource}}
}"""
RETRY_DELAYS_SECS = (1.0, 2.0, 4.0, 8.0)
DELIVERY_TIMEOUT_SECS = 30.0
# A receiver's answer kept in the dispatch's call, cut to this many characters.
RESPONSE_BODY_CHARS = 1000
# Headers a headersTemplate cannot set: the platform rewrites them to its own.
RESERVED_HEADERS = frozenset({"host", "content-type", "x-apify-webhook",
                              "x-apify-webhook-dispatch-id", "x-apify-request-origin"})
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_WHOLE_VARIABLE = re.compile(r"^\{\{\s*([A-Za-z0-9_.]+)\s*\}\}$")


def now_iso() -> str:
    return (datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"))


def parse(value: str) -> list[dict[str, Any]]:
    """The Base64 JSON array of the `webhooks` parameter, checked."""
    try:
        padded = value + "=" * (-len(value) % 4)
        decoded = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        webhooks = json.loads(decoded)
    except (binascii.Error, ValueError):
        raise invalid_request("Parameter webhooks must be a Base64-encoded JSON array") from None
    problem = webhooks_problem(webhooks)
    if problem:
        raise invalid_request(problem)
    checked: list[dict[str, Any]] = webhooks
    return checked




# -- templates -----------------------------------------------------------------------

def lookup(variables: dict[str, Any], name: str) -> Any:
    """The value of `name` or `name.path` (None where the path leads nowhere)."""
    current: Any = variables
    for part in name.split("."):
        current = current.get(part) if isinstance(current, dict) else None
    return current


def render(template: str, variables: dict[str, Any], *,
           interpolate_strings: bool = False) -> str:
    """The template with its variables filled in, as JSON text (see the module's doc)."""
    out: list[str] = []
    position = 0
    inside = False
    for match in _VARIABLE.finditer(template):
        inside = _inside_string(template, position, match.start(), inside)
        out.append(template[position:match.start()])
        out.append(match.group(0) if inside else json.dumps(lookup(variables,
                                                                   match.group(1))))
        position = match.end()
    out.append(template[position:])
    text = "".join(out)
    if not interpolate_strings:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(_interpolate(value, variables), ensure_ascii=False)


def _inside_string(text: str, start: int, end: int, inside: bool) -> bool:
    """Whether `end` is inside a JSON string, given whether `start` was."""
    i = start
    while i < end:
        char = text[i]
        if inside and char == "\\":
            i += 2
            continue
        if char == '"':
            inside = not inside
        i += 1
    return inside


def _interpolate(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _WHOLE_VARIABLE.match(value)
        if whole:
            return lookup(variables, whole.group(1))
        return _VARIABLE.sub(lambda m: _as_text(lookup(variables, m.group(1))), value)
    if isinstance(value, list):
        return [_interpolate(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v, variables) for k, v in value.items()}
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def template_problem(name: str, template: object, *, headers: bool = False) -> str | None:
    """Why a payload or headers template cannot be used, or None."""
    if template is None:
        return None
    if not isinstance(template, str):
        return f"Field {name} must be a string"
    if not template.strip():
        return None
    try:
        value = json.loads(render(template, {}))
    except ValueError as err:
        return f"Field {name} is not valid JSON with {{{{variables}}}}: {err}"
    if headers and not isinstance(value, dict):
        return f"Field {name} must be a JSON object"
    return None


# -- conditions and events -----------------------------------------------------------

def condition_owner(condition: dict[str, Any]) -> str:
    """The most specific thing a condition names, to find webhooks by a run's event."""
    if condition.get("actorRunId"):
        return f"run:{condition['actorRunId']}"
    if condition.get("actorTaskId"):
        return f"task:{condition['actorTaskId']}"
    return f"actor:{condition.get('actorId')}"


def matches(condition: dict[str, Any], run: dict[str, Any]) -> bool:
    """Whether a run meets every part of a condition that is given."""
    wanted = {"actorId": run.get("actId"), "actorTaskId": run.get("actorTaskId"),
              "actorRunId": run.get("id")}
    given = {k: v for k, v in condition.items() if k in wanted and v}
    return bool(given) and all(wanted[k] == v for k, v in given.items())


def run_variables(run: dict[str, Any], event: str) -> dict[str, Any]:
    event_data: dict[str, Any] = {"actorId": run.get("actId"), "actorRunId": run.get("id")}
    if run.get("actorTaskId"):
        event_data["actorTaskId"] = run["actorTaskId"]
    return {"userId": USERNAME, "createdAt": now_iso(), "eventType": event,
            "eventData": event_data, "resource": run}


# -- delivery ------------------------------------------------------------------------

class Dispatcher:
    """Fires webhooks on run events and records each delivery as a dispatch."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._events: queue.SimpleQueue[tuple[dict[str, Any], str] | None] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self._owners: set[str] = set()
        self._owners_stamp: tuple[tuple[int, int], ...] | None = None

    def may_fire(self, run_id: str, task_id: str | None, act_id: str) -> bool:
        """Whether any saved webhook names this run, its task or its Actor.

        Asked on every run event, so that a run with no webhooks (nearly all) costs two
        `stat` calls here instead of a snapshot and a query."""
        stamp = self.records.stamp()
        if stamp != self._owners_stamp:
            with contextlib.suppress(sqlite3.Error):
                self._owners = self.records.owners("webhooks")
                self._owners_stamp = stamp
        owners = self._owners
        return (f"run:{run_id}" in owners or f"task:{task_id}" in owners
                or f"actor:{act_id}" in owners or self._owners_stamp != stamp)

    def stop(self) -> None:
        """Drop pending retries (their dispatches end FAILED) and forget this data dir."""
        self._stopped.set()
        self._events.put(None)  # the events before it are still matched
        with _DISPATCHERS_LOCK:
            if _DISPATCHERS.get(self.records.path) is self:
                del _DISPATCHERS[self.records.path]

    def on_run_event(self, run: dict[str, Any], ad_hoc: list[dict[str, Any]],
                     event: str) -> None:
        """Deliver `event` of `run` (as it is now) to each webhook that waits for it.

        A run's ad-hoc webhooks are saved at once, so they are listed as soon as the run
        is; the rest happens on the events thread."""
        if ad_hoc:
            with self._lock:  # two events of one run must not save its ad-hoc hooks twice
                self._save_ad_hoc(run, ad_hoc)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._match_events, daemon=True,
                                                name="apify-local-webhook-events")
                self._thread.start()
        self._events.put((run, event))

    def _match_events(self) -> None:
        while (item := self._events.get()) is not None:
            # The data dir may have gone away with a stopped runtime.
            with contextlib.suppress(sqlite3.Error, OSError):
                self._fire(*item)

    def _fire(self, run: dict[str, Any], event: str) -> None:
        owners = [f"run:{run.get('id')}", f"task:{run.get('actorTaskId')}",
                  f"actor:{run.get('actId')}"]
        variables = run_variables(run, event)
        for hook in self.records.owned("webhooks", owners):
            if event not in hook.get("eventTypes", []) or not matches(hook["condition"], run):
                continue
            if hook.get("isAdHoc") and self.records.count("dispatches", hook["id"]):
                continue  # an ad-hoc webhook fires at most once
            self.deliver(hook, event, variables)

    def _save_ad_hoc(self, run: dict[str, Any], ad_hoc: list[dict[str, Any]]) -> None:
        for hook in ad_hoc:
            if "id" in hook:
                continue
            stamp = now_iso()
            saved = {**hook, "id": new_id(), "createdAt": stamp, "modifiedAt": stamp,
                     "userId": USERNAME, "isAdHoc": True,
                     "condition": {"actorRunId": run.get("id")},
                     "ignoreSslErrors": bool(hook.get("ignoreSslErrors")),
                     "doNotRetry": bool(hook.get("doNotRetry"))}
            existing = None
            key = hook.get("idempotencyKey")
            if isinstance(key, str) and key:
                existing = self.records.by_key("webhooks", key)
            if existing is None:
                self.records.put("webhooks", saved, key=key if isinstance(key, str) else None,
                                 owner=condition_owner(saved["condition"]))
            hook["id"] = (existing or saved)["id"]

    def deliver(self, hook: dict[str, Any], event: str, variables: dict[str, Any]
                ) -> dict[str, Any]:
        """Start one dispatch of `hook` on its own thread; return the dispatch as made."""
        interpolate = bool(hook.get("shouldInterpolateStrings"))
        payload = render(hook.get("payloadTemplate") or DEFAULT_PAYLOAD_TEMPLATE, variables,
                         interpolate_strings=interpolate)
        dispatch: dict[str, Any] = {
            "id": new_id(), "userId": USERNAME, "webhookId": hook["id"],
            "createdAt": now_iso(), "status": "ACTIVE", "eventType": event,
            "eventData": variables.get("eventData"),
            "webhook": {"actionType": "HTTP_REQUEST", "condition": hook.get("condition", {}),
                        "requestUrl": hook.get("requestUrl"),
                        "isAdHoc": bool(hook.get("isAdHoc"))},
            "calls": [],
        }
        headers = {}
        if hook.get("headersTemplate"):
            try:
                extra = json.loads(render(hook["headersTemplate"], variables,
                                          interpolate_strings=interpolate))
            except ValueError:
                extra = {}
            if isinstance(extra, dict):
                headers = {str(k): _as_text(v) for k, v in extra.items()
                           if str(k).lower() not in RESERVED_HEADERS}
        headers.update({"Content-Type": "application/json", "User-Agent": "ApifyWebhooks",
                        "X-Apify-Webhook": hook["id"],
                        "X-Apify-Webhook-Dispatch-Id": dispatch["id"]})
        self.records.put("dispatches", dispatch, owner=hook["id"])
        delays = (0.0,) if hook.get("doNotRetry") else (0.0, *RETRY_DELAYS_SECS)
        # The thread has a copy of its own: what is answered here stays as made.
        sent = {**dispatch, "calls": []}
        thread = threading.Thread(
            target=self._send, args=(sent, hook["requestUrl"], payload, headers, delays,
                                     bool(hook.get("ignoreSslErrors"))),
            name="apify-local-webhook", daemon=True)
        thread.start()
        return dispatch

    def _send(self, dispatch: dict[str, Any], url: str, payload: str, headers: dict[str, str],
              delays: tuple[float, ...], ignore_ssl: bool) -> None:
        context = None
        if ignore_ssl:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        outcome = "FAILED"
        for n, delay in enumerate(delays):
            if self._stopped.wait(delay):
                break
            call = _call(url, payload, headers, context)
            dispatch["calls"].append(call)
            status = call["responseStatus"]
            if status is not None and 200 <= status < 300:
                outcome = "SUCCEEDED"
                break
            if n < len(delays) - 1:
                self._save(dispatch)  # each failed call shows while the next one waits
        dispatch["status"] = outcome
        self._save(dispatch)

    def _save(self, dispatch: dict[str, Any]) -> None:
        # The data dir may have gone away with a stopped runtime.
        with contextlib.suppress(sqlite3.Error, OSError):
            self.records.put("dispatches", dispatch, owner=dispatch["webhookId"])


def _call(url: str, payload: str, headers: dict[str, str],
          context: ssl.SSLContext | None) -> dict[str, Any]:
    """One POST to the receiver, as a dispatch's call records it."""
    started = now_iso()
    status: int | None = None
    body = ""
    error: str | None = None
    request = urllib.request.Request(url, data=payload.encode(), headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT_SECS,
                                    context=context) as response:
            status = response.status
            body = response.read(RESPONSE_BODY_CHARS * 4).decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        status = err.code
        body = err.read(RESPONSE_BODY_CHARS * 4).decode("utf-8", "replace")
        error = f"The receiver answered {err.code}"
    except (urllib.error.URLError, OSError, ValueError) as err:
        error = f"Cannot send request: {getattr(err, 'reason', err)}"
    return {"startedAt": started, "finishedAt": now_iso(), "errorMessage": error,
            "responseStatus": status, "responseBody": body[:RESPONSE_BODY_CHARS] or None}


_DISPATCHERS: dict[Path, Dispatcher] = {}
_DISPATCHERS_LOCK = threading.Lock()


def dispatcher(data_dir: Path) -> Dispatcher:
    """The one dispatcher of a data dir: the runtime fires events through it, the API
    tests webhooks through it, and the runtime's stop stops it."""
    with _DISPATCHERS_LOCK:
        found = _DISPATCHERS.get(data_dir / RECORDS_FILE)
        if found is None:
            records = Records(data_dir)
            found = _DISPATCHERS[records.path] = Dispatcher(records)
        return found
