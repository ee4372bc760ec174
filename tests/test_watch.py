"""Monitored runs and dataset results, on the real local runtime with real Actor processes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from recording import run

from apify_magic import errors
from apify_magic.body import Payload
from apify_magic.client import ApifyClient
from apify_magic.local import LocalRuntime
from apify_magic.options import RunOptions
from apify_magic.progress import NoProgress
from apify_magic.runs import RunFollower
from apify_magic.target import Target

TEST_ACTORS = Path(__file__).parent / "actors"  # the shared `runtime` fixture's Actors
# A short sync wait, so that "longer than run-sync can wait" takes seconds, not minutes.
SYNC_WAIT_SECS = 1.5


def test_watched_run_reports_status_messages_in_order(
        ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(ip, '%%apify_run slow out --watch --progress text\n'
                     '{"seconds": 2.4, "steps": 3}')
    assert result.error_in_exec is None
    assert ip.user_ns["out"]["steps"] == 3
    lines = capsys.readouterr().err.splitlines()
    messages = [line.split(": ", 1)[1] for line in lines if line.startswith("slow: ")]
    wanted = ["RUNNING: Working: step 1 of 3", "RUNNING: Working: step 2 of 3",
              "RUNNING: Working: step 3 of 3", "SUCCEEDED: Done"]
    seen = [m for m in messages if m in wanted]
    assert seen == wanted


def test_watched_run_longer_than_the_sync_wait_succeeds(ip: Any) -> None:
    result = run(ip, '%%apify_run slow out --watch\n{"seconds": 3, "steps": 1}')
    assert result.error_in_exec is None
    assert ip.user_ns["out"]["seconds"] == 3


def test_run_sync_408_says_how_to_attach_and_attaching_binds_the_result(ip: Any) -> None:
    result = run(ip, '%%apify_run slow out\n{"seconds": 3, "steps": 1}')
    err = result.error_in_exec
    assert isinstance(err, errors.RunTimeoutError)
    assert err.run_id
    attach_line = f"%apify_attach {err.run_id} out"
    assert attach_line in err.hint
    assert run(ip, attach_line).error_in_exec is None
    assert ip.user_ns["out"]["seconds"] == 3


def test_attaching_to_a_finished_run_returns_the_same_result(
        ip: Any, runtime: LocalRuntime) -> None:
    assert run(ip, '%%apify_run hello first --watch\n{"count": 4}').error_in_exec is None
    runs = httpx.get(f"{runtime.url}/v2/actors/hello/runs?desc=1").json()["data"]["items"]
    run_id = runs[0]["id"]
    assert run(ip, f"%apify_attach {run_id} again").error_in_exec is None
    pd.testing.assert_frame_equal(ip.user_ns["first"], ip.user_ns["again"])
    assert len(ip.user_ns["again"]) == 4


def test_failed_watched_run_raises_run_failed_with_log_tail(ip: Any) -> None:
    err = run(ip, "%%apify_run fail out --watch\n{}").error_in_exec
    assert isinstance(err, errors.RunFailedError)
    assert err.run_id and f"run ID: {err.run_id}, status: FAILED" in err.message
    # The magic concluded this from the run's status: no server answered 400.
    assert str(err).startswith("run-failed: Actor run did not succeed")
    assert "last lines of the log" in err.hint
    # The log's lines, without the time stamps the runtime (as the platform) writes.
    assert "\n  Error: This Actor fails on purpose" in err.hint and "Z Error" not in err.hint


class FlakyTransport(httpx.BaseTransport):
    """Drops the first poll of a run and answers the second with 503.

    A fake transport, because a real server cannot be made to drop exactly one chosen
    request; every other request goes to the real runtime.
    """

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.polls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and "/actor-runs/" in request.url.path:
            self.polls += 1
            if self.polls == 1:
                raise httpx.RemoteProtocolError("Server disconnected", request=request)
            if self.polls == 2:
                return httpx.Response(503, json={"error": {"type": "x", "message": "busy"}})
        return self.real.handle_request(request)

    def close(self) -> None:
        self.real.close()


def test_dropped_poll_and_5xx_do_not_lose_the_run(runtime: LocalRuntime) -> None:
    transport = FlakyTransport()
    with httpx.Client(transport=transport) as http:
        client = ApifyClient(Target(runtime.url, None), http_client=http,
                             retry_base_secs=0.01)
        follower = RunFollower(client, NoProgress(), actor_id="hello", poll_secs=0.2)
        started = follower.start(RunOptions(), Payload(b'{"count": 2}', "application/json"))
        done = follower.follow()
        assert done["id"] == started["id"]
        assert done["status"] == "SUCCEEDED"
        content, _ = follower.record("OUTPUT")
    assert transport.polls >= 3
    assert [row["n"] for row in json.loads(content)] == [1, 2]


def items(count: int = 10, empties: bool = False) -> list[dict[str, Any]]:
    """What the `items` test Actor pushes, computed here independently."""
    out: list[dict[str, Any]] = []
    for i in range(count):
        out.append({"i": i, "name": f"item {i}", "score": i / 4, "even": i % 2 == 0,
                    "day": f"2026-11-{1 + i % 28:02d}", "#debug": f"d{i}"})
        if empties and i % 3 == 0:
            out.append({})
    return out


def expected(options: dict[str, Any], all_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The platform's semantics: order, offset/limit, then clean, fields, omit."""
    chosen = list(reversed(all_items)) if options.get("desc") else list(all_items)
    start = options.get("offset", 0)
    chosen = chosen[start:start + options["limit"]] if "limit" in options else chosen[start:]
    if options.get("clean"):
        chosen = [{k: v for k, v in it.items() if not k.startswith("#")} for it in chosen]
        chosen = [it for it in chosen if it]
    if "fields" in options:
        chosen = [{k: it[k] for k in options["fields"] if k in it} for it in chosen]
    if "omit" in options:
        chosen = [{k: v for k, v in it.items() if k not in options["omit"]} for it in chosen]
    return chosen


DATASET_CASES = [
    ("", {}),
    ("--fields i,name", {"fields": ["i", "name"]}),
    ("--omit score,#debug", {"omit": ["score", "#debug"]}),
    ("--limit 3", {"limit": 3}),
    ("--offset 4", {"offset": 4}),
    ("--offset 2 --limit 5", {"offset": 2, "limit": 5}),
    ("--clean", {"clean": True}),
    ("--desc --limit 4", {"desc": True, "limit": 4}),
]


@pytest.mark.parametrize("watch", ["", "--watch"])
@pytest.mark.parametrize(("flags", "options"), DATASET_CASES)
def test_dataset_options_follow_the_platform_semantics(
        ip: Any, flags: str, options: dict[str, Any], watch: str) -> None:
    empties = bool(options.get("clean"))
    body = json.dumps({"count": 10, "empties": empties})
    result = run(ip, f"%%apify_run items out --dataset --as python {flags} {watch}\n{body}")
    assert result.error_in_exec is None
    assert ip.user_ns["out"] == expected(options, items(10, empties))


def test_dataset_becomes_a_dataframe_read_in_pages(
        ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apify_magic.runs.PAGE_ITEMS", 7)
    assert run(ip, '%%apify_run items out --dataset --watch\n{"count": 30}').error_in_exec is None
    frame = ip.user_ns["out"]
    pd.testing.assert_frame_equal(frame, pd.DataFrame.from_records(items(30)))


def test_dataset_option_without_dataset_is_refused(ip: Any) -> None:
    err = run(ip, "%%apify_run items out --fields a\n{}").error_in_exec
    assert isinstance(err, errors.OptionError)


@pytest.mark.parametrize("watch", [" --watch", ""])
def test_interrupting_a_kernel_aborts_the_run_in_a_few_lines(runtime: LocalRuntime,
                                                             watch: str) -> None:
    """Kernel > Interrupt during a watched run or a run-sync: the run ends ABORTED, nothing
    is left, and the cell fails with a few lines, not a traceback through our code."""
    from jupyter_client.manager import start_new_kernel
    from local.local_helpers import run_pids

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("APIFY_")}
    env["APIFY_API_BASE_URL"] = runtime.url
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        kc.execute_interactive("%load_ext apify_magic", timeout=60)
        msg_id = kc.execute(f'%%apify_run slow out{watch}\n{{"seconds": 60, "steps": 60}}')
        run_id = wait_for_running_run(runtime.url, "slow")
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=30)
        assert reply["content"]["status"] == "error"  # Run All stops here
        assert reply["content"]["ename"] == "RunInterruptedError"
        errors_seen = []
        while True:
            msg = kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "error":
                errors_seen.append(msg["content"]["traceback"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        (traceback,) = errors_seen
        assert len(traceback) <= 3, traceback
        assert traceback[0].startswith(f"RunInterruptedError: Interrupted: run {run_id} ")
        assert "aborted" in traceback[0]
        state = httpx.get(f"{runtime.url}/v2/actor-runs/{run_id}?waitForFinish=10").json()
        assert state["data"]["status"] == "ABORTED"
        assert run_pids(run_id) == []
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def wait_for_running_run(url: str, actor: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = httpx.get(f"{url}/v2/actors/{actor}/runs?desc=1").json()["data"]["items"]
        running = [r for r in runs if r["status"] == "RUNNING"]
        if running:
            time.sleep(0.5)  # let the magic reach its polling loop
            return str(running[0]["id"])
        time.sleep(0.1)
    raise AssertionError(f"no {actor} run started")


@pytest.mark.parametrize("watch", ["", "--watch"])
def test_dataset_unwind_and_flatten(ip: Any, watch: str) -> None:
    body = '{"count": 2, "nested": true}'
    cell = f"%%apify_run items out --dataset --as python --fields i,tags {watch} --unwind tags"
    assert run(ip, f"{cell}\n{body}").error_in_exec is None
    assert ip.user_ns["out"] == [{"i": 0, "tags": "t0"}, {"i": 0, "tags": "u0"},
                                 {"i": 1, "tags": "t1"}, {"i": 1, "tags": "u1"}]
    cell = f"%%apify_run items out --dataset {watch} --flatten meta --omit tags,#debug,day"
    assert run(ip, f"{cell}\n{body}").error_in_exec is None
    frame = ip.user_ns["out"]
    assert list(frame.columns) == ["i", "name", "score", "even", "meta.depth", "meta.url"]
    assert frame["meta.url"].tolist() == ["https://example.com/0", "https://example.com/1"]


def test_apify_log_prints_and_follows_a_runs_log(ip: Any, runtime: LocalRuntime,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    started = httpx.post(f"{runtime.url}/v2/actors/slow/runs",
                         json={"seconds": 1.2, "steps": 3}).json()["data"]
    capsys.readouterr()
    ip.run_line_magic("apify_log", f"{started['id']} --follow")  # returns when the run ends
    followed = capsys.readouterr().out
    assert [f"Working: step {n} of 3" in followed for n in (1, 2, 3)] == [True] * 3
    ip.run_line_magic("apify_log", started["id"])
    assert capsys.readouterr().out == followed  # the whole log, once it has ended
    with pytest.raises(errors.OptionError):
        ip.run_line_magic("apify_log", "not/an/id")
    for line in ("NoSuchRun12345678 --follow", "NoSuchRun12345678"):
        with pytest.raises(errors.NotFoundError) as raised:
            ip.run_line_magic("apify_log", line)
        assert "no run NoSuchRun12345678" in raised.value.hint
        assert "Actor id" not in raised.value.hint


def test_attach_to_an_unknown_run_speaks_of_runs(ip: Any) -> None:
    err = run(ip, "%apify_attach NoSuchRun12345678 out").error_in_exec
    assert isinstance(err, errors.NotFoundError)
    assert "no run NoSuchRun12345678" in err.hint and "Actor id" not in err.hint
