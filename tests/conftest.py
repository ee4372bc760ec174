"""Shared fixtures: a clean environment, a recording HTTP server on loopback, an IPython shell."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from recording import TOKEN, RecordingServer


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No APIFY_* settings and no Apify CLI login leak in from the machine."""
    import os

    for name in list(os.environ):
        if name.startswith(("APIFY_", "ACTOR_", "CRAWLEE_")):
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
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("APIFY_API_BASE_URL", server.url)
    monkeypatch.setenv("APIFY_TOKEN", TOKEN)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "apify_magic")
    ip.run_line_magic("config", "ApifyMagic.max_retries = 2")
    ip.run_line_magic("config", "ApifyMagic.retry_base_secs = 0.01")
    yield ip
    ip.run_line_magic("unload_ext", "apify_magic")
    for name in list(ip.user_ns):
        if not name.startswith("_") and name not in ip.user_ns_hidden:
            del ip.user_ns[name]

