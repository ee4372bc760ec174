"""The official clients, unchanged, on a scripted tour of the local runtime (issue 14).

Each tour (`tour_python.py` with the sync and the async client, `js/tour.mjs` with the
JavaScript client) runs as a subprocess against a real `LocalRuntime` with real Actor
processes, and reports one result per step. Every step must pass, except those listed in
`EXPECTED_FAILING`, which must fail: an entry that starts to pass fails the test, so the
list shrinks as the runtime grows and cannot rot.

The runtime's trace (`apify_magic.local.trace`) gives the requests each step made; a
`404 page-not-found` is never acceptable outside the expected failures (the platform
answers 404 only for a missing record), and every 404 is listed in
`test-results/client-tours-<client>.json`. The trace lines are then handed on to the
session's contract check, so these responses are validated against the spec too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apify_magic.local import LocalRuntime
from apify_magic.local.registry import SHIPPED_ACTORS
from apify_magic.local.trace import ENV_VAR as TRACE_ENV_VAR

HERE = Path(__file__).parent
JS_DIR = HERE / "js"
TEST_ACTORS = HERE.parent / "local" / "actors"
RESULTS = Path("test-results")
TOKEN = "tour-token-not-a-secret"

Tour = tuple[LocalRuntime, Path, list[dict[str, Any]]]  # runtime, its trace, for the session

# Step name (or "<client>: <step>" for one client only) -> why it fails today. Remove an
# entry when its endpoint lands or its bug is fixed.
EXPECTED_FAILING: dict[str, str] = {}


# (step, error type) of 404s the platform would not give, that the runtime gives today in a
# step that passes anyway. Each must still happen: an entry that stops happening fails.
EXPECTED_BAD_404: dict[tuple[str, str], str] = {}


def expected_failing(client: str, step: str) -> str | None:
    return EXPECTED_FAILING.get(step) or EXPECTED_FAILING.get(f"{client}: {step}")


@pytest.fixture(scope="module")
def tour_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    """A runtime of its own whose trace file only the tours write to."""
    trace_dir = tmp_path_factory.mktemp("tour-trace")
    session_trace = os.environ.get(TRACE_ENV_VAR)
    os.environ[TRACE_ENV_VAR] = str(trace_dir)  # read once, when the runtime is built
    try:
        runtime = LocalRuntime([TEST_ACTORS, SHIPPED_ACTORS],
                               data_dir=tmp_path_factory.mktemp("tour-runtime"),
                               token=TOKEN, kill_grace_secs=1.0, sync_wait_secs=60.0)
    finally:
        if session_trace is None:
            del os.environ[TRACE_ENV_VAR]
        else:
            os.environ[TRACE_ENV_VAR] = session_trace
    runtime.start()
    handoff: list[dict[str, Any]] = []
    yield runtime, trace_dir, handoff
    runtime.stop()
    if session_trace and handoff:  # the session's contract check sees these responses too
        (Path(session_trace) / "trace-client-tours.jsonl").write_text(
            "".join(json.dumps(line) + "\n" for line in handoff))


def _trace_lines(trace_dir: Path) -> list[dict[str, Any]]:
    lines = []
    for file in trace_dir.glob("trace-*.jsonl"):
        lines += [json.loads(line) for line in file.read_bytes().splitlines() if line.strip()]
    return lines


def _attach_requests(results: list[dict[str, Any]], trace: list[dict[str, Any]]) -> None:
    """Give each step the responses the runtime sent while it ran (steps run one at a time).

    A response is the last step's that started before it was sent (each line goes to one
    step, even when a millisecond clock makes one step's end the next one's start).
    """
    for r in results:
        r["raw"] = []
    for line in trace:
        owner = None
        for r in results:
            if r["started"] <= line["time"]:
                owner = r
        if owner is not None and line["time"] <= owner["ended"] + 0.01:
            owner["raw"].append(line)
    for r in results:
        r["requests"] = [
            {"method": t["method"], "path": t["path"], "query": t.get("query", ""),
             "status": t["status"],
             "type": _error_type(t) if t["status"] >= 400 else None}
            for t in sorted(r["raw"], key=lambda line: line["time"])]


def _error_type(line: dict[str, Any]) -> str | None:
    try:
        return str(json.loads(line.get("body") or "")["error"]["type"])
    except (ValueError, KeyError, TypeError):
        return None


def _table(results: list[dict[str, Any]]) -> str:
    width = max(len(r["name"]) for r in results)
    rows = []
    for r in results:
        requests = ", ".join(f"{q['method']} {q['path']} {q['status']}"
                             for q in r.get("requests", []))[:300]
        rows.append(f"  {r['name']:<{width}}  {r['error']}\n  {'':<{width}}  [{requests}]")
    return "\n".join(rows)


def _run_tour(command: list[str], name: str, tour: Tour, tmp_path: Path,
              cwd: Path | None = None) -> None:
    runtime, trace_dir, handoff = tour
    out = tmp_path / f"{name}.json"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("APIFY_", "ACTOR_", "CRAWLEE_"))}
    env["APIFY_TOKEN"] = TOKEN
    env["APIFY_API_BASE_URL"] = runtime.url
    done = subprocess.run([*command, "--json", str(out)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert out.exists(), f"the {name} tour wrote no results:\n{done.stdout}\n{done.stderr}"
    results: list[dict[str, Any]] = json.loads(out.read_text())["results"]
    _attach_requests(results, _trace_lines(trace_dir))

    not_found = [{"step": r["name"], **q} for r in results for q in r["requests"]
                 if q["status"] == 404]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"client-tours-{name}.json").write_text(json.dumps(
        {"results": [{k: v for k, v in r.items() if k != "raw"} for r in results],
         "not_found": not_found}, indent=1))

    names = [r["name"] for r in results]
    assert len(set(names)) == len(names), "step names repeat"
    client = name.split("-")[0]
    failed = [r for r in results if not r["ok"] and not expected_failing(client, r["name"])]
    assert not failed, (f"{len(failed)} {name} tour steps failed:\n{_table(failed)}\n\n"
                        f"{done.stdout}")
    now_passing = [r["name"] for r in results if r["ok"] and expected_failing(client, r["name"])]
    assert not now_passing, (f"these steps pass now: remove them from EXPECTED_FAILING: "
                             f"{now_passing}")
    bad_404 = [n for n in not_found if not expected_failing(client, n["step"])
               and n["type"] != "record-not-found"]
    unexpected = [n for n in bad_404 if (n["step"], n["type"]) not in EXPECTED_BAD_404]
    assert not unexpected, f"404s the platform would not give: {unexpected}"
    gone = {key for key in EXPECTED_BAD_404
            if not expected_failing(client, key[0]) and key[0] in names}
    gone -= {(n["step"], n["type"]) for n in bad_404}
    assert not gone, f"these 404s are fixed: remove them from EXPECTED_BAD_404: {gone}"

    # The session's contract check gets the responses of the steps expected to work (a
    # step of a missing endpoint gets 404 page-not-found, which the spec does not declare).
    handoff.extend(t for r in results if not expected_failing(client, r["name"])
                   for t in r.pop("raw"))


@pytest.mark.parametrize("client", ["sync", "async"])
def test_python_client_tour(client: str, tour_runtime: Tour, tmp_path: Path) -> None:
    _run_tour([sys.executable, str(HERE / "tour_python.py"), "--client", client],
              f"python-{client}", tour_runtime, tmp_path)


def test_js_client_tour(tour_runtime: Tour, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node is not installed: install Node.js (Debian's nodejs, or from npm)"
    assert (JS_DIR / "node_modules" / "apify-client").is_dir(), (
        f"apify-client is not installed in {JS_DIR}: run .ci/install-node-actors "
        "(or `npm ci` there)")
    _run_tour([node, str(JS_DIR / "tour.mjs")], "js", tour_runtime, tmp_path, cwd=JS_DIR)
