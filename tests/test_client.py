"""The client's wire faults and retries, against the recording server on loopback."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from recording import TOKEN, RecordingServer, Reply, run

from apify_magic import client as client_mod
from apify_magic import errors
from apify_magic.body import Payload
from apify_magic.client import ApifyClient, read_timeout
from apify_magic.options import RunOptions
from apify_magic.target import Secret, Target


def test_read_timeout_is_not_retried_and_says_the_run_may_be_running(
        shell: Any, server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_mod, "READ_MARGIN_SECS", 0.2)
    server.default = Reply(delay=1.5)
    err = run(shell, "%%apify_run me~actor --timeout 0.3\n{}").error_in_exec
    assert isinstance(err, errors.ReadTimeoutError)
    assert "may have started" in str(err)
    assert len(server.posts()) == 1


def test_connect_errors_are_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens
    slept: list[float] = []
    client = ApifyClient(Target(f"http://127.0.0.1:{port}", None), max_retries=3,
                         sleep=slept.append)
    with pytest.raises(errors.ConnectFailedError):
        client.run_sync("me~actor", RunOptions(), Payload(b"{}", "application/json"))
    client.close()
    assert len(slept) == 3
    assert slept[0] < slept[1] < slept[2]  # doubling backoff: 0.5-1, 1-2, 2-4 s


def test_retry_after_header_sets_the_wait(server: RecordingServer) -> None:
    server.script = [Reply(429, b'{"error": {"type": "rate-limit-exceeded", "message": "x"}}',
                           headers={"Retry-After": "7"})]
    slept: list[float] = []
    client = ApifyClient(Target(server.url, Secret(TOKEN)), sleep=slept.append)
    result = client.run_sync("me~actor", RunOptions(), Payload(b"{}", "application/json"))
    client.close()
    assert slept == [7.0]
    assert result.status_code == 201


def test_read_timeout_covers_the_endpoint_ceiling_or_the_run_timeout() -> None:
    assert read_timeout(RunOptions()) == 300 + client_mod.READ_MARGIN_SECS
    assert read_timeout(RunOptions(timeout=0)) == 300 + client_mod.READ_MARGIN_SECS
    assert read_timeout(RunOptions(timeout=60)) == 60 + client_mod.READ_MARGIN_SECS
    assert read_timeout(RunOptions(timeout=3600)) == 300 + client_mod.READ_MARGIN_SECS


def test_injected_http_client_is_used_and_not_closed(server: RecordingServer) -> None:
    with httpx.Client() as http:
        client = ApifyClient(Target(server.url, None), http_client=http)
        client.run_sync("~actor", RunOptions(memory=128), Payload(b"[]", "application/json"))
        client.close()
        assert not http.is_closed
    assert server.seen[0].path == "/v2/actors/~actor/run-sync"
    assert "Authorization" not in server.seen[0].headers


def test_reprs_hide_the_token(server: RecordingServer) -> None:
    target = Target(server.url, Secret(TOKEN))
    client = ApifyClient(target)
    client.close()
    assert TOKEN not in repr(target) + str(target) + repr(client)


def test_polls_tell_within_about_a_minute_that_the_server_is_gone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real refused connection, a clock that moves by what the client sleeps."""
    client_module = client_mod
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock = [1000.0]
    slept: list[float] = []

    def sleep(secs: float) -> None:
        slept.append(secs)
        clock[0] += secs

    monkeypatch.setattr(client_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(client_module, "POLL_RETRIES", 50)  # the budget must stop it
    client = ApifyClient(Target(f"http://127.0.0.1:{port}", Secret(TOKEN)), sleep=sleep)
    with pytest.raises(errors.ConnectFailedError):
        client.get_run("abc")
    assert max(slept) <= client_module.MAX_RETRY_DELAY_SECS
    assert sum(slept) <= client_module.POLL_RETRY_BUDGET_SECS + client_module.MAX_RETRY_DELAY_SECS
    assert sum(slept) >= client_module.POLL_RETRY_BUDGET_SECS - client_module.MAX_RETRY_DELAY_SECS
