"""Safety: token, traversal, body size, content encodings."""

from __future__ import annotations

import gzip
import http.client
import json
import zlib
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest

from apify_magic.local import LocalRuntime


def raw_request(url: str, method: str, path: str) -> tuple[int, dict[str, object]]:
    """Send `path` exactly as written (httpx would normalise `..`)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_token_is_required_with_token_option(make_runtime: Callable[..., LocalRuntime]) -> None:
    runtime = make_runtime(token="s3cret")
    with httpx.Client(base_url=f"{runtime.url}/v2") as client:
        missing = client.post("/acts/hello/run-sync", json={})
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "token-not-provided"
        wrong = client.post("/acts/hello/run-sync", json={},
                            headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "invalid-token"
        ok = client.post("/acts/hello/run-sync", json={},
                         headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 201
        assert client.post("/acts/hello/run-sync", json={},
                           params={"token": "s3cret"}).status_code == 201
        # The default build (input schema) needs no token, as on the platform.
        assert client.get("/acts/hello/builds/default").status_code == 200


def test_any_token_or_none_is_accepted_by_default(api: httpx.Client) -> None:
    assert api.get("/acts/hello").status_code == 200
    assert api.get("/acts/hello", headers={"Authorization": "Bearer x"}).status_code == 200


@pytest.mark.parametrize("path", [
    "/v2/acts/../../etc/run-sync",
    "/v2/acts/..%2F..%2Fetc/run-sync",
    "/v2/acts/%2e%2e/run-sync",
    "/v2/acts/hello%2F..%2F..%2Fx",
    "/v2/acts/..%252Fx",
    "/v2/key-value-stores/STORE/records/..%2F..%2Frun.json",
    "/v2/key-value-stores/STORE/records/..",
    "/v2/actor-runs/RUN/key-value-store/records/%2E%2E%2Frun.json",
])
def test_paths_that_leave_their_folder_are_refused(runtime: LocalRuntime, api: httpx.Client,
                                                   path: str) -> None:
    run = api.post("/acts/hello/runs", json={}, params={"waitForFinish": 30}).json()["data"]
    path = path.replace("STORE", run["defaultKeyValueStoreId"]).replace("RUN", run["id"])
    status, body = raw_request(runtime.url, "GET", path)
    assert status == 400, body
    assert body["error"]["type"] == "invalid-request"  # type: ignore[index]


def test_output_record_key_cannot_leave_the_store(api: httpx.Client) -> None:
    response = api.post("/acts/hello/run-sync", json={},
                        params={"outputRecordKey": "../run.json"})
    assert response.status_code == 400


def test_body_over_the_limit_is_413(api: httpx.Client) -> None:
    body = b'{"name": "' + b"x" * 9_437_185 + b'"}'
    response = api.post("/acts/hello/run-sync", content=body,
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request-too-large"
    # The connection still works after the refusal.
    assert api.get("/acts/hello").status_code == 200


def test_gzip_and_deflate_bodies_are_decoded(api: httpx.Client) -> None:
    body = json.dumps({"name": "Zed", "count": 1}).encode()
    for encoding, data in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body)),
                           ("deflate", zlib.compress(body)[2:-4])):
        response = api.post("/acts/hello/run-sync", content=data, headers={
            "Content-Type": "application/json", "Content-Encoding": encoding})
        assert response.status_code == 201, response.text
        assert response.json()[0]["name"] == "Zed"


def test_other_encodings_are_415(api: httpx.Client) -> None:
    response = api.post("/acts/hello/run-sync", content=b"...", headers={
        "Content-Type": "application/json", "Content-Encoding": "br"})
    assert response.status_code == 415
    assert response.json()["error"]["type"] == "unsupported-content-encoding"


def test_gzip_bomb_is_refused(api: httpx.Client) -> None:
    bomb = gzip.compress(b'{"name": "' + b"a" * 20_000_000 + b'"}')
    response = api.post("/acts/hello/run-sync", content=bomb, headers={
        "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 413
