"""TraceMiddleware on a tiny Starlette app, and whole lines under concurrent appends."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from apify_magic.local import trace
from apify_magic.local.trace import MAX_BODY_BYTES, TraceMiddleware, append_line


async def _json(request: Request) -> Response:
    return JSONResponse({"data": {"id": request.path_params["id"], "name": "žluť"}}, 201)


async def _bytes(request: Request) -> Response:
    return Response(b"\x89PNG\x00\xff", media_type="image/png")


async def _big(request: Request) -> Response:
    return Response(b"a" * (MAX_BODY_BYTES + 10), media_type="text/plain")


async def _stream(request: Request) -> Response:
    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * (MAX_BODY_BYTES // 2)
    return StreamingResponse(pieces(), media_type="text/plain")


def _app(path: Path) -> TraceMiddleware:
    app = Starlette(routes=[Route("/v2/things/{id}", _json, methods=["POST"]),
                            Route("/bytes", _bytes), Route("/big", _big),
                            Route("/stream", _stream)])
    return TraceMiddleware(app, path)


def _serve(app: TraceMiddleware,
           calls: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await calls(client)

    anyio.run(main)


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_response_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "trace.jsonl"

    async def calls(client: httpx.AsyncClient) -> None:
        r = await client.post("/v2/things/a%7Eb?token=SECRET&limit=2", json={"x": 1})
        assert r.status_code == 201
        assert (await client.get("/bytes")).content == b"\x89PNG\x00\xff"
        assert (await client.get("/nowhere")).status_code == 404

    _serve(_app(out), calls)
    first, binary, missing = _lines(out)
    assert first["method"] == "POST"
    assert first["path"] == "/v2/things/a%7Eb"
    assert first["query"] == "token=***&limit=2"
    assert first["status"] == 201
    assert first["content_type"] == "application/json"
    assert json.loads(str(first["body"]))["data"]["name"] == "žluť"
    assert first["truncated"] is False and first["body_encoding"] == "utf-8"
    assert binary["body_encoding"] == "base64"
    assert base64.b64decode(str(binary["body"])) == b"\x89PNG\x00\xff"
    assert missing["status"] == 404
    assert "SECRET" not in out.read_text()


def test_large_and_streamed_bodies_keep_their_first_megabyte(tmp_path: Path) -> None:
    out = tmp_path / "trace.jsonl"

    async def calls(client: httpx.AsyncClient) -> None:
        assert len((await client.get("/big")).content) == MAX_BODY_BYTES + 10
        assert len((await client.get("/stream")).content) == 3 * (MAX_BODY_BYTES // 2)

    _serve(_app(out), calls)
    big, stream = _lines(out)
    for line in (big, stream):
        assert line["truncated"] is True
        assert len(str(line["body"])) == MAX_BODY_BYTES


def test_split_utf8_at_the_cut_is_still_text() -> None:
    fields = trace._body_fields("ž".encode() * 3 + "ž".encode()[:1], truncated=True)
    assert fields == {"body": "žžž", "body_encoding": "utf-8", "truncated": True}


def test_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(trace.ENV_VAR, "")
    assert trace.from_environment() is None
    monkeypatch.setenv(trace.ENV_VAR, str(tmp_path))
    found = trace.from_environment()
    assert found is not None and found.parent == tmp_path
    assert found.name.startswith("trace-") and found.suffix == ".jsonl"


_WRITER = """
import json, sys
from pathlib import Path
from apify_magic.local.trace import append_line
who, path = sys.argv[1], Path(sys.argv[2])
for i in range(20):
    append_line(path, json.dumps({"who": who, "i": i, "pad": who * 200_000}).encode() + b"\\n")
"""


def test_threads_and_processes_append_whole_lines(tmp_path: Path) -> None:
    out = tmp_path / "trace.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, f"p{n}", str(out)])
             for n in range(3)]

    def write(who: str) -> None:
        for i in range(20):
            append_line(out, json.dumps({"who": who, "i": i, "pad": who * 200_000}).encode()
                        + b"\n")

    threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.wait(60) == 0 for p in procs)
    lines = _lines(out)  # a torn or interleaved line would not parse
    assert len(lines) == 6 * 20
    assert all(line["pad"] == str(line["who"]) * 200_000 for line in lines)
