"""A real HTTP server on loopback that records what it received and answers from a script."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Shaped like a token (the prefix the scrubbers look for) but plainly not a real one.
TOKEN = "apify_api_TEST-not-a-real-token-0123456789"


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclasses.dataclass
class Reply:
    status: int = 201
    body: bytes = b'{"ok": true}'
    content_type: str | None = "application/json; charset=utf-8"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0


class Drop:
    """Close the connection after reading the request, without any answer."""


def error_reply(status: int, error_type: str, message: str, **headers: str) -> Reply:
    body = json.dumps({"error": {"type": error_type, "message": message}}).encode()
    return Reply(status, body, headers=headers)


class RecordingServer:
    """A real HTTP server on loopback that logs every request and answers from a script."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.script: list[Reply | Drop] = []
        self.default: Reply | Drop = Reply()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                with server._lock:
                    server.seen.append(Seen(self.command, parts.path, query,
                                            dict(self.headers.items()), data))
                    reply = server.script.pop(0) if server.script else server.default
                if isinstance(reply, Drop):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                if reply.content_type is not None:
                    self.send_header("Content-Type", reply.content_type)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A client that gave up (read-timeout tests) breaks the pipe: expected, not news.
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def posts(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def loaded_shell(**config: object) -> Iterator[Any]:
    """The IPython shell with apify_magic loaded and `ApifyMagic` configured; on exit the
    extension is unloaded and the variables the test made are gone."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "apify_magic")
    for name, value in config.items():
        ip.run_line_magic("config", f"ApifyMagic.{name} = {value!r}")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "apify_magic")
        # %config merges into the shell's own config too, from which the next load
        # would take it: each test starts from no defaults.
        ip.config.pop("ApifyMagic", None)
        for name in list(ip.user_ns):
            if not name.startswith("_") and name not in ip.user_ns_hidden:
                del ip.user_ns[name]


def run(ip: Any, source: str) -> Any:
    """Run a cell the way nbval does (no history); return the ExecutionResult."""
    return ip.run_cell(source, store_history=False)
