"""Saved webhooks and their dispatches over real HTTP, delivered to a loopback listener."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apify_client import ApifyClient
from contract.openapi import check
from local_helpers import WARM_STARTS, WebhookListener, encode_webhooks

from apify_magic.local import LocalRuntime
from apify_magic.local.registry import SHIPPED_ACTORS

TEST_ACTORS = Path(__file__).parent / "actors"


def checked(response: httpx.Response) -> Any:
    """The response's JSON, after it is validated against the spec's schema for it."""
    result = check(response.request.method, response.request.url.path, response.status_code,
                   response.headers.get("content-type"), response.content)
    assert result.ok, (result.operation_id, result.problems)
    assert result.operation_id is not None
    return response.json() if response.content else None


def wait_for(condition: Callable[[], Any], secs: float = 15.0) -> Any:
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def listener() -> Iterator[WebhookListener]:
    listener = WebhookListener()
    yield listener
    listener.close()


@pytest.fixture
def client(runtime: LocalRuntime) -> ApifyClient:
    return ApifyClient("any-token", api_url=runtime.url, max_retries=0)


def _dispatches(api: httpx.Client, webhook_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = checked(api.get(f"/webhooks/{webhook_id}/dispatches"))[
        "data"]["items"]
    return items


def test_crud_test_and_dispatches_with_the_official_client(
        client: ApifyClient, api: httpx.Client, listener: WebhookListener) -> None:
    key = uuid.uuid4().hex
    hook = client.webhooks().create(event_types=["ACTOR.RUN.SUCCEEDED"],
                                    request_url=listener.url, actor_id="hello",
                                    description="first", idempotency_key=key)
    again = client.webhooks().create(event_types=["ACTOR.RUN.FAILED"],
                                     request_url=listener.url, actor_id="hello",
                                     idempotency_key=key)
    assert again.id == hook.id  # the same key: the webhook the first call made
    shown = checked(api.get(f"/webhooks/{hook.id}"))["data"]
    assert shown["eventTypes"] == ["ACTOR.RUN.SUCCEEDED"] and shown["isAdHoc"] is False
    assert shown["condition"]["actorId"] == checked(api.get("/acts/hello"))["data"]["id"]
    listed = checked(api.get("/webhooks"))["data"]
    assert hook.id in [h["id"] for h in listed["items"]]
    assert client.webhooks().list().total == listed["total"]
    of_actor = checked(api.get("/acts/hello/webhooks"))["data"]["items"]
    assert hook.id in [h["id"] for h in of_actor]

    updated = client.webhook(hook.id).update(description="second",
                                             event_types=["ACTOR.RUN.FAILED"])
    assert updated.description == "second" and updated.event_types == ["ACTOR.RUN.FAILED"]
    assert str(updated.request_url) == listener.url  # left out: kept

    dispatch = client.webhook(hook.id).test()
    assert dispatch.webhook_id == hook.id and dispatch.event_type == "TEST"
    assert listener.arrived.wait(10)
    sent = listener.received[0]
    assert sent["body"]["eventType"] == "TEST"  # type: ignore[index]
    assert sent["headers"]["X-Apify-Webhook-Dispatch-Id"] == dispatch.id  # type: ignore[index]
    done = wait_for(lambda: [d for d in _dispatches(api, hook.id)
                             if d["id"] == dispatch.id and d["status"] != "ACTIVE"])[0]
    assert done["status"] == "SUCCEEDED" and done["calls"][0]["responseStatus"] == 200
    listed_by_client = client.webhook(hook.id).dispatches().list()
    assert [d.id for d in listed_by_client.items] == [dispatch.id]
    one = checked(api.get(f"/webhook-dispatches/{dispatch.id}"))["data"]
    assert one["webhookId"] == hook.id
    assert dispatch.id in [d["id"] for d in checked(api.get("/webhook-dispatches",
                                                            params={"desc": "1"}))["data"]["items"]]
    stats = checked(api.get(f"/webhooks/{hook.id}"))["data"]
    assert stats["stats"]["totalDispatches"] == 1
    assert stats["lastDispatch"]["status"] == "SUCCEEDED"

    client.webhook(hook.id).delete()
    assert client.webhook(hook.id).get() is None
    gone = api.get(f"/webhooks/{hook.id}")
    assert gone.status_code == 404 and checked(gone)["error"]["type"] == "record-not-found"


def test_a_task_webhook_fires_on_the_task_run(
        client: ApifyClient, api: httpx.Client, listener: WebhookListener) -> None:
    task = client.tasks().create(actor_id="hello", name=f"hooked-{uuid.uuid4().hex[:8]}",
                                 task_input={"count": 1})
    hook = checked(api.post("/webhooks", json={
        "eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": listener.url,
        "condition": {"actorTaskId": task.id},
        "payloadTemplate": '{"run": {{resource.id}}, "task": {{eventData.actorTaskId}}, '
                           '"text": "run {{resource.id}}"}',
        "headersTemplate": '{"X-Task": {{eventData.actorTaskId}}, "Content-Type": "x/y"}',
    }))["data"]
    of_task = checked(api.get(f"/actor-tasks/{task.id}/webhooks"))["data"]["items"]
    assert [h["id"] for h in of_task] == [hook["id"]]

    plain = api.post("/acts/hello/run-sync", json={"count": 1})  # not the task: no delivery
    assert plain.status_code == 201
    run = client.task(task.id).call()
    assert run is not None and run.status == "SUCCEEDED"
    assert listener.arrived.wait(10)
    time.sleep(0.3)
    assert len(listener.received) == 1
    sent = listener.received[0]
    # Outside a string a variable is its JSON; inside one it stays as written.
    assert sent["body"] == {"run": run.id, "task": task.id, "text": "run {{resource.id}}"}
    headers: Any = sent["headers"]
    assert headers["X-Task"] == task.id and headers["Content-Type"] == "application/json"
    assert headers["X-Apify-Webhook"] == hook["id"]
    dispatch = wait_for(lambda: [d for d in _dispatches(api, hook["id"])
                                 if d["status"] == "SUCCEEDED"])[0]
    assert dispatch["eventType"] == "ACTOR.RUN.SUCCEEDED"
    assert dispatch["eventData"] == {"actorId": run.act_id, "actorRunId": run.id,
                                     "actorTaskId": task.id}


def test_interpolated_strings_and_a_run_condition(api: httpx.Client,
                                                  listener: WebhookListener) -> None:
    started = checked(api.post("/acts/slow/runs", params={"waitForFinish": "0"},
                               json={"seconds": 1}))["data"]
    hook = checked(api.post("/webhooks", json={
        "eventTypes": ["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.FAILED"], "requestUrl": listener.url,
        "condition": {"actorRunId": started["id"]}, "shouldInterpolateStrings": True,
        "payloadTemplate": '{"text": "run {{resource.id}} is {{resource.status}}", '
                           '"whole": "{{eventData}}"}',
    }))["data"]
    assert hook["condition"] == {"actorRunId": started["id"]}
    assert listener.arrived.wait(20)
    body: Any = listener.received[0]["body"]
    status = checked(api.get(f"/actor-runs/{started['id']}"))["data"]["status"]
    assert body["text"] == f"run {started['id']} is {status}"
    assert body["whole"] == {"actorId": started["actId"], "actorRunId": started["id"]}


def test_ad_hoc_webhooks_are_recorded_as_dispatches(api: httpx.Client,
                                                    listener: WebhookListener) -> None:
    hooks = encode_webhooks([{"eventTypes": ["ACTOR.RUN.SUCCEEDED"],
                              "requestUrl": listener.url}])
    response = api.post("/acts/hello/run-sync", json={"count": 1}, params={"webhooks": hooks})
    assert response.status_code == 201
    run_id = response.headers["X-Apify-Run-Id"]
    assert listener.arrived.wait(10)
    listed = checked(api.get("/webhooks", params={"limit": "1000"}))["data"]["items"]
    mine = [h for h in listed if h["condition"].get("actorRunId") == run_id]
    assert len(mine) == 1 and mine[0]["isAdHoc"] is True
    dispatch = wait_for(lambda: [d for d in _dispatches(api, mine[0]["id"])
                                 if d["status"] == "SUCCEEDED"])[0]
    assert dispatch["webhook"]["isAdHoc"] is True


def test_failed_calls_are_recorded_and_do_not_retry(api: httpx.Client) -> None:
    # Each listener refuses its first request with 503.
    listeners = [WebhookListener(fail_first=1), WebhookListener(fail_first=1)]
    ids: list[str] = []
    try:
        for listener, once in zip(listeners, (True, False), strict=True):
            hook = checked(api.post("/webhooks", json={
                "eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": listener.url,
                "condition": {"actorId": "hello"}, "doNotRetry": once}))["data"]
            ids.append(hook["id"])
            checked(api.post(f"/webhooks/{hook['id']}/test"))
        failed = wait_for(lambda: [d for d in _dispatches(api, ids[0])
                                   if d["status"] != "ACTIVE"])[0]
        assert failed["status"] == "FAILED" and len(failed["calls"]) == 1
        assert failed["calls"][0]["responseStatus"] == 503
        assert failed["calls"][0]["errorMessage"]
        ok = wait_for(lambda: [d for d in _dispatches(api, ids[1])
                               if d["status"] != "ACTIVE"])[0]
        assert ok["status"] == "SUCCEEDED"
        assert [c["responseStatus"] for c in ok["calls"]] == [503, 200]
        assert listeners[0].received == [] and len(listeners[1].received) == 1
    finally:
        for hook_id in ids:
            api.delete(f"/webhooks/{hook_id}")
        for listener in listeners:
            listener.close()


def test_refusals(api: httpx.Client) -> None:
    good = {"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "http://127.0.0.1:9/x",
            "condition": {"actorId": "hello"}}
    for change in ({"eventTypes": ["NOPE"]}, {"eventTypes": []},
                   {"requestUrl": "file:///etc/passwd"}, {"condition": {}},
                   {"payloadTemplate": '{"a": '}, {"headersTemplate": "[1]"},
                   {"doNotRetry": "yes"}, {"condition": None}):
        refused = api.post("/webhooks", json={**good, **change})
        assert refused.status_code == 400, change
        assert checked(refused)["error"]["type"] == "invalid-input"
    for condition in ({"actorId": "no-such-actor"}, {"actorTaskId": "nope"},
                      {"actorRunId": "nope"}):
        missing = api.post("/webhooks", json={**good, "condition": condition})
        assert missing.status_code == 404, condition
        checked(missing)
    for method, path in (("GET", "/webhooks/nope"), ("PUT", "/webhooks/nope"),
                         ("DELETE", "/webhooks/nope"), ("POST", "/webhooks/nope/test"),
                         ("GET", "/webhooks/nope/dispatches"),
                         ("GET", "/webhook-dispatches/nope")):
        unknown = api.request(method, path, json={} if method == "PUT" else None)
        assert unknown.status_code == 404, path
        assert checked(unknown)["error"]["type"] == "record-not-found"


def test_webhooks_outlive_a_restart(tmp_path: Path, listener: WebhookListener) -> None:
    def runtime() -> LocalRuntime:
        return LocalRuntime([TEST_ACTORS, SHIPPED_ACTORS], data_dir=tmp_path / "data",
                            kill_grace_secs=1.0, warm_starts=WARM_STARTS).start()

    first = runtime()
    try:
        client = ApifyClient("t", api_url=first.url, max_retries=0)
        hook = client.webhooks().create(event_types=["ACTOR.RUN.SUCCEEDED"],
                                        request_url=listener.url, actor_id="hello")
    finally:
        first.stop()
    second = runtime()
    try:
        client = ApifyClient("t", api_url=second.url, max_retries=0)
        kept = client.webhook(hook.id).get()
        assert kept is not None and kept.event_types == ["ACTOR.RUN.SUCCEEDED"]
        run = client.actor("hello").call(run_input={"count": 1}, logger=None)
        assert run is not None and run.status == "SUCCEEDED"
        assert listener.arrived.wait(10)
        assert listener.received[0]["body"]["resource"]["id"] == run.id  # type: ignore[index]
    finally:
        second.stop()
