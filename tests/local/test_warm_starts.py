"""Warm starts: runs forked from a parent that imported apify, with a cold run's guarantees.

These build their own runtimes with warm starts on (or off where a test says so),
whatever APIFY_MAGIC_WARM_STARTS says for the rest of the suite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from apify_client import ApifyClient
from local_helpers import run_pids, unstamped

from apify_magic.local import LocalRuntime
from apify_magic.local.__main__ import parser
from apify_magic.local.embedded import warm_starts_enabled
from apify_magic.local.registry import SHIPPED_ACTORS
from apify_magic.local.warm import WarmPool

TEST_ACTORS = Path(__file__).parent / "actors"

# Holds a moment so that concurrent runs overlap, then reports what it saw of its run.
ISOLATION_ACTOR = '''
import json, os, sys, time
from pathlib import Path

from src.helper import VALUE

storage = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"])
mine = storage / "key_value_stores" / "default"
(mine / "MARK").write_text(os.environ["ACTOR_RUN_ID"])
time.sleep(0.5)
(mine / "OUTPUT").write_text(json.dumps({
    "runId": os.environ["ACTOR_RUN_ID"], "storage": str(storage),
    "marks": sorted(p.name for p in mine.iterdir()),
    "markIsMine": (mine / "MARK").read_text() == os.environ["ACTOR_RUN_ID"],
    "input": json.loads((mine / "INPUT").read_text()),
    "cwd": os.getcwd(), "argv0": sys.argv[0], "pathHead": sys.path[0],
    "value": VALUE, "stdinIsEmpty": sys.stdin.read() == "",
}))
(mine / "OUTPUT.__metadata__.json").write_text(json.dumps(
    {"key": "OUTPUT", "content_type": "application/json; charset=utf-8"}))
print("done", flush=True)
'''

SDK_FAILING = '''
import asyncio
from apify import Actor

async def main() -> None:
    async with Actor:
        raise RuntimeError("boom in the Actor")

asyncio.run(main())
'''


def write_actor(root: Path, name: str, main: str, files: dict[str, str] | None = None,
                environment: dict[str, str] | None = None) -> Path:
    folder = root / name
    (folder / ".actor").mkdir(parents=True, exist_ok=True)
    (folder / "src").mkdir(exist_ok=True)
    spec: dict[str, Any] = {"actorSpecification": 1, "name": name, "version": "0.0"}
    if environment:
        spec["environmentVariables"] = environment
    (folder / ".actor" / "actor.json").write_text(json.dumps(spec))
    (folder / "src" / "__init__.py").write_text("")
    (folder / "src" / "__main__.py").write_text(main)
    for path, text in (files or {}).items():
        (folder / path).write_text(text)
    return folder


def run_sync(runtime: LocalRuntime, actor: str, body: object = None,
             **params: object) -> tuple[httpx.Response, dict[str, Any]]:
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=60) as client:
        response = client.post(f"/acts/{actor}/run-sync", json=body or {}, params=params)
        run_id = response.headers.get("X-Apify-Run-Id") or re.search(
            r"run ID: (\w+)", response.text).group(1)  # type: ignore[union-attr]
        run = client.get(f"/actor-runs/{run_id}", params={"waitForFinish": 30}).json()["data"]
    return response, run


def started(runtime: LocalRuntime, actor: str, body: object = None) -> dict[str, Any]:
    response = httpx.post(f"{runtime.url}/v2/acts/{actor}/runs", json=body or {}, timeout=30)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def finished(runtime: LocalRuntime, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{runtime.url}/v2/actor-runs/{run_id}",
                                     params={"waitForFinish": 30}, timeout=60).json()["data"]
    return data


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def warmed(runtime: LocalRuntime) -> LocalRuntime:
    """The runtime once its warm parent is ready: the first run starts it and runs cold."""
    response, run = run_sync(runtime, "hello")
    assert response.status_code == 201 and run["meta"]["startMode"] in ("warm", "cold")
    assert runtime.runner.warm is not None and runtime.runner.warm.wait_ready(60)
    return runtime


@pytest.fixture
def actors(tmp_path: Path) -> Path:
    root = tmp_path / "actors"
    root.mkdir()
    write_actor(root, "isolation", ISOLATION_ACTOR, {"src/helper.py": "VALUE = 'first'\n"})
    write_actor(root, "sdk-fails", SDK_FAILING)
    write_actor(root, "raises", "raise ValueError('plain uncaught')\n")
    write_actor(root, "exits", "import sys\nprint('bye')\nsys.exit(7)\n")
    write_actor(root, "hash-seed", "print('hi')\n", environment={"PYTHONHASHSEED": "3"})
    return root


@pytest.fixture
def warm_runtime(make_runtime: Callable[..., LocalRuntime], actors: Path) -> LocalRuntime:
    return warmed(make_runtime(actor_dirs=[actors, TEST_ACTORS, SHIPPED_ACTORS],
                               warm_starts=True))


def test_a_run_starts_warm_and_the_run_object_says_so(warm_runtime: LocalRuntime) -> None:
    response, run = run_sync(warm_runtime, "hello", {"name": "Wu", "count": 2})
    assert response.status_code == 201
    assert response.json()[1] == {"n": 2, "greeting": "Hello, Wu!", "name": "Wu"}
    assert run["meta"]["startMode"] == "warm" and run["exitCode"] == 0
    # The official client's Run model accepts the extra field.
    parsed = ApifyClient("t", api_url=warm_runtime.url).run(run["id"]).get()
    assert parsed is not None and parsed.status == "SUCCEEDED"
    saved = json.loads((warm_runtime.data_dir / "runs" / run["id"] / "run.json").read_text())
    assert saved["meta"]["startMode"] == "warm"


def test_the_sdk_actor_runs_warm(warm_runtime: LocalRuntime) -> None:
    for rows in (2, 3):
        response, run = run_sync(warm_runtime, "sdk-table", {"rows": rows, "prefix": "w"})
        assert response.status_code == 201, response.text
        assert [r["label"] for r in response.json()] == [f"w-{i}" for i in range(1, rows + 1)]
        assert run["meta"]["startMode"] == "warm"
        assert run["statusMessage"] == f"Wrote {rows} rows"


def test_an_edit_to_the_actor_is_seen_by_the_next_run(
        warm_runtime: LocalRuntime, actors: Path) -> None:
    _, first = run_sync(warm_runtime, "isolation", {"n": 1})
    output = httpx.get(f"{warm_runtime.url}/v2/actor-runs/{first['id']}/key-value-store/"
                       "records/OUTPUT").json()
    assert output["value"] == "first" and first["meta"]["startMode"] == "warm"
    (actors / "isolation" / "src" / "helper.py").write_text("VALUE = 'second'\n")
    main = actors / "isolation" / "src" / "__main__.py"
    main.write_text(main.read_text().replace('print("done"', 'print("edited"'))
    _, second = run_sync(warm_runtime, "isolation", {"n": 2})
    output = httpx.get(f"{warm_runtime.url}/v2/actor-runs/{second['id']}/key-value-store/"
                       "records/OUTPUT").json()
    assert output["value"] == "second" and second["meta"]["startMode"] == "warm"
    log = httpx.get(f"{warm_runtime.url}/v2/actor-runs/{second['id']}/log").text
    assert "edited" in log and "done" not in log


def test_concurrent_warm_runs_see_only_their_own_environment_and_storage(
        warm_runtime: LocalRuntime, actors: Path) -> None:
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda n: run_sync(warm_runtime, "isolation", {"n": n}),
                                range(20)))
    for n, (response, run) in enumerate(results):
        assert response.status_code == 201, response.text
        out = response.json()
        assert run["meta"]["startMode"] == "warm"
        assert out["runId"] == run["id"] and out["markIsMine"]
        assert out["input"] == {"n": n}
        assert out["storage"] == str(warm_runtime.data_dir / "runs" / run["id"] / "storage")
        assert out["marks"] == ["INPUT", "INPUT.__metadata__.json", "MARK"]
        assert out["cwd"] == str(actors / "isolation") == out["pathHead"]
        assert out["argv0"] == str(actors / "isolation" / "src" / "__main__.py")
        assert out["stdinIsEmpty"]
    assert len({run["id"] for _, run in results}) == 20


def test_exit_codes_match_a_cold_run(make_runtime: Callable[..., LocalRuntime],
                                     actors: Path) -> None:
    dirs = [actors, SHIPPED_ACTORS]
    cold = make_runtime(actor_dirs=dirs, warm_starts=False)
    warm = warmed(make_runtime(actor_dirs=dirs, warm_starts=True))
    for actor, code in (("sdk-fails", 91), ("raises", 1), ("exits", 7), ("fail", 1)):
        logs = []
        for runtime, mode in ((cold, "cold"), (warm, "warm")):
            _, run = run_sync(runtime, actor)
            assert (run["status"], run["exitCode"], run["meta"]["startMode"]) == (
                "FAILED", code, mode), actor
            logs.append(httpx.get(f"{runtime.url}/v2/actor-runs/{run['id']}/log").text)
        if actor == "raises":
            assert all("ValueError: plain uncaught" in log for log in logs)
            assert "warm_parent" not in logs[1]
        if actor == "sdk-fails":
            assert all("boom in the Actor" in log for log in logs)
        if actor == "exits":
            assert [unstamped(log) for log in logs] == ["bye\n", "bye\n"]


def test_memory_limit_timeout_and_abort_act_on_a_warm_run(
        warm_runtime: LocalRuntime) -> None:
    _, hog = run_sync(warm_runtime, "hog", {"mb": 300}, memory=128)
    assert hog["status"] == "FAILED" and hog["meta"]["startMode"] == "warm"
    assert "memory" in hog["statusMessage"]

    _, slow = run_sync(warm_runtime, "hang", {"ignoreTerm": True}, timeout=1)
    assert slow["status"] == "TIMED-OUT" and slow["meta"]["startMode"] == "warm"
    assert run_pids(slow["id"]) == []

    run = started(warm_runtime, "hang", {"child": True})
    deadline = time.monotonic() + 10
    while len(run_pids(run["id"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(run_pids(run["id"])) == 2  # the forked Actor shows its run's environment
    httpx.post(f"{warm_runtime.url}/v2/actor-runs/{run['id']}/abort")
    assert finished(warm_runtime, run["id"])["status"] == "ABORTED"
    assert run_pids(run["id"]) == []


def test_stopping_the_runtime_ends_warm_runs_and_warm_parents(
        make_runtime: Callable[..., LocalRuntime]) -> None:
    runtime = warmed(make_runtime(warm_starts=True))
    runs = [started(runtime, "hang", {"child": True, "ignoreTerm": True}) for _ in range(3)]
    deadline = time.monotonic() + 10
    while any(len(run_pids(r["id"])) < 2 for r in runs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(runtime.runner.runs[r["id"]].start_mode == "warm" for r in runs)
    assert runtime.runner.warm is not None
    parents = [p.proc.pid for p in runtime.runner.warm.parents()]
    assert len(parents) == 1 and alive(parents[0])
    runtime.stop()
    assert all(run_pids(r["id"]) == [] for r in runs)
    assert not alive(parents[0])
    assert all(runtime.runner.runs[r["id"]].status == "ABORTED" for r in runs)


def test_a_killed_warm_parent_fails_its_runs_and_is_replaced(
        warm_runtime: LocalRuntime) -> None:
    run = started(warm_runtime, "hang")
    assert warm_runtime.runner.runs[run["id"]].start_mode == "warm"
    deadline = time.monotonic() + 10
    while not run_pids(run["id"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert warm_runtime.runner.warm is not None
    [parent] = warm_runtime.runner.warm.parents()
    os.kill(parent.proc.pid, signal.SIGKILL)
    assert finished(warm_runtime, run["id"])["status"] == "FAILED"
    assert run_pids(run["id"]) == []
    warmed(warm_runtime)  # a new parent starts on the next use
    response, again = run_sync(warm_runtime, "hello")
    assert response.status_code == 201 and again["meta"]["startMode"] == "warm"


def test_what_cannot_run_warm_runs_cold(warm_runtime: LocalRuntime, actors: Path) -> None:
    # A startup variable a running interpreter cannot take on.
    _, run = run_sync(warm_runtime, "hash-seed")
    assert run["status"] == "SUCCEEDED" and run["meta"]["startMode"] == "cold"
    # An interpreter without the SDK: the pre-import fails, so its runs go cold.
    folder = shutil.copytree(SHIPPED_ACTORS / "hello", actors / "venv-hello")
    spec = json.loads((folder / ".actor" / "actor.json").read_text())
    (folder / ".actor" / "actor.json").write_text(json.dumps({**spec, "name": "venv-hello"}))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / ".venv")],
                   check=True)
    for _ in range(2):
        response, run = run_sync(warm_runtime, "venv-hello", {"name": "Vi"})
        assert response.status_code == 201 and response.json()[0]["name"] == "Vi"
        assert run["meta"]["startMode"] == "cold"
        assert warm_runtime.runner.warm is not None
        warm_runtime.runner.warm.wait_ready(60)
    assert warm_runtime.runner.warm is not None
    assert str(folder / ".venv" / "bin" / "python3") in warm_runtime.runner.warm.refused()
    if shutil.which("npm") and shutil.which("node"):
        _, run = run_sync(warm_runtime, "node-hello")
        assert run["meta"]["startMode"] == "cold"


def test_the_switch_turns_warm_starts_off(make_runtime: Callable[..., LocalRuntime],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = make_runtime(warm_starts=False)
    _, run = run_sync(runtime, "sdk-table", {"rows": 1})
    assert run["status"] == "SUCCEEDED" and run["meta"]["startMode"] == "cold"
    assert runtime.runner.warm is None
    assert parser().parse_args(["--no-warm-starts"]).no_warm_starts
    assert not parser().parse_args([]).no_warm_starts
    monkeypatch.setenv("APIFY_MAGIC_WARM_STARTS", "0")
    assert not warm_starts_enabled()
    monkeypatch.setenv("APIFY_MAGIC_WARM_STARTS", "1")
    assert warm_starts_enabled()


def test_an_install_that_changes_the_libraries_retires_the_warm_parent(
        make_runtime: Callable[..., LocalRuntime], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`pip install -U` while the runtime runs: the next warm runs import the new code."""
    lib = tmp_path / "lib"
    (lib / "warmlib").mkdir(parents=True)
    (lib / "warmlib" / "__init__.py").write_text("VALUE = 'old'\n")
    monkeypatch.setenv("PYTHONPATH", str(lib))
    actors = tmp_path / "libactors"
    write_actor(actors, "uses-lib", "import warmlib\nprint('value', warmlib.VALUE)\n")
    runtime = make_runtime(actor_dirs=[actors, SHIPPED_ACTORS], warm_starts=True)
    runtime.runner.warm = WarmPool(pre_imports=("apify", "crawlee", "warmlib"))

    def value() -> tuple[str, str]:
        _, run = run_sync(runtime, "uses-lib")
        log = httpx.get(f"{runtime.url}/v2/actor-runs/{run['id']}/log").text
        return log.split()[-1], run["meta"]["startMode"]

    value()
    assert runtime.runner.warm.wait_ready(60)
    assert value() == ("old", "warm")
    [old] = runtime.runner.warm.parents()
    # What an upgrade does: the package's files are replaced, so its folder changes.
    (lib / "warmlib" / "new.py").write_text("VALUE = 'new'\n")
    os.replace(lib / "warmlib" / "new.py", lib / "warmlib" / "__init__.py")
    assert value()[0] == "new"  # cold, while a fresh parent imports
    assert runtime.runner.warm.wait_ready(60)
    assert value() == ("new", "warm")
    [new] = runtime.runner.warm.parents()
    assert new is not old
    deadline = time.monotonic() + 5
    while alive(old.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(old.proc.pid)
