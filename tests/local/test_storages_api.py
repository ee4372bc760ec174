"""Named and unnamed storages and request queues, through the official apify-client."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from apify_client import ApifyClient
from apify_client.errors import ApifyApiError

from apify_magic.local import LocalRuntime
from apify_magic.local.queues import request_id


def _client(runtime: LocalRuntime, key: str | None = None) -> ApifyClient:
    return ApifyClient("t", api_url=runtime.url, max_retries=0)


def test_named_storages_get_or_create_list_rename_delete(make_runtime: Any) -> None:
    runtime = make_runtime()
    client = _client(runtime)
    made = client.datasets().get_or_create(name="products")
    again = client.datasets().get_or_create(name="products")
    assert made.id == again.id and made.name == "products"
    unnamed = client.datasets().get_or_create()
    assert unnamed.name is None and unnamed.id != made.id
    assert [d.name for d in client.datasets().list().items] == ["products"]
    assert {d.id for d in client.datasets().list(unnamed=True).items} >= {made.id, unnamed.id}
    client.dataset(made.id).push_items([{"n": 1}, {"n": 2}])
    assert client.dataset("products").list_items().items == [{"n": 1}, {"n": 2}]
    assert client.dataset(made.id).get().item_count == 2
    renamed = client.dataset(made.id).update(name="goods")
    assert renamed.name == "goods" and client.dataset("local~goods").get().id == made.id
    client.dataset(made.id).delete()
    assert client.dataset(made.id).get() is None
    store = client.key_value_stores().get_or_create(name="cache")
    client.key_value_store(store.id).set_record("k", {"v": 1})
    assert client.key_value_store("cache").get_record("k")["value"] == {"v": 1}
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        bad = api.post("/datasets", params={"name": "no spaces"})
        assert bad.status_code == 400 and "not valid" in bad.json()["error"]["message"]
        clash = api.put(f"/key-value-stores/{store.id}",
                        json={"name": "cache"})  # its own name: fine
        assert clash.status_code == 200


def test_storages_survive_a_restart(make_runtime: Any, tmp_path: Path) -> None:
    first = make_runtime(actor_dirs=[])
    client = _client(first)
    queue = client.request_queues().get_or_create(name="todo")
    client.request_queue(queue.id).add_request({"url": "https://a.example", "uniqueKey": "a"})
    dataset = client.datasets().get_or_create(name="kept")
    client.dataset(dataset.id).push_items({"x": 1})
    first.stop()
    second = LocalRuntime([], data_dir=first.data_dir).start()
    try:
        client = _client(second)
        assert client.request_queue("todo").get().total_request_count == 1
        assert client.dataset("kept").list_items().items == [{"x": 1}]
    finally:
        second.stop()


def test_request_queue_order_dedup_and_handling(make_runtime: Any) -> None:
    runtime = make_runtime()
    client = _client(runtime)
    queue = client.request_queue(client.request_queues().get_or_create(name="q").id)
    added = queue.add_request({"url": "https://a.example/1", "uniqueKey": "one"})
    assert added.request_id == request_id("one") and not added.was_already_present
    queue.add_request({"url": "https://a.example/2", "uniqueKey": "two"})
    queue.add_request({"url": "https://a.example/0", "uniqueKey": "zero"}, forefront=True)
    dup = queue.add_request({"url": "https://a.example/1", "uniqueKey": "one"})
    assert dup.was_already_present and not dup.was_already_handled
    assert [r.unique_key for r in queue.list_head().items] == ["zero", "one", "two"]
    one = queue.get_request(added.request_id)
    assert one is not None and one.url == "https://a.example/1"
    queue.update_request({**one.model_dump(by_alias=True), "handledAt": "2026-12-02T00:00:00Z"})
    assert queue.add_request({"url": "x://1", "uniqueKey": "one"}).was_already_handled
    info = queue.get()
    assert (info.total_request_count, info.handled_request_count,
            info.pending_request_count) == (3, 1, 2)
    batch = queue.batch_add_requests([{"url": f"https://b.example/{i}", "uniqueKey": f"b{i}"}
                                      for i in range(30)])
    assert len(batch.processed_requests) == 30 and not batch.unprocessed_requests
    deleted = queue.batch_delete_requests([{"uniqueKey": "b0"}, {"uniqueKey": "b1"}])
    assert len(deleted.processed_requests) == 2
    assert queue.get().total_request_count == 31
    listed = queue.list_requests(limit=10)
    assert len(listed.items) == 10
    everything = list(queue.iterate_requests(chunk_size=7))
    assert len({r.id for r in everything}) == 31
    queue.delete_request(request_id("two"))
    assert queue.get_request(request_id("two")) is None


def test_locks_are_exclusive_expire_and_prolong(make_runtime: Any) -> None:
    runtime = make_runtime()
    client = _client(runtime)
    queue_id = client.request_queues().get_or_create(name="locks").id
    a = ApifyClient("t", api_url=runtime.url).request_queue(queue_id, client_key="a")
    b = ApifyClient("t", api_url=runtime.url).request_queue(queue_id, client_key="b")
    a.batch_add_requests([{"url": f"https://c.example/{i}", "uniqueKey": f"c{i}"}
                          for i in range(20)])

    def grab(queue: Any) -> list[str]:
        return [r.id for r in queue.list_and_lock_head(lock_duration=timedelta(seconds=30),
                                                        limit=3).items]

    with ThreadPoolExecutor(6) as pool:
        grabs = list(pool.map(grab, [a, b] * 3))
    taken = [rid for g in grabs for rid in g]
    assert len(taken) == 18 and len(set(taken)) == 18  # nobody got a locked request
    assert len(a.list_and_lock_head(lock_duration=timedelta(seconds=30), limit=5).items) == 2
    assert a.list_and_lock_head(lock_duration=timedelta(seconds=30)).items == []
    assert a.get().had_multiple_clients
    prolonged = a.prolong_request_lock(taken[0], lock_duration=timedelta(seconds=60))
    assert prolonged is not None
    a.delete_request_lock(taken[0], forefront=True)
    assert [r.id for r in a.list_head(limit=1).items] == [taken[0]]
    # Only the lock's owner prolongs or releases it; unlocking frees one's own locks only.
    theirs = grabs[1][0]  # locked by b
    for refused in (lambda: a.prolong_request_lock(theirs, lock_duration=timedelta(seconds=9)),
                    lambda: a.delete_request_lock(theirs)):
        with pytest.raises(ApifyApiError) as error:
            refused()
        assert error.value.status_code == 403
        assert error.value.type == "request-handled-or-locked"
    assert theirs not in [r.id for r in a.list_head(limit=50).items]
    assert a.unlock_requests().unlocked_count == 10  # a's 9 + 2 locks, one released above
    assert b.unlock_requests().unlocked_count == 9
    short = a.list_and_lock_head(lock_duration=timedelta(seconds=1), limit=20)
    assert len(short.items) == 20
    time.sleep(1.2)
    assert len(a.list_head(limit=50).items) == 20  # expired locks free the head again


def test_run_default_storages_under_the_run(make_runtime: Any) -> None:
    runtime = make_runtime()
    client = _client(runtime)
    run = client.actor("hello").call(run_input={"count": 1}, logger=None)
    assert run is not None
    queue = client.run(run.id).request_queue()
    queue.add_request({"url": "https://d.example", "uniqueKey": "d"})
    assert queue.get().total_request_count == 1
    assert client.request_queue(run.default_request_queue_id).get().total_request_count == 1
    last = client.actor("hello").last_run()
    assert len(last.request_queue().list_head().items) == 1
