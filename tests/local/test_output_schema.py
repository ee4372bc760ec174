"""Actors with an output schema get the `output` object on their runs, templates resolved."""

from __future__ import annotations

from typing import Any

import httpx


def test_output_object_is_resolved_on_the_run(make_runtime: Any) -> None:
    runtime = make_runtime()
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=60) as api:
        run = api.post("/actors/with-output/runs", json={},
                       params={"waitForFinish": 30}).json()["data"]
        again = api.get(f"/actor-runs/{run['id']}").json()["data"]
        plain = api.post("/actors/hello/runs", json={}, params={"waitForFinish": 30}).json()
    base = f"{runtime.url}/v2"
    assert again["output"] == {
        "greetings": f"{base}/datasets/{run['defaultDatasetId']}/items",
        "summary": f"{base}/key-value-stores/{run['defaultKeyValueStoreId']}/records/SUMMARY",
        "run": f"{base}/actor-runs/{run['id']} {run['defaultDatasetId']} ",
    }
    assert run["output"] == again["output"]
    assert "output" not in plain["data"]
