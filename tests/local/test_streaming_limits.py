"""A run's log is capped as the platform caps it; logs, records and dataset pages are
streamed, so the runtime's memory does not grow with what an Actor writes.

The memory tests run the runtime in its own process (`python -m apify_magic.local`, as a
user starts it) and read its resident size from /proc: the peak (VmHWM, reset before each
request through clear_refs) above the resident size it had before the request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from local_helpers import WARM_STARTS

from apify_magic.local.logpipe import MAX_LOG_BYTES, TRUNCATED, LogPipe, append_line, stamp
from apify_magic.local.runs_api import printable

TEST_ACTORS = Path(__file__).parent / "actors"
STAMPED_LINE = re.compile(rb"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z ")
FINAL_LINE = len(stamp()) + len(TRUNCATED) + 1
MIB = 1 << 20
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED")


@dataclasses.dataclass
class Served:
    """A runtime in its own process."""

    url: str
    pid: int
    data: Path
    client: httpx.Client

    def run_dir(self, run_id: str) -> Path:
        return self.data / "runs" / run_id

    def start(self, actor_input: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/actors/big-output/runs", json=actor_input)
        assert response.status_code == 201, response.text
        run: dict[str, Any] = response.json()["data"]
        return run

    def finish(self, run: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while run["status"] not in TERMINAL:
            assert time.monotonic() < deadline, f"the run did not end: {run}"
            run = self.client.get(f"/actor-runs/{run['id']}",
                                  params={"waitForFinish": "10"}).json()["data"]
        return run

    def memory_kb(self) -> dict[str, int]:
        found = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0])
        return found

    def peak_growth_mb(self, request: Any) -> tuple[float, Any]:
        """Run `request()`; how far the runtime's peak resident size rose above what it
        had before (MB), and what `request` gave."""
        with open(f"/proc/{self.pid}/clear_refs", "w") as f:
            f.write("5")  # the peak resident size starts again from the current one
        before = self.memory_kb()["VmRSS"]
        result = request()
        return (self.memory_kb()["VmHWM"] - before) / 1024, result


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("served")
    out, err = data.parent / f"{data.name}.out", data.parent / f"{data.name}.err"
    argv = [sys.executable, "-m", "apify_magic.local", "--actors", str(TEST_ACTORS),
            "--data-dir", str(data), "--no-examples", "--sync-wait-secs", "120"]
    if not WARM_STARTS:
        argv.append("--no-warm-starts")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("APIFY_", "ACTOR_", "CRAWLEE_"))
           or k in ("APIFY_MAGIC_WARM_STARTS", "APIFY_MAGIC_LOCAL_TRACE")}
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env)
    try:
        deadline = time.monotonic() + 60
        while not out.read_bytes().endswith(b"\n"):
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "the runtime did not print its URL"
            time.sleep(0.05)
        url = out.read_text().splitlines()[0].strip()
        with httpx.Client(base_url=f"{url}/v2", timeout=120.0) as client:
            yield Served(url, proc.pid, data, client)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _lines_stamped(log: bytes) -> None:
    lines = log.split(b"\n")
    assert lines[-1] == b"", "a log ends with a newline"
    for line in lines[:-1]:
        assert STAMPED_LINE.match(line), line[:200]


def _download(client: httpx.Client, method: str, url: str, **kwargs: Any
              ) -> tuple[httpx.Response, int, str]:
    """A response read as it comes, kept only as its size and SHA-256."""
    digest = hashlib.sha256()
    size = 0
    with client.stream(method, url, **kwargs) as response:
        for chunk in response.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    return response, size, digest.hexdigest()


# -- the log's cap ---------------------------------------------------------------------


def test_a_log_stops_at_the_platforms_cap_and_the_actor_never_blocks(served: Served) -> None:
    run = served.start({"printBytes": MAX_LOG_BYTES + 3 * MIB, "last": "THE END"})
    run = served.finish(run)
    assert run["status"] == "SUCCEEDED", run  # it printed 13 MiB: the pipe was drained
    log = (served.run_dir(run["id"]) / "log.txt").read_bytes()
    assert len(log) <= MAX_LOG_BYTES + FINAL_LINE
    body, final = log[:-FINAL_LINE], log[-FINAL_LINE:]
    # Whole lines up to the cap (within a line of it), then the one line that says so.
    assert MAX_LOG_BYTES - 200 < len(body) <= MAX_LOG_BYTES
    assert STAMPED_LINE.match(final) and final.endswith(TRUNCATED + b"\n"), final
    assert log.count(TRUNCATED) == 1 and b"THE END" not in log
    _lines_stamped(log)
    numbered = [line for line in body.split(b"\n") if b" line " in line]
    assert numbered and all(len(line) == len(stamp()) + 99 for line in numbered)  # whole
    # The API serves the capped log as it is (streamed: it is over 1 MiB).
    assert served.client.get(f"/actor-runs/{run['id']}/log").content == log


def _pipe_writes(log: Path, *chunks: bytes) -> None:
    pipe = LogPipe(log, "test")
    for chunk in chunks:
        written = 0
        while written < len(chunk):
            written += os.write(pipe.write_fd, chunk[written:written + 65536])
    pipe.close(timeout=30)


def test_the_cap_is_the_whole_logs_across_a_runs_processes(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    block = b"".join(b"%08d " % i + b"z" * 90 + b"\n" for i in range(60_000))  # 5.7 MiB
    _pipe_writes(log, block)  # a first process
    append_line(log, "[apify-magic-local] restart 1")  # the runtime's own line
    assert TRUNCATED not in log.read_bytes()
    _pipe_writes(log, block)  # the restarted process passes the cap
    capped = log.read_bytes()
    assert MAX_LOG_BYTES - 200 < len(capped) - FINAL_LINE <= MAX_LOG_BYTES
    assert capped.endswith(TRUNCATED + b"\n") and capped.count(TRUNCATED) == 1
    _pipe_writes(log, b"a third process\n")  # later processes and lines add nothing
    append_line(log, "[apify-magic-local] restart 2")
    assert log.read_bytes() == capped
    _lines_stamped(capped)


def test_a_line_longer_than_whats_left_is_cut_on_a_character(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    _pipe_writes(log, b"short\n", "\u00e9".encode() * (6 * MIB))  # 12 MiB, no newline
    capped = log.read_bytes()
    assert len(capped) <= MAX_LOG_BYTES + FINAL_LINE
    assert len(capped) > MAX_LOG_BYTES - 8 + FINAL_LINE  # filled up to the cap
    capped.decode("utf-8")  # no character cut in two
    assert capped.endswith(TRUNCATED + b"\n")
    _lines_stamped(capped)


# -- serving a log ---------------------------------------------------------------------


def test_a_finished_runs_log_whole_and_streamed(served: Served) -> None:
    run = served.finish(served.start({"first": ["\x1b[31mred\x1b[0m start"],
                                      "printBytes": 3 * MIB, "last": "\x1b[1mbold\x1b[0m end"}))
    assert run["status"] == "SUCCEEDED", run
    log = (served.run_dir(run["id"]) / "log.txt").read_bytes()
    assert len(log) > 3 * MIB and b"\x1b[31m" in log
    clean = printable(log)
    assert b"\x1b" not in clean and b"red start\n" in clean and clean.endswith(b"bold end\n")
    path = f"/actor-runs/{run['id']}/log"
    for query, expected in (({}, clean), ({"raw": "1"}, log), ({"stream": "1"}, clean),
                            ({"stream": "1", "raw": "1"}, log)):
        response = served.client.get(path, params=query)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert response.content == expected, query


def test_a_running_runs_log_streamed_as_it_grows(served: Served) -> None:
    run = served.start({"first": ["\x1b[31mred\x1b[0m start"], "printBytes": 2 * MIB,
                        "waitFor": "RELEASE"})
    path = f"/actor-runs/{run['id']}/log"
    got = b""
    with served.client.stream("GET", path, params={"stream": "1"}) as response:
        chunks = response.iter_bytes()
        while b"waiting\n" not in got:
            got += next(chunks)
        # Meanwhile, the log read whole is what there is so far.
        so_far = served.client.get(path).content
        assert so_far.startswith(got[:len(got) // 2]) and b"waiting\n" in so_far
        assert served.client.get(f"/actor-runs/{run['id']}").json()["data"]["status"] == \
            "RUNNING"
        put = served.client.put(f"/key-value-stores/{run['defaultKeyValueStoreId']}"
                                "/records/RELEASE", content=b"1")
        assert put.status_code == 201
        for chunk in chunks:
            got += chunk
    assert served.finish(run)["status"] == "SUCCEEDED"
    log = (served.run_dir(run["id"]) / "log.txt").read_bytes()
    assert got == printable(log)  # every byte once, in order, escape codes out
    assert b"red start\n" in got and b"released\n" in got and b"\x1b" not in got


# -- records and dataset pages, and the runtime's memory -------------------------------


def _pattern_digest(size: int) -> str:
    piece = bytes(range(256)) * 4096
    digest = hashlib.sha256()
    for start in range(0, size, len(piece)):
        digest.update(piece[:size - start])
    return digest.hexdigest()


def test_a_large_record_is_served_in_little_memory(served: Served) -> None:
    size = 200 * MIB
    growth, (response, got, digest) = served.peak_growth_mb(lambda: _download(
        served.client, "POST", "/actors/big-output/run-sync", json={"recordBytes": size}))
    assert response.status_code == 201, response.headers
    assert response.headers["content-type"] == "application/octet-stream"
    assert (got, digest) == (size, _pattern_digest(size))
    assert growth < 32, f"run-sync of a 200 MB record: the runtime grew {growth:.0f} MB"
    run = served.client.get(f"/actor-runs/{response.headers['x-apify-run-id']}").json()["data"]
    growth, (response, got, digest) = served.peak_growth_mb(lambda: _download(
        served.client, "GET",
        f"/key-value-stores/{run['defaultKeyValueStoreId']}/records/OUTPUT"))
    assert response.status_code == 200
    assert (got, digest) == (size, _pattern_digest(size))
    assert growth < 32, f"GET of a 200 MB record: the runtime grew {growth:.0f} MB"


def _stored_items(served: Served, run_id: str) -> list[bytes]:
    folder = served.run_dir(run_id) / "storage" / "datasets" / "default"
    return [p.read_bytes() for p in sorted(folder.glob("*.json"))
            if p.name != "__metadata__.json"]


ITEMS = {"items": 20_000, "itemBytes": 4000}  # 80 MB of items


def test_a_large_dataset_page_is_served_in_little_memory(served: Served) -> None:
    growth, (response, got, digest) = served.peak_growth_mb(lambda: _download(
        served.client, "POST", "/actors/big-output/run-sync-get-dataset-items", json=ITEMS))
    assert response.status_code == 201, response.headers
    run_id = response.headers["x-apify-run-id"]
    stored = _stored_items(served, run_id)
    assert len(stored) == 20_000 and sum(map(len, stored)) > 75 * MIB
    expected = b"[" + b",".join(stored) + b"]"
    assert (got, digest) == (len(expected), hashlib.sha256(expected).hexdigest())
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["content-length"] == str(len(expected))  # as for a whole body
    assert {k: v for k, v in response.headers.items() if k.startswith("x-apify-pagination")} \
        == {"x-apify-pagination-offset": "0", "x-apify-pagination-limit": "20000",
            "x-apify-pagination-count": "20000", "x-apify-pagination-total": "20000",
            "x-apify-pagination-desc": "false"}
    assert growth < 24, f"run-sync of an 80 MB page: the runtime grew {growth:.0f} MB"

    run = served.client.get(f"/actor-runs/{run_id}").json()["data"]
    items = f"/datasets/{run['defaultDatasetId']}/items"
    growth, (response, got, digest) = served.peak_growth_mb(lambda: _download(
        served.client, "GET", items, params={"format": "jsonl", "desc": "1", "offset": "10"}))
    expected = b"".join(line + b"\n" for line in reversed(stored[:-10]))
    assert (got, digest) == (len(expected), hashlib.sha256(expected).hexdigest())
    assert response.headers["x-apify-pagination-count"] == "19990"
    assert response.headers["content-length"] == str(len(expected))
    head = served.client.head(items, params={"format": "jsonl", "desc": "1", "offset": "10"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(expected))
    assert growth < 24, f"GET of an 80 MB page: the runtime grew {growth:.0f} MB"

    # Shaped and as CSV: read item by item, in batches.
    growth, (response, got, digest) = served.peak_growth_mb(lambda: _download(
        served.client, "GET", items, params={"format": "csv", "omit": "tags"}))
    rows = [json.loads(s) for s in stored]
    expected = ("n,name,filler\n" + "".join(f"{r['n']},{r['name']},{r['filler']}\n"
                                            for r in rows)).encode()
    assert (got, digest) == (len(expected), hashlib.sha256(expected).hexdigest())
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert growth < 24, f"GET of an 80 MB CSV page: the runtime grew {growth:.0f} MB"


def test_a_running_runs_large_dataset_page_is_served_in_little_memory(served: Served
                                                                       ) -> None:
    run = served.start({**ITEMS, "waitFor": "RELEASE"})
    log = f"/actor-runs/{run['id']}/log"
    deadline = time.monotonic() + 120
    while b"waiting" not in served.client.get(log).content:  # all items are written
        assert time.monotonic() < deadline
        time.sleep(0.2)
    stored = _stored_items(served, run["id"])
    items = f"/datasets/{run['defaultDatasetId']}/items"
    growth, (response, got, digest) = served.peak_growth_mb(lambda: _download(
        served.client, "GET", items, params={"clean": "1"}))
    expected = ("[" + ", ".join(json.dumps(json.loads(s), ensure_ascii=False)
                                for s in stored) + "]").encode()
    assert (got, digest) == (len(expected), hashlib.sha256(expected).hexdigest())
    assert response.headers["x-apify-pagination-total"] == "20000"
    assert growth < 24, f"GET of a running run's 80 MB page: the runtime grew {growth:.0f} MB"
    served.client.put(f"/key-value-stores/{run['defaultKeyValueStoreId']}/records/RELEASE",
                      content=b"1")
    assert served.finish(run)["status"] == "SUCCEEDED"
