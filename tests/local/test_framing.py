"""HTTP framing at the socket level: a runtime in its own process, raw bytes from sockets.

Every malformed request is a 400 (never a 500, never an unbounded read), the token is
checked before a body is read, bodies and gzip are bounded, slow and half-open clients
hold no thread, and the runtime goes on serving. RSS and threads are read from
/proc/<pid>/status of the runtime's process.

The tests that wait for the server's timeouts (60 s body, 30 s head and keep-alive) run
only with APIFY_MAGIC_SLOW_TESTS=1.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apify_magic.local import server, strict_h11, wire
from apify_magic.local.registry import SHIPPED_ACTORS

TOKEN = "framing-token"
AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()
MIB = 1 << 20
# How much the runtime's RSS may grow while a client pushes a body it must not read.
RSS_SLACK_KB = 8 * 1024

# Waits for the server's own timeouts (30 and 60 s): run in CI, skipped by default.
slow = pytest.mark.slow


@dataclass
class Runtime:
    process: subprocess.Popen[str]
    host: str
    port: int
    stderr: Path

    def status(self) -> tuple[int, int]:
        """(VmRSS in kB, Threads) of the runtime's process."""
        fields = {}
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                fields[name] = value.split()[0] if value.split() else ""
        return int(fields["VmRSS"]), int(fields["Threads"])

    def connect(self, timeout: float = 10.0) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    tmp = tmp_path_factory.mktemp("framing")
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("APIFY_", "ACTOR_", "CRAWLEE_"))}
    stderr = tmp / "stderr.log"
    with open(stderr, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "apify_magic.local", "--actors", str(SHIPPED_ACTORS),
             "--no-examples", "--data-dir", str(tmp / "data"), "--token", TOKEN,
             "--no-warm-starts"],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("http://"), (url, stderr.read_text())
    host, port = url.removeprefix("http://").rsplit(":", 1)
    yield Runtime(process, host, int(port), stderr)
    process.stdout.close()
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after answering


def read_answer(sock: socket.socket, timeout: float = 10.0, linger: float = 1.0) -> Answer:
    """One response off `sock`; then whether the server closes the connection (within
    `linger` seconds: it closes at once when it does)."""
    deadline = time.monotonic() + timeout
    data = b""

    def more() -> bytes:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            return sock.recv(65536)
        except ConnectionResetError:
            return b""

    while b"\r\n\r\n" not in data:
        chunk = more()
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    if "content-length" in headers:
        while len(body) < int(headers["content-length"]):
            chunk = more()
            assert chunk, "connection closed in the middle of the answer"
            body += chunk
    elif headers.get("transfer-encoding") == "chunked":
        while not body.endswith(b"0\r\n\r\n"):
            chunk = more()
            assert chunk, "connection closed in the middle of the answer"
            body += chunk
    else:  # delimited by the close (uvicorn's own 400)
        while chunk := more():
            body += chunk
        return Answer(status, headers, body, True)
    sock.settimeout(linger)
    try:
        closed = sock.recv(1) == b""
    except TimeoutError:
        closed = False
    except ConnectionResetError:
        closed = True
    return Answer(status, headers, body, closed)


def exchange(runtime: Runtime, data: bytes, timeout: float = 10.0, linger: float = 1.0
             ) -> Answer:
    with runtime.connect(timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)  # the server may answer and close before it has it all
        return read_answer(sock, timeout, linger)


def assert_serving(runtime: Runtime) -> None:
    """A normal authenticated request is answered, on a new connection."""
    answer = exchange(runtime, b"GET /v2/acts/hello HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n",
                      linger=0.1)
    assert answer.status == 200, answer
    assert json.loads(answer.body)["data"]["name"] == "hello"
    assert not answer.closed  # keep-alive


def error_type(answer: Answer) -> str:
    return str(json.loads(answer.body)["error"]["type"])


def post(path: str, headers: bytes = b"", *, auth: bool = True) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode() + (AUTH if auth else b"")
            + b"Content-Type: application/json\r\n" + headers + b"\r\n")


GET = b"GET /v2/acts/hello HTTP/1.1\r\nHost: x\r\n" + AUTH
RUNS = "/v2/acts/hello/runs"
CHUNKED = b"Transfer-Encoding: chunked\r\n"

MALFORMED: dict[str, bytes] = {
    "content-length negative": post(RUNS, b"Content-Length: -1\r\n") + b"{}",
    "content-length non-numeric": post(RUNS, b"Content-Length: 2x\r\n") + b"{}",
    "content-length hex": post(RUNS, b"Content-Length: 0x2\r\n") + b"{}",
    "content-length 21 digits": post(RUNS, b"Content-Length: " + b"9" * 21 + b"\r\n"),
    "content-length duplicates conflicting": post(
        RUNS, b"Content-Length: 2\r\nContent-Length: 12\r\n") + b"{}{}{}{}{}{}",
    "content-length list conflicting": post(RUNS, b"Content-Length: 2, 12\r\n") + b"{}",
    "content-length with transfer-encoding chunked": post(
        RUNS, b"Content-Length: 2\r\n" + CHUNKED) + b"2\r\n{}\r\n0\r\n\r\n",
    "transfer-encoding gzip": post(RUNS, b"Transfer-Encoding: gzip, chunked\r\n") + b"0\r\n\r\n",
    "transfer-encoding twice": post(RUNS, CHUNKED + CHUNKED) + b"0\r\n\r\n",
    "chunk size -1": post(RUNS, CHUNKED) + b"-1\r\n{}\r\n0\r\n\r\n",
    "chunk size non-hex": post(RUNS, CHUNKED) + b"zz\r\n{}\r\n0\r\n\r\n",
    "chunk size 21 hex digits": post(RUNS, CHUNKED) + b"f" * 21 + b"\r\n{}\r\n0\r\n\r\n",
    "chunk size empty": post(RUNS, CHUNKED) + b"\r\n{}\r\n0\r\n\r\n",
    "chunk data without CRLF": post(RUNS, CHUNKED) + b"2\r\n{}XX0\r\n\r\n",
    "obs-fold before the first header": b"GET /v2/acts/hello HTTP/1.1\r\n folded\r\nHost: x\r\n"
                                        + AUTH + b"\r\n",
    "header without colon": GET + b"Bogus header\r\n\r\n",
    "space before colon": GET + b"X-Field : value\r\n\r\n",
    "request line garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "request line words": b"HELLO THERE WORLD AGAIN\r\n\r\n",
    "request line no version": b"GET /v2/acts/hello\r\n\r\n",  # HTTP/0.9 style
    "NUL in a header value": GET + b"X-Field: a\x00b\r\n\r\n",
    "control byte in a header value": GET + b"X-Field: a\x01b\r\n\r\n",
    "escape in a header value": GET + b"X-Field: \x1b[31mred\r\n\r\n",
    "DEL in a header value": GET + b"X-Field: a\x7fb\r\n\r\n",
    "bare CR in a header value": GET + b"X-Field: a\rb\r\n\r\n",
    "request line over 64 KiB": b"GET /v2/acts/hello?q=" + b"a" * (70 * 1024)
                                + b" HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n",
    # h11 checks its limit only on a head still incomplete: this one arrives in one read.
    "header section over 64 KiB": GET + b"".join(
        b"X-Field-%d: %s\r\n" % (i, b"a" * 1000) for i in range(70)) + b"\r\n",
    "header section of 1 MiB": GET + b"".join(
        b"X-Field-%d: %s\r\n" % (i, b"a" * 1000) for i in range(1024)) + b"\r\n",
}


@pytest.mark.parametrize("request_bytes", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_framing_is_a_400_and_the_runtime_serves_on(
        runtime: Runtime, request_bytes: bytes) -> None:
    answer = exchange(runtime, request_bytes)
    assert answer.status == 400, answer
    assert answer.closed
    assert_serving(runtime)


@pytest.mark.parametrize("version", [b"0.9", b"2.0", b"3.1", b"9.9"])
def test_http_versions_other_than_1_are_a_505(runtime: Runtime, version: bytes) -> None:
    # h11 takes any digit.digit as the version (and would serve HTTP/0.9 as HTTP/1.0).
    answer = exchange(runtime, GET.replace(b"HTTP/1.1", b"HTTP/" + version) + b"\r\n")
    assert (answer.status, answer.closed) == (505, True)
    answer = exchange(runtime, GET.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n")
    assert (answer.status, answer.closed) == (200, True)  # 1.0: no keep-alive
    answer = exchange(runtime, GET.replace(b"HTTP/1.1", b"HTTP/1.2") + b"\r\n", linger=0.1)
    assert (answer.status, answer.closed) == (200, False)  # 1.x: served as 1.1


def test_head_over_the_limit_in_small_pieces_is_a_400(runtime: Runtime) -> None:
    with runtime.connect() as sock:
        sock.sendall(GET)
        sent = len(GET)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 2 * strict_h11.MAX_HEADER_BYTES:  # no blank line: never complete
                sent += sock.send(b"X-Field: %s\r\n" % (b"a" * 4000))
                time.sleep(0.002)
        answer = read_answer(sock)
    assert strict_h11.MAX_HEADER_BYTES < sent < 2 * strict_h11.MAX_HEADER_BYTES
    assert (answer.status, answer.closed) == (400, True)
    assert_serving(runtime)


def test_obs_fold_is_unfolded_as_rfc_9112_allows(runtime: Runtime) -> None:
    # "Bearer\r\n <token>" is one field value "Bearer <token>": authenticated.
    folded = AUTH.replace(b"Bearer ", b"Bearer\r\n ")
    answer = exchange(runtime, b"GET /v2/acts/hello HTTP/1.1\r\nHost: x\r\n" + folded + b"\r\n",
                      linger=0.1)
    assert answer.status == 200


def test_a_body_cut_off_logs_no_exception(runtime: Runtime) -> None:
    before = len(runtime.log())
    exchange(runtime, post(RUNS, CHUNKED) + b"2\r\n{}XX0\r\n\r\n")  # 400 mid-body
    with runtime.connect() as sock:  # the client goes away mid-body
        sock.sendall(post(RUNS, b"Content-Length: 100\r\n") + b"{")
        time.sleep(0.2)
    time.sleep(0.5)
    assert "Traceback" not in runtime.log()[before:]


def test_huge_content_length(runtime: Runtime) -> None:
    head = b"Content-Length: " + b"9" * 20 + b"\r\n"  # the most digits h11 takes
    answer = exchange(runtime, post("/v2/acts/hello/run-sync", head))
    assert (answer.status, error_type(answer), answer.closed) == (413, "request-too-large", True)
    answer = exchange(runtime, post("/v2/acts/hello/run-sync", head, auth=False))
    assert (answer.status, error_type(answer), answer.closed) == (401, "token-not-provided", True)
    assert_serving(runtime)


def push_body(runtime: Runtime, head: bytes, piece: bytes, secs: float
              ) -> tuple[Answer | None, int, float | None, int]:
    """Send `head`, then `piece` over and over for `secs` (or until the server closes).

    Returns the answer (if any), the bytes of body the kernel took, when (seconds after
    the head) the server closed the connection (None: still open), and the runtime's
    RSS growth in kB while it went on."""
    rss_before, _ = runtime.status()
    rss_peak = rss_before
    sock = runtime.connect()
    sock.sendall(head)
    sock.setblocking(False)
    received = b""
    sent = 0
    closed_at: float | None = None
    start = time.monotonic()
    try:
        while time.monotonic() - start < secs:
            readable, writable, _ = select.select([sock], [sock], [], 0.05)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    closed_at = time.monotonic() - start
                    break
                received += chunk
            if writable:
                try:
                    sent += sock.send(piece)
                except (BrokenPipeError, ConnectionResetError):
                    closed_at = time.monotonic() - start
                    break
                except BlockingIOError:
                    pass
            rss_peak = max(rss_peak, runtime.status()[0])
        if closed_at is not None:  # what arrived before the close
            sock.setblocking(True)
            sock.settimeout(1.0)
            try:
                while chunk := sock.recv(65536):
                    received += chunk
            except OSError:
                pass
    finally:
        sock.close()
    answer = None
    if b"\r\n\r\n" in received:
        head_bytes, _, body = received.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (x.partition(":") for x in lines[1:])}
        answer = Answer(int(lines[0].split()[1]), headers, body, closed_at is not None)
    return answer, sent, closed_at, rss_peak - rss_before


ENDLESS_CHUNK = b"%x\r\n%s\r\n" % (MIB, bytes(MIB))


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_unauthenticated_huge_body_is_not_read(runtime: Runtime, framing: str) -> None:
    if framing == "content-length":
        head = post("/v2/acts/hello/run-sync", b"Content-Length: 10000000000\r\n", auth=False)
        piece = bytes(MIB)
    else:
        head = post("/v2/acts/hello/run-sync", CHUNKED, auth=False)
        piece = ENDLESS_CHUNK
    answer, sent, closed_at, rss_growth = push_body(runtime, head, piece, secs=2.0)
    print(f"unauthenticated {framing}: sent {sent / MIB:.1f} MiB, closed after "
          f"{closed_at} s, RSS +{rss_growth} kB")
    assert answer is not None and answer.status == 401
    assert error_type(answer) == "token-not-provided"
    assert closed_at is not None and closed_at < 1.5  # not read on and on
    assert sent < 16 * MIB  # what the sockets' buffers take, not the body
    assert rss_growth < RSS_SLACK_KB
    assert_serving(runtime)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_authenticated_body_over_the_cap_is_a_413(runtime: Runtime, framing: str) -> None:
    if framing == "content-length":  # refused from its Content-Length, unread
        head = post("/v2/acts/hello/run-sync", b"Content-Length: 10000000000\r\n")
        piece = bytes(MIB)
        most = 16 * MIB
    else:  # no length: read (and dropped) up to wire.DRAIN_LIMIT_BYTES, then refused
        head = post("/v2/acts/hello/run-sync", CHUNKED)
        piece = ENDLESS_CHUNK
        most = wire.DRAIN_LIMIT_BYTES + 16 * MIB
    answer, sent, closed_at, rss_growth = push_body(runtime, head, piece, secs=5.0)
    print(f"authenticated {framing}: sent {sent / MIB:.1f} MiB, closed after "
          f"{closed_at} s, RSS +{rss_growth} kB")
    assert answer is not None and answer.status == 413
    assert error_type(answer) == "request-too-large"
    assert closed_at is not None and closed_at < 4.0
    assert sent < most
    assert rss_growth < RSS_SLACK_KB + (wire.MAX_BODY_BYTES // 1024 if framing == "chunked"
                                        else 0)
    assert_serving(runtime)


def test_body_just_over_the_cap_is_drained_and_answered_413(runtime: Runtime) -> None:
    size = wire.MAX_BODY_BYTES + 1
    rss_before, _ = runtime.status()
    with runtime.connect() as sock:
        sock.sendall(post("/v2/acts/hello/run-sync", b"Content-Length: %d\r\n" % size))
        sock.sendall(bytes(size))
        answer = read_answer(sock, linger=0.1)
    rss_growth = runtime.status()[0] - rss_before
    print(f"body of {size} bytes: RSS +{rss_growth} kB")
    assert (answer.status, error_type(answer)) == (413, "request-too-large")
    assert not answer.closed  # the whole body was read: the connection is kept
    assert rss_growth < RSS_SLACK_KB + wire.MAX_BODY_BYTES // 1024


def gzip_bomb(gib: int, *, trailer: bool) -> bytes:
    """`gib` GiB of zeros gzipped, ~1 MB a GiB: 1 MiB compressed after a full flush
    is the same bytes every time. `trailer`: the right CRC (0.25 s a GiB), else zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH) == again
    last_block = compressor.flush()[:-8]
    crc = 0
    if trailer:
        for _ in range(gib * 1024):
            crc = zlib.crc32(zeros, crc)
    size = gib * 1024 * MIB
    return (first + again * (gib * 1024 - 1) + last_block
            + struct.pack("<II", crc, size & 0xFFFFFFFF))


def test_gzip_bomb(runtime: Runtime) -> None:
    bomb = gzip_bomb(1, trailer=True)  # 1 GiB inflated, ~1 MB: within the raw cap
    assert len(bomb) < wire.MAX_BODY_BYTES
    head = b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(bomb)
    rss_before, _ = runtime.status()

    answer = exchange(runtime, post("/v2/acts/hello/run-sync", head, auth=False) + bomb)
    assert (answer.status, error_type(answer)) == (401, "token-not-provided")

    start = time.monotonic()
    answer = exchange(runtime, post("/v2/acts/hello/run-sync", head) + bomb, linger=0.1)
    took = time.monotonic() - start
    rss_growth = runtime.status()[0] - rss_before
    print(f"gzip bomb of 1 GiB ({len(bomb)} bytes): {answer.status} in {took:.2f} s, "
          f"RSS +{rss_growth} kB")
    assert (answer.status, error_type(answer)) == (413, "request-too-large")
    assert "decompressed" in json.loads(answer.body)["error"]["message"]
    assert took < 5.0
    assert rss_growth < 40 * 1024  # the raw body and one cap of output, not a GiB

    bomb = gzip_bomb(10, trailer=False)  # 10 GiB inflated, ~10.6 MB: over the raw cap
    assert wire.MAX_BODY_BYTES < len(bomb) < wire.DRAIN_LIMIT_BYTES
    head = b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(bomb)
    answer = exchange(runtime, post("/v2/acts/hello/run-sync", head) + bomb)
    assert (answer.status, error_type(answer)) == (413, "request-too-large")
    rss_growth = runtime.status()[0] - rss_before
    print(f"gzip bomb of 10 GiB ({len(bomb)} bytes): RSS +{rss_growth} kB")
    assert rss_growth < 40 * 1024
    assert_serving(runtime)


def open_half_requests(runtime: Runtime, count: int) -> list[socket.socket]:
    """`count` connections that each send half a request line or half a head, and stop."""
    halves = [b"GET /v2/acts/hel", b"POST /v2/acts/hello/runs HTTP/1.1\r\nHost: x\r\nContent-Le"]
    socks = []
    try:
        for i in range(count):
            sock = runtime.connect()
            socks.append(sock)
            sock.sendall(halves[i % 2])
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def test_half_sent_requests_hold_no_threads(runtime: Runtime) -> None:
    assert_serving(runtime)
    rss_before, threads_before = runtime.status()
    socks = open_half_requests(runtime, 600)
    try:
        time.sleep(0.5)
        rss, threads = runtime.status()
        print(f"600 half-sent requests: threads {threads_before} -> {threads}, "
              f"RSS {rss_before} -> {rss} kB")
        assert threads <= threads_before + 2  # one event loop, not a thread a connection
        assert rss - rss_before < 32 * 1024
        start = time.monotonic()
        assert_serving(runtime)
        assert time.monotonic() - start < 1.0
        # Beyond server.MAX_CONNECTIONS at once (the new one counts), 503.
        socks += open_half_requests(runtime, server.MAX_CONNECTIONS - 600 + 10)
        time.sleep(0.5)
        answer = exchange(runtime, GET + b"\r\n")
        assert answer.status == 503
        rss, threads = runtime.status()
        print(f"{len(socks)} half-sent requests: threads {threads}, RSS {rss} kB")
        assert threads <= threads_before + 2
    finally:
        for sock in socks:
            sock.close()
    time.sleep(0.5)
    assert_serving(runtime)


@slow
def test_declared_body_that_never_arrives_is_a_408(runtime: Runtime) -> None:
    with runtime.connect(timeout=wire.BODY_TIMEOUT_SECS + 10) as sock:
        start = time.monotonic()
        sock.sendall(post(RUNS, b"Content-Length: 100\r\n") + b'{"a"')
        answer = read_answer(sock, timeout=wire.BODY_TIMEOUT_SECS + 10)
        took = time.monotonic() - start
    print(f"body that never arrives: {answer.status} after {took:.1f} s")
    assert (answer.status, error_type(answer)) == (408, "request-timeout")
    assert wire.BODY_TIMEOUT_SECS - 1 < took < wire.BODY_TIMEOUT_SECS + 5
    assert answer.closed
    assert_serving(runtime)


@slow
def test_slow_and_idle_connections_are_closed(runtime: Runtime) -> None:
    results: dict[str, tuple[bytes, float]] = {}
    limit = max(server.KEEP_ALIVE_SECS, strict_h11.HEAD_TIMEOUT_SECS)

    def wait_for_close(name: str, sock: socket.socket, trickle: bytes = b"") -> None:
        start = time.monotonic()
        sock.settimeout(1.0)
        received = b""
        while time.monotonic() - start < limit + 10:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if trickle:
                    sock.sendall(trickle)  # one byte of head a second
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                break
            received += chunk
        results[name] = (received, time.monotonic() - start)
        sock.close()

    socks = {name: runtime.connect() for name in ("idle", "keep-alive", "half", "trickle")}
    socks["keep-alive"].sendall(GET + b"\r\n")
    assert read_answer(socks["keep-alive"], linger=0.1).status == 200
    socks["half"].sendall(b"GET /v2/acts/hello HTTP/1.1\r\nHost: x\r\n")
    socks["trickle"].sendall(b"GET /v2/acts/hello HTTP/1.1\r\n")
    threads = [threading.Thread(target=wait_for_close, args=(name, sock, b"X" * (
        name == "trickle"))) for name, sock in socks.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print({name: (got[:40], round(took, 1)) for name, (got, took) in results.items()})
    for name in ("idle", "keep-alive"):  # closed without a word
        assert results[name][0] == b""
        assert limit - 2 < results[name][1] < limit + 3
    for name in ("half", "trickle"):
        assert results[name][0].startswith(b"HTTP/1.1 408 ")
        head_timeout = strict_h11.HEAD_TIMEOUT_SECS
        assert head_timeout - 2 < results[name][1] < head_timeout + 3
    assert_serving(runtime)
