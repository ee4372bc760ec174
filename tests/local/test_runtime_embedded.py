"""The embedded runtime, the shipped Actors, and the magic in a real IPython shell."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import TEST_ACTORS
from local_helpers import run_pids

from apify_magic.local import LocalRuntime, embedded
from apify_magic.local.registry import SHIPPED_ACTORS


def test_ensure_started_is_idempotent_thread_safe_and_stoppable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "actors").mkdir()
    shutil.copytree(TEST_ACTORS / "echo-env", tmp_path / "actors" / "echo-env")
    monkeypatch.chdir(tmp_path)
    try:
        with ThreadPoolExecutor(8) as pool:
            urls = set(pool.map(lambda _: embedded.ensure_started(), range(8)))
        assert len(urls) == 1
        url = urls.pop()
        assert url.startswith("http://127.0.0.1:") and not url.endswith("/")
        with httpx.Client(base_url=f"{url}/v2", timeout=30) as client:
            assert client.get("/acts/hello").status_code == 200  # shipped
            assert client.get("/acts/echo-env").status_code == 200  # from ./actors
            run = client.post("/acts/slow/runs", json={"seconds": 60}).json()["data"]
    finally:
        embedded.stop()
    assert run_pids(run["id"]) == []
    with pytest.raises(httpx.ConnectError), httpx.Client() as client:
        client.get(f"{url}/v2/acts")
    embedded.stop()  # stopping twice is fine


SHELL_SCRIPT = textwrap.dedent("""
    import json
    import httpx
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "apify_magic")
    ip.run_cell_magic("apify_run", "hello out", '{"name": "Kim", "count": 2}')
    out = ip.user_ns["out"]
    from apify_magic.local import embedded
    url = embedded.ensure_started()
    with httpx.Client() as client:
        run = client.post(f"{url}/v2/acts/slow/runs", json={"seconds": 60}).json()["data"]
    print(json.dumps({"type": type(out).__name__, "rows": out.to_dict("records"),
                      "url": url, "run": run["id"], "status": run["status"]}))
""")


def test_magic_in_a_real_ipython_shell_uses_the_embedded_runtime(tmp_path: Path) -> None:
    home = tmp_path / "shell-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("APIFY_", "ACTOR_", "CRAWLEE_"))}
    env["HOME"] = str(home)
    done = subprocess.run([sys.executable, "-c", SHELL_SCRIPT], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["type"] == "DataFrame"
    assert result["rows"] == [{"n": 1, "greeting": "Hello, Kim!", "name": "Kim"},
                              {"n": 2, "greeting": "Hello, Kim!", "name": "Kim"}]
    assert result["status"] == "RUNNING"
    # The shell is gone: so are the runtime and the Actor run it left running.
    assert run_pids(result["run"]) == []
    with pytest.raises(httpx.ConnectError), httpx.Client() as client:
        client.get(f"{result['url']}/v2/acts")


def test_sdk_actor_without_the_sdk_names_the_extra(tmp_path: Path) -> None:
    folder = tmp_path / "actors" / "sdk-table"
    shutil.copytree(SHIPPED_ACTORS / "sdk-table", folder)
    # A bare venv in the Actor's .venv, used as the Apify CLI would: no apify there.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / ".venv")],
                   check=True, timeout=60)
    with LocalRuntime([tmp_path / "actors"], data_dir=tmp_path / "data") as runtime, \
            httpx.Client(base_url=f"{runtime.url}/v2", timeout=60) as client:
        response = client.post("/acts/sdk-table/run-sync", json={})
        assert response.status_code == 400
        run = client.get(f"/actor-runs/{response.headers['X-Apify-Run-Id']}").json()["data"]
    assert run["status"] == "FAILED"
    assert "pip install 'apify-magic[sdk]'" in run["statusMessage"]


@pytest.mark.skipif(shutil.which("npm") is None, reason="node/npm not installed")
def test_node_actor_starts_with_npm_start(api: httpx.Client) -> None:
    response = api.post("/acts/node-hello/run-sync", json={"name": "Ada"})
    assert response.status_code == 201, response.text
    assert response.json() == {"greeting": "Hello from Node, Ada!"}


@pytest.mark.skipif(shutil.which("npm") is None, reason="node/npm not installed")
def test_node_actor_without_start_script_runs_its_main(api: httpx.Client) -> None:
    response = api.post("/acts/node-main/run-sync", json={})
    assert response.status_code == 201, response.text
    assert response.json() == {"script": "src/run.js", "npm": False}


@pytest.mark.skipif(shutil.which("npm") is None, reason="node/npm not installed")
@pytest.mark.parametrize(("start", "through_npm"), [
    ("node run.js", False), ("node --no-warnings run.js", True), ("node run.js && true", True)])
def test_a_plain_node_start_script_skips_npm_anything_else_goes_through_it(
        make_runtime: Callable[..., LocalRuntime], tmp_path: Path, start: str,
        through_npm: bool) -> None:
    folder = tmp_path / "actors" / "starts"
    (folder / ".actor").mkdir(parents=True)
    (folder / ".actor" / "actor.json").write_text('{"actorSpecification": 1, "name": "starts"}')
    (folder / "package.json").write_text(json.dumps({"name": "starts",
                                                     "scripts": {"start": start}}))
    (folder / "run.js").write_text(textwrap.dedent("""
        const fs = require("fs"), path = require("path");
        const store = path.join(process.env.APIFY_LOCAL_STORAGE_DIR, "key_value_stores",
                                "default");
        const data = JSON.stringify({npm: Boolean(process.env.npm_lifecycle_event)});
        fs.writeFileSync(path.join(store, "OUTPUT"), data);
        fs.writeFileSync(path.join(store, "OUTPUT.__metadata__.json"), JSON.stringify(
          {key: "OUTPUT", content_type: "application/json; charset=utf-8", size: data.length}));
    """))
    runtime = make_runtime(actor_dirs=[tmp_path / "actors"])
    response = httpx.post(f"{runtime.url}/v2/acts/starts/run-sync", json={}, timeout=60)
    assert response.status_code == 201, response.text
    assert response.json() == {"npm": through_npm}


@pytest.mark.skipif(shutil.which("npm") is None, reason="node/npm not installed")
def test_node_actor_with_nothing_to_start_is_refused(
        make_runtime: Callable[..., LocalRuntime], tmp_path: Path) -> None:
    folder = tmp_path / "actors" / "no-main"
    (folder / ".actor").mkdir(parents=True)
    (folder / ".actor" / "actor.json").write_text('{"actorSpecification": 1, "name": "no-main"}')
    (folder / "package.json").write_text('{"name": "no-main", "main": "../../escape.js"}')
    (tmp_path / "escape.js").write_text("")
    runtime = make_runtime(actor_dirs=[tmp_path / "actors"])
    response = httpx.post(f"{runtime.url}/v2/acts/no-main/run-sync", json={})
    assert response.status_code == 400
    assert "no start script" in response.json()["error"]["message"]


def test_every_shipped_actor_has_a_schema_with_titles_defaults_and_types() -> None:
    names = sorted(p.name for p in SHIPPED_ACTORS.iterdir() if (p / ".actor").is_dir())
    assert names == ["fail", "hello", "sdk-table", "slow"]
    for name in names:
        spec = json.loads((SHIPPED_ACTORS / name / ".actor" / "actor.json").read_text())
        schema = json.loads((SHIPPED_ACTORS / name / ".actor" / spec["input"]).read_text())
        assert schema["type"] == "object" and schema["schemaVersion"] == 1
        for prop in schema["properties"].values():
            assert {"title", "type", "default"} <= set(prop)


def test_runs_survive_a_restart_and_old_ones_are_pruned(tmp_path: Path) -> None:
    dirs = [SHIPPED_ACTORS]
    with LocalRuntime(dirs, data_dir=tmp_path, keep_runs=2) as runtime, \
            httpx.Client(base_url=f"{runtime.url}/v2", timeout=60) as client:
        ids = [client.post("/acts/hello/run-sync", json={"name": str(i)})
               .headers["X-Apify-Run-Id"] for i in range(3)]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(ids[1:])
    with LocalRuntime(dirs, data_dir=tmp_path) as runtime, \
            httpx.Client(base_url=f"{runtime.url}/v2", timeout=60) as client:
        run = client.get(f"/actor-runs/{ids[2]}").json()["data"]
        assert run["status"] == "SUCCEEDED"
        record = client.get(f"/key-value-stores/{run['defaultKeyValueStoreId']}/records/OUTPUT")
        assert record.json()[0]["name"] == "2"
        assert client.get(f"/actor-runs/{ids[0]}").status_code == 404


def test_standalone_command_prints_its_url_and_stops_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "apify_magic.local", "--actors", str(TEST_ACTORS),
         "--data-dir", str(tmp_path), "--token", "t0k", "--memory-budget", "512",
         "--sync-wait-secs", "30"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=f"{url}/v2", timeout=30,
                          headers={"Authorization": "Bearer t0k"}) as client:
            assert client.post("/acts/hello/run-sync", json={}).status_code == 201
            run = client.post("/acts/hang/runs", json={}).json()["data"]
            over = client.post("/acts/hang/runs", json={}, params={"memory": 512})
            assert over.status_code == 402
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
    assert run_pids(run["id"]) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "example.invalid"])
def test_a_runtime_off_loopback_never_starts_open(tmp_path: Path, host: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "apify_magic.local", "--host", host, "--data-dir",
         str(tmp_path), "--no-examples"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--token" in proc.stderr and "reachable from other machines" in proc.stderr


def test_loopback_names_count_as_loopback() -> None:
    from apify_magic.local.__main__ import is_loopback_host

    assert all(map(is_loopback_host, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback_host, ["0.0.0.0", "::", "10.0.0.1", "myhost"]))
