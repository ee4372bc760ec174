"""`%apify_map` on the real local runtime with real Actor processes: input forms,
templates, validation before anything runs, concurrency from the runtime's limits
(checked on the runtime's side), 402/429 backoff, a lost start answer, partial failure,
interrupt, the budget, and a killed kernel resumed against a runtime of its own."""

from __future__ import annotations

import _thread
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from recording import loaded_shell, run

from apify_magic.errors import InputError, MapFailedError, OptionError, RunInterruptedError
from apify_magic.local import LocalRuntime
from apify_magic.local.registry import SHIPPED_ACTORS

MAP_ACTORS = Path(__file__).parent / "map_actors"
ROOT = Path(__file__).resolve().parent.parent
BUDGET_MB = 512  # with --memory 128: four runs at once


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    rt = LocalRuntime([MAP_ACTORS, SHIPPED_ACTORS], data_dir=tmp_path_factory.mktemp("rt"),
                      kill_grace_secs=1.0, memory_budget_mbytes=BUDGET_MB)
    rt.start()
    yield rt
    rt.stop()


@pytest.fixture
def ip(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    monkeypatch.setenv("APIFY_API_BASE_URL", runtime.url)
    monkeypatch.chdir(tmp_path)  # the ledger goes beside "the notebook"
    with loaded_shell(poll_secs=0.2) as shell:
        yield shell


def _runs(runtime: LocalRuntime, since: float) -> list[Any]:
    return [r for r in runtime.runner.runs.values() if r.started_at.timestamp() >= since]


def _peak_overlap(runs: list[Any]) -> int:
    """Most runs alive at once, from the runtime's own start and finish times."""
    events = sorted([(r.started_at.timestamp(), 1) for r in runs]
                    + [(r.finished_at.timestamp(), -1) for r in runs])
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


# -- input forms and templates -------------------------------------------------------


def test_a_list_line_form_binds_one_frame_with_positions_as_labels(
        ip: Any, runtime: LocalRuntime) -> None:
    since = time.time()
    ip.user_ns["inputs"] = [{"name": "a", "count": 2}, {"name": "b", "count": 1}]
    ip.run_line_magic("apify_map", "hello df --over inputs --memory 128")
    df = ip.user_ns["df"]
    assert list(df.index.get_level_values("label")) == [0, 0, 1]
    assert list(df["name"]) == ["a", "a", "b"]
    runs = df.attrs["apify_map"].runs
    assert list(runs["status"]) == ["SUCCEEDED"] * 2
    assert set(runs["run_id"]) == {r.id for r in _runs(runtime, since)}
    assert {"run_id", "status", "started", "finished", "duration_secs", "usd",
            "error"} <= set(runs.columns)
    assert (Path.cwd() / "apify-map.ledger.jsonl").is_file()


def test_a_dict_labels_results_by_its_keys_and_plain_outputs_go_in_a_column(ip: Any) -> None:
    ip.user_ns["by_name"] = {"x": {"v": 1}, "y": {"v": 2}}
    out = ip.run_line_magic("apify_map", "wait --over by_name --memory 128")
    assert list(out.index) == ["x", "y"]
    assert out.index.name == "label"
    assert [o["v"] for o in out["output"]] == [1, 2]


def test_a_dataframe_cell_template_with_item_keys_and_notebook_variables(ip: Any) -> None:
    ip.user_ns["shops"] = pd.DataFrame({"name": ["ann", "bob"], "n": [1, 2]},
                                       index=["s1", "s2"])
    ip.user_ns["loud"] = True
    result = run(ip, "%%apify_map hello df --over shops --memory 128\n"
                     '{"name": {{ item.name }}, "count": {{ item.n }}, "shout": {{ loud }}}')
    assert result.error_in_exec is None
    df = ip.user_ns["df"]
    assert list(df.loc["s2"]["greeting"]) == ["HELLO, BOB!"] * 2
    assert list(df.index.get_level_values(0)) == ["s1", "s2", "s2"]


def test_item_as_json_and_batches(ip: Any) -> None:
    ip.user_ns["words"] = ["a", "b", "c", "d", "e"]
    result = run(ip, "%%apify_map wait df --over words --batch 2 --memory 128\n"
                     '{"words": {{ batch }}}')
    assert result.error_in_exec is None
    df = ip.user_ns["df"]
    assert [o["words"] for o in df["output"]] == [["a", "b"], ["c", "d"], ["e"]]
    assert df.index.name == "batch"
    assert list(df.attrs["apify_map"].runs["members"]) == [[0, 1], [2, 3], [4]]
    result = run(ip, "%%apify_map wait one --over words --memory 128\n{\"w\": {{ item }}}")
    assert result.error_in_exec is None
    assert [o["w"] for o in ip.user_ns["one"]["output"]] == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(("cell", "error"), [
    ('{"url": {{ item.missing }}}', "[1] has no key 'missing'"),
    ('{"url": "{{ item.u }}"}', "not valid JSON after inserting"),
    ('{"url": {{ nowhere }}}', "'nowhere' is not defined"),
    ('{"url": {{ batch }}}', "without --batch"),
    ('{"url": ', "not valid JSON"),
])
def test_one_bad_element_is_named_and_nothing_runs(
        ip: Any, runtime: LocalRuntime, cell: str, error: str) -> None:
    ip.user_ns["elements"] = [{"u": "a", "missing": 1}, {"u": "b"}]
    before = len(runtime.runner.runs)
    with pytest.raises(InputError, match=error.replace("[", r"\[")):
        ip.run_cell_magic("apify_map", "wait df --over elements", cell)
    assert len(runtime.runner.runs) == before
    assert "df" not in ip.user_ns


@pytest.mark.parametrize("line", [
    "wait --over nothing_here", "wait --over elements --concurrency 0",
    "wait --over elements --retries -1", "wait --over elements --batch 0",
    "wait --over elements --budget-usd nan", "wait --over elements --memory 100",
    "wait --over elements --ledger ''", "wait --over scalar", "wait --over empty",
    "'bad id' --over elements",
])
def test_invalid_lines_send_nothing(ip: Any, runtime: LocalRuntime, line: str) -> None:
    ip.user_ns.update(elements=[{"u": "a"}], scalar=3, empty=[])
    before = len(runtime.runner.runs)
    with pytest.raises((InputError, OptionError)):
        ip.run_line_magic("apify_map", line)
    assert len(runtime.runner.runs) == before


# -- within the limits ---------------------------------------------------------------


def test_concurrency_comes_from_the_runtimes_free_memory(
        ip: Any, runtime: LocalRuntime) -> None:
    ip.user_ns["inputs"] = [{"wait": 0.4, "n": i} for i in range(12)]
    since = time.time()
    ip.run_line_magic("apify_map", "wait df --over inputs --memory 128")
    report = ip.user_ns["df"].attrs["apify_map"]
    assert report.concurrency == BUDGET_MB // 128
    runs = _runs(runtime, since)
    assert len(runs) == 12
    assert _peak_overlap(runs) <= BUDGET_MB // 128
    # Another run holds half the memory: the map fits into the rest.
    with httpx.Client(base_url=runtime.url) as http:
        hog = http.post("/v2/acts/wait/runs", params={"memory": "256"},
                        json={"wait": 30}).json()["data"]["id"]
        try:
            since = time.time()
            ip.run_line_magic("apify_map", "wait df --over inputs --memory 128 "
                                           "--ledger other.jsonl")
            assert ip.user_ns["df"].attrs["apify_map"].concurrency == 2
            assert _peak_overlap(_runs(runtime, since)) <= 2
        finally:
            http.post(f"/v2/actor-runs/{hog}/abort")


def test_a_402_slows_the_map_down_and_fails_no_input(ip: Any, runtime: LocalRuntime) -> None:
    """Someone else takes memory while the map runs: starts get 402
    actor-memory-limit-exceeded from the runtime itself, the map backs off, all succeed."""
    ip.user_ns["inputs"] = [{"wait": 0.5, "n": i} for i in range(10)]
    since = time.time()

    def squeeze() -> None:
        while not _runs(runtime, since):
            time.sleep(0.01)
        runtime.runner.memory_budget_mbytes = 256
        time.sleep(1.5)
        runtime.runner.memory_budget_mbytes = BUDGET_MB

    threading.Thread(target=squeeze, daemon=True).start()
    try:
        ip.run_line_magic("apify_map", "wait df --over inputs --memory 128")
    finally:
        runtime.runner.memory_budget_mbytes = BUDGET_MB
    df = ip.user_ns["df"]
    assert df.attrs["apify_map"].stats["refused_402"] >= 1
    assert list(df.attrs["apify_map"].runs["status"]) == ["SUCCEEDED"] * 10
    assert len(_runs(runtime, since)) == 10


class FaultyProxy:
    """A loopback proxy before the runtime for the wire faults it never makes: answers
    429 (Retry-After: 1) to the first `refuse` run starts, and forwards the next
    `lose` starts but drops the connection instead of answering (the run exists)."""

    def __init__(self, upstream: str, refuse: int = 0, lose: int = 0) -> None:
        self.refuse, self.lose, self.starts = refuse, lose, 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                start = self.command == "POST" and self.path.split("?")[0].endswith("/runs")
                if start:
                    proxy.starts += 1
                    if proxy.refuse > 0:
                        proxy.refuse -= 1
                        body = b'{"error":{"type":"rate-limit-exceeded","message":"slow"}}'
                        self.send_response(429)
                        self.send_header("Retry-After", "1")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                answer = httpx.request(self.command, upstream + self.path, content=data,
                                       headers=headers, timeout=70)
                if start and proxy.lose > 0:
                    proxy.lose -= 1
                    self.close_connection = True
                    return  # the run started; its answer is lost
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding",
                                           "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_429_waits_its_retry_after_and_a_lost_start_is_found_not_repeated(
        runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    proxy = FaultyProxy(runtime.url, refuse=2, lose=2)
    monkeypatch.setenv("APIFY_API_BASE_URL", proxy.url)
    monkeypatch.chdir(tmp_path)
    since = time.time()
    try:
        with loaded_shell(poll_secs=0.2) as ip:
            ip.user_ns["inputs"] = [{"n": i} for i in range(6)]
            started = time.monotonic()
            ip.run_line_magic("apify_map", "wait df --over inputs --memory 128")
            elapsed = time.monotonic() - started
            stats = ip.user_ns["df"].attrs["apify_map"].stats
    finally:
        proxy.close()
    assert stats["refused_429"] == 2 and stats["lost_starts"] == 2
    assert elapsed >= 1.0  # Retry-After was honoured
    assert len(_runs(runtime, since)) == 6  # the two lost starts were found, not re-sent
    assert proxy.starts == 8  # six starts that reached the runtime, two refused


# -- failures, interrupt, budget -----------------------------------------------------


def test_failures_bind_what_succeeded_then_raise_with_labels_run_ids_and_lines(
        ip: Any) -> None:
    ip.user_ns["inputs"] = {"ok1": {"v": 1}, "bad": {"fail": "boom at page 3"},
                            "ok2": {"v": 2}}
    with pytest.raises(MapFailedError) as caught:
        ip.run_line_magic("apify_map", "wait df --over inputs --memory 128 --retries 1")
    df = ip.user_ns["df"]
    assert list(df.index) == ["ok1", "ok2"]
    runs = df.attrs["apify_map"].runs
    bad = runs.loc["bad"]
    assert bad["status"] == "FAILED" and bad["attempts"] == 2  # --retries 1
    text = str(caught.value)
    assert "1 of 3 runs of wait did not succeed" in text
    assert f"'bad': run {bad['run_id']} FAILED" in text and "boom at page 3" in text
    # Run again: the two successes are reused, only the failure starts again.
    with pytest.raises(MapFailedError):
        ip.run_line_magic("apify_map", "wait df --over inputs --memory 128")
    runs = ip.user_ns["df"].attrs["apify_map"].runs
    assert list(runs["origin"]) == ["reused", "new", "reused"]


def test_interrupt_aborts_every_run_still_going_and_binds_what_finished(
        ip: Any, runtime: LocalRuntime) -> None:
    ip.user_ns["inputs"] = [{"wait": 0.1}, {"wait": 60}, {"wait": 60}, {"wait": 60}]
    since = time.time()

    def interrupt() -> None:
        while sum(r.status == "RUNNING" for r in _runs(runtime, since)) < 3:
            time.sleep(0.02)
        time.sleep(0.5)
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(RunInterruptedError, match="3 runs of this map were aborted"):
        ip.run_line_magic("apify_map", "wait df --over inputs --memory 128")
    df = ip.user_ns["df"]
    assert list(df.index) == [0]
    runs = _runs(runtime, since)
    assert sorted(r.status for r in runs) == ["ABORTED"] * 3 + ["SUCCEEDED"]
    ledger = [json.loads(line) for line in (Path.cwd() / "apify-map.ledger.jsonl")
              .read_text().splitlines()]
    assert sum(e["event"] == "ended" and e.get("status") == "ABORTED" for e in ledger) == 3


def test_the_budget_stops_new_starts(ip: Any, runtime: LocalRuntime) -> None:
    ip.user_ns["inputs"] = [{"wait": 0.5, "n": i} for i in range(8)]
    since = time.time()
    # Each run costs about 1 GB x 0.6 s at $0.30 a compute unit: $0.00005.
    with pytest.raises(MapFailedError, match="inputs were not started: --budget-usd"):
        ip.run_line_magic("apify_map", "wait df --over inputs --memory 256 "
                                       "--concurrency 1 --budget-usd 0.00002")
    runs = ip.user_ns["df"].attrs["apify_map"].runs
    started = _runs(runtime, since)
    assert 1 <= len(started) < 8
    assert (runs["status"] == "NOT-STARTED").sum() == 8 - len(started)
    assert sum(r.to_dict()["usageTotalUsd"] for r in started[:-1]) <= 0.00002


# -- a killed kernel, resumed ---------------------------------------------------------

KERNEL = """
import sys
sys.path.insert(0, {root!r})
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "apify_magic")
ip.run_line_magic("config", "ApifyMagic.poll_secs = 0.2")
ip.user_ns["inputs"] = [{{"wait": 1.0, "n": i}} for i in range(12)]
ip.run_line_magic("apify_map", "wait df --over inputs --memory 128")
print(ip.user_ns["df"].attrs["apify_map"].runs["origin"].value_counts().to_json())
"""


def test_a_killed_kernel_run_again_creates_each_run_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIFY_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "apify_magic.local", "--actors", str(MAP_ACTORS),
         "--no-examples", "--data-dir", str(tmp_path / "data"), "--memory-budget", "512"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = next(w for w in server.stdout.readline().split() if w.startswith("http"))
        env["APIFY_API_BASE_URL"] = url.rstrip(".")
        kernel = [sys.executable, "-c", KERNEL.format(root=str(ROOT))]
        first = subprocess.Popen(kernel, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        with httpx.Client(base_url=env["APIFY_API_BASE_URL"]) as http:
            def runs() -> list[dict[str, Any]]:
                return http.get("/v2/actor-runs", params={"limit": "1000"}).json(
                    )["data"]["items"]
            deadline = time.monotonic() + 60
            while len(runs()) < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.killpg(first.pid, signal.SIGKILL)  # the kernel dies in the middle
            first.wait()
            going = [r for r in runs() if r["status"] == "RUNNING"]
            assert going  # some runs were cut off from their kernel
            second = subprocess.run(kernel, cwd=tmp_path, env=env, capture_output=True,
                                    text=True, timeout=120)
            assert second.returncode == 0, second.stderr
            origins = json.loads(second.stdout.strip().splitlines()[-1])
            final = runs()
        assert len(final) == 12  # none started twice
        assert all(r["status"] == "SUCCEEDED" for r in final)
        assert origins.get("new", 0) + origins.get("reused", 0) \
            + origins.get("reattached", 0) == 12
        assert origins.get("new", 0) < 12
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()


def test_ledger_lines_say_what_a_rerun_needs(ip: Any) -> None:
    ip.user_ns["inputs"] = [{"a": 1}]
    ip.run_line_magic("apify_map", "wait df --over inputs --memory 128 --ledger sub/l.jsonl")
    lines = [json.loads(line) for line in Path("sub/l.jsonl").read_text().splitlines()]
    assert [e["event"] for e in lines] == ["starting", "started", "ended"]
    assert lines[0]["marker"].startswith(lines[0]["key"])
    assert lines[1]["runId"] == lines[2]["runId"] and lines[2]["status"] == "SUCCEEDED"
    datetime.fromtimestamp(lines[2]["at"])
