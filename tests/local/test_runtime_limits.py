"""Limits enforced on real processes: memory, timeout, sync wait, budget, restarts, cleanup."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from local_helpers import run_pids

from apify_magic.local import LocalRuntime


def post(url: str, actor: str, body: object = None, **params: object) -> httpx.Response:
    with httpx.Client(timeout=60.0) as client:
        return client.post(f"{url}/v2/actors/{actor}/run-sync", params=params,
                           content=json.dumps(body or {}),
                           headers={"Content-Type": "application/json"})


def get_run(url: str, run_id: str, wait: float = 0) -> dict[str, object]:
    with httpx.Client(timeout=70.0) as client:
        response = client.get(f"{url}/v2/actor-runs/{run_id}", params={"waitForFinish": wait})
        return response.json()["data"]  # type: ignore[no-any-return]


def start(url: str, actor: str, body: object = None, **params: object) -> dict[str, object]:
    with httpx.Client(timeout=60.0) as client:
        response = client.post(f"{url}/v2/actors/{actor}/runs", params=params,
                               json=body or {})
        assert response.status_code == 201, response.text
        return response.json()["data"]  # type: ignore[no-any-return]


def test_memory_hog_is_killed(runtime: LocalRuntime) -> None:
    started = time.monotonic()
    response = post(runtime.url, "hog", {"mb": 300}, memory=128)
    assert time.monotonic() - started < 10
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "run-failed"
    run = get_run(runtime.url, response.headers["X-Apify-Run-Id"])
    assert run["status"] == "FAILED"
    assert "above the run's limit of 128 MB" in str(run["statusMessage"])
    assert run_pids(str(run["id"])) == []


def test_small_actor_within_its_limit_is_not_killed(runtime: LocalRuntime) -> None:
    response = post(runtime.url, "hog", {"mb": 20}, memory=128, timeout=1)
    run = get_run(runtime.url, response.headers["X-Apify-Run-Id"])
    assert run["status"] == "TIMED-OUT"  # it held its 20 MB until the timeout


def test_hanging_actor_times_out_even_when_it_ignores_sigterm(runtime: LocalRuntime) -> None:
    started = time.monotonic()
    response = post(runtime.url, "hang", {"ignoreTerm": True, "child": True}, timeout=1)
    took = time.monotonic() - started
    run_id = response.headers["X-Apify-Run-Id"]
    assert response.json()["error"] == {
        "type": "run-failed",
        "message": f"Actor run did not succeed (run ID: {run_id}, status: TIMED-OUT)"}
    assert 1 <= took < 5  # 1 s timeout + 1 s grace before SIGKILL
    assert get_run(runtime.url, run_id)["status"] == "TIMED-OUT"
    assert run_pids(run_id) == []


def test_sync_wait_gives_408_and_the_run_goes_on(make_runtime: Callable[..., LocalRuntime]
                                                  ) -> None:
    runtime = make_runtime(sync_wait_secs=0.5)
    response = post(runtime.url, "slow", {"seconds": 1.5})
    assert response.status_code == 408
    assert response.json()["error"] == {
        "type": "run-timeout-exceeded",
        "message": "Actor run exceeded the timeout of 0.5 seconds for this API endpoint"}
    run = get_run(runtime.url, response.headers["X-Apify-Run-Id"], wait=10)
    assert run["status"] == "SUCCEEDED"
    with httpx.Client() as client:
        output = client.get(f"{runtime.url}/v2/key-value-stores/"
                            f"{run['defaultKeyValueStoreId']}/records/OUTPUT")
    assert output.json()["seconds"] == 1.5


def test_twenty_concurrent_run_syncs_each_get_their_own_output(runtime: LocalRuntime) -> None:
    names = [f"user{i}" for i in range(20)]
    with httpx.Client(timeout=60.0, limits=httpx.Limits(max_connections=20)) as client:
        def one(name: str) -> httpx.Response:
            return client.post(f"{runtime.url}/v2/acts/hello/run-sync",
                               json={"name": name, "count": 2})

        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(one, names))
    assert [r.status_code for r in responses] == [201] * 20
    assert [r.json()[0]["name"] for r in responses] == names
    assert len({r.headers["X-Apify-Run-Id"] for r in responses}) == 20


def test_memory_budget_gives_402(make_runtime: Callable[..., LocalRuntime]) -> None:
    runtime = make_runtime(memory_budget_mbytes=256)
    first = start(runtime.url, "hang", memory=128)
    second = start(runtime.url, "hang", memory=128)
    response = post(runtime.url, "hello", memory=128)
    assert response.status_code == 402
    assert response.json()["error"] == {
        "type": "actor-memory-limit-exceeded",
        "message": "By launching this job you will exceed the memory limit of 256MB for all "
                   "your Actor runs and builds (currently used: 256MB, requested: 128MB)"}
    with httpx.Client() as client:
        for run in (first, second):
            client.post(f"{runtime.url}/v2/actor-runs/{run['id']}/abort")
    assert post(runtime.url, "hello", memory=128).status_code == 201


def test_restart_on_error_is_counted_and_bounded(runtime: LocalRuntime) -> None:
    response = post(runtime.url, "flaky", {"failTimes": 2}, restartOnError="true")
    assert response.status_code == 201
    assert response.json() == {"attempts": 3}
    run = get_run(runtime.url, response.headers["X-Apify-Run-Id"])
    assert run["stats"]["restartCount"] == 2  # type: ignore[index]

    without = post(runtime.url, "flaky", {"failTimes": 1})
    assert without.status_code == 400

    forever = post(runtime.url, "flaky", {"failTimes": 99}, restartOnError=1)
    run = get_run(runtime.url, forever.headers["X-Apify-Run-Id"])
    assert run["status"] == "FAILED" and run["stats"]["restartCount"] == 3  # type: ignore[index]


def test_graceful_abort(runtime: LocalRuntime) -> None:
    run = start(runtime.url, "hang")
    with httpx.Client() as client:
        answer = client.post(f"{runtime.url}/v2/actor-runs/{run['id']}/abort",
                             params={"gracefully": "true"}).json()["data"]
    assert answer["status"] in ("ABORTING", "ABORTED")
    assert get_run(runtime.url, str(run["id"]), wait=5)["status"] == "ABORTED"


def test_no_actor_process_is_left_after_the_runtime_stops(
        make_runtime: Callable[..., LocalRuntime]) -> None:
    runtime = make_runtime()
    runs = [start(runtime.url, "hang", {"child": True, "ignoreTerm": True}) for _ in range(3)]
    deadline = time.monotonic() + 10
    while any(len(run_pids(str(r["id"]))) < 2 for r in runs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(len(run_pids(str(r["id"]))) == 2 for r in runs)  # the Actor and its child
    runtime.stop()
    for run in runs:
        assert run_pids(str(run["id"])) == []
    assert runtime.runner.runs[str(runs[0]["id"])].status == "ABORTED"
