"""Benchmark warm starts of the local runtime, printing every figure from one run.

    python bench/bench_warm.py [--sdk-runs 6] [--plain-runs 20]

1. run-sync of the `sdk-table` Actor (the Apify SDK): warm start against cold start
   against `apify run` of the same folder with the Apify CLI from npm (targets: warm at
   least 4x faster than cold and 15x faster than `apify run`). The CLI line is skipped,
   with a note, when `apify` is not installed.
2. run-sync of the plain `hello` Actor (no SDK): warm against cold.

Both runtimes run in this process, as one does embedded in a notebook kernel; runs of the
two are interleaved so that drift hits both alike. One run before the timed ones starts
the warm parent (it runs cold while the parent imports); the first timed run of each
kind is left out too (page cache, connections).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from apify_cli import INSTALL_HINT, SDK_INPUT, time_apify_run

from apify_magic.local import LocalRuntime
from apify_magic.local.registry import SHIPPED_ACTORS

HELLO_INPUT = {"name": "bench", "count": 3}


def timed_run_sync(client: httpx.Client, actor: str, body: object, mode: str) -> float:
    started = time.perf_counter()
    response = client.post(f"/v2/acts/{actor}/run-sync", json=body)
    response.raise_for_status()
    response.json()
    elapsed = time.perf_counter() - started
    run_id = response.headers["X-Apify-Run-Id"]
    run = client.get(f"/v2/actor-runs/{run_id}").json()["data"]
    assert run["meta"]["startMode"] == mode, (run["meta"], mode)
    return elapsed


def warm_up(client: httpx.Client, runtime: LocalRuntime, actor: str, body: object) -> None:
    """The first run starts the warm parent (and runs cold while it imports)."""
    client.post(f"/v2/acts/{actor}/run-sync", json=body).raise_for_status()
    assert runtime.runner.warm is not None and runtime.runner.warm.wait_ready(60)


def compare(warm: httpx.Client, cold: httpx.Client, actor: str, body: object,
            runs: int) -> tuple[float, float]:
    times: dict[str, list[float]] = {"warm": [], "cold": []}
    for i in range(runs + 1):
        for mode, client in (("warm", warm), ("cold", cold)):
            elapsed = timed_run_sync(client, actor, body, mode)
            if i:
                times[mode].append(elapsed)
    return statistics.median(times["warm"]), statistics.median(times["cold"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sdk-runs", type=int, default=6)
    parser.add_argument("--plain-runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as name:
        tmp = Path(name)
        warm_rt = LocalRuntime([SHIPPED_ACTORS], data_dir=tmp / "warm").start()
        cold_rt = LocalRuntime([SHIPPED_ACTORS], data_dir=tmp / "cold",
                               warm_starts=False).start()
        try:
            with httpx.Client(base_url=warm_rt.url, timeout=120) as warm, \
                    httpx.Client(base_url=cold_rt.url, timeout=120) as cold:
                warm_up(warm, warm_rt, "hello", HELLO_INPUT)
                w, c = compare(warm, cold, "sdk-table", SDK_INPUT, args.sdk_runs)
                cli = time_apify_run(tmp, args.sdk_runs)
                line = (f"SDK Actor (sdk-table), run-sync, median of {args.sdk_runs}: "
                        f"warm {w * 1000:.0f} ms, cold {c * 1000:.0f} ms: "
                        f"{c / w:.1f}x faster (target >= 4x)")
                print(line)
                if cli is None:
                    print(f"  `apify run` skipped: {INSTALL_HINT}")
                else:
                    print(f"  `apify run` of the same folder: {cli * 1000:.0f} ms: warm is "
                          f"{cli / w:.1f}x faster (target >= 15x)")
                w, c = compare(warm, cold, "hello", HELLO_INPUT, args.plain_runs)
                print(f"plain Actor (hello), run-sync, median of {args.plain_runs}: "
                      f"warm {w * 1000:.1f} ms, cold {c * 1000:.1f} ms: {c / w:.1f}x faster")
        finally:
            warm_rt.stop()
            cold_rt.stop()


if __name__ == "__main__":
    main()
