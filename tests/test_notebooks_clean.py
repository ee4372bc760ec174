"""The committed notebooks are executed and hold nothing of the machine that ran them.

`notebooks/execute.py` regenerates their outputs; nbval (`pytest --nbval notebooks
--nbval-sanitize-with notebooks/sanitize.cfg`) checks that a fresh run still gives them.
These tests check the files themselves: no token, no absolute paths of the machine, no
loopback ports, no widget state, and no random run id outside what the sanitize file
covers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
SKIP_TAG = "nbval-skip"

# Apify API tokens start so (the APIFY_API_BASE_URL variable is upper case).
TOKEN = re.compile(r"apify_api_")
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:root|tmp|home)(?:/|\b)")
PORT = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\]):\d+")
# A platform-style id: 17 letters and digits, mixing cases and digits.
RANDOM_ID = re.compile(r"\b(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Z])(?=[A-Za-z0-9]*[a-z])"
                       r"[A-Za-z0-9]{17}\b")
TIMESTAMP = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d")

NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def sanitize_patterns() -> list[tuple[str, str]]:
    text = (NOTEBOOKS / "sanitize.cfg").read_text(encoding="utf-8")
    return re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.MULTILINE)


def load(path: Path) -> dict[str, Any]:
    notebook: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return notebook


def code_cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def output_text(notebook: dict[str, Any]) -> str:
    """Every output and all metadata as one JSON text: where a run leaves its traces."""
    outputs = [cell.get("outputs", []) for cell in code_cells(notebook)]
    metadata = [notebook.get("metadata", {})] + [c.get("metadata", {}) for c in notebook["cells"]]
    return json.dumps([outputs, metadata], ensure_ascii=False)


def test_there_are_notebooks() -> None:
    names = {path.name for path in NOTEBOOK_PATHS}
    assert {"quickstart.ipynb", "options.ipynb", "errors.ipynb", "panel.ipynb",
            "platform.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.name)
def test_no_token(path: Path) -> None:
    assert not TOKEN.search(path.read_text(encoding="utf-8")), f"a token in {path.name}"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.name)
def test_no_machine_paths(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert str(REPO) not in text
    found = MACHINE_PATH.findall(text)
    assert not found, f"absolute paths in {path.name}: {found}"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.name)
def test_no_ports_timestamps_or_widget_state(path: Path) -> None:
    notebook = load(path)
    text = output_text(notebook)
    assert not PORT.findall(text), f"loopback ports in the outputs of {path.name}"
    assert not TIMESTAMP.findall(text), f"timestamps in the outputs of {path.name}"
    assert "widgets" not in notebook.get("metadata", {}), "saved widget state"
    for cell in code_cells(notebook):
        assert "execution" not in cell.get("metadata", {}), "saved cell timings"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.name)
def test_random_ids_only_where_sanitized(path: Path) -> None:
    text = output_text(load(path))
    for regex, replace in sanitize_patterns():
        text = re.sub(regex, replace, text)
    found = RANDOM_ID.findall(text)
    assert not found, f"run ids outside sanitize.cfg's patterns in {path.name}: {found}"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.name)
def test_executed(path: Path) -> None:
    """Every cell nbval runs has run; the skipped ones keep no outputs."""
    cells = code_cells(load(path))
    assert any(cell["outputs"] for cell in cells), f"{path.name} has no outputs"
    for cell in cells:
        source = "".join(cell["source"])
        if SKIP_TAG in tags(cell):
            assert not cell["outputs"], f"a {SKIP_TAG} cell has outputs: {source[:60]!r}"
        else:
            assert cell["execution_count"] is not None, f"not executed: {source[:60]!r}"
        if any(o["output_type"] == "error" for o in cell["outputs"]):
            assert "raises-exception" in tags(cell), f"unexpected error: {source[:60]!r}"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.name)
def test_no_comments_in_run_bodies(path: Path) -> None:
    """nbval markers are cell tags: a comment in a %%apify_run body would be sent as INPUT."""
    for cell in code_cells(load(path)):
        source = "".join(cell["source"])
        if source.startswith("%%apify_run"):
            body = source.split("\n", 1)[1] if "\n" in source else ""
            assert not re.search(r"^\s*#", body, flags=re.MULTILINE), source[:60]
