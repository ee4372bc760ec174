"""A run gets a token of the runtime's own, never the user's; the API accepts it while the
run goes on, as the platform accepts a run's token."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from local_helpers import run_pids

SENTINEL = "apify_api_USER-SENTINEL-never-in-an-actor"


def _env_of(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [entry.split(b"=", 1) for entry in f.read().split(b"\0") if b"=" in entry]
    return {k.decode(): v.decode() for k, v in pairs}


def test_an_actor_never_sees_the_users_token(make_runtime: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIFY_TOKEN", SENTINEL)
    monkeypatch.setenv("APIFY_API_BASE_URL", "https://api.apify.com")
    runtime = make_runtime()
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=60) as api:
        out = api.post("/actors/echo-env/run-sync", json={}).json()
    env = out["env"]
    assert SENTINEL not in str(out)
    assert env["APIFY_TOKEN"].startswith("apify_run_")
    assert env.get("APIFY_API_BASE_URL") != "https://api.apify.com"


def test_the_runs_token_works_while_it_runs_and_not_after(make_runtime: Any) -> None:
    runtime = make_runtime(token="the-runtime-token")
    auth = {"Authorization": "Bearer the-runtime-token"}
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=30) as api:
        run = api.post("/actors/slow/runs", json={"seconds": 30, "steps": 30},
                       headers=auth).json()["data"]
        deadline = time.monotonic() + 20
        while not run_pids(run["id"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        token = _env_of(run_pids(run["id"])[0])["APIFY_TOKEN"]
        assert token != "the-runtime-token"
        own = {"Authorization": f"Bearer {token}"}
        assert api.get(f"/actor-runs/{run['id']}", headers=own).status_code == 200
        wrong = api.get(f"/actor-runs/{run['id']}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "invalid-token"
        api.post(f"/actor-runs/{run['id']}/abort", headers=auth)
        assert api.get(f"/actor-runs/{run['id']}", params={"waitForFinish": 10},
                       headers=auth).json()["data"]["status"] == "ABORTED"
        after = api.get(f"/actor-runs/{run['id']}", headers=own)
        assert after.status_code == 401
