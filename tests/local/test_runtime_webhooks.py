"""Ad-hoc webhooks delivered to a loopback listener."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from local_helpers import WebhookListener, encode_webhooks


@pytest.fixture
def listener() -> Iterator[WebhookListener]:
    listener = WebhookListener()
    yield listener
    listener.close()


def test_default_payload_on_the_terminal_event(api: httpx.Client,
                                               listener: WebhookListener) -> None:
    hooks = encode_webhooks([{"eventTypes": ["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.FAILED"],
                              "requestUrl": listener.url}])
    response = api.post("/acts/hello/run-sync", json={}, params={"webhooks": hooks})
    assert response.status_code == 201
    assert listener.arrived.wait(10)
    payload = listener.received[0]["body"]
    assert isinstance(payload, dict)
    assert payload["eventType"] == "ACTOR.RUN.SUCCEEDED"
    assert payload["userId"] == "local"
    assert payload["eventData"]["actorRunId"] == response.headers["X-Apify-Run-Id"]
    assert payload["resource"]["status"] == "SUCCEEDED"
    assert payload["resource"]["finishedAt"] is not None
    time.sleep(0.3)
    assert len(listener.received) == 1  # no CREATED: it was not asked for


def test_payload_and_headers_templates(api: httpx.Client, listener: WebhookListener) -> None:
    hooks = encode_webhooks([{
        "eventTypes": ["ACTOR.RUN.FAILED"],
        "requestUrl": listener.url,
        "payloadTemplate": '{"run": {{resource.id}}, "status": {{resource.status}}, '
                           '"event": {{eventType}}}',
        "headersTemplate": '{"X-Run": {{resource.id}}}',
    }])
    response = api.post("/acts/fail/run-sync", json={}, params={"webhooks": hooks})
    assert response.status_code == 400
    assert listener.arrived.wait(10)
    run_id = response.headers["X-Apify-Run-Id"]
    assert listener.received[0]["body"] == {"run": run_id, "status": "FAILED",
                                            "event": "ACTOR.RUN.FAILED"}
    assert listener.received[0]["headers"]["X-Run"] == run_id  # type: ignore[index]


def test_bad_webhooks_are_400(api: httpx.Client) -> None:
    for hooks in ([{"eventTypes": ["NOPE"], "requestUrl": "http://x"}],
                  [{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "file:///etc/passwd"}]):
        response = api.post("/acts/hello/run-sync", json={},
                            params={"webhooks": encode_webhooks(hooks)})
        assert response.status_code == 400


def test_failed_delivery_is_retried(api: httpx.Client) -> None:
    listener = WebhookListener(fail_first=1)
    try:
        hooks = encode_webhooks([{"eventTypes": ["ACTOR.RUN.SUCCEEDED"],
                                  "requestUrl": listener.url}])
        started = time.monotonic()
        response = api.post("/acts/hello/run-sync", json={}, params={"webhooks": hooks})
        assert response.status_code == 201
        assert time.monotonic() - started < 1  # the answer does not wait for the webhook
        assert listener.arrived.wait(10)
        assert listener.refused == 1 and len(listener.received) == 1
    finally:
        listener.close()
