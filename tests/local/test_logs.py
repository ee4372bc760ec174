"""Run logs as the platform writes them: a UTC stamp before every line, ANSI codes removed
unless `raw`, and the official client's streamed log, which splits on those stamps."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import httpx
from apify_client import ApifyClient
from hypothesis import given, settings
from hypothesis import strategies as st

from apify_magic.local import LocalRuntime
from apify_magic.local.logpipe import LogPipe, stamp

STAMPED_LINE = re.compile(rb"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z ")


def _unstamped(log: bytes) -> bytes:
    lines = log.split(b"\n")
    assert lines[-1] == b"", "a log ends with a newline"
    for line in lines[:-1]:
        assert STAMPED_LINE.match(line), line
    return b"\n".join(STAMPED_LINE.sub(b"", line) for line in lines)


def test_stamp_is_the_platforms_format() -> None:
    assert STAMPED_LINE.fullmatch(stamp())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_every_line_gets_one_stamp_however_the_writes_fall(chunks: list[bytes]) -> None:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.txt"
        pipe = LogPipe(log, "test")
        for chunk in chunks:
            os.write(pipe.write_fd, chunk)
        pipe.close()
        written = log.read_bytes() if log.exists() else b""
        sent = b"".join(chunks)
        if not sent:
            assert written == b""
            return
        # Whatever lines were written come back, each stamped once, the last one ended.
        assert _unstamped(written) == (sent if sent.endswith(b"\n") else sent + b"\n")
        assert not pipe.path.exists()


def test_a_run_log_is_stamped_and_printable(api: httpx.Client) -> None:
    message = "\x1b[31mred\x1b[0m and plain"
    response = api.post("/actors/fail/run-sync", json={"message": message})
    run_id = response.headers["X-Apify-Run-Id"]
    log = api.get(f"/actor-runs/{run_id}/log").content
    assert b"\x1b" not in log
    assert b"Error: red and plain\n" in _unstamped(log)
    raw = api.get(f"/actor-runs/{run_id}/log", params={"raw": "1"}).content
    assert f"Error: {message}\n".encode() in _unstamped(raw)


def test_the_official_clients_streamed_log_gets_every_line(runtime: LocalRuntime) -> None:
    client = ApifyClient("any-token", api_url=runtime.url)
    run = client.actor("slow").start(run_input={"seconds": 1.0, "steps": 3})
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("test-streamed-log")
    logger.propagate = False
    logger.addHandler(Keep())
    logger.setLevel(logging.DEBUG)
    with client.run(run.id).get_streamed_log(to_logger=logger):
        client.run(run.id).wait_for_finish()
    steps = [line for line in lines if "Working: step" in line]
    assert len(steps) == 3, json.dumps(lines)
