"""Benchmark the local runtime, printing every figure from one run.

    python bench/bench_local.py [--plain-runs 40] [--sdk-runs 5] [--load-runs 200]

1. run-sync of the plain `hello` Actor over launching the same Actor as a bare subprocess
   (writing INPUT, running `python -m src`, reading OUTPUT): target <= 1.15.
2. run-sync of the `sdk-table` Actor (the Apify SDK) over `apify run` of the same folder
   with the Apify CLI from npm: target >= 3x faster. Skipped when `apify` is not installed.
3. 200 run-syncs at concurrency 20: errors (target 0), runs per second, and Actor
   processes left over (target 0).

The runtime runs in this process, as it does embedded in a notebook kernel.

    python bench/bench_local.py --against DIR

4. run-sync of `hello` against this runtime and, interleaved in the same run, against the
   runtime of another checkout DIR (e.g. `git worktree add /tmp/base <commit>`), twice:
   each runtime started as its own process (`python -m apify_magic.local`), and each
   embedded with its client in one process, as a notebook kernel has it. The ratios tell
   whether a change made run-sync slower.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from apify_cli import INSTALL_HINT, SDK_INPUT, time_apify_run

from apify_magic.local import LocalRuntime
from apify_magic.local.registry import SHIPPED_ACTORS

HELLO_INPUT = {"name": "bench", "count": 3}


def run_sync(client: httpx.Client, actor: str, body: object) -> httpx.Response:
    return client.post(f"/v2/acts/{actor}/run-sync", json=body)


def bare_launch(folder: Path, storage: Path) -> float:
    """The same Actor, launched directly: write INPUT, run it, read OUTPUT."""
    started = time.perf_counter()
    kvs = storage / "key_value_stores" / "default"
    kvs.mkdir(parents=True)
    data = json.dumps(HELLO_INPUT).encode()
    (kvs / "INPUT").write_bytes(data)
    (kvs / "INPUT.__metadata__.json").write_text(json.dumps(
        {"key": "INPUT", "content_type": "application/json", "size": len(data)}))
    env = {**os.environ, "APIFY_LOCAL_STORAGE_DIR": str(storage),
           "CRAWLEE_STORAGE_DIR": str(storage)}
    subprocess.run([sys.executable, "-m", "src"], cwd=folder, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    json.loads((kvs / "OUTPUT").read_bytes())
    return time.perf_counter() - started


def timed_run_sync(client: httpx.Client, actor: str, body: object) -> float:
    started = time.perf_counter()
    response = run_sync(client, actor, body)
    response.raise_for_status()
    response.json()
    return time.perf_counter() - started


def bench_plain(client: httpx.Client, tmp: Path, runs: int) -> None:
    folder = SHIPPED_ACTORS / "hello"
    for i in range(3):  # warm the page cache and the connection
        timed_run_sync(client, "hello", HELLO_INPUT)
        bare_launch(folder, tmp / f"warm{i}")
    api, bare = [], []
    for i in range(runs):  # interleaved, so drift hits both alike
        api.append(timed_run_sync(client, "hello", HELLO_INPUT))
        bare.append(bare_launch(folder, tmp / f"bare{i}"))
    a, b = statistics.median(api), statistics.median(bare)
    print(f"plain Actor (hello), median of {runs}: run-sync {a * 1000:.1f} ms, "
          f"bare subprocess {b * 1000:.1f} ms, ratio {a / b:.2f} (target <= 1.15)")


def bench_sdk(client: httpx.Client, tmp: Path, runs: int) -> None:
    api = [timed_run_sync(client, "sdk-table", SDK_INPUT) for _ in range(runs + 1)][1:]
    a = statistics.median(api)
    c = time_apify_run(tmp, runs)
    if c is None:
        print(f"SDK Actor (sdk-table), median of {runs}: run-sync {a:.2f} s; "
              f"`apify run` skipped: {INSTALL_HINT}")
        return
    print(f"SDK Actor (sdk-table), median of {runs}: run-sync {a:.2f} s, `apify run` "
          f"{c:.2f} s: {c / a:.1f}x faster (target >= 3x)")


def leftover_processes(run_ids: set[str]) -> int:
    """Live processes whose environment names one of the runs."""
    markers = {f"ACTOR_RUN_ID={r}".encode() for r in run_ids}
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if markers & set(f.read().split(b"\0")):
                    count += 1
        except OSError:
            continue
    return count


def bench_load(runtime: LocalRuntime, total: int, concurrency: int) -> None:
    errors: list[str] = []
    run_ids: set[str] = set()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=runtime.url, timeout=120, limits=limits) as client:
        def one(i: int) -> None:
            try:
                response = run_sync(client, "hello", {"name": f"n{i}", "count": 2})
            except httpx.HTTPError as err:
                errors.append(repr(err))
                return
            run_ids.add(response.headers.get("X-Apify-Run-Id", ""))
            if response.status_code != 201 or response.json()[0]["name"] != f"n{i}":
                errors.append(f"{response.status_code} {response.text[:200]}")

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(total)))
        elapsed = time.perf_counter() - started
    left = leftover_processes(run_ids)
    print(f"{total} run-syncs at concurrency {concurrency}: errors {len(errors)}, "
          f"{total / elapsed:.1f} runs/s ({elapsed:.1f} s), leftover processes {left}")
    for error in errors[:5]:
        print("  error:", error)


def _runtime_process(checkout: Path, data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    shipped = checkout / "apify_magic" / "local" / "actors"
    proc = subprocess.Popen(
        [sys.executable, "-m", "apify_magic.local", "--actors", str(shipped), "--no-examples",
         "--data-dir", str(data_dir)], cwd=checkout, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def bench_against(checkout: Path, tmp: Path, runs: int) -> None:
    """Interleaved run-syncs against this checkout's runtime and another's, each in its own
    process, as `python -m apify_magic.local` runs them."""
    here = Path(__file__).resolve().parent.parent
    procs = [_runtime_process(here, tmp / "here"), _runtime_process(checkout, tmp / "there")]
    try:
        with httpx.Client(base_url=procs[0][1], timeout=120) as mine, \
                httpx.Client(base_url=procs[1][1], timeout=120) as theirs:
            for _ in range(3):
                timed_run_sync(mine, "hello", HELLO_INPUT)
                timed_run_sync(theirs, "hello", HELLO_INPUT)
            a_times, b_times = [], []
            for _ in range(runs):
                a_times.append(timed_run_sync(mine, "hello", HELLO_INPUT))
                b_times.append(timed_run_sync(theirs, "hello", HELLO_INPUT))
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(10)
    a, b = statistics.median(a_times), statistics.median(b_times)
    print(f"run-sync of hello, median of {runs}, each runtime in its own process: "
          f"this checkout {a * 1000:.1f} ms, {checkout} {b * 1000:.1f} ms, ratio {a / b:.2f}")


# A worker for the embedded comparison: the runtime of the checkout on its PYTHONPATH and
# an httpx client in one process; one run-sync per line read, its time in seconds written.
_EMBEDDED_WORKER = """
import sys, tempfile, time, httpx
from pathlib import Path
from apify_magic.local import LocalRuntime
from apify_magic.local.registry import SHIPPED_ACTORS
runtime = LocalRuntime([SHIPPED_ACTORS], data_dir=Path(tempfile.mkdtemp())).start()
client = httpx.Client(base_url=runtime.url, timeout=120)
print("ready", flush=True)
for _ in sys.stdin:
    started = time.perf_counter()
    client.post("/v2/acts/hello/run-sync", json=HELLO_INPUT).raise_for_status()
    print(time.perf_counter() - started, flush=True)
runtime.stop()
""".replace("HELLO_INPUT", repr(HELLO_INPUT))


def bench_against_embedded(checkout: Path, runs: int) -> None:
    """Interleaved run-syncs, each checkout's runtime embedded beside its client."""
    here = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", _EMBEDDED_WORKER], cwd=tempfile.gettempdir(),
                              env={**os.environ, "PYTHONPATH": str(where)}, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for where in (here, checkout)]
    times: list[list[float]] = [[], []]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for i in range(runs + 5):  # the first five warm up
            for k, proc in enumerate(procs):
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
                took = float(proc.stdout.readline())
                if i >= 5:
                    times[k].append(took)
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(30)
    a, b = statistics.median(times[0]), statistics.median(times[1])
    print(f"run-sync of hello, median of {runs}, each runtime embedded beside its client: "
          f"this checkout {a * 1000:.1f} ms, {checkout} {b * 1000:.1f} ms, ratio {a / b:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plain-runs", type=int, default=40)
    parser.add_argument("--sdk-runs", type=int, default=5)
    parser.add_argument("--load-runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--against", type=Path, default=None, metavar="DIR",
                        help="also compare run-sync with the runtime of another checkout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-local-") as name:
        tmp = Path(name)
        runtime = LocalRuntime([SHIPPED_ACTORS], data_dir=tmp / "data").start()
        try:
            with httpx.Client(base_url=runtime.url, timeout=120) as client:
                bench_plain(client, tmp, args.plain_runs)
                if args.sdk_runs:
                    bench_sdk(client, tmp, args.sdk_runs)
            bench_load(runtime, args.load_runs, args.concurrency)
        finally:
            runtime.stop()
        all_runs = set(runtime.runner.runs)
        print(f"after the runtime stopped: leftover processes {leftover_processes(all_runs)}")
        if args.against is not None:
            bench_against(args.against.resolve(), tmp, args.plain_runs)
            bench_against_embedded(args.against.resolve(), args.plain_runs)


if __name__ == "__main__":
    main()
