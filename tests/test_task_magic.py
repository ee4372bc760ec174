"""`%%apify_run --task`: an Actor task run from a cell, on the real local runtime."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from recording import run

from apify_magic import errors
from apify_magic.local import LocalRuntime

TEST_ACTORS = Path(__file__).parent / "actors"  # the shared `runtime` fixture's Actors


@pytest.fixture
def api(runtime: LocalRuntime) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=60.0) as client:
        yield client


@pytest.fixture
def task(api: httpx.Client) -> dict[str, Any]:
    created = api.post("/actor-tasks", json={
        "actId": "hello", "name": f"greet-{uuid.uuid4().hex[:8]}",
        "options": {"memoryMbytes": 256}, "input": {"name": "Task", "count": 2}})
    assert created.status_code == 201
    data: dict[str, Any] = created.json()["data"]
    return data


def _runs(api: httpx.Client, task: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(f"/actor-tasks/{task['id']}/runs").json()[
        "data"]["items"]
    return items


def test_run_sync_merges_the_cell_over_the_task_input(ip: Any, api: httpx.Client,
                                                      task: dict[str, Any]) -> None:
    result = run(ip, f'%%apify_run --task local~{task["name"]} out --as python\n'
                     '{"count": 1}')
    assert result.error_in_exec is None
    assert ip.user_ns["out"] == [{"n": 1, "greeting": "Hello, Task!", "name": "Task"}]
    runs = _runs(api, task)
    assert len(runs) == 1
    run_obj = api.get(f"/actor-runs/{runs[0]['id']}").json()["data"]
    assert run_obj["actorTaskId"] == task["id"]
    assert run_obj["options"]["memoryMbytes"] == 256  # the task's option


def test_options_on_the_line_win_over_the_task(ip: Any, api: httpx.Client,
                                               task: dict[str, Any]) -> None:
    result = run(ip, f'%apify_run --task {task["id"]} out --memory 512 --as python')
    assert result.error_in_exec is None
    assert [row["greeting"] for row in ip.user_ns["out"]] == ["Hello, Task!"] * 2
    run_obj = api.get(f"/actor-runs/{_runs(api, task)[0]['id']}").json()["data"]
    assert run_obj["options"]["memoryMbytes"] == 512


def test_dataset_and_watch(ip: Any, api: httpx.Client, task: dict[str, Any]) -> None:
    result = run(ip, f'%%apify_run --task {task["id"]} items --dataset --as python\n'
                     '{"count": 3}')
    assert result.error_in_exec is None
    assert [item["n"] for item in ip.user_ns["items"]] == [1, 2, 3]
    result = run(ip, f'%%apify_run --task {task["id"]} watched --watch --as python\n'
                     '{"shout": true}')
    assert result.error_in_exec is None
    assert [row["greeting"] for row in ip.user_ns["watched"]] == ["HELLO, TASK!"] * 2
    runs = _runs(api, task)
    assert len(runs) == 2 and all(r["status"] == "SUCCEEDED" for r in runs)
    assert all(api.get(f"/actor-runs/{r['id']}").json()["data"]["actorTaskId"] == task["id"]
               for r in runs)


def test_a_task_name_is_not_an_actor_and_unknown_tasks_are_404(
        ip: Any, task: dict[str, Any]) -> None:
    result = run(ip, f'%apify_run {task["name"]} out')
    assert isinstance(result.error_in_exec, errors.NotFoundError)
    assert "out" not in ip.user_ns
    result = run(ip, '%apify_run --task local~no-such-task out')
    assert isinstance(result.error_in_exec, errors.NotFoundError)
    assert "task" in str(result.error_in_exec).lower()
    assert "out" not in ip.user_ns
