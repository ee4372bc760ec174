"""A run's end as an event that threads wait on and the event loop awaits.

Run-sync waits for its run on the event loop: a thread blocked in `Event.wait` for every
request in flight would cost a thread a request and a wake-up from thread to thread at the
end; a callback from the thread that ends the run to the loop costs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable


class Done(threading.Event):
    """`threading.Event` that also calls back, once, whoever asked at the next `set`."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: list[Callable[[], None]] = []
        self._callbacks_lock = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._callbacks_lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def call_when_set(self, callback: Callable[[], None]) -> None:
        """`callback()` at the next `set`, or now if set already (from this thread)."""
        with self._callbacks_lock:
            if not self.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def forget(self, callback: Callable[[], None]) -> None:
        with self._callbacks_lock, contextlib.suppress(ValueError):
            self._callbacks.remove(callback)

    async def wait_async(self, timeout: float | None) -> bool:
        """Like `wait(timeout)`, without holding a thread: True once set."""
        if self.is_set():
            return True
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def wake() -> None:
            def settle() -> None:
                if not woken.done():
                    woken.set_result(None)
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(settle)

        self.call_when_set(wake)
        try:
            await asyncio.wait_for(woken, timeout)
        except asyncio.TimeoutError:
            return self.is_set()
        finally:
            self.forget(wake)
        return True
