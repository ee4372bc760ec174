"""The embedded runtime's runs outlive its kernel: real kernels (Python processes with an
IPython shell and the magic loaded, no token) on one data dir, restarted, killed, side by
side; and retention."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import processes_with_env

import apify_magic
from apify_magic.errors import OptionError
from apify_magic.local import datadir, embedded

REPO = Path(apify_magic.__file__).resolve().parent.parent
REPLY = "@@reply "

# A kernel of our own: runs the cells it is sent (one JSON line each) in a real IPython
# shell with apify_magic loaded, and answers each with a JSON line after REPLY.
DRIVER = textwrap.dedent(f"""
    import json, sys
    from IPython.core.interactiveshell import InteractiveShell

    def reply(message):
        sys.stdout.write({REPLY!r} + json.dumps(message, default=str) + "\\n")
        sys.stdout.flush()

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "apify_magic")
    ip.run_line_magic("config", "ApifyMagic.poll_secs = 0.2")
    reply({{"ready": True}})
    for line in sys.stdin:
        ip.user_ns.pop("value", None)
        result = ip.run_cell(json.loads(line), store_history=False)
        err = result.error_before_exec or result.error_in_exec
        if err is None:
            reply({{"value": ip.user_ns.get("value")}})
        else:
            reply({{"error": type(err).__name__, "message": getattr(err, "message", str(err)),
                   "hint": getattr(err, "hint", "")}})
""")

# Cells the kernels run. `value` is what comes back.
RUNTIME = textwrap.dedent("""
    import httpx
    from apify_magic.local import embedded
    api = httpx.Client(base_url=embedded.ensure_started() + "/v2", timeout=60)
""")
LAST_RUN = ("value = api.get('/actor-runs', params={'desc': 1, 'limit': 1})"
            ".json()['data']['items'][0]")


class Kernel:
    """A real Python process with the magic loaded, as a notebook's kernel would have it."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.stderr_path = cwd / f"kernel-{time.monotonic_ns()}.stderr"
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", DRIVER], cwd=cwd, env=env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._reply(120) == {"ready": True}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(REPLY):
                self._replies.put(json.loads(line[len(REPLY):]))
        self._replies.put(None)

    def _reply(self, timeout: float) -> dict[str, Any]:
        try:
            found = self._replies.get(timeout=timeout)
        except queue.Empty:
            found = None
        assert found is not None, f"the kernel did not answer: {self.stderr()}"
        return found

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def run(self, cell: str, timeout: float = 120) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cell) + "\n")
        self.proc.stdin.flush()
        return self._reply(timeout)

    def value(self, cell: str, timeout: float = 120) -> Any:
        reply = self.run(cell, timeout)
        assert "error" not in reply, (reply, self.stderr())
        return reply["value"]

    def exit(self) -> None:
        """The kernel shuts down as Jupyter shuts it down: the interpreter exits."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(60) == 0, self.stderr()
        self._close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._close()

    def _close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def kernels(tmp_path: Path, embedded_data_dir: Path) -> Iterator[list[Kernel]]:
    started: list[Kernel] = []
    yield started
    for kernel in started:
        if kernel.proc.poll() is None:
            kernel.kill()


def start_kernel(kernels: list[Kernel], tmp_path: Path, base: Path,
                 **extra: str) -> Kernel:
    """A kernel with no token, whose HOME and XDG folders are the test's own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("APIFY_", "ACTOR_", "CRAWLEE_", "JPY_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), XDG_DATA_HOME=str(tmp_path / "xdg-data"),
               XDG_CACHE_HOME=str(tmp_path / "xdg-cache"), APIFY_MAGIC_DATA_DIR=str(base),
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH"))
                                          if p))
    env.update(extra)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    kernel = Kernel(work, env)
    kernels.append(kernel)
    return kernel


def processes_of_run(run_id: str) -> list[int]:
    return processes_with_env(f"ACTOR_RUN_ID={run_id}")


def run_folders(base: Path) -> dict[str, Path]:
    return {p.name: p for p in base.glob("runtimes/*/runs/*")}


def test_a_finished_run_and_named_storages_are_there_after_a_restart(
        kernels: list[Kernel], tmp_path: Path, embedded_data_dir: Path) -> None:
    first = start_kernel(kernels, tmp_path, embedded_data_dir)
    assert first.run('%%apify_run hello out\n{"name": "Kim", "count": 2}') == {"value": None}
    run = first.value(RUNTIME + LAST_RUN)
    assert run["status"] == "SUCCEEDED"
    first.value("api.post('/datasets', params={'name': 'kept'}).raise_for_status()")
    first.exit()
    assert list(embedded_data_dir.glob("runtimes/*/runs/*")) != []
    assert not (tmp_path / "home" / ".local" / "share" / "apify-magic").exists()

    second = start_kernel(kernels, tmp_path, embedded_data_dir)
    assert second.value(f"%apify_attach {run['id']} df\n"
                        "value = df.to_dict('records')") == [
        {"n": 1, "greeting": "Hello, Kim!", "name": "Kim"},
        {"n": 2, "greeting": "Hello, Kim!", "name": "Kim"}]
    assert second.value(f"%apify_attach {run['id']} items --dataset --as python\n"
                        "value = items") == [
        {"n": 1, "greeting": "Hello, Kim!", "name": "Kim"},
        {"n": 2, "greeting": "Hello, Kim!", "name": "Kim"}]
    # The dead kernel's folder was taken over whole: its named storages came along.
    assert second.value(RUNTIME + "value = api.get('/datasets/kept').status_code") == 200
    unknown = second.run("%apify_attach NoSuchRun12345678 out")
    assert unknown["error"] == "NotFoundError"
    assert "no run NoSuchRun12345678" in unknown["hint"]
    assert "Actor id" not in unknown["hint"]
    assert "for 7 days (APIFY_MAGIC_RETENTION_DAYS" in unknown["hint"]
    second.exit()
    assert len(list(embedded_data_dir.glob("runtimes/*"))) == 1


def test_a_run_cut_off_by_a_killed_kernel_reads_aborted_and_its_process_is_gone(
        kernels: list[Kernel], tmp_path: Path, embedded_data_dir: Path) -> None:
    doomed = start_kernel(kernels, tmp_path, embedded_data_dir, APIFY_MAGIC_WARM_STARTS="0")
    run = doomed.value(RUNTIME + "value = api.post('/acts/slow/runs', json={'seconds': 120, "
                                 "'steps': 1}, params={'waitForFinish': 1}).json()['data']")
    assert run["status"] == "RUNNING"
    deadline = time.monotonic() + 30
    while not processes_of_run(run["id"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_of_run(run["id"])
    doomed.kill()

    after = start_kernel(kernels, tmp_path, embedded_data_dir)
    attached = after.run(f"%apify_attach {run['id']} out")
    assert attached["error"] == "RunFailedError"
    assert f"run ID: {run['id']}, status: ABORTED" in attached["message"]
    assert datadir.CUT_OFF_MESSAGE in attached["hint"]
    seen = after.value(RUNTIME + f"value = api.get('/actor-runs/{run['id']}').json()['data']")
    assert seen["status"] == "ABORTED" and seen["isStatusMessageTerminal"] is True
    assert seen["statusMessage"] == datadir.CUT_OFF_MESSAGE
    assert seen["finishedAt"] >= seen["startedAt"]
    log = after.value(f"value = api.get('/actor-runs/{run['id']}/log').text")
    assert "Working: step 1 of 1" in log and datadir.CUT_OFF_MESSAGE in log
    assert processes_of_run(run["id"]) == []
    after.exit()


def test_two_kernels_on_one_data_dir_keep_to_their_own_runs(
        kernels: list[Kernel], tmp_path: Path, embedded_data_dir: Path) -> None:
    one = start_kernel(kernels, tmp_path, embedded_data_dir)
    run = one.value(RUNTIME + "value = api.post('/acts/slow/runs', json={'seconds': 8, "
                              "'steps': 4}).json()['data']")
    one_dir = one.value("value = str(embedded.data_dir())")

    # A second kernel starts while the first one's run goes on: it must leave it alone.
    two = start_kernel(kernels, tmp_path, embedded_data_dir)
    two_dir = two.value(RUNTIME + "value = str(embedded.data_dir())")
    assert two_dir != one_dir
    assert two.value(f"value = api.get('/actor-runs/{run['id']}').status_code") == 404
    saved = json.loads((Path(one_dir) / "runs" / run["id"] / "run.json").read_text())
    assert saved["status"] not in ("ABORTED", "SUCCEEDED")
    two_run = two.value("value = api.post('/acts/hello/run-sync', json={'name': 'Two'})"
                        ".headers['X-Apify-Run-Id']")

    assert one.value(f"%apify_attach {run['id']} out\nvalue = out")["steps"] == 4
    one.exit()

    # A third kernel takes over the first one's folder, never the live second one's.
    three = start_kernel(kernels, tmp_path, embedded_data_dir)
    assert three.value(RUNTIME + "value = str(embedded.data_dir())") == one_dir
    assert three.value(f"%apify_attach {run['id']} out\nvalue = out")["steps"] == 4
    assert three.value(f"value = api.get('/actor-runs/{two_run}').status_code") == 404
    assert two.value(f"value = api.get('/actor-runs/{two_run}').json()['data']['status']"
                     ) == "SUCCEEDED"
    two.exit()
    three.exit()
    assert set(run_folders(embedded_data_dir)) == {run["id"], two_run}


def _copy_run(source: Path, runs: Path, run_id: str, finished: datetime) -> None:
    target = runs / run_id
    shutil.copytree(source, target)
    data = json.loads((target / "run.json").read_text())
    data.update(id=run_id, finishedAt=finished.isoformat().replace("+00:00", "Z"),
                startedAt=(finished - timedelta(seconds=1)).isoformat().replace("+00:00",
                                                                                 "Z"),
                defaultKeyValueStoreId=f"K{run_id}", defaultDatasetId=f"D{run_id}",
                defaultRequestQueueId=f"Q{run_id}")
    (target / "run.json").write_text(json.dumps(data))


@pytest.mark.parametrize("days", [None, "30"])
def test_runs_past_the_retention_are_deleted_at_start_but_the_newest_ten_stay(
        embedded_data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        days: str | None) -> None:
    monkeypatch.chdir(tmp_path)
    if days is not None:
        monkeypatch.setenv("APIFY_MAGIC_RETENTION_DAYS", days)
    try:
        with httpx.Client(base_url=embedded.ensure_started() + "/v2", timeout=60) as api:
            real = api.post("/acts/hello/run-sync", json={}).headers["X-Apify-Run-Id"]
        runs = Path(str(embedded.data_dir())) / "runs"
    finally:
        embedded.stop()
    now = datetime.now(timezone.utc)
    recent = "RecentRun0000003d"
    _copy_run(runs / real, runs, recent, now - timedelta(days=3))
    old = [f"OldRun{i:011d}" for i in range(12)]  # newest first
    for i, run_id in enumerate(old):
        _copy_run(runs / real, runs, run_id, now - timedelta(days=8, hours=i))
    try:
        with httpx.Client(base_url=embedded.ensure_started() + "/v2", timeout=60) as api:
            assert Path(str(embedded.data_dir())) / "runs" == runs  # taken over
            found = {run_id: api.get(f"/actor-runs/{run_id}").status_code
                     for run_id in [real, recent, *old]}
    finally:
        embedded.stop()
    # 7 days: the real run, the recent one and 8 old ones are the newest ten.
    kept = {real, recent, *old[:8]} if days is None else {real, recent, *old}
    assert {run_id for run_id, status in found.items() if status == 200} == kept
    assert {run_id for run_id, status in found.items() if status == 404} == set(
        found) - kept
    assert {p.name for p in runs.iterdir()} == kept


def test_a_dead_folder_left_with_nothing_is_deleted_and_live_ones_are_untouched(
        tmp_path: Path) -> None:
    base = tmp_path / "base"
    first = datadir.claim(base)
    second = datadir.claim(base)  # the first is held: a folder of its own
    assert first.path != second.path
    (first.path / "runs" / "RunOfTheFirst0001").mkdir()
    (first.path / "runs" / "RunOfTheFirst0001" / "run.json").write_text(json.dumps(
        {"id": "RunOfTheFirst0001", "status": "RUNNING",
         "startedAt": "2030-01-01T00:00:00.000Z"}))
    first.release()
    live = datadir.claim(base)  # takes the first's folder over; the second is live
    assert live.path == first.path and live.cut_off == ["RunOfTheFirst0001"]
    assert json.loads((live.path / "runs" / "RunOfTheFirst0001" / "run.json").read_text())[
        "status"] == "ABORTED"
    (second.path / "runs" / "RunOfTheSecond001").mkdir()
    second.release()
    live.release()
    third = datadir.claim(base)  # the newest dead one whole; the other's runs moved in
    assert third.path == live.path
    assert third.adopted == ["RunOfTheSecond001"]
    assert not second.path.exists()  # nothing was left in it
    assert {p.name for p in (third.path / "runs").iterdir()} == {
        "RunOfTheFirst0001", "RunOfTheSecond001"}
    third.release()


def test_settings_come_from_the_environment_and_bad_ones_are_refused(
        tmp_path: Path) -> None:
    home = Path.home()
    assert datadir.base_dir({}) == home / ".local" / "share" / "apify-magic"
    assert datadir.base_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "apify-magic"
    assert datadir.base_dir({"XDG_DATA_HOME": "relative"}) == (
        home / ".local" / "share" / "apify-magic")
    assert datadir.base_dir({"APIFY_MAGIC_DATA_DIR": str(tmp_path / "d"),
                             "XDG_DATA_HOME": "/x"}) == tmp_path / "d"
    settings = datadir.Settings.from_env({"APIFY_MAGIC_RETENTION_DAYS": "0.5",
                                          "APIFY_MAGIC_KEEP_RUNS": "20"})
    assert (settings.retention_days, settings.keep_runs) == (0.5, 20)
    for name, value in [("APIFY_MAGIC_RETENTION_DAYS", "-1"),
                        ("APIFY_MAGIC_RETENTION_DAYS", "nan"),
                        ("APIFY_MAGIC_RETENTION_DAYS", "week"),
                        ("APIFY_MAGIC_KEEP_RUNS", "0"), ("APIFY_MAGIC_KEEP_RUNS", "1.5")]:
        with pytest.raises(OptionError, match=name):
            datadir.Settings.from_env({name: value})


def test_an_unusable_data_dir_falls_back_to_a_temporary_one(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("APIFY_MAGIC_DATA_DIR", str(blocked))
    monkeypatch.chdir(tmp_path)
    try:
        with httpx.Client(base_url=embedded.ensure_started() + "/v2", timeout=60) as api:
            assert api.post("/acts/hello/run-sync", json={}).status_code == 201
        temporary = embedded.data_dir()
        assert temporary is not None and not temporary.is_relative_to(tmp_path)
    finally:
        embedded.stop()
    assert not temporary.exists()
    assert "cannot keep its runs in" in capsys.readouterr().err


def test_a_process_of_a_cut_off_run_that_outlived_everything_is_killed_at_takeover(
        tmp_path: Path) -> None:
    base = tmp_path / "base"
    gone = datadir.claim(base)
    run_id = "RunLeftRunning001"
    folder = gone.path / "runs" / run_id
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(
        {"id": run_id, "status": "RUNNING", "startedAt": "2020-01-01T00:00:00.000Z"}))
    env = {**os.environ, "ACTOR_RUN_ID": run_id}
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                              env=env, start_new_session=True)
    try:
        gone.release()
        before = datetime.now(timezone.utc)
        taken = datadir.claim(base)
        assert taken.cut_off == [run_id]
        assert orphan.wait(10) == -signal.SIGKILL
        data = json.loads((folder / "run.json").read_text())
        assert data["status"] == "ABORTED"
        assert datetime.fromisoformat(data["finishedAt"].replace("Z", "+00:00")) >= (
            before - timedelta(seconds=1))
        taken.release()
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
