"""Background runs: `job = %apify_run ACTOR --background` returns a `Job` at once.

The run goes through the same run layer as any other (`RunSession.run`, watched), in a
thread of its own. Its progress calls are not applied from that thread: each is handed
to the kernel's own event loop (`IOLoop.add_callback`) and applied on the main thread,
the only place from which widget updates reach the browser (ipykernel 7,
ipywidgets#4001). So the panel moves whenever the kernel is idle or a cell awaits; while a
cell blocks the main thread the updates wait for it, and `job.status` and `job.result()`
never wait for the loop. The variable, if one is named, is bound on the loop when the
run ends (or by `job.result()`, whichever comes first).

Every job is listed by `%apify_jobs`; when the kernel shuts down, the runs still going
are aborted unless started with `--detach`.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from apify_magic.errors import ApifyMagicError
from apify_magic.run_record import TERMINAL, RunRecord

if TYPE_CHECKING:
    from apify_magic.client import ApifyClient
    from apify_magic.progress import Progress
    from apify_magic.session import Connection, RunRequest, RunSession

Schedule = Callable[[Callable[[], None]], None]
RUN_ID_WAIT_SECS = 30.0  # abort() before the run has an id waits this long for one


def kernel_schedule(shell: Any) -> Schedule | None:
    """`add_callback` of the kernel's main event loop, or None outside a kernel."""
    loop = getattr(getattr(shell, "kernel", None), "io_loop", None)
    add = getattr(loop, "add_callback", None)
    return add if callable(add) else None


class LoopProgress:
    """A Progress whose calls, made in a job's thread, are applied on the kernel's loop, in
    order; ticks that pile up while the loop is busy collapse into the newest."""

    def __init__(self, inner: Progress, schedule: Schedule) -> None:
        self.inner = inner
        self.wants_log = bool(getattr(inner, "wants_log", False))
        self._schedule = schedule
        self._queue: list[tuple[str, tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        self._pending = False

    def _post(self, method: str, *args: Any) -> None:
        with self._lock:
            if method == "tick" and self._queue and self._queue[-1][0] == "tick":
                self._queue[-1] = (method, args)
            else:
                self._queue.append((method, args))
            if self._pending:
                return
            self._pending = True
        self._schedule(self._drain)

    def _drain(self) -> None:
        with self._lock:
            queue, self._queue, self._pending = self._queue, [], False
        for method, args in queue:
            # a view that failed must not stop the others (or the run)
            with contextlib.suppress(Exception):
                getattr(self.inner, method)(*args)

    def started(self, actor_id: str, target_label: str, timeout: float | None) -> None:
        self._post("started", actor_id, target_label, timeout)

    def tick(self, elapsed: float) -> None:
        self._post("tick", elapsed)

    def status(self, status: str, message: str | None) -> None:
        self._post("status", status, message)

    def identified(self, run_id: str) -> None:
        self._post("identified", run_id)

    def log(self, text: str) -> None:
        self._post("log", text)

    def finished(self, value: Any, elapsed: float) -> None:
        self._post("finished", value, elapsed)

    def failed(self, error: BaseException, elapsed: float) -> None:
        self._post("failed", error, elapsed)


class Job:
    """A background run: `status`, `run_id`, `result()`, `abort()`, `log()`."""

    def __init__(self, number: int, request: RunRequest, client: ApifyClient, *,
                 bind: Callable[[Any], None] | None, schedule: Schedule | None,
                 detach: bool) -> None:
        self.number = number
        self.request = request
        self.detach = detach
        self.record = RunRecord(request.actor_id, request.options, request.variable)
        self.record.attach_client(client)
        self._client = client
        self._bind_value = bind
        self._schedule = schedule
        self._done = threading.Event()
        self._bound = False
        self._bind_lock = threading.Lock()
        self._value: Any = None
        self._error: BaseException | None = None

    def _start(self, session: RunSession, progress: Progress, connection: Connection) -> None:
        if self._schedule is not None:
            progress = LoopProgress(progress, self._schedule)
        threading.Thread(target=self._work, args=(session, progress, connection),
                         name=f"apify-magic-job-{self.number}", daemon=True).start()

    def _work(self, session: RunSession, progress: Progress, connection: Connection) -> None:
        try:
            self._value = session.run(self.request, progress, connection, record=self.record)
        except BaseException as err:  # kept for result(); the panel has shown it
            self._error = err
        finally:
            self._done.set()
            if self._schedule is not None:
                self._schedule(self._bind)
            else:
                self._bind()

    def _bind(self) -> None:
        with self._bind_lock:
            if self._bound or self._error is not None or self._bind_value is None:
                return
            self._bound = True
        self._bind_value(self._value)

    # -- the handle ------------------------------------------------------------------

    @property
    def run_id(self) -> str | None:
        return self.record.run_id

    @property
    def status(self) -> str:
        """STARTING, RUNNING, then the run's final status (SUCCEEDED, FAILED...)."""
        return self.record.status

    @property
    def variable(self) -> str | None:
        return self.request.variable

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the run to end and return its result (binding the variable, if any);
        raise the run's error if it failed, TimeoutError if `timeout` passes first."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.number} ({self.record.actor_id}) is still "
                               f"{self.status} after {timeout:g} s")
        if self._error is not None:
            raise self._error
        if threading.current_thread() is threading.main_thread():
            self._bind()
        return self._value

    def abort(self) -> str:
        """Abort the run (waiting for its id if it has none yet); return its status."""
        deadline = time.monotonic() + RUN_ID_WAIT_SECS
        while self.run_id is None and not self.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        run_id = self.run_id
        if run_id is None:
            return self.status
        if self.done() and self.status in TERMINAL:
            return self.status
        run = self._client.abort_run(run_id, actor_id=self.record.actor_id)
        return str(run.get("status") or self.status)

    def log(self) -> str:
        """The run's log so far."""
        return self.record.log()

    @property
    def error(self) -> BaseException | None:
        return self._error

    def __repr__(self) -> str:
        into = f" -> {self.variable}" if self.variable else ""
        run = f" run {self.run_id}" if self.run_id else ""
        detached = ", detached" if self.detach else ""
        return f"<Job {self.number}: {self.record.actor_id}{into},{run} {self.status}{detached}>"


class Jobs:
    """This kernel's background runs."""

    def __init__(self) -> None:
        self._jobs: list[Job] = []
        self._lock = threading.Lock()
        self._atexit = False

    def start(self, session: RunSession, request: RunRequest, progress: Progress,
              connection: Connection, *, bind: Callable[[Any], None] | None,
              schedule: Schedule | None, detach: bool = False) -> Job:
        """Start `request` (a watched run) in the background; return its handle at once.
        The target is resolved here, on the caller's thread (a token prompt needs it)."""
        client = session.client(connection)
        with self._lock:
            job = Job(len(self._jobs) + 1, request, client, bind=bind, schedule=schedule,
                      detach=detach)
            self._jobs.append(job)
            if not self._atexit:
                # Registered after the embedded runtime's own stop, so it runs before it.
                atexit.register(self.shutdown)
                self._atexit = True
        job._start(session, progress, connection)
        return job

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs)

    def shutdown(self) -> list[str]:
        """Abort the runs still going that were not started with --detach (at exit)."""
        aborted = []
        for job in self.all():
            if job.detach or job.done() or job.run_id is None:
                continue
            try:
                job._client.abort_run(job.run_id, actor_id=job.record.actor_id)
                aborted.append(job.run_id)
            except (ApifyMagicError, OSError):  # the kernel is going: do what can be done
                pass
        return aborted

    def table(self) -> str:
        jobs = self.all()
        if not jobs:
            return "No background runs in this kernel."
        rows = [("#", "actor", "variable", "run", "status")]
        rows += [(str(j.number), j.record.actor_id, j.variable or "-", j.run_id or "-",
                  j.status + (" (detached)" if j.detach else "")) for j in jobs]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                         for r in rows)


JOBS = Jobs()
