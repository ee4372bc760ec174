"""Helpers for the runtime tests: finding Actor processes, a webhook listener."""

from __future__ import annotations

import os
import re

from processes import processes_with_env

# The whole suite runs with warm starts (the default) or, with APIFY_MAGIC_WARM_STARTS=0,
# without: every runtime the tests build takes this.
WARM_STARTS = os.environ.get("APIFY_MAGIC_WARM_STARTS", "1") != "0"


def run_pids(run_id: str) -> list[int]:
    return processes_with_env(f"ACTOR_RUN_ID={run_id}")


class WebhookListener:
    """A loopback HTTP server that keeps every POST it gets."""

    def __init__(self, fail_first: int = 0) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[dict[str, object]] = []
        self.refused = 0
        self.arrived = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if listener.refused < fail_first:
                    listener.refused += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                listener.received.append({"headers": dict(self.headers),
                                          "body": json.loads(body)})
                listener.arrived.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def encode_webhooks(hooks: list[dict[str, object]]) -> str:
    import base64
    import json

    return base64.b64encode(json.dumps(hooks).encode()).decode()


_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z ", re.MULTILINE)


def unstamped(log: str) -> str:
    """A run's log without the time stamps that start its lines (each line must have one)."""
    lines = log.splitlines(keepends=True)
    assert all(_STAMP.match(line) for line in lines), log
    return _STAMP.sub("", log)
