"""Actor tasks over real HTTP: the official client unchanged, real Actor processes."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from apify_client import ApifyClient
from contract.openapi import check
from local_helpers import WARM_STARTS

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


def _name() -> str:
    return f"task-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(runtime: LocalRuntime) -> ApifyClient:
    return ApifyClient("any-token", api_url=runtime.url, max_retries=0)


def test_crud_with_the_official_client(client: ApifyClient, api: httpx.Client) -> None:
    name = _name()
    task = client.tasks().create(actor_id="hello", name=name, memory_mbytes=256,
                                 run_timeout=timedelta(seconds=120),
                                 task_input={"name": "Task", "count": 2})
    assert task.name == name and task.options is not None
    assert task.options.memory_mbytes == 256 and task.options.timeout_secs == 120
    hello = checked(api.get("/acts/hello"))["data"]
    assert task.act_id == hello["id"]

    got = client.task(task.id).get()
    assert got is not None and got.name == name
    by_name = checked(api.get(f"/actor-tasks/local~{name}"))["data"]
    assert by_name["id"] == task.id and by_name["input"] == {"name": "Task", "count": 2}

    listed = checked(api.get("/actor-tasks", params={"desc": "1", "limit": "1000"}))["data"]
    mine = [t for t in listed["items"] if t["id"] == task.id]
    assert mine and mine[0]["actName"] == "hello" and listed["desc"] is True
    assert client.tasks().list().total == listed["total"]

    # Options the update leaves out keep their values.
    updated = client.task(task.id).update(memory_mbytes=512, title="A title")
    assert updated.options is not None and updated.options.memory_mbytes == 512
    assert updated.options.timeout_secs == 120 and updated.title == "A title"
    checked(api.get(f"/actor-tasks/{task.id}"))

    assert client.task(task.id).get_input() == {"name": "Task", "count": 2}
    # As the spec says of PUT input: fields the body leaves out keep their value.
    assert client.task(task.id).update_input(task_input={"count": 5}) == {"name": "Task",
                                                                          "count": 5}
    assert checked(api.get(f"/actor-tasks/{task.id}/input")) == {"name": "Task", "count": 5}

    client.task(task.id).delete()
    assert client.task(task.id).get() is None
    gone = api.get(f"/actor-tasks/{task.id}")
    assert gone.status_code == 404 and checked(gone)["error"]["type"] == "record-not-found"


def test_call_merges_input_and_options(client: ApifyClient, api: httpx.Client) -> None:
    task = client.tasks().create(actor_id="hello", name=_name(), memory_mbytes=256,
                                 task_input={"name": "Saved", "count": 3})
    run = client.task(task.id).call(task_input={"count": 1}, memory_mbytes=512)
    assert run is not None and run.status == "SUCCEEDED"
    assert run.actor_task_id == task.id
    assert run.options.memory_mbytes == 512  # the query wins over the task's options
    run_dict = checked(api.get(f"/actor-runs/{run.id}"))["data"]
    record = api.get(f"/key-value-stores/{run_dict['defaultKeyValueStoreId']}/records/INPUT")
    # The body's field wins, the task's other field stays, the schema adds its default.
    assert record.json() == {"name": "Saved", "count": 1, "shout": False}
    items = client.dataset(run.default_dataset_id).list_items().items
    assert [i["greeting"] for i in items] == ["Hello, Saved!"]

    plain = checked(api.post(f"/actor-tasks/{task.id}/runs",
                             params={"waitForFinish": "30"}))["data"]
    assert plain["status"] == "SUCCEEDED" and plain["options"]["memoryMbytes"] == 256
    assert plain["actorTaskId"] == task.id

    runs = checked(api.get(f"/actor-tasks/{task.id}/runs"))["data"]
    assert [r["id"] for r in runs["items"]] == [run.id, plain["id"]]
    last = checked(api.get(f"/actor-tasks/{task.id}/runs/last",
                           params={"status": "SUCCEEDED"}))["data"]
    assert last["id"] == plain["id"]
    assert checked(api.get(f"/actor-tasks/{task.id}"))["data"]["stats"]["totalRuns"] == 2


def test_run_sync_and_dataset_items(client: ApifyClient, api: httpx.Client) -> None:
    name = _name()
    task = client.tasks().create(actor_id="hello", name=name,
                                 task_input={"name": "Sync", "count": 2})
    output = api.post(f"/actor-tasks/local~{name}/run-sync", json={"shout": True})
    assert output.status_code == 201
    assert [row["greeting"] for row in output.json()] == ["HELLO, SYNC!"] * 2
    run = checked(api.get(f"/actor-runs/{output.headers['X-Apify-Run-Id']}"))["data"]
    assert run["actorTaskId"] == task.id

    got = api.get(f"/actor-tasks/{task.id}/run-sync")  # GET: the task's input alone
    assert got.status_code == 201 and len(got.json()) == 2

    items = api.post(f"/actor-tasks/{task.id}/run-sync-get-dataset-items",
                     json={"count": 3}, params={"limit": "2"})
    assert items.status_code == 201
    checked(items)
    assert [i["n"] for i in items.json()] == [1, 2]
    assert items.headers["X-Apify-Pagination-Total"] == "3"


def test_refusals(client: ApifyClient, api: httpx.Client) -> None:
    missing = api.post("/actor-tasks", json={"actId": "no-such-actor", "name": _name()})
    assert missing.status_code == 404 and checked(missing)["error"]["type"] == "record-not-found"
    for body in ({"name": _name()}, {"actId": "hello", "name": "bad name!"},
                 {"actId": "hello", "name": _name(), "options": {"memoryMbytes": 300}},
                 {"actId": "hello", "name": _name(), "options": {"timeoutSecs": "soon"}},
                 {"actId": "hello", "name": _name(), "input": [1, 2]}):
        refused = api.post("/actor-tasks", json=body)
        assert refused.status_code == 400, body
        assert checked(refused)["error"]["type"] in ("invalid-input", "invalid-request")

    name = _name()
    assert api.post("/actor-tasks", json={"actId": "hello", "name": name}).status_code == 201
    twice = api.post("/actor-tasks", json={"actId": "hello", "name": name})
    assert twice.status_code == 409
    assert checked(twice)["error"]["type"] == "actor-task-name-not-unique"
    assert checked(api.get(f"/actor-tasks/local~{name}"))["data"]["name"] == name

    bad_input = api.post(f"/actor-tasks/local~{name}/run-sync", json={"count": 0})
    assert bad_input.status_code == 400
    assert checked(bad_input)["error"]["type"] == "invalid-input"
    for path in ("/actor-tasks/nope", "/actor-tasks/nope/runs", "/actor-tasks/nope/input",
                 "/actor-tasks/nope/runs/last", "/actor-tasks/someone~nope"):
        unknown = api.get(path)
        assert unknown.status_code == 404, path
        assert checked(unknown)["error"]["type"] == "record-not-found"


def test_tasks_outlive_a_restart(tmp_path: Path) -> None:
    def runtime() -> LocalRuntime:
        return LocalRuntime([TEST_ACTORS, SHIPPED_ACTORS], data_dir=tmp_path / "data",
                            kill_grace_secs=1.0, warm_starts=WARM_STARTS).start()

    first = runtime()
    try:
        client = ApifyClient("t", api_url=first.url, max_retries=0)
        task = client.tasks().create(actor_id="hello", name="kept", task_input={"count": 1})
        run = client.task(task.id).call()
        assert run is not None and run.status == "SUCCEEDED"
    finally:
        first.stop()
    second = runtime()
    try:
        client = ApifyClient("t", api_url=second.url, max_retries=0)
        again = client.task("local~kept").get()
        assert again is not None and again.id == task.id
        assert client.task(task.id).get_input() == {"count": 1}
        with httpx.Client(base_url=f"{second.url}/v2") as api:
            last = checked(api.get(f"/actor-tasks/{task.id}/runs/last"))["data"]
            assert last["id"] == run.id
            saved = json.loads((tmp_path / "data" / "runs" / run.id / "run.json").read_text())
            assert saved["actorTaskId"] == task.id
    finally:
        second.stop()
