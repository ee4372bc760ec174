"""Benchmarks of the magic itself, each a ratio against a baseline run side by side.

    python bench/bench_magic.py [--rounds N]

1. `%%apify_run` wall time over a bare `httpx.post` of the same request to the same
   loopback server, for a 1 KB OUTPUT (target <= 1.10).
2. Turning a 100,000-record OUTPUT (~40 MB of JSON) into the bound DataFrame, over the
   floor `pandas.DataFrame.from_records(orjson.loads(body))` (target <= 1.2), and the
   peak memory of both as the process sees it (resident size, each in a fresh process);
   then the peak of a whole `%apify_run records df` of that OUTPUT on the embedded
   runtime, and what stays after it.
3. What `%load_ext apify_magic` adds to a bare IPython start (target < 100 ms).
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
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pandas as pd

SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
body = sys.stdin.buffer.read()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body wait on a delayed ACK (40 ms)
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"""


def start_server(output: bytes) -> tuple[subprocess.Popen[bytes], str]:
    # The server runs in its own process so it does not share the GIL with the client.
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(output)
    proc.stdin.close()
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleaved(a: Callable[[], Any], b: Callable[[], Any], rounds: int) -> tuple[float, float]:
    """Medians of a and b, run alternately so drift hits both alike."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(timed(a))
        tb.append(timed(b))
    return statistics.median(ta), statistics.median(tb)


def bench_request(rounds: int) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    output = json.dumps([{"i": i, "url": f"https://example.com/{i}"} for i in range(28)]).encode()
    proc, url = start_server(output)
    try:
        os.environ["APIFY_API_BASE_URL"] = url
        os.environ["APIFY_TOKEN"] = "bench-token"
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "apify_magic")
        cell = '%%apify_run me~actor out --as python\n{"startUrls": [{"url": "https://a.b"}]}'
        body = b'{"startUrls": [{"url": "https://a.b"}]}'
        headers = {"Authorization": "Bearer bench-token", "Content-Type": "application/json"}
        endpoint = f"{url}/v2/actors/me~actor/run-sync"

        def magic() -> None:
            result = ip.run_cell(cell, store_history=False)
            assert result.error_in_exec is None, result.error_in_exec

        def bare() -> None:
            httpx.post(endpoint, content=body, headers=headers).json()

        client = httpx.Client()

        def keepalive() -> None:
            client.post(endpoint, content=body, headers=headers).json()

        for _ in range(20):  # warm up both paths
            magic()
            bare()
            keepalive()
        t_magic, t_bare = interleaved(magic, bare, rounds)
        t_magic2, t_keep = interleaved(magic, keepalive, rounds)
        client.close()
        print(f"1. run-sync, {len(output)} B OUTPUT, median of {rounds}:")
        print(f"   magic {t_magic * 1e3:.2f} ms, bare httpx.post {t_bare * 1e3:.2f} ms: "
              f"ratio {t_magic / t_bare:.2f} (target <= 1.10)")
        print(f"   magic {t_magic2 * 1e3:.2f} ms, keep-alive httpx.Client.post "
              f"{t_keep * 1e3:.2f} ms: ratio {t_magic2 / t_keep:.2f}")
    finally:
        proc.kill()
        proc.wait()


def records(n: int) -> bytes:
    text = "lorem ipsum dolor sit amet " * 10
    return orjson.dumps([
        {"url": f"https://example.com/page/{i}", "title": f"Page number {i}", "depth": i % 5,
         "score": i / 7, "ok": i % 3 == 0, "text": text[: 200 + i % 80],
         "loadedAt": "2026-11-29T12:00:00.000Z"}
        for i in range(n)])


# Run in a fresh process: peak resident size (VmHWM, reset first) above what it held
# before, in bytes, for one way of getting the DataFrame.
PEAK = """
import gc, sys
sys.path.insert(0, {bench!r})
from bench_magic import records, status
import orjson, pandas as pd
from apify_magic.result import convert
body = records(100_000)
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
if {how!r} == "magic":
    kept = convert(body, "application/json; charset=utf-8", "auto")
else:
    kept = pd.DataFrame.from_records(orjson.loads(body))
print(status("VmHWM") - before)
"""

# The same for a whole cell on the embedded runtime: peak above the kernel before the
# cell, and what stays after it.
CELL = """
import gc, os, sys
sys.path.insert(0, {bench!r})
from bench_magic import status
os.chdir({bench!r})  # its actors/ folder holds `records`
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "apify_magic")
small = {{"n": 10}}
ip.user_ns["small"] = small
ip.run_cell("%apify_run records warm -i small").raise_error()  # runtime and imports up
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
ip.run_cell("%apify_run records df").raise_error()
print(status("VmHWM") - before, status("VmRSS") - before, len(ip.user_ns["df"]))
"""


def status(key: str) -> int:
    """A /proc/self/status figure in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def fresh(code: str) -> list[int]:
    # The embedded runtime: no token, no base URL (bench_request set both for its server).
    env = {k: v for k, v in os.environ.items()
           if k not in ("APIFY_TOKEN", "APIFY_API_BASE_URL")}
    with tempfile.TemporaryDirectory(prefix="bench-magic-") as data:
        env["APIFY_MAGIC_DATA_DIR"] = data  # not the user's own kept runs
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env=env).stdout
    return [int(x) for x in out.split()]


def bench_convert(rounds: int) -> None:
    from apify_magic.result import convert

    body = records(100_000)
    ctype = "application/json; charset=utf-8"

    def magic() -> pd.DataFrame:
        frame = convert(body, ctype, "auto")
        assert isinstance(frame, pd.DataFrame)
        return frame

    def floor() -> pd.DataFrame:
        return pd.DataFrame.from_records(orjson.loads(body))

    magic()
    floor()
    t_magic, t_floor = interleaved(magic, floor, max(3, rounds // 40))
    bench = os.path.dirname(os.path.abspath(__file__))
    m_magic = fresh(PEAK.format(bench=bench, how="magic"))[0]
    m_floor = fresh(PEAK.format(bench=bench, how="floor"))[0]
    cell_peak, cell_kept, rows = fresh(CELL.format(bench=bench))
    frame_mb = floor().memory_usage(deep=True).sum() / 2**20
    print(f"2. 100,000-record OUTPUT ({len(body) / 2**20:.1f} MB JSON) to a DataFrame "
          f"({frame_mb:.0f} MB):")
    print(f"   magic {t_magic:.3f} s, floor {t_floor:.3f} s: ratio {t_magic / t_floor:.2f} "
          "(target <= 1.2)")
    print(f"   peak resident memory above the body: magic {m_magic / 2**20:.0f} MB, "
          f"floor {m_floor / 2**20:.0f} MB")
    print(f"   a whole %apify_run of it ({rows} rows) on the embedded runtime: peak "
          f"+{cell_peak / 2**20:.0f} MB above the kernel before the cell, "
          f"+{cell_kept / 2**20:.0f} MB after it")


LOAD = """
import time
t0 = time.perf_counter()
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
t1 = time.perf_counter()
{load}
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def bench_load_ext(rounds: int) -> None:
    def start(load: str) -> tuple[float, float]:
        out = subprocess.run([sys.executable, "-c", LOAD.format(load=load)],
                             capture_output=True, text=True, check=True).stdout.split()
        return float(out[0]), float(out[1])

    bare, loaded, ext = [], [], []
    for _ in range(max(5, rounds // 20)):
        b = start("pass")
        bare.append(sum(b))
        s, e = start("ip.run_line_magic('load_ext', 'apify_magic')")
        loaded.append(s + e)
        ext.append(e)
    added = statistics.median(loaded) - statistics.median(bare)
    print(f"3. IPython start {statistics.median(bare) * 1e3:.0f} ms; with %load_ext "
          f"apify_magic {statistics.median(loaded) * 1e3:.0f} ms: adds {added * 1e3:.0f} ms "
          f"(the %load_ext call itself {statistics.median(ext) * 1e3:.1f} ms; "
          "target < 100 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    bench_request(args.rounds)
    bench_convert(args.rounds)
    bench_load_ext(args.rounds)


if __name__ == "__main__":
    main()
