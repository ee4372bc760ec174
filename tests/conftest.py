"""Shared fixtures: a clean environment, a recording HTTP server on loopback, an IPython shell."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from recording import TOKEN, RecordingServer, loaded_shell

from apify_magic.local import LocalRuntime
from apify_magic.local.registry import SHIPPED_ACTORS
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


@pytest.fixture(autouse=True)
def embedded_data_dir(clean_env: None, monkeypatch: pytest.MonkeyPatch,
                      tmp_path: Path) -> Path:
    """The embedded runtime keeps its runs under a test's own folder, never the real
    ~/.local/share: APIFY_MAGIC_DATA_DIR for this process, XDG_DATA_HOME too for the
    subprocesses (and the folders' own fixtures) that drop APIFY_* variables."""
    base = tmp_path / "apify-magic-data"
    monkeypatch.setenv("APIFY_MAGIC_DATA_DIR", str(base))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    return base


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


@pytest.fixture(scope="module")
def runtime(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """A real local runtime shared by a module's magic tests: the module's `TEST_ACTORS`
    folder and the shipped examples; a module may shorten run-sync's wait with
    `SYNC_WAIT_SECS`."""
    extra = {"sync_wait_secs": request.module.SYNC_WAIT_SECS} if hasattr(
        request.module, "SYNC_WAIT_SECS") else {}
    rt = LocalRuntime([request.module.TEST_ACTORS, SHIPPED_ACTORS],
                      data_dir=tmp_path_factory.mktemp("rt"), kill_grace_secs=1.0,
                      warm_starts=os.environ.get("APIFY_MAGIC_WARM_STARTS", "1") != "0",
                      **extra)
    rt.start()
    yield rt
    rt.stop()


@pytest.fixture
def ip(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real IPython shell with the extension loaded, aimed at the module's runtime."""
    monkeypatch.setenv("APIFY_API_BASE_URL", runtime.url)
    with loaded_shell(poll_secs=0.2) as shell:
        yield shell


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests (they wait for real timeouts) run in CI, not in a developer's quick run."""
    if os.environ.get("APIFY_MAGIC_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set APIFY_MAGIC_SLOW_TESTS=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
