"""A 200,000-item dataset read to a DataFrame: the magic against two baselines.

    python bench/bench_datasets.py [--items N] [--rounds R]

(magic)  `%apify_attach RUN df --dataset`: JSON lines in pages, pyarrow when installed;
(a)      one `GET .../items?format=json`, `orjson.loads`, `DataFrame.from_records`;
(b)      apify-client's `dataset(...).list_items()` and `pandas.DataFrame(items)`.
The runtime's one-time JSON-lines copy of the finished dataset is made before timing.
Each method runs in a fresh process against the same local runtime, in turns, R rounds;
wall time is from the first request to the finished DataFrame (the first read in the
process, and a second read in the same process, when first-use costs are paid), peak
memory is the process's peak resident size during the first read above what it had
after its imports.
Ratios are paired: each round's methods run back to back, and the median is over rounds.
Targets: magic at least 2x faster than (a) and 4x faster than (b), peak memory <= (a)'s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from apify_magic.local import LocalRuntime

HERE = Path(__file__).resolve().parent

COMMON = """
import json, resource, sys, time
def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
url, dataset_id, run_id = sys.argv[1:4]
# httpx imports its transport (httpcore, and trio or anyio when installed) on first use;
# import it here, as every other module is, so no method's time includes an import.
import httpx, httpcore
{imports}
base = rss_kb()
t0 = time.perf_counter()
{body}
took = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
shape = list(df.shape)
del df
t0 = time.perf_counter()
{body}
again = time.perf_counter() - t0
print(json.dumps({{"secs": took, "again": again, "peak_mb": (peak - base) / 1024,
                  "shape": shape}}))
"""

METHODS = {
    "magic": ("""
import os
os.environ["APIFY_API_BASE_URL"] = url
from IPython.core.interactiveshell import InteractiveShell
import pandas, pyarrow, pyarrow.json, httpx, orjson
import apify_magic.magic, apify_magic.runs, apify_magic.client
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "apify_magic")
""", """
ip.run_line_magic("apify_attach", f"{run_id} df --dataset --progress none")
df = ip.user_ns["df"]
"""),
    "(a) json+orjson": ("""
import httpx, orjson, pandas as pd
""", """
body = httpx.get(f"{url}/v2/datasets/{dataset_id}/items?format=json", timeout=600).content
df = pd.DataFrame.from_records(orjson.loads(body))
del body
"""),
    "(b) apify-client": ("""
import pandas as pd
from apify_client import ApifyClient
client = ApifyClient("local", api_url=url)
""", """
df = pd.DataFrame(client.dataset(dataset_id).list_items().items)
"""),
}


def measure(name: str, url: str, dataset_id: str, run_id: str) -> dict[str, float]:
    imports, body = METHODS[name]
    script = COMMON.format(imports=imports.strip(), body=body.strip())
    out = subprocess.run([sys.executable, "-c", script, url, dataset_id, run_id],
                         capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, \
            LocalRuntime([HERE / "actors"], data_dir=Path(data)) as runtime:
        run = httpx.post(f"{runtime.url}/v2/actors/dataset-maker/runs?waitForFinish=60",
                         json={"count": args.items}, timeout=120).json()["data"]
        while run["status"] not in ("SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"):
            run = httpx.get(f"{runtime.url}/v2/actor-runs/{run['id']}?waitForFinish=60",
                            timeout=120).json()["data"]
        assert run["status"] == "SUCCEEDED", run
        # The runtime makes its JSON-lines copy of a finished dataset on the first read;
        # make it now, so that no method's time includes it.
        httpx.get(f"{runtime.url}/v2/datasets/{run['defaultDatasetId']}/items?limit=1",
                  timeout=600).raise_for_status()
        results: dict[str, list[dict[str, float]]] = {name: [] for name in METHODS}
        for _ in range(args.rounds):
            for name in METHODS:
                results[name].append(
                    measure(name, runtime.url, run["defaultDatasetId"], run["id"]))
    print(f"{args.items:,}-item dataset (7 fields) to a DataFrame, median of {args.rounds} "
          "fresh processes each:")
    med = {name: (statistics.median(r["secs"] for r in rs),
                  statistics.median(r["again"] for r in rs),
                  statistics.median(r["peak_mb"] for r in rs)) for name, rs in results.items()}
    for name, (secs, again, peak) in med.items():
        shape = results[name][0]["shape"]
        firsts = [r["secs"] for r in results[name]]
        print(f"  {name:18} first {secs:5.2f} s ({min(firsts):.2f}-{max(firsts):.2f}), "
              f"again {again:5.2f} s, peak +{peak:4.0f} MB, shape {shape}")
    magic = results["magic"]

    def paired(name: str, key: str) -> str:
        # A round runs the methods back to back, so a ratio within a round cancels the
        # machine's slow and fast spells; the median is over rounds.
        ratios = [b[key] / m[key] for m, b in zip(magic, results[name], strict=True)]
        return (f"{statistics.median(ratios):.2f}x faster {'first' if key == 'secs' else key} "
                f"({min(ratios):.1f}-{max(ratios):.1f})")

    memory = statistics.median(m["peak_mb"] / a["peak_mb"]
                               for m, a in zip(magic, results["(a) json+orjson"], strict=True))
    for name, target in (("(a) json+orjson", 2), ("(b) apify-client", 4)):
        print(f"  magic vs {name[:3]}: {paired(name, 'secs')}, {paired(name, 'again')} "
              f"(target >= {target}, median of the rounds' ratios)")
    print(f"  peak memory: {memory:.2f} of (a)'s (target <= 1)")


if __name__ == "__main__":
    main()
