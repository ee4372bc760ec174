"""The API the clients use, over real loopback HTTP, with the official apify-client."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from apify_client import ApifyClient

from apify_magic.local import LocalRuntime


def run_sync(api: httpx.Client, actor: str, body: object = None, **params: object
             ) -> httpx.Response:
    return api.post(f"/actors/{actor}/run-sync", params=params,
                    content=json.dumps(body if body is not None else {}),
                    headers={"Content-Type": "application/json"})


def test_apify_client_call_get_record_list_items_and_abort(runtime: LocalRuntime) -> None:
    client = ApifyClient("any-token", api_url=runtime.url)
    run = client.actor("hello").call(run_input={"name": "Bo", "count": 4}, logger=None)
    assert run is not None and run.status == "SUCCEEDED"

    record = client.key_value_store(run.default_key_value_store_id).get_record("OUTPUT")
    assert record is not None
    assert record["value"] == [{"n": i, "greeting": "Hello, Bo!", "name": "Bo"}
                               for i in range(1, 5)]
    assert record["content_type"].startswith("application/json")

    items = client.dataset(run.default_dataset_id).list_items()
    assert items.total == 4 and [i["n"] for i in items.items] == [1, 2, 3, 4]
    page = client.dataset(run.default_dataset_id).list_items(offset=1, limit=2, desc=True)
    assert [i["n"] for i in page.items] == [3, 2] and page.total == 4

    started = client.actor("slow").start(run_input={"seconds": 30})
    aborted = client.run(started.id).abort()
    assert aborted is not None and aborted.status in ("ABORTING", "ABORTED")
    finished = client.run(started.id).wait_for_finish(wait_duration=None)
    assert finished is not None and finished.status == "ABORTED"

    build = client.actor("hello").default_build().get()
    assert build is not None and build.actor_definition is not None
    assert build.actor_definition.input is not None
    actor = client.actor("~hello").get()
    assert actor is not None and actor.name == "hello"


def test_run_sync_returns_the_raw_output_record(api: httpx.Client) -> None:
    response = run_sync(api, "hello", {"name": "Ann", "count": 2})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == [{"n": 1, "greeting": "Hello, Ann!", "name": "Ann"},
                               {"n": 2, "greeting": "Hello, Ann!", "name": "Ann"}]


def test_run_sync_get_variant_runs_with_default_input(api: httpx.Client) -> None:
    response = api.get("/acts/hello/run-sync")
    assert response.status_code == 201
    assert [row["name"] for row in response.json()] == ["world"] * 3


def test_schema_defaults_are_merged_into_input(api: httpx.Client) -> None:
    response = run_sync(api, "hello", {})
    assert [row["name"] for row in response.json()] == ["world"] * 3
    run_id = response.headers["X-Apify-Run-Id"]
    stored = api.get(f"/actor-runs/{run_id}/key-value-store/records/INPUT").json()
    assert stored == {"name": "world", "count": 3, "shout": False}


def test_sdk_actor_pushes_items_and_sets_output(api: httpx.Client) -> None:
    response = run_sync(api, "sdk-table", {"rows": 3, "prefix": "row"})
    assert response.status_code == 201, response.text
    assert response.json() == [{"id": i, "label": f"row-{i}", "square": i * i}
                               for i in (1, 2, 3)]
    run = api.get(f"/actor-runs/{response.headers['X-Apify-Run-Id']}").json()["data"]
    assert run["statusMessage"] == "Wrote 3 rows"
    items = api.get(f"/datasets/{run['defaultDatasetId']}/items")
    assert [i["id"] for i in items.json()] == [1, 2, 3]


def test_run_sync_get_dataset_items_formats_and_headers(api: httpx.Client) -> None:
    url = "/acts/hello/run-sync-get-dataset-items"
    body = json.dumps({"name": "Cy", "count": 5})
    headers = {"Content-Type": "application/json"}
    response = api.post(url, content=body, headers=headers,
                        params={"offset": 1, "limit": 2, "desc": "true", "fields": "n,name"})
    assert response.status_code == 201
    assert response.json() == [{"n": 4, "name": "Cy"}, {"n": 3, "name": "Cy"}]
    assert {k: v for k, v in response.headers.items() if k.startswith("x-apify-pagination")} == {
        "x-apify-pagination-offset": "1", "x-apify-pagination-limit": "2",
        "x-apify-pagination-count": "2", "x-apify-pagination-total": "5",
        "x-apify-pagination-desc": "true"}
    csv = api.post(url, content=body, headers=headers,
                   params={"format": "csv", "omit": "greeting", "limit": 2})
    assert csv.text == "n,name\n1,Cy\n2,Cy\n"
    assert csv.headers["content-type"].startswith("text/csv")
    jsonl = api.post(url, content=body, headers=headers, params={"format": "jsonl", "clean": 1})
    assert [json.loads(line)["n"] for line in jsonl.text.splitlines()] == [1, 2, 3, 4, 5]
    bad = api.post(url, content=body, headers=headers, params={"format": "xlsx"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid-request"


def test_failed_run_is_run_failed_with_the_platform_message(api: httpx.Client) -> None:
    response = run_sync(api, "fail", {"message": "nope"})
    assert response.status_code == 400
    error = response.json()["error"]
    run_id = response.headers["X-Apify-Run-Id"]
    assert error == {"type": "run-failed",
                     "message": f"Actor run did not succeed (run ID: {run_id}, status: FAILED)"}
    assert len(run_id) == 17 and run_id.isalnum()
    run = api.get(f"/actor-runs/{run_id}").json()["data"]
    assert run["status"] == "FAILED" and run["exitCode"] == 1
    assert run["statusMessage"] == "nope"
    assert "Error: nope" in api.get(f"/actor-runs/{run_id}/log").text


def test_missing_output_record_is_an_empty_201(api: httpx.Client) -> None:
    response = run_sync(api, "hello", {}, outputRecordKey="NOTHING")
    assert response.status_code == 201 and response.content == b""


def test_unknown_actor_is_404_record_not_found(api: httpx.Client) -> None:
    for actor in ("nope", "someone~hello", "~nope"):
        response = run_sync(api, actor)
        assert response.status_code == 404
        assert response.json() == {"error": {"type": "record-not-found",
                                             "message": "Actor was not found"}}


def test_actor_ids_and_both_prefixes(api: httpx.Client) -> None:
    actor = api.get("/actors/hello").json()["data"]
    assert actor["name"] == "hello" and actor["username"] == "local"
    assert len(actor["id"]) == 17
    for actor_id in ("hello", "~hello", "local~hello", "local%7Ehello", actor["id"]):
        for prefix in ("acts", "actors"):
            assert api.get(f"/{prefix}/{actor_id}").json()["data"]["id"] == actor["id"]
    assert run_sync(api, actor["id"], {"count": 1}).status_code == 201


def test_default_build_carries_the_input_schema(api: httpx.Client) -> None:
    build = api.get("/acts/hello/builds/default").json()["data"]
    schema = build["actorDefinition"]["input"]
    assert schema["properties"]["name"]["default"] == "world"
    assert schema["properties"]["count"] == {
        "title": "Count", "type": "integer", "description": "How many greetings (rows) to write.",
        "editor": "number", "default": 3, "minimum": 1, "maximum": 1000}
    assert build["status"] == "SUCCEEDED" and build["buildNumber"] == "0.1.1"


def test_builds_match_tag_version_and_number(api: httpx.Client) -> None:
    for build in ("latest", "beta", "1.2", "1.2.1"):
        assert run_sync(api, "echo-env", build=build).status_code == 201, build
    response = run_sync(api, "echo-env", build="9.9")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "unknown-build-tag"


def test_environment_and_older_output_layout(api: httpx.Client) -> None:
    response = api.post("/actors/echo-env/run-sync", content=b"plain words",
                        headers={"Content-Type": "text/plain"},
                        params={"memory": 256, "timeout": 30, "maxItems": 7,
                                "maxTotalChargeUsd": 1.5, "restartOnError": "true"})
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    out = response.json()
    env = out["env"]
    run = api.get(f"/actor-runs/{response.headers['X-Apify-Run-Id']}").json()["data"]
    assert base64.b64decode(out["input"]) == b"plain words"
    assert out["inputContentType"] == "text/plain"
    assert env["ACTOR_RUN_ID"] == run["id"] and env["ACTOR_ID"] == run["actId"]
    assert env["ACTOR_DEFAULT_KEY_VALUE_STORE_ID"] == run["defaultKeyValueStoreId"]
    assert env["ACTOR_DEFAULT_DATASET_ID"] == run["defaultDatasetId"]
    assert env["ACTOR_MEMORY_MBYTES"] == "256" and env["ACTOR_INPUT_KEY"] == "INPUT"
    assert env["ACTOR_MAX_PAID_DATASET_ITEMS"] == "7"
    assert env["ACTOR_MAX_TOTAL_CHARGE_USD"] == "1.5"
    assert env["ACTOR_RESTART_ON_ERROR"] == "1" and env["ACTOR_BUILD_NUMBER"] == "1.2.1"
    assert env["ACTOR_TIMEOUT_AT"].endswith("Z") and len(env["ACTOR_TIMEOUT_AT"]) == 24
    assert env["APIFY_LOCAL_STORAGE_DIR"] == env["CRAWLEE_STORAGE_DIR"]
    assert env["APIFY_LOCAL_STORAGE_DIR"].endswith(f"{run['id']}/storage")
    # At home, as on the platform: the SDK uses the runtime's API, never the cloud's.
    assert env["APIFY_IS_AT_HOME"] == "1" and env["GREETING"] == "hi"
    assert env["APIFY_API_BASE_URL"] == env["APIFY_API_PUBLIC_BASE_URL"] == runtime_url(api)
    assert run["options"] == {"build": "latest", "timeoutSecs": 30, "memoryMbytes": 256,
                              "diskMbytes": 512, "maxItems": 7, "maxTotalChargeUsd": 1.5}


@pytest.mark.parametrize(("params", "error_type"), [
    ({"memory": 100}, "invalid-request"),
    ({"memory": 65536}, "invalid-request"),
    ({"timeout": -1}, "invalid-request"),
    ({"maxItems": 0}, "max-items-must-be-greater-than-zero"),
    ({"maxTotalChargeUsd": 0}, "max-total-charge-usd-must-be-greater-than-zero"),
    ({"restartOnError": "maybe"}, "invalid-request"),
    ({"webhooks": "not base64!"}, "invalid-request"),
])
def test_bad_run_options_are_400(api: httpx.Client, params: dict[str, object],
                                 error_type: str) -> None:
    response = run_sync(api, "hello", **params)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == error_type


def test_invalid_input_is_400_and_starts_nothing(runtime: LocalRuntime, api: httpx.Client
                                                 ) -> None:
    before = set(runtime.runner.runs)
    folders = set((runtime.data_dir / "runs").iterdir())
    for body, message in [
        ({"count": 0}, "Input is not valid: Field input.count must be >= 1"),
        ({"count": "3"}, "Input is not valid: Field input.count must be integer"),
        ({"name": 5}, "Input is not valid: Field input.name must be string"),
        ([1, 2], "Input is not valid: INPUT must be a JSON object"),
    ]:
        response = run_sync(api, "hello", body)
        assert response.status_code == 400
        assert response.json()["error"] == {"type": "invalid-input", "message": message}
    assert set(runtime.runner.runs) == before
    assert set((runtime.data_dir / "runs").iterdir()) == folders


def test_async_run_wait_for_finish_status_messages_and_log(api: httpx.Client) -> None:
    started = api.post("/actors/slow/runs", json={"seconds": 1.5, "steps": 3})
    assert started.status_code == 201
    run = started.json()["data"]
    assert run["status"] == "RUNNING"
    seen = set()
    deadline = time.monotonic() + 10
    while run["status"] == "RUNNING" and time.monotonic() < deadline:
        run = api.get(f"/actor-runs/{run['id']}").json()["data"]
        seen.add(run["statusMessage"])
        time.sleep(0.1)
    assert any(m and m.startswith("Working: step") for m in seen), seen
    run = api.get(f"/actor-runs/{run['id']}", params={"waitForFinish": 999999}).json()["data"]
    assert run["status"] == "SUCCEEDED" and run["statusMessage"] == "Done"
    assert run["isStatusMessageTerminal"] is True and run["finishedAt"].endswith("Z")
    log = api.get(f"/actor-runs/{run['id']}/log", params={"stream": "true", "raw": "true"})
    assert "[Status message]: Working: step 3 of 3" in log.text
    record = api.get(f"/key-value-stores/{run['defaultKeyValueStoreId']}/records/OUTPUT",
                     params={"attachment": "true"})
    assert record.json()["steps"] == 3
    head = api.head(f"/key-value-stores/{run['defaultKeyValueStoreId']}/records/OUTPUT")
    assert head.status_code == 200 and head.content == b""
    missing = api.get(f"/key-value-stores/{run['defaultKeyValueStoreId']}/records/NOPE")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "record-not-found"


def test_wait_for_finish_is_capped_not_refused(api: httpx.Client) -> None:
    run = api.post("/actors/hello/runs", json={}, params={"waitForFinish": 60}).json()["data"]
    assert run["status"] == "SUCCEEDED"
    response = api.get(f"/actor-runs/{run['id']}", params={"waitForFinish": 999999})
    assert response.status_code == 200 and response.json()["data"]["id"] == run["id"]


def test_unknown_routes_answer_in_the_envelope(api: httpx.Client) -> None:
    for response in (api.get("/nothing/here"), api.delete("/actors/hello"),
                     api.get("/actor-runs/AAAAAAAAAAAAAAAAA")):
        assert response.status_code == 404
        assert set(response.json()["error"]) == {"type", "message"}


def runtime_url(api: httpx.Client) -> str:
    return str(api.base_url).rstrip("/").removesuffix("/v2")
