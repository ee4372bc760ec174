"""Everything a run starts dies with it: at its end, timeout, abort and the runtime's stop,
however it detached; a runtime killed with SIGKILL takes its runs along (its reaper), and
what a dead runtime left is killed at the next start. Memory counts every process of a run
and is enforced near the limit. Real processes throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import TEST_ACTORS
from local_helpers import run_pids

from apify_magic.local import LocalRuntime, procs


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan killed in a container may wait for its reaping)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:].split()[0] != b"Z"


def wait_dead(pids: list[int], timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.02)
    return [p for p in pids if alive(p)]


def started_pids(url: str, run_id: str, timeout: float = 10.0) -> list[int]:
    """The escape Actor's OUTPUT: the pids of the processes it detached."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            record = client.get(f"/v2/actor-runs/{run_id}/key-value-store/records/OUTPUT")
            if record.status_code == 200:
                return list(record.json().values())
            time.sleep(0.05)
    raise AssertionError("the escape Actor wrote no pids")


def start(url: str, actor: str, body: object, **params: object) -> str:
    with httpx.Client(timeout=30) as client:
        response = client.post(f"{url}/v2/actors/{actor}/runs", json=body, params=params)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def test_detached_processes_die_when_the_run_ends(runtime: LocalRuntime) -> None:
    with httpx.Client(timeout=60) as client:
        response = client.post(f"{runtime.url}/v2/actors/escape/run-sync", json={})
    assert response.status_code == 201, response.text
    pids = list(response.json().values())
    assert len(pids) == 3
    assert wait_dead(pids) == []  # the session, the group and the double-forked daemon


@pytest.mark.parametrize("how", ["timeout", "abort", "graceful abort"])
def test_detached_processes_die_at_timeout_and_abort(runtime: LocalRuntime, how: str
                                                     ) -> None:
    params = {"timeout": 1} if how == "timeout" else {}
    run_id = start(runtime.url, "escape", {"hang": True}, **params)
    pids = started_pids(runtime.url, run_id)
    assert all(alive(p) for p in pids)
    if how != "timeout":
        with httpx.Client(timeout=10) as client:
            client.post(f"{runtime.url}/v2/actor-runs/{run_id}/abort",
                        params={"gracefully": str(how == "graceful abort").lower()})
    with httpx.Client(timeout=30) as client:
        run = client.get(f"{runtime.url}/v2/actor-runs/{run_id}",
                         params={"waitForFinish": 20}).json()["data"]
    assert run["status"] == ("TIMED-OUT" if how == "timeout" else "ABORTED")
    assert wait_dead(pids) == []


def test_detached_processes_die_when_the_runtime_stops(
        make_runtime: Callable[..., LocalRuntime]) -> None:
    runtime = make_runtime()
    run_id = start(runtime.url, "escape", {"hang": True})
    pids = started_pids(runtime.url, run_id)
    runtime.stop()
    assert wait_dead(pids, timeout=1.0) == []  # stop() returns with them gone
    assert run_pids(run_id) == []


# A runtime in a process of its own, as a kernel has it: prints its URL, then the pids of
# each run it was asked to start, and waits to be killed.
KERNEL = """
import json, sys, tempfile, time, httpx
from pathlib import Path
from apify_magic.local import LocalRuntime
runtime = LocalRuntime([Path(sys.argv[1])], data_dir=Path(tempfile.mkdtemp())).start()
run = httpx.post(runtime.url + "/v2/actors/escape/runs", json={"hang": True}).json()["data"]
for _ in range(200):
    record = httpx.get(runtime.url + "/v2/actor-runs/" + run["id"]
                       + "/key-value-store/records/OUTPUT")
    if record.status_code == 200:
        break
    time.sleep(0.05)
print(json.dumps({"run": run["id"], "pids": list(record.json().values())}), flush=True)
time.sleep(600)
"""


def kernel_with_a_run() -> tuple[subprocess.Popen[str], str, list[int]]:
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL, str(TEST_ACTORS)],
                              stdout=subprocess.PIPE, text=True)
    assert kernel.stdout is not None
    line = kernel.stdout.readline()
    assert line, "the kernel did not start its run"
    started = json.loads(line)
    pids = [*started["pids"], *run_pids(started["run"])]
    assert all(alive(p) for p in pids) and len(pids) >= 4
    return kernel, started["run"], pids


def kill_kernel(kernel: subprocess.Popen[str]) -> None:
    kernel.send_signal(signal.SIGKILL)
    kernel.wait()
    assert kernel.stdout is not None
    kernel.stdout.close()


def test_a_kernel_killed_with_sigkill_takes_its_actors_along() -> None:
    kernel, run_id, pids = kernel_with_a_run()
    kill_kernel(kernel)
    assert wait_dead(pids) == [], "its reaper kills what the kernel could not"
    assert run_pids(run_id) == []


def test_what_a_dead_runtime_left_is_killed_at_the_next_start(
        make_runtime: Callable[..., LocalRuntime]) -> None:
    kernel, run_id, pids = kernel_with_a_run()
    owner = procs.process_id(kernel.pid)
    reapers = [p.pid for p in procs.scan() if _cmdline(p.pid).endswith(
        f"reaper.py\0{owner}\0")]
    assert len(reapers) == 1
    os.kill(reapers[0], signal.SIGKILL)  # the reaper dies first: nothing ends the runs
    kill_kernel(kernel)
    time.sleep(0.5)
    assert all(alive(p) for p in pids)
    make_runtime()
    assert wait_dead(pids, timeout=1.0) == []
    assert run_pids(run_id) == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


@pytest.mark.parametrize("memory", [128, 512])
def test_memory_is_enforced_within_a_quarter_of_the_limit(
        runtime: LocalRuntime, tmp_path: Path, memory: int) -> None:
    report = tmp_path / "pss"
    step_mb = 8
    with httpx.Client(timeout=60) as client:
        response = client.post(f"{runtime.url}/v2/actors/grow/run-sync",
                               json={"stepMb": step_mb, "pauseSecs": 0.02,
                                     "report": str(report)}, params={"memory": memory})
    assert response.status_code == 400
    run = runtime.runner.get(response.headers["X-Apify-Run-Id"])
    assert run.status == "FAILED"
    assert f"above the run's limit of {memory} MB" in str(run.status_message)
    # What the Actor measured of itself after its last step, plus the step it may have
    # been taking when it was killed.
    peak = int(report.read_text()) + step_mb * 2**20
    print(f"limit {memory} MB: peak at most {peak / 2**20:.0f} MB "
          f"({peak / (memory * 2**20):.2f} of the limit; seen by the runtime "
          f"{run.mem_max_bytes / 2**20:.0f} MB)")
    assert peak <= 1.25 * memory * 2**20


def test_memory_of_a_child_in_its_own_session_counts(runtime: LocalRuntime,
                                                     tmp_path: Path) -> None:
    report = tmp_path / "pss"
    with httpx.Client(timeout=60) as client:
        response = client.post(f"{runtime.url}/v2/actors/grow/run-sync",
                               json={"child": True, "report": str(report)},
                               params={"memory": 128})
    assert response.status_code == 400
    run_id = response.headers["X-Apify-Run-Id"]
    run = runtime.runner.get(run_id)
    assert "above the run's limit of 128 MB" in str(run.status_message)
    assert int(report.read_text()) <= 1.25 * 128 * 2**20
    assert run_pids(run_id) == []
