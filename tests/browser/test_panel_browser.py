"""The run panel in a real browser: JupyterLab 4 and Notebook 7, light and dark theme,
driven by playwright with Debian's chromium.

Follows ../shared/reference/browser-tests.md: one Jupyter server per theme on loopback with
no token, its own temporary root and JUPYTER_* dirs, a free port; it serves both
JupyterLab (/lab) and Notebook 7 (/notebooks). Without a token the magic uses the embedded
local runtime inside the kernel, so the example Actors need no network.

What is measured, in each of the four: the compact panel is at most 48 px tall while a
run goes and when it has ended; each terminal status (SUCCEEDED, FAILED, TIMED-OUT,
ABORTED) shows its own label in a colour whose contrast against the background is at
least 4.5:1 (WCAG AA), computed from the colours the browser resolved; a failing Actor's
own error line is visible; Kernel > Interrupt leaves ABORTED and a few lines, no
traceback. JupyterLab in the light theme also re-runs from the panel and fills a form.
Screenshots of each state go to test-results/browser/<app>-<theme>/ (gitignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
COMPACT_MAX_PX = 48
AA_CONTRAST = 4.5

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium "
                                 "(.ci/install-browser installs it)")

# WCAG contrast of an element's text against what is behind it: the resolved colours
# (rgb(), rgba() or color(srgb ...), as Chromium gives color-mix results), the
# backgrounds of its ancestors composited up to the first opaque one.
CONTRAST_JS = """
(el) => {
  const parse = (text) => {
    let m = text.match(/^rgba?\\(([^)]*)\\)$/);
    if (m) {
      const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
      return [p[0] / 255, p[1] / 255, p[2] / 255, p.length > 3 ? p[3] : 1];
    }
    m = text.match(/^color\\(srgb ([^)]*)\\)$/);
    if (m) {
      const p = m[1].split(/[ \\/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    throw new Error('unparsed colour ' + text);
  };
  const over = (top, under) => {
    const a = top[3] + under[3] * (1 - top[3]);
    if (a === 0) return [0, 0, 0, 0];
    const c = [0, 1, 2].map(i => (top[i] * top[3] + under[i] * under[3] * (1 - top[3])) / a);
    return [...c, a];
  };
  const layers = [];
  for (let node = el; node; node = node.parentElement) {
    const c = parse(getComputedStyle(node).backgroundColor);
    if (c[3] > 0) layers.push(c);
    if (c[3] >= 1) break;
  }
  let bg = [1, 1, 1, 1];  // the canvas, when no ancestor is opaque
  for (const layer of layers.reverse()) bg = over(layer, bg);
  const fg = over(parse(getComputedStyle(el).color), bg);
  const lum = (c) => {
    const lin = c.slice(0, 3).map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  };
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return {ratio: (a + 0.05) / (b + 0.05), fg: getComputedStyle(el).color,
          bg: bg.map(v => Math.round(v * 255))};
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def jupyter_server(root: Path, state: Path, theme: str) -> Iterator[str]:
    """A Jupyter server on loopback serving `root` with JupyterLab and Notebook 7, in the
    given theme; yields its URL."""
    env = dict(os.environ)
    # The kernels import apify_magic from this checkout, whatever an editable install
    # points at (as notebooks/execute.py does).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parents[1]),
                                                      env.get("PYTHONPATH")]))
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(state / name.lower())
        Path(env[name]).mkdir(parents=True, exist_ok=True)
    # Notebook 7 reads the same user settings as JupyterLab.
    settings = Path(env["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings" / "@jupyterlab"
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    (settings / "apputils-extension" / "themes.jupyterlab-settings").write_text(
        json.dumps({"theme": THEMES[theme]}))
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
            pytest.fail("jupyter exited:\n" + log.read_text(errors="replace")[-3000:])
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/status", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    pytest.fail("jupyter did not answer /api/status in 60 s")


class Notebook:
    """The steps of driving one notebook page; every step leaves a screenshot."""

    def __init__(self, page: Any, url: str, shots: Path) -> None:
        self.page = page
        self.url = url
        self.shots = shots
        self.step = 0

    def shot(self, name: str) -> None:
        self.step += 1
        self.shots.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(self.shots / f"{self.step:02d}-{name}.png"),
                             full_page=True)

    def cell(self, index: int) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def panel(self, index: int) -> Any:
        return self.cell(index).locator(".apify-run-panel")

    def start(self, index: int, last: bool = False) -> None:
        self.cell(index).locator(".cm-content").click()
        self.page.keyboard.press("Control+Enter" if last else "Shift+Enter")

    def wait_done(self, index: int, timeout: float = 60) -> None:
        from playwright.sync_api import expect

        prompt = self.cell(index).locator(".jp-InputPrompt")
        expect(prompt).to_have_text(re.compile(r"\[\d+\]:"), timeout=timeout * 1000)

    def run(self, index: int, last: bool = False, timeout: float = 60) -> None:
        self.start(index, last)
        self.wait_done(index, timeout)

    def first_run(self) -> None:
        """Run the first cell once the kernel really answers: a cell sent before the
        kernel is connected can be dropped, so it is sent again if it never ran."""
        _wait_kernel_idle(self.url)
        for _attempt in range(3):
            self.start(0)
            try:
                self.wait_done(0, timeout=20)
                return
            except AssertionError:
                continue
        pytest.fail("the first cell never ran")


def _wait_kernel_idle(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            answer = httpx.get(f"{url}/api/kernels", timeout=2)
            # Only a list of kernels counts: the server answers with an error object
            # (a JSON dict) while it is still setting up.
            kernels = answer.json() if answer.status_code == 200 else None
            if isinstance(kernels, list) and kernels and all(
                    isinstance(k, dict) and k.get("execution_state") == "idle"
                    for k in kernels):
                time.sleep(1.0)
                return
        time.sleep(0.3)
    pytest.fail("no kernel became idle in 60 s")


def _check_chip(nb: Notebook, index: int, status: str) -> float:
    """The panel's status chip says `status`, reads at AA, and the compact panel is short."""
    from playwright.sync_api import expect

    panel = nb.panel(index)
    chip = panel.locator(".apify-chip").first
    expect(chip).to_have_text(status, timeout=60_000)
    measured = chip.evaluate(CONTRAST_JS)
    assert measured["ratio"] >= AA_CONTRAST, (status, measured)
    height = panel.bounding_box()["height"]
    assert height <= COMPACT_MAX_PX, (status, height)
    return float(measured["ratio"])


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_panel_in_the_browser(tmp_path: Path, app: str, theme: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="needs playwright (.ci/install-browser installs it)")
    pytest.importorskip("jupyterlab")
    if app == "notebook":
        pytest.importorskip("notebook", reason="needs Notebook 7 (the test extra)")
    from playwright.sync_api import expect

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(HERE / NOTEBOOK, root / NOTEBOOK)
    shots = SHOTS / f"{app}-{theme}"
    shutil.rmtree(shots, ignore_errors=True)
    path = f"/lab/tree/{NOTEBOOK}" if app == "lab" else f"/notebooks/{NOTEBOOK}"
    with jupyter_server(root, tmp_path / "state", theme) as url, \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url + path)
            expect(page.locator(".jp-Notebook .jp-Cell").first).to_be_visible(timeout=60_000)
            nb = Notebook(page, url, shots)
            nb.first_run()
            nb.shot("loaded")

            # A watched run: one line while it goes, with the bar against its timeout.
            nb.start(1)
            expect(nb.panel(1).locator(".apify-chip")).to_have_text("RUNNING",
                                                                    timeout=20_000)
            expect(nb.panel(1).locator(".apify-message")).to_contain_text(
                "Working: step", timeout=20_000)
            _check_chip(nb, 1, "RUNNING")
            nb.shot("running")
            nb.wait_done(1)
            _check_chip(nb, 1, "SUCCEEDED")
            expect(nb.panel(1)).to_contain_text("result: dict of 3")
            nb.shot("succeeded")

            # A failing Actor: FAILED, and its own error line in the cell's error output.
            nb.run(2)
            _check_chip(nb, 2, "FAILED")
            error = nb.cell(2).locator(".jp-OutputArea-output[data-mime-type="
                                       "'application/vnd.jupyter.stderr']")
            expect(error).to_contain_text("Error: The site answered 503")
            assert error.inner_text().count("Actor run did not succeed") == 1
            nb.shot("failed")

            nb.run(3)
            _check_chip(nb, 3, "TIMED-OUT")
            nb.shot("timed-out")

            # Kernel > Interrupt during a watched run: ABORTED, a few lines, no traceback.
            nb.start(4)
            expect(nb.panel(4).locator(".apify-message")).to_contain_text(
                "Working: step", timeout=30_000)
            page.keyboard.press("Escape")
            page.keyboard.press("i")
            page.keyboard.press("i")
            nb.wait_done(4)
            _check_chip(nb, 4, "ABORTED")
            error = nb.cell(4).locator(".jp-OutputArea-output[data-mime-type="
                                       "'application/vnd.jupyter.stderr']")
            expect(error).to_contain_text("RunInterruptedError: Interrupted: run ")
            shown = error.inner_text()
            assert "Traceback" not in shown and "KeyboardInterrupt" not in shown, shown
            assert len(shown.strip().splitlines()) <= 3, shown
            nb.shot("aborted")

            # The disclosure opens the options, the live log and the result.
            panel = nb.panel(1)
            panel.locator(".apify-toggle").click()
            expect(panel.locator(".apify-log")).to_contain_text("Working: step 4 of 4")
            expect(panel.locator(".apify-result")).to_contain_text("steps")
            assert panel.bounding_box()["height"] > COMPACT_MAX_PX
            nb.shot("expanded")

            if (app, theme) == ("lab", "light"):
                _rerun_and_form(nb)
            page.keyboard.press("Control+s")
            _wait_saved(root / NOTEBOOK)
        finally:
            browser.close()
    _check_saved(root / NOTEBOOK, tmp_path)


def _rerun_and_form(nb: Notebook) -> None:
    """Run again from the panel with another memory, then fill and run a schema form."""
    from playwright.sync_api import expect

    nb.run(5)
    panel = nb.panel(1)
    panel.locator(".widget-dropdown", has_text="Memory").locator("select") \
        .select_option(label="1024 MB")
    panel.locator("button.apify-run-button").click()
    expect(panel.locator(".apify-chip")).to_have_text("RUNNING", timeout=20_000)
    expect(panel.locator(".apify-chip")).to_have_text("SUCCEEDED", timeout=60_000)
    expect(panel).to_contain_text("re-run from the panel as:")
    expect(panel).to_contain_text("--memory 1024")
    nb.shot("rerun-done")
    nb.run(6)
    expect(nb.cell(6).locator(".jp-OutputArea-output")).to_contain_text(
        "rerun bound: True | memory: 1024")

    nb.run(7)
    form = nb.panel(7)
    rows = form.locator(".apify-field", has_text="Rows").locator("input")
    rows.fill("50000")  # out of range: kept as typed, marked, Run disabled
    rows.press("Tab")
    expect(form.locator(".apify-field", has_text="Rows")).to_contain_text("must be <=")
    expect(form.locator("button.apify-run-button")).to_be_disabled()
    assert rows.input_value() == "50000"
    nb.shot("form-invalid")
    rows.fill("3")
    rows.press("Tab")
    expect(form.locator(".apify-field", has_text="Rows")).not_to_contain_text("must be")
    form.locator(".apify-field", has_text="Prefix").locator("input").fill("row")
    form.get_by_role("button", name="Show INPUT JSON").click()
    expect(form.locator(".apify-input-json")).to_contain_text('"rows": 3')
    nb.shot("form-filled")
    form.locator("button.apify-run-button").click()
    expect(form.locator(".apify-result")).to_contain_text("row-3", timeout=90_000)
    nb.shot("form-result")
    nb.run(8, last=True)
    expect(nb.cell(8).locator(".jp-OutputArea-output")).to_contain_text(
        "table rows: 3 | labels: ['row-1', 'row-2', 'row-3']")


def _wait_saved(path: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        cells = json.loads(path.read_text())["cells"]
        if any(cell.get("outputs") for cell in cells[1:3]):
            return
        time.sleep(0.3)
    pytest.fail("the notebook was not saved with its outputs")


def _check_saved(path: Path, tmp: Path) -> None:
    text = path.read_text()
    assert "apify_api_" not in text  # no token, in outputs or widget state
    for absolute in (str(tmp), str(Path.home()), "/root/", "/work/", "/tmp/"):
        assert absolute not in text, f"the saved notebook holds the path {absolute}"
    cells = json.loads(text)["cells"]
    # The outcome as the frontend saved it: static text and HTML next to the widget view.
    outcome = [o for o in cells[1]["outputs"] if "text/html" in o.get("data", {})]
    assert outcome, cells[1]["outputs"]
    plain = "".join(outcome[-1]["data"]["text/plain"])
    assert plain.startswith("SUCCEEDED | slow -> result | took "), plain


BACKGROUND_CELLS = [
    "%load_ext apify_magic",
    'p = {"seconds": 6, "steps": 6}\njob = %apify_run slow out --background -i p\njob',
    "import asyncio\n\nfor _ in range(300):\n    if 'out' in globals():\n        break\n"
    "    await asyncio.sleep(0.1)\nprint('bound:', out['steps'], job.status)",
]


def test_background_run_panel_updates_while_another_cell_runs(tmp_path: Path) -> None:
    """A --background run's panel, in its own cell, keeps moving while the next cell runs
    (it awaits), ends SUCCEEDED there, and the variable is bound during that cell."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="needs playwright (.ci/install-browser installs it)")
    pytest.importorskip("jupyterlab")
    import nbformat
    from playwright.sync_api import expect

    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c)
                                               for c in BACKGROUND_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, root / "background.ipynb")
    shots = SHOTS / "lab-background"
    shutil.rmtree(shots, ignore_errors=True)
    with jupyter_server(root, tmp_path / "state", "light") as url, \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url + "/lab/tree/background.ipynb")
            expect(page.locator(".jp-Notebook .jp-Cell").first).to_be_visible(timeout=60_000)
            nb = Notebook(page, url, shots)
            nb.first_run()
            nb.run(1)  # returns at once, with the handle
            expect(nb.cell(1)).to_contain_text("<Job 1: slow -> out")
            nb.start(2, last=True)
            # Cell 2 is running ([*]) while the panel of cell 1 moves on.
            expect(nb.cell(2).locator(".jp-InputPrompt")).to_have_text("[*]:")
            message = nb.panel(1).locator(".apify-message")
            expect(message).to_contain_text("Working: step", timeout=20_000)
            first = message.inner_text()
            expect(message).not_to_have_text(first, timeout=20_000)  # and again
            assert nb.cell(2).locator(".jp-InputPrompt").inner_text() == "[*]:"
            nb.shot("moving-while-another-cell-runs")
            nb.wait_done(2)
            _check_chip(nb, 1, "SUCCEEDED")
            expect(nb.cell(2)).to_contain_text("bound: 6")
            nb.shot("bound")
        finally:
            browser.close()
