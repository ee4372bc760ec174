"""How a run shows its progress: a widget panel, text lines, or nothing.

The request waits in a worker thread; every call on a `Progress` comes from the kernel's
main thread, the only thread from which widget updates reach the browser while a cell
runs (ipykernel 7, ipywidgets#4001).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

PROGRESS_MODES = ("auto", "widget", "text", "none")
PANEL_VIEWS = ("compact", "expanded")  # how a run panel first shows (%config ApifyMagic.panel_view)
TICK_SECS = 0.25

T = TypeVar("T")


class Progress(Protocol):
    """What a run reports while it goes; every method is called on the main thread."""

    def started(self, actor_id: str, target_label: str, timeout: float | None) -> None: ...

    def tick(self, elapsed: float) -> None: ...

    def status(self, status: str, message: str | None) -> None: ...

    def identified(self, run_id: str) -> None:
        """The run's id, once it is known (at once when watched, at the end of run-sync
        where the server tells it)."""

    def log(self, text: str) -> None:
        """New text of the run's log, for a progress whose `wants_log` is true."""

    def finished(self, value: Any, elapsed: float) -> None: ...

    def failed(self, error: BaseException, elapsed: float) -> None: ...


class NoProgress:
    """Shows nothing."""

    def started(self, actor_id: str, target_label: str, timeout: float | None) -> None:
        pass

    def tick(self, elapsed: float) -> None:
        pass

    def status(self, status: str, message: str | None) -> None:
        pass

    def identified(self, run_id: str) -> None:
        pass

    def log(self, text: str) -> None:
        pass

    def finished(self, value: Any, elapsed: float) -> None:
        pass

    def failed(self, error: BaseException, elapsed: float) -> None:
        pass


class TextProgress(NoProgress):
    """Plain lines for terminal IPython and scripts: a start line, changes, an end line."""

    EVERY_SECS = 10.0

    def __init__(self, write: Callable[[str], Any] | None = None) -> None:
        self._write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self._actor = ""
        self._next_tick = self.EVERY_SECS
        self._last_status: tuple[str, str | None] | None = None

    def started(self, actor_id: str, target_label: str, timeout: float | None) -> None:
        self._actor = actor_id
        limit = f", timeout {timeout:g} s" if timeout else ""
        self._write(f"{actor_id}: started on {target_label}{limit}")

    def tick(self, elapsed: float) -> None:
        if elapsed >= self._next_tick:
            self._next_tick += self.EVERY_SECS
            self._write(f"{self._actor}: running, {elapsed:.0f} s")

    def status(self, status: str, message: str | None) -> None:
        if (status, message) != self._last_status:
            self._last_status = (status, message)
            self._write(f"{self._actor}: {status}" + (f": {message}" if message else ""))

    def finished(self, value: Any, elapsed: float) -> None:
        self._write(f"{self._actor}: SUCCEEDED in {elapsed:.1f} s")

    def failed(self, error: BaseException, elapsed: float) -> None:
        self._write(f"{self._actor}: failed after {elapsed:.1f} s ({type(error).__name__})")


def in_kernel(shell: Any) -> bool:
    return shell is not None and getattr(shell, "kernel", None) is not None


def in_terminal(shell: Any) -> bool:
    return type(shell).__name__ == "TerminalInteractiveShell"


class Pending(Generic[T]):
    """A call running in a daemon worker thread, to be waited for on the main thread."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._box: dict[str, Any] = {}
        self._done = threading.Event()

        def worker() -> None:
            try:
                self._box["value"] = call()
            except BaseException as err:
                self._box["error"] = err
            finally:
                self._done.set()

        threading.Thread(target=worker, name="apify-magic-request", daemon=True).start()

    def wait(self, progress: Progress, started: float,
             each_tick: Callable[[], None] | None = None) -> T:
        """Tick `progress` (and call `each_tick`) until the call ends; return its value or
        raise its error.

        A KeyboardInterrupt reaches this thread between ticks and propagates; the worker
        is a daemon, so an abandoned request does not keep the kernel alive.
        """
        while not self._done.wait(TICK_SECS):
            progress.tick(time.monotonic() - started)
            if each_tick is not None:
                each_tick()
        if "error" in self._box:
            raise self._box["error"]
        value: T = self._box["value"]
        return value


def wait_on_main_thread(call: Callable[[], T], progress: Progress,
                        started: float | None = None,
                        each_tick: Callable[[], None] | None = None) -> T:
    """Run `call` in a worker thread; tick `progress` from this thread until it ends."""
    started = time.monotonic() if started is None else started
    return Pending(call).wait(progress, started, each_tick)
