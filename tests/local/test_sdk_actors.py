"""Real SDK Actors, Python and JavaScript, unchanged SDKs, at home on the local runtime.

Each run of `tests/sdk_actors/{py,js}-sdk` uses the SDK features its INPUT names; the
tests check both what the Actor saw (its OUTPUT) and what the runtime's API shows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from apify_magic.local import LocalRuntime
from apify_magic.local.registry import SHIPPED_ACTORS

SDK_ACTORS = Path(__file__).resolve().parent.parent / "sdk_actors"
LANGUAGES = ["py-sdk", "js-sdk"]
SENTINEL = "apify_api_USER-SENTINEL-must-not-reach-actors"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    if not (SDK_ACTORS / "js-sdk" / "node_modules" / "apify").is_dir():
        pytest.fail("tests/sdk_actors/js-sdk has no node_modules: run .ci/install-node-actors")
    runtime = LocalRuntime([SDK_ACTORS, SHIPPED_ACTORS],
                           data_dir=tmp_path_factory.mktemp("sdk"), sync_wait_secs=120)
    yield runtime.start()
    runtime.stop()


def _run(runtime: LocalRuntime, actor: str, body: dict[str, Any], **params: Any
         ) -> tuple[Any, dict[str, Any]]:
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=180) as api:
        answer = api.post(f"/actors/{actor}/run-sync", json=body, params=params)
        run_id = answer.headers["x-apify-run-id"]
        run = api.get(f"/actor-runs/{run_id}").json()["data"]
        if answer.status_code != 201:
            pytest.fail(f"{actor} {answer.status_code}: {api.get(f'/logs/{run_id}').text[-3000:]}")
    return answer.json(), run


@pytest.mark.parametrize("actor", LANGUAGES)
def test_storages_status_and_a_token_of_its_own(runtime: LocalRuntime, actor: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIFY_TOKEN", SENTINEL)
    out, run = _run(runtime, actor, {"features": ["storages"], "name": "N"})
    assert SENTINEL not in str(out)
    assert out["isAtHome"] and out["hasToken"] and out["tokenIsTheRunsOwn"]
    assert out["apiBaseUrl"] == runtime.url
    assert out["input"]["startUrls"] == []  # the schema's default, merged by the runtime
    assert out["readBack"] == "plain words" and out["namedValue"] == {"v": 1}
    assert out["queueHandled"] == 1  # the same URL twice is one request
    assert run["statusMessage"].endswith("storages done")
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        items = api.get(f"/datasets/{run['defaultDatasetId']}/items").json()
        assert items == [{"n": 1, "name": "N"}, {"n": 2, "name": "N"}]
        named = api.get(f"/datasets/{actor.split('-')[0]}-named/items").json()
        assert {"named": True} in named
        keys = api.get(f"/key-value-stores/{run['defaultKeyValueStoreId']}/keys").json()
        names = [k["key"] for k in keys["data"]["items"]]
        assert "TEXT" in names and "OUTPUT" in names
        assert not [k for k in names if k.startswith("__")]  # nothing private to the SDK
        queue = api.get(f"/request-queues/{run['defaultRequestQueueId']}").json()["data"]
        assert queue["handledRequestCount"] == 1


@pytest.mark.parametrize("actor", LANGUAGES)
def test_calls_to_other_actors_stay_on_the_runtime(runtime: LocalRuntime, actor: str) -> None:
    out, _ = _run(runtime, actor, {"features": ["call"]})
    assert out["called"]["status"] == "SUCCEEDED"
    who = "Python" if actor == "py-sdk" else "JS"
    assert out["calledItems"] == [f"Hello, from {who}!"] * 2
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        called = api.get(f"/actor-runs/{out['called']['id']}").json()["data"]
    assert called["status"] == "SUCCEEDED"  # the run is this runtime's own


@pytest.mark.parametrize("actor", LANGUAGES)
def test_charges_stop_at_max_total_charge_usd(runtime: LocalRuntime, actor: str) -> None:
    out, run = _run(runtime, actor, {"features": ["charge"]}, maxTotalChargeUsd=0.03)
    assert out["charge"]["eventChargeLimitReached"] is True
    assert run["chargedEventCounts"] == {"page": out["charge"]["chargedCount"]}
    assert run["pricingInfo"]["pricingModel"] == "PAY_PER_EVENT"
    compute = run["usageUsd"]["ACTOR_COMPUTE_UNITS"]
    assert run["usageTotalUsd"] == pytest.approx(compute + 0.03, abs=1e-6)


@pytest.mark.parametrize("actor", LANGUAGES)
def test_metamorph_becomes_another_actor(runtime: LocalRuntime, actor: str) -> None:
    out, run = _run(runtime, actor, {"features": ["metamorph"]})
    assert out == [{"n": 1, "greeting": "Hello, morphed!", "name": "morphed"}]
    assert run["metamorphs"][0]["inputKey"] == "INPUT-METAMORPH-1"


class _Pages(BaseHTTPRequestHandler):
    PAGES: ClassVar[dict[str, tuple[str, list[str]]]] = {
        "/": ("Home", ["/a", "/b"]), "/a": ("Page A", ["/b", "/"]), "/b": ("Page B", [])}

    def do_GET(self) -> None:
        title, links = self.PAGES.get(self.path, ("Missing", []))
        body = (f"<html><head><title>{title}</title></head><body>"
                + "".join(f'<a href="{link}">{link}</a>' for link in links)
                + "</body></html>").encode()
        self.send_response(200 if self.path in self.PAGES else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("actor", LANGUAGES)
def test_a_crawlee_crawler_on_a_local_site(runtime: LocalRuntime, actor: str,
                                           site: str) -> None:
    out, run = _run(runtime, actor, {"features": ["crawl"], "startUrls": [f"{site}/"]})
    assert out["crawled"] == [f"{site}/", f"{site}/a", f"{site}/b"]
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        items = api.get(f"/datasets/{run['defaultDatasetId']}/items").json()
        queue = api.get(f"/request-queues/{run['defaultRequestQueueId']}").json()["data"]
    assert sorted(i["title"] for i in items) == ["Home", "Page A", "Page B"]
    assert queue["handledRequestCount"] == 3 and queue["pendingRequestCount"] == 0
