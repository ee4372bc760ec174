"""What a notebook executed headless and saved keeps of a run (issue 12): the panel's
outcome as static text/plain and text/html, next to the widget view; an error's message
exactly once. A real kernel through nbclient, against a real local runtime."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from apify_magic.local import LocalRuntime
from apify_magic.local.registry import SHIPPED_ACTORS

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    runtime = LocalRuntime([SHIPPED_ACTORS], data_dir=tmp_path_factory.mktemp("rt"),
                           kill_grace_secs=1.0)
    runtime.start()
    saved = {k: v for k, v in os.environ.items()}
    for name in [k for k in os.environ if k.startswith("APIFY_")]:
        del os.environ[name]
    os.environ["APIFY_API_BASE_URL"] = runtime.url
    try:
        cells = [
            nbformat.v4.new_code_cell("%load_ext apify_magic"),
            nbformat.v4.new_code_cell('%%apify_run hello greetings\n{"count": 2}'),
            nbformat.v4.new_code_cell('%%apify_run fail out --watch\n{"message": "boom"}'),
            nbformat.v4.new_code_cell('%%apify_run hello --timeout 30\n{"count": 1}'),
        ]
        nb = nbformat.v4.new_notebook(cells=cells)
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                       store_widget_state=False).execute()
        path = tmp_path_factory.mktemp("saved") / "run.ipynb"
        nbformat.write(nb, path)
        yield nbformat.read(path, as_version=4)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        runtime.stop()


def _displays(cell: Any) -> list[Any]:
    return [o for o in cell.outputs if o.output_type == "display_data"]


def test_a_successful_run_keeps_its_outcome_as_text_and_html(executed: Any) -> None:
    shown, outcome = _displays(executed.cells[1])
    # The display it had while running: a hidden widget now, its text as it was sent.
    assert shown.data["text/plain"] == "" and WIDGET_VIEW in shown.data
    assert outcome.data["text/plain"].startswith("SUCCEEDED | hello -> greetings | took ")
    assert outcome.data["text/plain"].endswith(
        " | greetings: DataFrame 2 rows x 3 cols | run " + outcome.data["text/plain"][-17:])
    html = outcome.data["text/html"]
    assert "apify-chip-succeeded" in html and "greetings: DataFrame 2 rows x 3 cols" in html
    assert WIDGET_VIEW in outcome.data  # the live panel, where widgets render


def test_a_failed_run_states_its_error_once(executed: Any) -> None:
    cell = executed.cells[2]
    (error,) = [o for o in cell.outputs if o.output_type == "error"]
    assert error.ename == "RunFailedError"
    # What a reader sees: displays, streams and the traceback (evalue repeats it unseen).
    seen = [o.data.get("text/plain", "") + o.data.get("text/html", "")
            for o in cell.outputs if o.output_type == "display_data"]
    seen += [o.text for o in cell.outputs if o.output_type == "stream"]
    everything = "\n".join(seen + error.traceback)
    message = "Actor run did not succeed"
    assert everything.count(message) == 1
    assert everything.count("Error: boom") == 1  # the Actor's own words, from its log
    _shown, outcome = _displays(cell)
    assert outcome.data["text/plain"].startswith("FAILED | fail -> out | after ")
    assert "apify-chip-failed" in outcome.data["text/html"]


def test_the_value_of_a_cell_without_variable_follows_its_outcome(executed: Any) -> None:
    cell = executed.cells[3]
    kinds = [o.output_type for o in cell.outputs]
    assert kinds == ["display_data", "display_data", "execute_result"]
    assert _displays(cell)[1].data["text/plain"].startswith("SUCCEEDED | hello | took ")


def test_nothing_machine_specific_is_saved(executed: Any, tmp_path: Path) -> None:
    text = json.dumps(executed)
    assert "127.0.0.1" not in text and "apify_api_" not in text
