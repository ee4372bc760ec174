"""A real runtime on loopback with real Actor processes: no mocks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from local_helpers import WARM_STARTS

from apify_magic.local import LocalRuntime
from apify_magic.local.registry import SHIPPED_ACTORS

TEST_ACTORS = Path(__file__).parent / "actors"


@pytest.fixture(autouse=True)
def _no_apify_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("APIFY_", "ACTOR_", "CRAWLEE_")) and name not in (
                "APIFY_MAGIC_WARM_STARTS", "APIFY_MAGIC_LOCAL_TRACE"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[..., LocalRuntime]]:
    started: list[LocalRuntime] = []

    def make(**kwargs: Any) -> LocalRuntime:
        kwargs.setdefault("kill_grace_secs", 1.0)
        kwargs.setdefault("sync_wait_secs", 60.0)
        kwargs.setdefault("warm_starts", WARM_STARTS)
        dirs = kwargs.pop("actor_dirs", [TEST_ACTORS, SHIPPED_ACTORS])
        runtime = LocalRuntime(dirs, data_dir=tmp_path / f"data{len(started)}", **kwargs)
        started.append(runtime.start())
        return runtime

    yield make
    for runtime in started:
        runtime.stop()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """One runtime shared by the tests of a module that need no special settings."""
    runtime = LocalRuntime([TEST_ACTORS, SHIPPED_ACTORS],
                           data_dir=tmp_path_factory.mktemp("runtime"),
                           kill_grace_secs=1.0, sync_wait_secs=60.0, warm_starts=WARM_STARTS)
    runtime.start()
    yield runtime
    runtime.stop()


@pytest.fixture
def api(runtime: LocalRuntime) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=60.0) as client:
        yield client

