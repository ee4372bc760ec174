"""Writing a run's default storages over the API, as SDK Actors at home do."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from apify_client import ApifyClient

from apify_magic.local import LocalRuntime


def _run(runtime: LocalRuntime) -> dict[str, Any]:
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=60) as api:
        return dict(api.post("/actors/hello/runs", json={"count": 1},
                             params={"waitForFinish": 30}).json()["data"])


def test_records_set_get_list_and_delete_with_the_client(make_runtime: Any) -> None:
    runtime = make_runtime()
    run = _run(runtime)
    store = ApifyClient("t", api_url=runtime.url).key_value_store(run["defaultKeyValueStoreId"])
    store.set_record("a-json", {"x": 1})
    store.set_record("b-text", "words", content_type="text/plain; charset=utf-8")
    store.set_record("c-bytes", b"\x00\x01", content_type="application/octet-stream")
    assert store.get_record("a-json")["value"] == {"x": 1}
    assert store.get_record("b-text")["value"] == "words"
    assert store.get_record("c-bytes")["value"] == b"\x00\x01"
    assert store.record_exists("b-text") and not store.record_exists("nope")
    first = store.list_keys(limit=2)
    assert [i.key for i in first.items] == ["INPUT", "OUTPUT"] and first.is_truncated
    rest = store.list_keys(exclusive_start_key=first.next_exclusive_start_key)
    assert [i.key for i in rest.items] == ["a-json", "b-text", "c-bytes"]
    assert not rest.is_truncated
    assert [i.key for i in store.list_keys(prefix="b").items] == ["b-text"]
    store.delete_record("a-json")
    assert store.get_record("a-json") is None
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        gone = api.delete(f"/key-value-stores/{run['defaultKeyValueStoreId']}/records/a-json")
        assert gone.status_code == 404


def test_pushed_items_keep_their_order_and_none_is_lost(make_runtime: Any) -> None:
    runtime = make_runtime()
    run = _run(runtime)
    dataset = ApifyClient("t", api_url=runtime.url).dataset(run["defaultDatasetId"])
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: dataset.push_items([{"t": n, "i": i} for i in range(5)]),
                      range(20)))
    dataset.push_items({"single": True})
    items = dataset.list_items().items
    assert len(items) == 1 + 100 + 1  # hello's own item first
    assert sorted((i["t"], i["i"]) for i in items[1:-1]) == [
        (t, i) for t in range(20) for i in range(5)]
    for n in range(20):  # each push landed in one piece, in order
        mine = [i["i"] for i in items if i.get("t") == n]
        assert mine == list(range(5))
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        bad = api.post(f"/datasets/{run['defaultDatasetId']}/items", json=[1, 2])
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid-input"


def test_an_sdk_actor_at_home_keeps_everything_through_the_api(make_runtime: Any) -> None:
    pytest.importorskip("apify")
    runtime = make_runtime(sdk_at_home=True)
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=90) as api:
        answer = api.post("/actors/sdk-table/run-sync", json={"rows": 3, "prefix": "p"})
        assert answer.status_code == 201, answer.text
        run = api.get(f"/actor-runs/{answer.headers['x-apify-run-id']}").json()["data"]
        items = api.get(f"/datasets/{run['defaultDatasetId']}/items").json()
        log = api.get(f"/actor-runs/{run['id']}/log").text
    assert answer.json() == [{"id": i, "label": f"p-{i}", "square": i * i} for i in (1, 2, 3)]
    assert items == answer.json()
    assert run["statusMessage"] == "Wrote 3 rows"
    assert "[Status message]" not in log  # so it came by PUT, not from the log
    assert "running on the Apify platform" in log


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_an_item_with_a_lone_surrogate_is_served(make_runtime: Any, fmt: str) -> None:
    runtime = make_runtime()
    run = _run(runtime)
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        pushed = api.post(f"/datasets/{run['defaultDatasetId']}/items",
                          content=b'[{"text": "a\\udc80b"}]',
                          headers={"Content-Type": "application/json"})
        assert pushed.status_code == 201, pushed.text
        page = api.get(f"/datasets/{run['defaultDatasetId']}/items", params={"format": fmt})
    assert page.status_code == 200
    if fmt == "csv":
        assert "a\\udc80b" in page.text
    else:
        last = page.text.strip().splitlines()[-1] if fmt == "jsonl" else page.text
        found = json.loads(last)
        assert (found[-1] if fmt == "json" else found) == {"text": "a\udc80b"}


def test_concurrent_first_reads_of_a_finished_dataset_all_succeed(make_runtime: Any) -> None:
    # The first read of a finished dataset builds its JSON-lines copy; readers in parallel
    # (the magic reads several pages at once) each build one, and each must succeed.
    for _ in range(3):
        runtime = make_runtime()
        with httpx.Client(base_url=f"{runtime.url}/v2", timeout=60) as api:
            run = api.post("/acts/hello/runs", params={"waitForFinish": 30},
                           json={"count": 200}).json()["data"]
            assert run["status"] == "SUCCEEDED"
            url = f"/datasets/{run['defaultDatasetId']}/items"
            def page(n: int, url: str = url) -> httpx.Response:
                return api.get(url, params={"offset": n * 10, "limit": 10})

            with ThreadPoolExecutor(16) as pool:
                pages = list(pool.map(page, range(16)))
        assert [p.status_code for p in pages] == [200] * 16
        assert [len(p.json()) for p in pages] == [10] * 16
