"""Shared fixtures: a clean environment, a recording HTTP server on loopback, an IPython shell."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from recording import TOKEN, RecordingServer, loaded_shell

from apify_magic.local.trace import ENV_VAR as TRACE_ENV_VAR

# Every response a local runtime gives in the session is checked against the spec.
pytest_plugins = ["contract.plugin"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No APIFY_* settings and no Apify CLI login leak in from the machine."""
    import os

    for name in list(os.environ):
        if name.startswith(("APIFY_", "ACTOR_", "CRAWLEE_")) and name != TRACE_ENV_VAR:
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    from apify_magic import target

    monkeypatch.setattr(target, "_session_token", None)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    srv = RecordingServer()
    yield srv
    srv.close()


@pytest.fixture
def shell(server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real IPython shell with the extension loaded, aimed at the recording server."""
    monkeypatch.setenv("APIFY_API_BASE_URL", server.url)
    monkeypatch.setenv("APIFY_TOKEN", TOKEN)
    with loaded_shell(max_retries=2, retry_base_secs=0.01) as ip:
        yield ip
