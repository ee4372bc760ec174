"""Ad-hoc webhooks: parsed from the `webhooks` parameter, delivered on the run's events.

Delivery happens on its own daemon thread, so a run-sync answer never waits for a slow
receiver. A failed delivery (no connection, or a status other than 2xx) is retried after
1, 2, 4 and 8 s (`RETRY_DELAYS_SECS`); pending retries are dropped when the runtime stops.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

from apify_magic.local.errors import invalid_request
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
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")


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


def render(template: str, variables: dict[str, Any]) -> str:
    """Replace `{{name}}` and `{{name.path}}` with the JSON of the value (null if none)."""
    def value(match: re.Match[str]) -> str:
        current: Any = variables
        for part in match.group(1).split("."):
            current = current.get(part) if isinstance(current, dict) else None
        return json.dumps(current)

    return _VARIABLE.sub(value, template)


def deliver_all(run: dict[str, Any], hooks: list[dict[str, Any]], event: str) -> None:
    """Send `event` to each webhook that asked for it, each on its own thread."""
    variables = {
        "userId": USERNAME,
        "createdAt": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "eventType": event,
        "eventData": {"actorId": run.get("actId"), "actorRunId": run.get("id")},
        "resource": run,
    }
    for hook in hooks:
        if event not in hook.get("eventTypes", []):
            continue
        payload = render(hook.get("payloadTemplate") or DEFAULT_PAYLOAD_TEMPLATE, variables)
        headers = {"Content-Type": "application/json", "User-Agent": "ApifyWebhooks",
                   "X-Apify-Webhook-Dispatch-Id": new_id()}
        if hook.get("headersTemplate"):
            try:
                extra = json.loads(render(hook["headersTemplate"], variables))
            except ValueError:
                extra = {}
            if isinstance(extra, dict):
                headers.update({str(k): str(v) for k, v in extra.items()})
        thread = threading.Thread(target=_deliver, args=(hook["requestUrl"], payload, headers),
                                  name="apify-local-webhook", daemon=True)
        thread.start()


def _deliver(url: str, payload: str, headers: dict[str, str]) -> None:
    for delay in (0.0, *RETRY_DELAYS_SECS):
        time.sleep(delay)
        request = urllib.request.Request(url, data=payload.encode(), headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT_SECS) as response:
                if 200 <= response.status < 300:
                    return
        except (urllib.error.URLError, OSError, ValueError):
            continue
