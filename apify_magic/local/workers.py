"""Daemon worker threads for the handlers that block, answered on the event loop.

Not `anyio.to_thread`: its bookkeeping on every call (the async library's lookup, a
cancel scope, run-scoped variables) cost more than a small handler itself, and showed as
the largest share of the loop's time in a profile of run-syncs. Not a
`ThreadPoolExecutor`: its threads are joined at interpreter exit, and a handler may be
waiting minutes for a run when a kernel quits.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# A worker that has had nothing to do for this long ends; the next burst starts new ones.
IDLE_SECS = 10.0

_Job = tuple[Callable[[], object], asyncio.AbstractEventLoop, "asyncio.Future[object]"]


class Workers:
    """At most `size` threads; a job beyond them waits in the queue for a free one."""

    def __init__(self, size: int, name: str = "apify-local-worker") -> None:
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0     # workers waiting for a job
        self._pending = 0  # jobs queued and not yet taken

    @property
    def threads(self) -> int:
        return self._threads

    async def run(self, fn: Callable[[], T]) -> T:
        """`fn()` in a worker thread; its result (or exception) here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        with self._lock:
            self._pending += 1
            grow = self._pending > self._idle and self._threads < self.size
            if grow:
                self._threads += 1
        if grow:
            threading.Thread(target=self._work, name=f"{self.name}-{self._threads}",
                             daemon=True).start()
        self._jobs.put((fn, loop, future))
        return await future  # type: ignore[return-value]

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            try:
                fn, loop, future = self._jobs.get(timeout=IDLE_SECS)
            except queue.Empty:
                with self._lock:
                    # A job counted but not yet queued counts on this worker: stay for it.
                    if self._pending < self._idle:
                        self._idle -= 1
                        self._threads -= 1
                        return
                    self._idle -= 1
                continue
            with self._lock:
                self._idle -= 1
                self._pending -= 1
            try:
                result: object = fn()
            except BaseException as exc:  # handed to the awaiting request as it is
                _settle_soon(loop, future, None, exc)
            else:
                _settle_soon(loop, future, result, None)


def _settle_soon(loop: asyncio.AbstractEventLoop, future: asyncio.Future[object],
                 result: object, exc: BaseException | None) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
        loop.call_soon_threadsafe(_settle, future, result, exc)


def _settle(future: asyncio.Future[object], result: object,
            exc: BaseException | None) -> None:
    if future.cancelled():  # the client went away while the handler ran
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
