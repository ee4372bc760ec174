"""Monitored runs: start a run, follow it in short waits, abort it on interrupt, fetch results.

Unlike run-sync, the run id is known from the first answer, so every later error names the
run, the run can be aborted when the user interrupts the kernel, and there is no 300 s
ceiling. Each request waits in a worker thread; progress and aborts happen on the main
thread (see progress.py).
"""

from __future__ import annotations

import concurrent.futures
import functools
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from apify_magic.body import Payload
from apify_magic.client import ApifyClient
from apify_magic.datasets import (
    PAGE_ITEMS,
    TO_PAGE_ITEMS,
    DatasetQuery,
    FrameBuilder,
    ItemList,
    Page,
    PageSink,
    ReadRate,
    read_pages,
)
from apify_magic.errors import RunFailedError, RunInterruptedError
from apify_magic.options import RunOptions
from apify_magic.progress import TICK_SECS, Progress, wait_on_main_thread

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"})
POLL_WAIT_SECS = 1.0
LOG_TAIL_LINES = 5
# How long the log's last lines may take to arrive once the run has ended.
LOG_FINISH_SECS = 2.0
_LOG_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ")

T = TypeVar("T")


class RunFollower:
    """Follows one run on the main thread, reporting to a Progress."""

    def __init__(self, client: ApifyClient, progress: Progress, *, actor_id: str = "",
                 started: float | None = None, poll_secs: float = POLL_WAIT_SECS) -> None:
        self.client = client
        self.progress = progress
        self.actor_id = actor_id
        self.started = time.monotonic() if started is None else started
        self.poll_secs = poll_secs
        self.run: dict[str, Any] = {}
        self._each_tick: Callable[[], None] | None = None

    @property
    def run_id(self) -> str | None:
        value = self.run.get("id")
        return str(value) if value else None

    def _wait(self, call: Callable[[], T]) -> T:
        return wait_on_main_thread(call, self.progress, self.started, self._each_tick)

    def _show(self, run: dict[str, Any]) -> None:
        self.run = run
        self.progress.status(str(run.get("status")), run.get("statusMessage") or None)

    def start(self, options: RunOptions, payload: Payload, *, task: bool = False
              ) -> dict[str, Any]:
        self._show(self._wait(lambda: self.client.start_run(self.actor_id, options, payload,
                                                            task=task)))
        return self.run

    def attach(self, run_id: str) -> dict[str, Any]:
        self._show(self._wait(lambda: self.client.get_run(run_id)))
        self.actor_id = self.actor_id or str(self.run.get("actId") or "")
        return self.run

    def follow(self) -> dict[str, Any]:
        """Wait until the run ends; abort it if the user interrupts; raise if it failed.

        While it runs, its log is followed for a progress that shows it (`wants_log`)."""
        run_id = self.run_id
        assert run_id is not None
        self.progress.identified(run_id)
        log = LogFollower(self.client, run_id) if getattr(self.progress, "wants_log",
                                                          False) else None
        if log is not None:  # new log lines reach the progress at every tick (0.25 s)
            self._each_tick = lambda: self._log(log.drain())
        try:
            while self.run.get("status") not in TERMINAL:
                self._show(self._wait(lambda: self.client.get_run(
                    run_id, self.poll_secs, actor_id=self.actor_id)))
                if self._each_tick is not None:  # a poll shorter than a tick has none
                    self._each_tick()
        except KeyboardInterrupt:
            raise self.interrupted() from None
        finally:
            self._each_tick = None
            if log is not None:
                self._log(log.finish())
        if self.run.get("status") != "SUCCEEDED":
            raise self.failure()
        return self.run

    def _log(self, text: str) -> None:
        if text:
            self.progress.log(text)

    def interrupted(self) -> RunInterruptedError:
        """Kernel > Interrupt: abort the run, and say in a few lines what became of it."""
        run_id = self.run_id
        if run_id is None:
            return RunInterruptedError(
                "Interrupted while the run was being started: it may have started",
                hint=f"look for it among the Actor's runs: {runs_place(self.client)}")
        try:
            self.run = self.client.abort_run(run_id, actor_id=self.actor_id)
        except Exception as err:  # the interrupt wins; say what could not be done
            return RunInterruptedError(
                f"Interrupted, but aborting run {run_id} failed ({type(err).__name__}): "
                "it may go on (and cost) until it ends", run_id=run_id,
                hint=f"abort it yourself: {run_place(self.client, run_id)}")
        return RunInterruptedError(
            f"Interrupted: run {run_id} of {self.actor_id} was aborted "
            f"(status {self.run.get('status')})", run_id=run_id, aborted=True,
            hint=f"its log: {run_place(self.client, run_id)}")

    def failure(self) -> RunFailedError:
        run_id, status = self.run_id, self.run.get("status")
        hint = failure_hint(self.client, self.run, self.actor_id)
        return RunFailedError(
            400, "run-failed", f"Actor run did not succeed (run ID: {run_id}, status: {status})",
            actor_id=self.actor_id, run_id=run_id, hint=hint, answered=False)

    # -- results -------------------------------------------------------------------------

    def record(self, key: str, store: str | None = None) -> tuple[bytes, str]:
        """A record of `store` (the run's default store unless named); b"" when missing."""
        store = store or str(self.run.get("defaultKeyValueStoreId"))
        found = self._wait(lambda: self.client.get_record(
            store, key, actor_id=self.actor_id, run_id=self.run_id))
        return found if found is not None else (b"", "")

    def dataset(self, query: DatasetQuery, as_frame: bool, dataset_id: str | None = None
                ) -> Any:
        """The items of the run's default dataset (or `dataset_id`'s): a DataFrame, a list,
        or with `query.to` a file and its handle (dataset_files.py).

        Pages are fetched several at a time (`read_pages`) while the one before is parsed:
        the requests wait on their sockets and the parser in Arrow, so neither holds the
        GIL for long.
        """
        from apify_magic.dataset_files import file_sink

        dataset_id = dataset_id or str(self.run.get("defaultDatasetId"))
        start = query.offset or 0
        end = None if query.limit is None else start + query.limit
        sink: PageSink = (file_sink(query.to) if query.to is not None
                          else FrameBuilder() if as_frame else ItemList())
        rate, total = ReadRate(), 0
        try:
            for page in read_pages(functools.partial(self._page, dataset_id, query), start,
                                   end, self._wait_page,
                                   page_items=TO_PAGE_ITEMS if query.to else PAGE_ITEMS):
                total = page.total if end is None else min(page.total, end) - start
                rate.add(page)
                sink.add(page.body)
                page.body = b""
                if rate.due():
                    self.progress.status("SUCCEEDED", rate.message(total))
        except BaseException:
            close = getattr(sink, "abandon", None)
            if close is not None:
                close()
            raise
        self.progress.status("SUCCEEDED", rate.message(max(total, rate.items)))
        return sink.result()

    def _page(self, dataset_id: str, query: DatasetQuery, offset: int, size: int) -> Page:
        params = {**query.params("jsonl"), "offset": str(offset), "limit": str(size)}
        response = self.client.dataset_items(dataset_id, params, actor_id=self.actor_id,
                                             run_id=self.run_id)
        return Page(offset=offset, asked=size, body=response.content,
                    count=int(response.headers.get("X-Apify-Pagination-Count", "0")),
                    total=int(response.headers.get("X-Apify-Pagination-Total", "0")))

    def _wait_page(self, future: concurrent.futures.Future[Page]) -> Page:
        while True:
            try:
                return future.result(TICK_SECS)
            except concurrent.futures.TimeoutError:
                self.progress.tick(time.monotonic() - self.started)


class LogFollower:
    """A run's log streamed in a worker thread; the main thread takes what came with
    `drain()`, so the widgets are only ever updated from the main thread."""

    def __init__(self, client: ApifyClient, run_id: str) -> None:
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(client, run_id),
                                        name="apify-magic-log", daemon=True)
        self._thread.start()

    def _read(self, client: ApifyClient, run_id: str) -> None:
        for chunk in client.stream_log(run_id):
            with self._lock:
                self._chunks.append(chunk)

    def drain(self) -> str:
        with self._lock:
            data, self._chunks = b"".join(self._chunks), []
        return data.decode("utf-8", "replace")

    def finish(self, wait_secs: float = LOG_FINISH_SECS) -> str:
        """What is left once the run has ended (the server then ends the stream)."""
        self._thread.join(wait_secs)
        return self.drain()


def log_tail(client: ApifyClient, run_id: str, actor_id: str = "",
             lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a run's log, without the time stamps the platform puts before
    each line (the words matter here); [] when the log cannot be read."""
    try:
        log = client.get_log(run_id, actor_id=actor_id)
    except Exception:  # the failure matters more than its log
        return []
    return [_LOG_STAMP.sub("", line) for line in log.splitlines() if line.strip()][-lines:]


def failure_hint(client: ApifyClient, run: dict[str, Any], actor_id: str = "") -> str:
    """What a failed run says of itself: its status message and its log's last lines."""
    note = run.get("statusMessage")
    hint = f"status message: {note}" if note else "the run left no status message"
    return hint + log_tail_hint(client, str(run.get("id")), actor_id)


def log_tail_hint(client: ApifyClient, run_id: str, actor_id: str = "") -> str:
    tail = log_tail(client, run_id, actor_id)
    text = ("\nlast lines of the log:\n" + "\n".join(f"  {line}" for line in tail)
            if tail else "")
    return text + f"\nthe whole log: {run_place(client, run_id)}"


def run_place(client: ApifyClient, run_id: str) -> str:
    """Where a person looks at a run: Apify Console on the platform, `%apify_log` here."""
    if client.target.is_platform:
        return f"https://console.apify.com/view/runs/{run_id}"
    return f"%apify_log {run_id}"


def runs_place(client: ApifyClient) -> str:
    if client.target.is_platform:
        return "https://console.apify.com/actors/runs"
    return "GET /v2/actor-runs?desc=1 on the target"
