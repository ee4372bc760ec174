"""`%apify_map` at scale on the local runtime, against the official client's ways.

    python bench/bench_map.py [--inputs 1000] [--noop 10000] [--loop-subset 40]

A local runtime runs in its own process (memory budget 32 x 128 MB, so the limits
allow exactly 32 runs of 128 MB at once); the Actor `wait` (tests/map_actors) sleeps
0.5 s like a scraper waiting on the network, then writes its INPUT back as OUTPUT.
Every method reads each run's OUTPUT.

1. 1,000 inputs at concurrency 32, wall time, each also as a ratio to the ideal
   N x 0.5 s / 32:
   - the magic: `%apify_map wait df --over inputs --memory 128 --concurrency 32`
   - (a) a loop of apify-client's `actor("wait").call()` (measured on a subset and
     extrapolated to N: at about a second a run, all 1,000 would take a quarter hour)
   - (b) `asyncio.gather` over `ApifyClientAsync` with a semaphore of 32
2. 10,000 inputs of a no-op (`wait` 0): the kernel's CPU time per input (the scheduler's
   overhead: the runtime and the Actors are other processes) and the kernel's peak
   resident size (VmHWM, reset before the map) above what it held before.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
ACTORS = ROOT / "tests" / "map_actors"
CONCURRENCY = 32
WAIT_SECS = 0.5


def start_runtime(data_dir: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIFY_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "apify_magic.local", "--actors", str(ACTORS), "--no-examples",
         "--data-dir", data_dir, "--memory-budget", str(CONCURRENCY * 128),
         "--keep-runs", "100000"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = next(w for w in proc.stdout.readline().split() if w.startswith("http"))
    return proc, url.rstrip(".")


def _output(client: Any, run: Any) -> Any:
    store = getattr(run, "default_key_value_store_id", None) or run["defaultKeyValueStoreId"]
    return client.key_value_store(store).get_record("OUTPUT")


def loop_call(url: str, inputs: list[dict[str, Any]]) -> float:
    from apify_client import ApifyClient

    client = ApifyClient("local", api_url=url)
    started = time.perf_counter()
    for item in inputs:
        run = client.actor("wait").call(run_input=item, memory_mbytes=128, logger=None)
        _output(client, run)
    return time.perf_counter() - started


def gather_async(url: str, inputs: list[dict[str, Any]]) -> float:
    from apify_client import ApifyClientAsync

    async def main() -> None:
        client = ApifyClientAsync("local", api_url=url)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(item: dict[str, Any]) -> Any:
            async with gate:
                run = await client.actor("wait").call(run_input=item, memory_mbytes=128,
                                                      logger=None)
                store = getattr(run, "default_key_value_store_id", None)
                return await client.key_value_store(store).get_record("OUTPUT")

        await asyncio.gather(*(one(item) for item in inputs))

    started = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - started


def magic_map(ip: Any, inputs: list[dict[str, Any]], ledger: str) -> tuple[float, Any]:
    ip.user_ns["inputs"] = inputs
    started = time.perf_counter()
    ip.run_line_magic("apify_map", f"wait df --over inputs --memory 128 --concurrency "
                                   f"{CONCURRENCY} --progress none --ledger {ledger}")
    return time.perf_counter() - started, ip.user_ns["df"]


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--noop", type=int, default=10000)
    parser.add_argument("--loop-subset", type=int, default=40)
    args = parser.parse_args()
    from recording import loaded_shell

    work = tempfile.mkdtemp(prefix="bench-map-")
    proc, url = start_runtime(os.path.join(work, "data"))
    os.environ["APIFY_API_BASE_URL"] = url
    ideal = args.inputs * WAIT_SECS / CONCURRENCY
    rows: list[tuple[str, float, str]] = []
    try:
        with loaded_shell(poll_secs=1.0) as ip:
            # Warm up: the runtime's warm parent, connections, imports.
            magic_map(ip, [{"wait": 0, "warm": i} for i in range(CONCURRENCY)],
                      os.path.join(work, "warm.jsonl"))
            inputs = [{"wait": WAIT_SECS, "n": i} for i in range(args.inputs)]
            wall, df = magic_map(ip, inputs, os.path.join(work, "map.jsonl"))
            report = df.attrs["apify_map"]
            assert (report.runs["status"] == "SUCCEEDED").all(), report
            rows.append(("magic `%apify_map`", wall, ""))
            gathered = gather_async(url, [{"wait": WAIT_SECS, "g": i}
                                          for i in range(args.inputs)])
            rows.append(("(b) asyncio.gather + ApifyClientAsync, semaphore 32", gathered, ""))
            subset = [{"wait": WAIT_SECS, "l": i} for i in range(args.loop_subset)]
            looped = loop_call(url, subset) * args.inputs / args.loop_subset
            rows.append(("(a) loop of ApifyClient `actor().call()`", looped,
                         f"measured on {args.loop_subset}, x{args.inputs / args.loop_subset:g}"))
            print(f"{args.inputs} inputs of a 0.5 s Actor at concurrency {CONCURRENCY}; "
                  f"ideal {ideal:.2f} s (2 cores: {os.cpu_count()})")
            print("| method | wall | / ideal | magic faster by | note |")
            print("|---|---|---|---|---|")
            for name, secs, note in rows:
                print(f"| {name} | {secs:.1f} s | {secs / ideal:.2f} | {secs / wall:.2f}x | "
                      f"{note} |")
            print(f"map stats: {report.stats}")

            noop = [{"wait": 0, "z": i} for i in range(args.noop)]
            before_rss = _rss_kb("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
            cpu = time.process_time()
            wall, df = magic_map(ip, noop, os.path.join(work, "noop.jsonl"))
            cpu = time.process_time() - cpu
            peak = _rss_kb("VmHWM")
            report = df.attrs["apify_map"]
            ok = int((report.runs["status"] == "SUCCEEDED").sum())
            print(f"\n{args.noop} no-op inputs: {ok} succeeded in {wall:.1f} s "
                  f"({args.noop / wall:.0f} runs/s); kernel CPU {cpu:.1f} s = "
                  f"{cpu / args.noop * 1000:.2f} ms per input; wall per input "
                  f"{wall / args.noop * 1000:.2f} ms; kernel peak RSS "
                  f"+{(peak - before_rss) / 1024:.0f} MB above {before_rss / 1024:.0f} MB "
                  "before; frame "
                  f"{df.memory_usage(deep=True).sum() / 2**20:.1f} MB")
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
