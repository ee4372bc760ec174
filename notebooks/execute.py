"""Re-run the notebooks in this folder in place, the way a newcomer's machine would.

    python notebooks/execute.py                  # every notebook
    python notebooks/execute.py quickstart.ipynb # some of them

Each notebook runs top to bottom in a fresh kernel whose working directory is this folder
(as in JupyterLab, Binder and nbval, so `./actors` holds the notebooks' own Actors), with
no `APIFY_*` variables and a temporary, empty HOME: no token and no Apify CLI login can
be found, so every run goes to the embedded local runtime. Cells tagged `nbval-skip` need
the Apify platform: they are not run and keep no outputs. Cells tagged `raises-exception`
must raise; any other error stops the script.

No widget state and no timings are saved, so the files change only when an output does.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
SKIP_TAG = "nbval-skip"
CELL_TIMEOUT_SECS = 300


def clean_environment(home: str) -> None:
    for name in list(os.environ):
        if name.startswith("APIFY_"):
            del os.environ[name]
    os.environ["HOME"] = home
    # The embedded runtime keeps its runs under the data dir: the temporary home's.
    os.environ["APIFY_MAGIC_DATA_DIR"] = os.path.join(home, "apify-magic")
    # The kernels import apify_magic from this checkout, whatever clone an editable
    # install points at (a CI run from another clone re-points it).
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p)


def execute(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_SECS,
        kernel_name="python3",
        resources={"metadata": {"path": str(HERE)}},
        skip_cells_with_tag=SKIP_TAG,
        store_widget_state=False,
        record_timing=False,
    ).execute()
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)


def main(names: list[str]) -> int:
    paths = [HERE / name for name in names] if names else sorted(HERE.glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="apify-magic-home-") as home:
        clean_environment(home)
        for path in paths:
            print(f"executing {path.name}", flush=True)
            execute(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
