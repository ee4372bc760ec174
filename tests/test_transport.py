"""The loopback transport: large reads over a real socket, nothing else changed."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from apify_magic.client import ApifyClient
from apify_magic.target import Target
from apify_magic.transport import READ_BYTES, LargeReads, LoopbackTransport
from tests.recording import Drop, RecordingServer, Reply


@pytest.fixture
def sender() -> Iterator[tuple[int, bytes, threading.Event]]:
    """A socket that sends 512 KB to the first client and closes; the event says it's done."""
    payload = bytes(range(256)) * 2048
    listener = socket.create_server(("127.0.0.1", 0))
    sent = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(payload)
        sent.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], payload, sent
    listener.close()
    thread.join(5)


def test_a_read_takes_more_than_httpcores_64_kb(
        sender: tuple[int, bytes, threading.Event]) -> None:
    port, payload, sent = sender
    # A receive buffer big enough to hold all of it, so one read can see it all.
    options = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * len(payload))]
    stream = LargeReads().connect_tcp("127.0.0.1", port, timeout=5, socket_options=options)
    try:
        assert sent.wait(5)
        first = stream.read(64 * 1024, timeout=5)
        assert 64 * 1024 < len(first) <= READ_BYTES
        received = first
        while chunk := stream.read(64 * 1024, timeout=5):
            received += chunk
    finally:
        stream.close()
    assert received == payload


def test_loopback_clients_use_it_and_others_do_not() -> None:
    def transport(url: str) -> object:
        client = ApifyClient(Target(url, None, is_local=True))
        try:
            return client._http._transport
        finally:
            client.close()

    assert isinstance(transport("http://127.0.0.1:1234"), LoopbackTransport)
    assert isinstance(transport("http://localhost:1234"), LoopbackTransport)
    assert not isinstance(transport("https://api.apify.com"), LoopbackTransport)
    assert not isinstance(transport("http://10.0.0.5:8000"), LoopbackTransport)


def test_a_large_body_arrives_whole_and_small_ones_still_work(server: RecordingServer) -> None:
    big = b"".join(b'{"n": %d, "pad": "%s"}\n' % (n, b"x" * 200) for n in range(20_000))
    server.script = [Reply(200, big, content_type="application/jsonl"), Reply(200, b"{}")]
    with httpx.Client(transport=LoopbackTransport()) as client:
        assert client.get(f"{server.url}/big").content == big
        assert client.get(f"{server.url}/small").json() == {}


def test_a_dropped_connection_is_still_httpxs_transport_error(server: RecordingServer) -> None:
    # The client's retries hang on this type: the wrapper must not change what is raised.
    server.script = [Drop()]
    with httpx.Client(transport=LoopbackTransport()) as client, \
            pytest.raises(httpx.TransportError):
        client.get(f"{server.url}/x")


def test_proxy_settings_do_not_divert_loopback(server: RecordingServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy on a closed port: a client that honoured it would fail to connect.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    server.script = [Reply(200, b'{"data": {"id": "r1", "status": "SUCCEEDED"}}')]
    client = ApifyClient(Target(server.url, None, is_local=True))
    try:
        assert client.get(("actor-runs", "r1")).json()["data"]["id"] == "r1"
    finally:
        client.close()


def test_httpx_requests_go_through_the_large_reads(server: RecordingServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # LoopbackTransport swaps httpx's pool for one with LargeReads; if httpx ever stops
    # using that pool, requests would still work, only slowly: this notices.
    from apify_magic import transport

    asked: list[int] = []
    read = transport._LargeReadStream.read

    def counting(self: transport._LargeReadStream, max_bytes: int,
                 timeout: float | None = None) -> bytes:
        asked.append(max_bytes)
        return read(self, max_bytes, timeout)

    monkeypatch.setattr(transport._LargeReadStream, "read", counting)
    server.script = [Reply(200, b"x" * (2 << 20), content_type="application/octet-stream")]
    with httpx.Client(transport=LoopbackTransport()) as client:
        assert len(client.get(f"{server.url}/big").content) == 2 << 20
    assert asked
