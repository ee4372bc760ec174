"""Datasets over a slow, distant link, and a dataset written to Parquet.

    python bench/bench_scale.py [--items 1000000] [--to-items 10000000] [--rounds 1]

A local runtime serves a finished run's dataset through `latency_proxy.py` (50 ms per
round trip, 20 MB/s per connection). The items (7 fields, as bench/actors/dataset-maker
writes them) are put straight into the run's folder on disk as the JSON-lines copy and
index the runtime serves a finished dataset from (`ItemLines` in local/storage.py), not
as one file per item: 10,000,000 files would take longer to make than to read.

Each method runs in a fresh process; time is from the first request to the bound result,
memory the process's peak resident size (VmHWM) above what it held after its imports:
(magic)   `%apify_attach RUN df --dataset`: pages in flight at once, Arrow per page;
(a)       one `GET .../items?format=json`, `orjson.loads`, `DataFrame.from_records`;
(b)       apify-client `list_items()` + `DataFrame`;  (c) apify-client `iterate_items()`.
Then `%apify_attach RUN ds --dataset --to out.parquet` of `--to-items` items, with the
kernel's peak resident size.
"""

from __future__ import annotations

import argparse
import array
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import orjson

from apify_magic.local import LocalRuntime

HERE = Path(__file__).resolve().parent

COMMON = """
import json, sys, time
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
url, dataset_id, run_id, out = sys.argv[1:5]
import httpx, httpcore
{imports}
base = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # resets VmHWM
t0 = time.perf_counter()
{body}
took = time.perf_counter() - t0
print(json.dumps({{"secs": took, "peak_mb": (status("VmHWM:") - base) / 2**20,
                  "rows": rows}}))
"""

MAGIC = """
import os
os.environ["APIFY_API_BASE_URL"] = url
from IPython.core.interactiveshell import InteractiveShell
import pandas, pyarrow, pyarrow.json, pyarrow.parquet, orjson
import apify_magic.magic, apify_magic.runs, apify_magic.client, apify_magic.dataset_files
import apify_magic.datasets
# BENCH_IN_FLIGHT: pages in flight, to see what they cost (the magic's own default if unset)
apify_magic.datasets.IN_FLIGHT = int(os.environ.get("BENCH_IN_FLIGHT") or
                                     apify_magic.datasets.IN_FLIGHT)
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "apify_magic")
"""

CLIENT = """
import pandas as pd
from datetime import timedelta
from apify_client import ApifyClient
client = ApifyClient("local", api_url=url, timeout_long=timedelta(hours=1),
                     timeout_max=timedelta(hours=1))
"""

METHODS = {
    "magic": (MAGIC, """
ip.run_line_magic("apify_attach", f"{run_id} df --dataset --progress none")
rows = len(ip.user_ns["df"])
"""),
    "(a) GET+orjson": ("import orjson, pandas as pd", """
body = httpx.get(f"{url}/v2/datasets/{dataset_id}/items?format=json", timeout=3600).content
df = pd.DataFrame.from_records(orjson.loads(body))
del body
rows = len(df)
"""),
    "(b) list_items": (CLIENT, """
df = pd.DataFrame(client.dataset(dataset_id).list_items().items)
rows = len(df)
"""),
    "(c) iterate_items": (CLIENT, """
df = pd.DataFrame(list(client.dataset(dataset_id).iterate_items()))
rows = len(df)
"""),
    "magic --to parquet": (MAGIC, """
ip.run_line_magic("apify_attach", f"{run_id} ds --dataset --progress none --to {out}")
rows = ip.user_ns["ds"].items
"""),
}


def make_dataset(runtime: LocalRuntime, data: Path, count: int) -> tuple[str, str]:
    """A finished run whose dataset holds `count` items, written in the runtime's layout."""
    run = httpx.post(f"{runtime.url}/v2/actors/dataset-maker/runs?waitForFinish=60",
                     json={"count": 1}, timeout=120).json()["data"]
    while run["status"] not in ("SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"):
        run = httpx.get(f"{runtime.url}/v2/actor-runs/{run['id']}?waitForFinish=60",
                        timeout=120).json()["data"]
    folder = next(data.rglob(f"runs/{run['id']}"))
    offsets = array.array("q", [0])
    with open(folder / "items.jsonl", "wb") as out:
        for start in range(0, count, 100_000):
            lines = [orjson.dumps({
                "url": f"https://example.com/products/{i}", "title": f"Product number {i}",
                "price": round(9.99 + i % 500 / 7, 2), "inStock": i % 3 != 0,
                "rating": i % 5, "category": ["books", "games", "tools", "toys"][i % 4],
                "scrapedAt": "2026-11-29T12:00:00.000Z"}) + b"\n"
                for i in range(start, min(count, start + 100_000))]
            for line in lines:
                offsets.append(offsets[-1] + len(line))
            out.write(b"".join(lines))
    (folder / "items.idx").write_bytes(offsets.tobytes())
    return run["defaultDatasetId"], run["id"]


def measure(name: str, url: str, dataset_id: str, run_id: str, out: str) -> dict[str, float]:
    imports, body = METHODS[name]
    script = COMMON.format(imports=imports.strip(), body=body.strip())
    done = subprocess.run([sys.executable, "-c", script, url, dataset_id, run_id, out],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{name}: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def proxy(port: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, str(HERE / "latency_proxy.py"), str(port)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    return proc, f"http://127.0.0.1:{line[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--to-items", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--methods", default="magic,(a) GET+orjson,(b) list_items,"
                                             "(c) iterate_items")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            LocalRuntime([HERE / "actors"], data_dir=Path(tmp) / "rt") as runtime:
        port = int(runtime.url.rsplit(":", 1)[1])
        link, url = proxy(port)
        try:
            if args.items:
                dataset_id, run_id = make_dataset(runtime, Path(tmp) / "rt", args.items)
                print(f"{args.items:,} items (7 fields) through the proxy (50 ms round "
                      "trip, 20 MB/s a connection):", flush=True)
                for _ in range(args.rounds):
                    for name in args.methods.split(","):
                        r = measure(name, url, dataset_id, run_id, "")
                        print(f"  {name:20} {r['secs']:7.2f} s  peak +{r['peak_mb']:5.0f} MB"
                              f"  rows {r['rows']:,}", flush=True)
            if args.to_items:
                dataset_id, run_id = make_dataset(runtime, Path(tmp) / "rt", args.to_items)
                out = str(Path(tmp) / "out.parquet")
                r = measure("magic --to parquet", url, dataset_id, run_id, out)
                size = Path(out).stat().st_size / 2**20
                print(f"{args.to_items:,} items to {size:.0f} MB of Parquet through the proxy:"
                      f" {r['secs']:.1f} s, peak +{r['peak_mb']:.0f} MB above the kernel's "
                      f"imports, rows {r['rows']:,}", flush=True)
        finally:
            link.terminate()
            link.wait()


if __name__ == "__main__":
    main()
