"""nbval's kernels: the embedded runtime keeps its runs in a temporary data dir, not in the
user's own (`~/.local/share/apify-magic`), where a kernel could take over and prune the
runs of the user's ended kernels."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_made: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    if "APIFY_MAGIC_DATA_DIR" not in os.environ:  # the kernels inherit this process's
        _made.append(tempfile.mkdtemp(prefix="apify-magic-nbval-"))
        os.environ["APIFY_MAGIC_DATA_DIR"] = _made[-1]


def pytest_unconfigure(config: pytest.Config) -> None:
    for path in _made:
        shutil.rmtree(path, ignore_errors=True)
