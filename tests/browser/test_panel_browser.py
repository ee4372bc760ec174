"""The run panel in a real JupyterLab, driven by playwright with Debian's chromium.

Follows ../shared/reference/browser-tests.md: JupyterLab on loopback with no token, its
own temporary root and JUPYTER_* dirs, a free port; waits on the status bar at load and on
each cell's prompt afterwards. Without a token the magic uses the embedded local runtime
inside the kernel, so the example Actors `slow` and `sdk-table` need no network.
Screenshots of each step go to test-results/browser/ (gitignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
HERE = Path(__file__).parent
SHOTS = HERE.parents[1] / "test-results" / "browser"
NOTEBOOK = "panel_demo.ipynb"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium "
                                 "(.ci/install-browser installs it)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def jupyter_lab(root: Path, state: Path) -> Iterator[str]:
    """A JupyterLab server on loopback serving `root`; yields its URL."""
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(state / name.lower())
        Path(env[name]).mkdir(parents=True, exist_ok=True)
    settings = (Path(env["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings" / "@jupyterlab"
                / "apputils-extension" / "notification.jupyterlab-settings")
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               "--IdentityProvider.token=", "--PasswordIdentityProvider.hashed_password=",
               "--ServerApp.disable_check_xsrf=True", "--ServerApp.allow_root=True",
               f"--ServerApp.root_dir={root}"]
    with open(state / "jupyter.log", "wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  cwd=root)
        try:
            _wait_ready(url, server, state / "jupyter.log")
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail("jupyter lab exited:\n" + log.read_text(errors="replace")[-3000:])
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/status", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    pytest.fail("jupyter lab did not answer /api/status in 60 s")


class Notebook:
    """The steps of driving one notebook page; every step leaves a screenshot."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.step = 0

    def shot(self, name: str) -> None:
        self.step += 1
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{self.step:02d}-{name}.png"), full_page=True)

    def cell(self, index: int) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def start(self, index: int, last: bool = False) -> None:
        self.cell(index).locator(".cm-content").click()
        self.page.keyboard.press("Control+Enter" if last else "Shift+Enter")

    def wait_done(self, index: int, timeout: float = 60) -> None:
        from playwright.sync_api import expect

        prompt = self.cell(index).locator(".jp-InputPrompt")
        expect(prompt).to_have_text(_numbered(), timeout=timeout * 1000)

    def run(self, index: int, last: bool = False, timeout: float = 60) -> None:
        self.start(index, last)
        self.wait_done(index, timeout)


def _numbered() -> Any:
    import re

    return re.compile(r"\[\d+\]:")


def test_panel_in_jupyterlab(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="needs playwright (.ci/install-browser installs it)")
    pytest.importorskip("jupyterlab")
    from playwright.sync_api import expect

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(HERE / NOTEBOOK, root / NOTEBOOK)
    with jupyter_lab(root, tmp_path / "state") as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/{NOTEBOOK}")
            expect(page.locator(".jp-StatusBar-TextItem", has_text="Python 3 (ipykernel) | Idle")
                   .first).to_be_visible(timeout=60_000)
            nb = Notebook(page)
            nb.shot("loaded")
            nb.run(0)

            # %%apify_run on `slow`: the bar must move while the cell still runs
            nb.start(1)
            widths = _sample_progress(nb, 1)
            nb.wait_done(1)
            moving = [w for w in widths if w > 0]
            assert len(set(moving)) >= 2, f"progress did not advance while running: {widths}"
            assert moving == sorted(moving), widths
            panel = nb.cell(1).locator(".apify-run-panel")
            expect(panel.locator(".apify-status")).to_have_text("SUCCEEDED")
            expect(panel.locator(".apify-result table")).to_contain_text("steps")
            nb.shot("slow-result")
            nb.run(2)

            # change memory in the panel and run again: the same variable is rebound
            panel.locator(".widget-dropdown", has_text="Memory").locator("select") \
                .select_option(label="1024 MB")
            panel.locator("button.apify-run-button").click()
            expect(panel.locator(".apify-status")).to_have_text("RUNNING", timeout=20_000)
            nb.shot("rerun-running")
            expect(panel.locator(".apify-status")).to_have_text("SUCCEEDED", timeout=60_000)
            nb.shot("rerun-done")
            nb.run(3)
            expect(nb.cell(3).locator(".jp-OutputArea-output")).to_contain_text(
                "rerun bound: True | memory: 1024")
            nb.shot("variable-rebound")

            # %apify_panel on sdk-table: fill the generated form and run it
            nb.run(4)
            form_panel = nb.cell(4).locator(".apify-run-panel")
            rows = form_panel.locator(".apify-field", has_text="Rows").locator("input")
            rows.fill("3")
            rows.press("Tab")
            form_panel.locator(".apify-field", has_text="Prefix").locator("input").fill("row")
            form_panel.get_by_role("button", name="Show INPUT JSON").click()
            expect(form_panel.locator(".apify-input-json")).to_contain_text('"rows": 3')
            nb.shot("form-filled")
            form_panel.locator("button.apify-run-button").click()
            expect(form_panel.locator(".apify-result table")).to_contain_text(
                "row-3", timeout=90_000)
            nb.shot("form-result")
            nb.run(5, last=True)
            expect(nb.cell(5).locator(".jp-OutputArea-output")).to_contain_text(
                "table rows: 3 | labels: ['row-1', 'row-2', 'row-3']")
            nb.shot("form-variable")

            page.keyboard.press("Control+s")
            _wait_saved(root / NOTEBOOK)
        finally:
            browser.close()
    _check_saved(root / NOTEBOOK, tmp_path)


def _sample_progress(nb: Notebook, index: int) -> list[float]:
    """Widths (%) of the progress bar, sampled while the cell's prompt shows [*]."""
    prompt = nb.cell(index).locator(".jp-InputPrompt")
    bar = nb.cell(index).locator(".widget-hprogress .progress-bar")
    widths: list[float] = []
    deadline = time.monotonic() + 60
    shot = False
    while time.monotonic() < deadline:
        if prompt.inner_text().strip() != "[*]:":
            if widths:
                break  # ended
            time.sleep(0.1)
            continue
        if bar.count():
            style = bar.first.get_attribute("style") or ""
            width = style.split("width:")[-1].split("%")[0].strip() if "width" in style else "0"
            widths.append(float(width or 0))
            if not shot and widths[-1] > 0:
                nb.shot("slow-running")
                shot = True
        time.sleep(0.3)
    return widths


def _wait_saved(path: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        cells = json.loads(path.read_text())["cells"]
        if cells[-1].get("outputs"):
            return
        time.sleep(0.3)
    pytest.fail("the notebook was not saved with its outputs")


def _check_saved(path: Path, tmp: Path) -> None:
    text = path.read_text()
    assert "apify_api_" not in text  # no token, in outputs or widget state
    for absolute in (str(tmp), str(Path.home()), "/root/", "/work/", "/tmp/"):
        assert absolute not in text, f"the saved notebook holds the path {absolute}"
    cells = json.loads(text)["cells"]
    outputs = [o for cell in cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"], outputs
    # what nbval compares: the panel's text/plain as displayed, free of times and ports
    (shown,) = cells[1]["outputs"]
    assert "".join(shown["data"]["text/plain"]) == (
        "Apify run panel: slow -> result on local runtime\n"
        "  options: --timeout 60\n"
        "  progress and result: in the widget view")
