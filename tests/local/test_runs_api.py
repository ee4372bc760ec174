"""The runs surface: lists, `runs/last` and its storages, run actions, builds, the account.

Each through the official apify-client where it has a call for it, else over plain HTTP.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from apify_client import ApifyClient

from apify_magic.local import LocalRuntime


def _client(runtime: LocalRuntime) -> ApifyClient:
    return ApifyClient("any-token", api_url=runtime.url, max_retries=0)


def _d(model: Any) -> Any:
    """The client's (pydantic) answer in the API's own field names."""
    if model is None:
        return None
    if isinstance(model, list):
        return [_d(m) for m in model]
    if isinstance(model, dict):
        return model
    return model.model_dump(by_alias=True, mode="json")


def _run(api: httpx.Client, actor: str, body: dict[str, Any], **params: Any) -> dict[str, Any]:
    answer = api.post(f"/actors/{actor}/runs", json=body, params={"waitForFinish": 30, **params})
    assert answer.status_code == 201, answer.text
    return dict(answer.json()["data"])


def _wait_status(api: httpx.Client, run_id: str, status: str, secs: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + secs
    while True:
        run = api.get(f"/actor-runs/{run_id}").json()["data"]
        if run["status"] == status or time.monotonic() > deadline:
            return dict(run)
        time.sleep(0.05)


def test_run_lists_page_sort_and_filter(make_runtime: Any) -> None:
    runtime = make_runtime()
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=60) as api:
        ids = [_run(api, "hello", {"count": 1})["id"] for _ in range(3)]
        failed = _run(api, "fail", {})
        assert failed["status"] == "FAILED"
    client = _client(runtime)
    listed = client.runs().list()
    assert [r["id"] for r in _d(listed.items)] == [*ids, failed["id"]]
    assert listed.total == 4
    page = client.runs().list(offset=1, limit=2, desc=True)
    assert [r["id"] for r in _d(page.items)] == [ids[2], ids[1]]
    assert (page.offset, page.limit, page.count, page.total, page.desc) == (1, 2, 2, 4, True)
    assert [r["id"] for r in _d(client.runs().list(status="FAILED").items)] == [failed["id"]]
    per_actor = client.actor("hello").runs().list(desc=True)
    assert [r["id"] for r in _d(per_actor.items)] == ids[::-1]
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        bad = api.get("/actor-runs", params={"status": "DONE"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid-request"


def test_last_run_and_its_storages(make_runtime: Any) -> None:
    runtime = make_runtime()
    client = _client(runtime)
    assert client.actor("hello").last_run().get() is None
    first = _d(client.actor("hello").call(run_input={"name": "A", "count": 2}, logger=None))
    assert first is not None
    client.actor("fail").call(run_input={}, logger=None)
    last = client.actor("hello").last_run(status="SUCCEEDED")
    assert _d(last.get())["id"] == first["id"]
    items = last.dataset().list_items().items
    assert [i["name"] for i in items] == ["A", "A"]
    record = last.key_value_store().get_record("OUTPUT")
    assert record is not None
    assert _d(record)["value"][0]["greeting"] == "Hello, A!"
    assert "Wrote 2 greetings" in (last.log().get() or "")
    assert client.actor("fail").last_run(status="SUCCEEDED").get() is None
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        by_actor = api.get(f"/acts/hello/runs/{first['id']}")
        assert by_actor.status_code == 200 and by_actor.json()["data"]["id"] == first["id"]
        other = api.get(f"/actors/fail/runs/{first['id']}")
        assert other.status_code == 404
        assert other.json()["error"]["type"] == "record-not-found"
        logs = api.get(f"/logs/{first['id']}")
        assert "Wrote 2 greetings" in logs.text


def test_abort_reboot_and_status_message_through_the_client(make_runtime: Any) -> None:
    runtime = make_runtime()
    client = _client(runtime)
    run = _d(client.actor("slow").start(run_input={"seconds": 30, "steps": 30}))
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=30) as api:
        _wait_status(api, run["id"], "RUNNING")
        rebooted = _d(client.run(run["id"]).reboot())
        assert rebooted["stats"]["rebootCount"] == 1
        assert _wait_status(api, run["id"], "RUNNING")["status"] == "RUNNING"
        updated = _d(client.run(run["id"]).update(status_message="Halfway",
                                                  is_status_message_terminal=False))
        assert updated["statusMessage"] == "Halfway"
        aborted = _d(client.actor("slow").last_run().abort())
        assert aborted["status"] in ("ABORTING", "ABORTED")
        assert _wait_status(api, run["id"], "ABORTED")["status"] == "ABORTED"
        again = api.post(f"/actor-runs/{run['id']}/reboot")
        assert again.status_code == 400, again.text


def test_metamorph_replaces_the_process_on_the_same_storages(make_runtime: Any) -> None:
    runtime = make_runtime()
    client = _client(runtime)
    run = _d(client.actor("slow").start(run_input={"seconds": 30, "steps": 30}))
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=30) as api:
        _wait_status(api, run["id"], "RUNNING")
        morphed = _d(client.run(run["id"]).metamorph(target_actor_id="hello",
                                                     run_input={"name": "Morph", "count": 1}))
        assert morphed["metamorphs"][0]["inputKey"] == "INPUT-METAMORPH-1"
        done = _wait_status(api, run["id"], "SUCCEEDED")
    assert done["status"] == "SUCCEEDED", done
    assert done["defaultDatasetId"] == run["defaultDatasetId"]
    items = client.run(run["id"]).dataset().list_items().items
    assert items == [{"n": 1, "greeting": "Hello, Morph!", "name": "Morph"}]


def test_resurrect_runs_again_on_the_same_storages(make_runtime: Any) -> None:
    runtime = make_runtime()
    client = _client(runtime)
    first = _d(client.actor("hello").call(run_input={"count": 2}, logger=None))
    assert first is not None
    resurrected = _d(client.run(first["id"]).resurrect(memory_mbytes=512))
    assert resurrected["stats"]["resurrectCount"] == 1
    assert resurrected["options"]["memoryMbytes"] == 512
    done = _d(client.run(first["id"]).wait_for_finish(wait_duration=timedelta(seconds=30)))
    assert done is not None and done["status"] == "SUCCEEDED"
    # The second process appended to the same dataset.
    assert len(client.run(first["id"]).dataset().list_items().items) == 4
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        run = _run(api, "slow", {"seconds": 20, "steps": 20}, waitForFinish=0)
        busy = api.post(f"/actor-runs/{run['id']}/resurrect")
        assert busy.status_code == 400
        api.post(f"/actor-runs/{run['id']}/abort")


def test_charge_counts_events_once_per_idempotency_key(make_runtime: Any) -> None:
    runtime = make_runtime()
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=30) as api:
        run = _run(api, "slow", {"seconds": 20, "steps": 20}, waitForFinish=0)
        for key in ("a", "a", "b"):
            answer = api.post(f"/actor-runs/{run['id']}/charge",
                              json={"eventName": "page", "count": 2},
                              headers={"idempotency-key": key})
            assert answer.status_code == 201, answer.text
        bad = api.post(f"/actor-runs/{run['id']}/charge", json={"eventName": "", "count": 1})
        assert bad.status_code == 400
        assert api.get(f"/actor-runs/{run['id']}").json()["data"]["chargedEventCounts"] == {
            "page": 4}
        api.post(f"/actor-runs/{run['id']}/abort")


def test_delete_a_finished_run(make_runtime: Any) -> None:
    runtime = make_runtime()
    client = _client(runtime)
    run = _d(client.actor("hello").call(run_input={}, logger=None))
    assert run is not None
    client.run(run["id"]).delete()
    assert client.run(run["id"]).get() is None
    assert client.dataset(run["defaultDatasetId"]).get() is None


def test_validate_input_builds_and_account(runtime: LocalRuntime) -> None:
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        ok = api.post("/actors/hello/validate-input", json={"count": 2})
        assert ok.status_code == 200 and ok.json() == {"valid": True}
        bad = api.post("/acts/hello/validate-input", json={"count": 0})
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid-input"
        builds = api.get("/actors/hello/builds").json()["data"]
        assert builds["total"] == 1 and builds["items"][0]["status"] == "SUCCEEDED"
        build_id = builds["items"][0]["id"]
        assert api.get(f"/actors/hello/builds/{build_id}").json()["data"]["id"] == build_id
        assert api.get("/actor-builds").json()["data"]["total"] >= 2
        assert "no build step" in api.get(f"/actor-builds/{build_id}/log").text
    client = _client(runtime)
    me = _d(client.user().get())
    assert me is not None and me["username"] == "local"
    limits = _d(client.user().limits())
    assert limits is not None
    assert limits["limits"]["maxActorMemoryGbytes"] == runtime.runner.memory_budget_mbytes / 1024


@pytest.mark.parametrize("path", ["/v2/actor-runs/nope", "/v2/actors/hello/runs/last/log"])
def test_missing_runs_are_record_not_found(make_runtime: Any, path: str) -> None:
    runtime = make_runtime()
    answer = httpx.get(runtime.url + path)
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "record-not-found"
