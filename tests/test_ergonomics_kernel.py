"""Issue 17 in a real kernel (jupyter_client) against a real local runtime with real Actor
processes: background runs (bound while another cell runs, panel updated, result(),
abort(), aborted at kernel shutdown unless --detach), --dry-run (no run, the request and
the estimate, no token), the four sources of defaults, a bad default refused when set,
completion, and %apify_last after a failure."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from recording import TOKEN

from apify_magic.local import LocalRuntime

TEST_ACTORS = Path(__file__).parent / "actors"
ROOT = Path(__file__).resolve().parent.parent


def _env(runtime: LocalRuntime, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIFY_")}
    env.update(APIFY_API_BASE_URL=runtime.url, APIFY_TOKEN=TOKEN, **extra)
    # The kernel imports the package of this checkout, not whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class Kernel:
    """A kernel and what each executed cell sent: stdout, stderr, errors, comm updates."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(cwd))
        self.run("%load_ext apify_magic")

    def run(self, code: str, timeout: float = 60) -> dict[str, Any]:
        msg_id = self.kc.execute(code)
        out: dict[str, Any] = {"stdout": "", "stderr": "", "error": None, "comm": [],
                               "data": []}
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "comm_msg":  # widget state, whichever cell is running
                out["comm"].append(content["data"].get("state") or {})
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind == "error":
                out["error"] = (content["ename"], "\n".join(content["traceback"]))
            elif kind in ("execute_result", "display_data"):
                out["data"].append(content["data"].get("text/plain", ""))
            elif kind == "status" and content["execution_state"] == "idle":
                return out

    def value(self, expression: str) -> str:
        found = self.run(f"print({expression})")
        assert found["error"] is None, found["error"]
        return str(found["stdout"]).strip()

    def close(self, now: bool = True) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=now)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    (folder / "pyproject.toml").write_text(
        "[tool.apify_magic]\nmemory = 256\ntimeout = 30\nmax_items = 7\n"
        "max_total_charge_usd = 5\n")
    (folder / "notebooks").mkdir()
    return folder / "notebooks"  # the notebook's folder: pyproject.toml is found upward


@pytest.fixture(scope="module")
def kernel(runtime: LocalRuntime, project: Path) -> Iterator[Kernel]:
    k = Kernel(_env(runtime, APIFY_MAGIC_TIMEOUT="20", APIFY_MAGIC_MAX_ITEMS="8",
                    APIFY_MAGIC_MAX_TOTAL_CHARGE_USD="6"), project)
    yield k
    k.close()


def _runs(runtime: LocalRuntime) -> int:
    return int(httpx.get(f"{runtime.url}/v2/actor-runs").json()["data"]["total"])


def _status(runtime: LocalRuntime, run_id: str, wait: int = 0) -> str:
    found = httpx.get(f"{runtime.url}/v2/actor-runs/{run_id}?waitForFinish={wait}").json()
    return str(found["data"]["status"])


def test_background_run_binds_while_another_cell_runs_and_its_panel_moves(
        kernel: Kernel) -> None:
    start = kernel.run('params = {"seconds": 2, "steps": 4}\n'
                       "job = %apify_run slow out --background -i params\njob")
    assert start["error"] is None, start["error"]
    assert start["data"] and start["data"][-1].startswith("<Job "), start
    assert kernel.value("job.status") in ("STARTING", "RUNNING")
    # Another cell runs (and awaits) while the run goes on and ends.
    other = kernel.run("import asyncio\nseen = []\nfor _ in range(200):\n"
                       "    seen.append(job.status)\n    if 'out' in globals():\n"
                       "        break\n    await asyncio.sleep(0.05)\n"
                       "print('bound while running:', 'out' in globals(), out['steps'])\n"
                       "print('RUNNING' in seen)")
    assert other["error"] is None, other["error"]
    assert "bound while running: True 4" in other["stdout"]
    assert "True" in other["stdout"].splitlines()[-1]
    chips = [str(s.get("value")) for s in other["comm"] if "value" in s]
    assert any("Working: step" in c for c in chips), chips  # status messages, live
    assert any("SUCCEEDED" in c for c in chips), chips  # the panel's end, in that cell
    assert kernel.value("job.status, job.result()['steps'], job.run_id == "
                        "__import__('apify_magic').last_run().run_id") == \
        "SUCCEEDED 4 True"
    jobs = kernel.run("%apify_jobs")["stdout"]
    assert "slow" in jobs and "out" in jobs and "SUCCEEDED" in jobs


def test_result_and_abort(kernel: Kernel, runtime: LocalRuntime) -> None:
    kernel.run('long = {"seconds": 60, "steps": 60}\n'
               "job = %apify_run slow --background --progress none -i long")
    assert kernel.value("job.abort()") in ("ABORTING", "ABORTED")
    failed = kernel.run("job.result(timeout=30)")
    assert failed["error"] is not None and failed["error"][0] == "RunFailedError"
    run_id = kernel.value("job.run_id")
    assert _status(runtime, run_id, 10) == "ABORTED"
    assert kernel.value("job.status") == "ABORTED"
    assert "Working" in kernel.value("job.log()")
    kernel.run("quick = %apify_run hello --background --progress none")
    assert kernel.value("type(quick.result(timeout=60)).__name__") == "DataFrame"


def test_kernel_shutdown_aborts_background_runs_but_not_detached_ones(
        runtime: LocalRuntime, tmp_path: Path) -> None:
    k = Kernel(_env(runtime), tmp_path)
    try:
        k.run('long = {"seconds": 60, "steps": 60}\n'
              "a = %apify_run slow --background --progress none -i long\n"
              "b = %apify_run slow --background --detach --progress none -i long")
        deadline = time.monotonic() + 30
        while "None" in (ids := k.value("a.run_id, b.run_id")) or \
                k.value("a.status, b.status") != "RUNNING RUNNING":
            assert time.monotonic() < deadline, ids
            time.sleep(0.2)
        attached, detached = ids.split()
    finally:
        k.close(now=False)  # a shutdown_request: the kernel exits as it would from the UI
    assert _status(runtime, attached, 10) == "ABORTED"
    assert _status(runtime, detached) == "RUNNING"
    httpx.post(f"{runtime.url}/v2/actor-runs/{detached}/abort")


def test_dry_run_runs_nothing_and_shows_the_request_and_estimate(
        kernel: Kernel, runtime: LocalRuntime) -> None:
    before = _runs(runtime)
    found = kernel.run('%%apify_run priced --dry-run --max-total-charge-usd 2\n{"pages": 3}')
    assert found["error"] is None, found["error"]
    text = "\n".join(found["data"])
    assert f"POST {runtime.url}/v2/actors/priced/run-sync?" in text
    assert "maxTotalChargeUsd=2" in text and '{"pages": 3}' in text
    assert "page: $0.01 each" in text and "at most $2.00" in text
    assert "Authorization" not in text and TOKEN not in text and "Bearer" not in text
    per_item = "\n".join(kernel.run("%%apify_run per-item --dry-run --max-items 500\n{}")["data"])
    assert "$0.002 per result x --max-items 500 = at most $1.00" in per_item
    bad = kernel.run('%%apify_run priced --dry-run\n{"pages": 0}')
    assert bad["error"] is not None and bad["error"][0] == "InputError"
    assert "pages" in bad["error"][1]
    assert _runs(runtime) == before


def test_four_sources_of_defaults_in_their_order(kernel: Kernel) -> None:
    kernel.run("%config ApifyMagic.max_items = 9\n%config ApifyMagic.max_total_charge_usd = 7")
    found = "\n".join(kernel.run(
        "%%apify_run hello --dry-run --max-total-charge-usd 8\n{}")["data"])
    # memory: pyproject.toml; timeout: the environment over pyproject.toml; max_items:
    # %config over both; max_total_charge_usd: the cell over all three.
    assert "timeout=20&memory=256&maxItems=9&maxTotalChargeUsd=8" in found, found
    shown = kernel.run("%apify_config")["stdout"]
    lines = {line.split()[0]: line for line in shown.splitlines()}
    assert lines["max_items"].split()[1:] == ["9", "%config"]
    assert lines["timeout"].split()[1:] == ["20.0", "APIFY_MAGIC_TIMEOUT"]
    assert lines["memory"].split()[1:3] == ["256", "pyproject.toml"]
    assert lines["watch"].split()[1:] == ["false", "built-in"]
    assert lines["build"].split()[1:] == ["-", "the", "Actor's", "default"]
    kernel.run("%config ApifyMagic.max_items = None\n"
               "%config ApifyMagic.max_total_charge_usd = None")
    assert "maxItems=8&maxTotalChargeUsd=6" in "\n".join(
        kernel.run("%%apify_run hello --dry-run\n{}")["data"])


def test_a_bad_default_is_refused_when_set(kernel: Kernel) -> None:
    kernel.run("%config ApifyMagic.memory = 1024")
    refused = kernel.run("%config ApifyMagic.memory = 300")
    assert "ApifyMagic.memory = 300 is refused: --memory must be a power of 2" in \
        refused["stderr"]
    assert kernel.value("get_ipython().magics_manager.registry['ApifyMagic'].memory") == "1024"
    typo = kernel.run("%config ApifyMagic.memroy = 512")
    assert "did you mean ApifyMagic.memory?" in typo["stderr"]
    keyword = kernel.run("%apify_config as = frame")
    assert keyword["error"] is not None and keyword["error"][0] == "OptionError"
    assert "--as must be one of" in keyword["error"][1]
    kernel.run("%apify_config as = python")
    assert kernel.value("get_ipython().magics_manager.registry['ApifyMagic'].as_") == "python"
    kernel.run("%config ApifyMagic.memory = None\n%config ApifyMagic.as_ = None")


def test_completions_for_options_values_and_ids(kernel: Kernel) -> None:
    def matches(code: str) -> list[str]:
        msg_id = kernel.kc.complete(code, len(code))
        reply = kernel.kc.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kernel.kc.get_shell_msg(timeout=30)
        assert reply["content"]["status"] == "ok", reply["content"]
        return list(reply["content"]["matches"])

    assert "--memory" in matches("%apify_run hello --mem")
    assert set(matches("%apify_run hello --memory ")) == {str(2**n) for n in range(7, 16)}
    assert matches("%apify_run hello --as da") == ["dataframe"]
    assert {"slow", "hello", "priced"} <= set(matches("%%apify_run "))
    assert "latest" in matches("%apify_run hello --build ")
    kernel.run("%%apify_run hello h --progress none\n{}")
    run_id = kernel.value("__import__('apify_magic').last_run().run_id")
    assert run_id in matches("%apify_attach ")
    assert matches("%apify_config max_i") == ["max_items"]


def test_last_run_after_a_failure(kernel: Kernel) -> None:
    failed = kernel.run("%%apify_run fail --progress none\n{}")
    assert failed["error"] is not None and failed["error"][0] == "RunFailedError"
    last = "\n".join(kernel.run("%apify_last")["data"])
    assert ": FAILED" in last and "actor: fail" in last and "storages:" in last
    assert "error: RunFailedError" in last
    log = kernel.run("%apify_last --log")["stdout"]
    assert "This Actor fails on purpose" in log
    carried = kernel.run(
        "try:\n    get_ipython().run_cell_magic('apify_run', 'fail --progress none', '{}')\n"
        "except Exception as err:\n    caught = err\n"
        "print(caught.run is __import__('apify_magic').last_run(), caught.run.status)")
    assert carried["stdout"].strip() == "True FAILED"
