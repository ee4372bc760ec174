"""The whole runtime: Actors from folders, runs in a data dir, the API served by uvicorn.

uvicorn (with h11) parses the HTTP framing strictly: a malformed request line, header,
Content-Length or chunk size is a 400 from the server before any handler runs, and a
header section over `MAX_HEADER_BYTES` is refused. Connections are handled on one event
loop, so a slow or half-open client holds no thread; beyond `MAX_CONNECTIONS` at once the
server answers 503. An idle keep-alive connection is closed after `KEEP_ALIVE_SECS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from pathlib import Path

import uvicorn

from apify_magic.local import trace, webhooks
from apify_magic.local.app import Api, build_app
from apify_magic.local.registry import Registry
from apify_magic.local.runner import Run, Runner
from apify_magic.local.strict_h11 import MAX_HEADER_BYTES, StrictH11Protocol

MAX_CONNECTIONS = 1000
KEEP_ALIVE_SECS = 30
STOP_GRACE_SECS = 1


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on sockets that say
    # TCP, and with it on every small answer waits 40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # many clients connecting at once
        sock.set_inheritable(False)
    except OSError:
        sock.close()
        raise
    return sock


class LocalRuntime:
    """Registry, runner and API on one listening socket; `start` serves in a thread."""

    def __init__(self, actor_dirs: list[Path], *, data_dir: Path, host: str = "127.0.0.1",
                 port: int = 0, memory_budget_mbytes: int = 8192,
                 sync_wait_secs: float = 300.0, token: str | None = None,
                 kill_grace_secs: float = 5.0, keep_runs: int = 1000,
                 verbose: bool = False, warm_starts: bool = True,
                 sdk_at_home: bool = True) -> None:
        self.registry = Registry(actor_dirs)
        self.data_dir = data_dir
        self.verbose = verbose
        self.runner = Runner(data_dir / "runs", memory_budget_mbytes=memory_budget_mbytes,
                             kill_grace_secs=kill_grace_secs, keep_runs=keep_runs,
                             on_event=self._on_event, warm_starts=warm_starts,
                             sdk_at_home=sdk_at_home)
        self.api = Api(self.registry, self.runner, sync_wait_secs=sync_wait_secs, token=token,
                       base_url=lambda: self.url)
        try:
            self._socket = _bind(host, port)
        except OSError:
            self.runner.stop()
            raise
        bound_host, bound_port = self._socket.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}"
        self.runner.api_url = self.url
        app: trace.ASGIApp = build_app(self.api)
        trace_file = trace.from_environment()
        if trace_file is not None:  # the contract tests' record of every response
            app = trace.TraceMiddleware(app, trace_file)
        self._server = uvicorn.Server(uvicorn.Config(
            app, lifespan="off", http=StrictH11Protocol, ws="none",
            log_level="info" if verbose else "warning", access_log=verbose,
            limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=KEEP_ALIVE_SECS,
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            timeout_graceful_shutdown=STOP_GRACE_SECS, server_header=False))
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"LocalRuntime({self.url!r})"

    def _on_event(self, run: Run, event: str) -> None:
        # The run's ad-hoc webhooks and the saved ones whose condition it meets.
        dispatcher = webhooks.dispatcher(self.data_dir)
        if run.webhooks or dispatcher.may_fire(run.id, run.task_id, run.act_id):
            dispatcher.on_run_event(run.to_dict(), run.webhooks, event)

    def start(self) -> LocalRuntime:
        """Serve from a daemon thread; return once the server is accepting."""
        self._thread = threading.Thread(target=self._serve, name="apify-local-http",
                                        daemon=True)
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            self._thread.join(0.005)
        return self

    def _serve(self) -> None:
        # In a thread uvicorn installs no signal handlers; the kernel keeps its own.
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def serve_forever(self) -> None:
        """Serve in this thread until SIGINT or SIGTERM (uvicorn's handlers)."""
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        self._server.run(sockets=[self._socket])

    def stop(self) -> None:
        """Stop answering, then kill every Actor process."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_GRACE_SECS + 5.0)
            self._thread = None
        with contextlib.suppress(OSError):
            self._socket.close()
        self.runner.stop()
        webhooks.dispatcher(self.data_dir).stop()

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
