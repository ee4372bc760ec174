"""The map's scheduler: many runs of one Actor, within the account's limits.

One asyncio loop in one worker thread drives every run of the map through one
`httpx.AsyncClient`: a fixed set of worker coroutines (as many as the concurrency
allows) each start a run, follow it with `waitForFinish` long polls, read its result
and take the next input. Thousands of inputs are a queue, not thousands of threads or
tasks. The kernel's main thread only waits, shows progress and turns Kernel > Interrupt
into `interrupt()`.

A start is never repeated blindly. Each POST carries a marker in its User-Agent
(`apify-magic/VERSION (map KEY.ATTEMPT)`), which the platform keeps as the run's
`meta.userAgent`; when the answer is lost (a dropped connection, a timeout, a 5xx), or
a kernel died between the POST and the ledger line with the run's id, the run is
looked for among the Actor's runs started since (`startedAfter`) by that marker, and
only when none is there after a few looks is the input started again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import dataclasses
import threading
import time
from collections.abc import Hashable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from apify_magic import __version__
from apify_magic.client import ApifyClient
from apify_magic.datasets import PAGE_ITEMS, DatasetQuery
from apify_magic.errors import ApiError, ApifyMagicError
from apify_magic.fanout.inputs import Job
from apify_magic.fanout.ledger import Ledger, input_key
from apify_magic.fanout.merge import Merge
from apify_magic.fanout.wire import AsyncApi, tls
from apify_magic.options import RunOptions

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"})
LONG_POLL_SECS = 30.0  # the platform caps waitForFinish at 60
DEFAULT_MEMORY_MBYTES = 1024  # the platform's default when an Actor names none
MAX_CONCURRENCY = 256  # the largest plan's concurrent runs
LOST_LOOKS = 5  # how often a start whose answer was lost is looked for...
LOST_LOOK_SECS = 1.0  # ...this far apart
LOST_STARTS = 3  # a start lost this many times fails its input
RESULT_READERS = 8  # reused runs' results read at once
ABORT_WAIT_SECS = 5.0  # how long an aborted run is given to read ABORTED


# Each worker coroutine has a client of its own with one connection: its requests go one
# after another anyway, and httpcore's pool scans every connection for every queued
# request, which made one shared pool of 40 connections cost 25 ms of CPU a run.
_API: contextvars.ContextVar[AsyncApi] = contextvars.ContextVar("apify_magic_map_api")


@dataclasses.dataclass
class MapRequest:
    """Everything a map needs, checked: what the frontend hands to `run_map`."""

    actor_id: str
    jobs: list[Job]
    options: RunOptions
    ledger: Path
    task: bool = False
    dataset: DatasetQuery | None = None
    result_as: str = "auto"
    concurrency: int | None = None
    budget_usd: float | None = None
    retries: int = 0
    batch: int | None = None
    poll_secs: float = LONG_POLL_SECS


@dataclasses.dataclass
class Row:
    """One run of the map, as the per-run table shows it."""

    label: Hashable
    members: tuple[Hashable, ...]
    key: str
    status: str = "QUEUED"
    run_id: str | None = None
    started: str | None = None
    finished: str | None = None
    usd: float | None = None
    error: str | None = None
    attempts: int = 0
    origin: str = "new"  # new, reused (a succeeded run from the ledger), reattached


@dataclasses.dataclass(frozen=True)
class Snapshot:
    total: int
    succeeded: int
    running: int
    queued: int
    failed: int
    elapsed: float
    usd: float
    concurrency: int


class Gate:
    """How many runs may go at once: starts at what the limits allow, shrinks to what
    is running on a 402 or 429 (and pauses for its Retry-After), grows back by one with
    each start that succeeds."""

    def __init__(self, capacity: int, ceiling: int) -> None:
        self.capacity = capacity
        self.ceiling = ceiling
        self.running = 0
        self.paused_until = 0.0
        self.changed = asyncio.Condition()

    async def acquire(self) -> None:
        async with self.changed:
            while True:
                pause = self.paused_until - time.monotonic()
                if pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.changed.wait(), pause)
                    continue
                if self.running < self.capacity:
                    self.running += 1
                    return
                await self.changed.wait()

    async def release(self) -> None:
        async with self.changed:
            self.running -= 1
            self.changed.notify_all()

    async def throttle(self, wait_secs: float) -> None:
        """A start was refused as "not now": give back its slot, run no more than now."""
        async with self.changed:
            self.running -= 1
            self.capacity = max(1, self.running)
            self.paused_until = max(self.paused_until, time.monotonic() + wait_secs)
            self.changed.notify_all()

    def eased(self) -> None:
        if self.capacity < self.ceiling:
            self.capacity += 1


class Scheduler:
    """Runs a `MapRequest` on an asyncio loop in a worker thread of its own."""

    def __init__(self, client: ApifyClient, request: MapRequest, concurrency: int) -> None:
        self.client = client
        self.request = request
        self.concurrency = concurrency
        self.ledger = Ledger(request.ledger).load()
        self.merge = Merge()
        self.rows = [Row(job.label, job.members, key)
                     for job, key in zip(request.jobs, _keys(client, request), strict=True)]
        self.refusals = {"402": 0, "429": 0}
        self.lost_starts = 0
        self.budget_stopped = False
        self.interrupted = False
        self.started_at = time.monotonic()
        self.elapsed = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._finished_costs: list[float] = []
        self.done = threading.Event()

    # -- driving it from the main thread ----------------------------------------------

    def run(self) -> None:
        """The worker thread's body; `done` is set when it ends (an Event, not
        `Thread.join`: a KeyboardInterrupt inside `join` can leave the thread looking
        finished while it runs on)."""
        try:
            asyncio.run(self._main())
        finally:
            self.done.set()

    def interrupt(self) -> None:
        """From the main thread: stop starting, abort every run still going."""
        loop, stop = self._loop, self._stop
        self.interrupted = True
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)

    def snapshot(self) -> Snapshot:
        counts = collections.Counter(row.status for row in self.rows)
        running = sum(n for s, n in counts.items() if s in ("RUNNING", "READY", "STARTING"))
        failed = sum(counts[s] for s in ("FAILED", "TIMED-OUT", "ABORTED", "NOT-STARTED"))
        return Snapshot(total=len(self.rows), succeeded=counts["SUCCEEDED"], running=running,
                        queued=counts["QUEUED"], failed=failed,
                        elapsed=time.monotonic() - self.started_at, usd=self._usd(),
                        concurrency=self.concurrency)

    def _usd(self) -> float:
        return sum(row.usd or 0.0 for row in self.rows)

    # -- the loop ---------------------------------------------------------------------

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self.interrupted:
            self._stop.set()
        self.gate = Gate(self.concurrency, self.concurrency)
        self._tls = tls(self.client.target.base_url)
        main_api = AsyncApi(self.client, RESULT_READERS, self._tls)
        _API.set(main_api)
        self._readers = asyncio.Semaphore(RESULT_READERS)
        self.todo: collections.deque[int] = collections.deque(range(len(self.rows)))
        workers = [asyncio.ensure_future(self._worker())
                   for _ in range(min(len(self.rows), self.concurrency + RESULT_READERS))]
        stopper = asyncio.ensure_future(self._stop.wait())
        everything: asyncio.Future[Any] = asyncio.gather(*workers)
        try:
            await asyncio.wait([stopper, everything],
                               return_when=asyncio.FIRST_COMPLETED)
            if self._stop.is_set():
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                await self._abort_all()
        finally:
            if everything.done() and not everything.cancelled():
                everything.exception()  # seen: the workers' own errors were handled
            stopper.cancel()
            self.elapsed = time.monotonic() - self.started_at
            self.ledger.close()
            await main_api.aclose()

    @property
    def api(self) -> AsyncApi:
        return _API.get()

    async def _worker(self) -> None:
        api = AsyncApi(self.client, 1, self._tls)
        _API.set(api)
        try:
            await self._work()
        finally:
            await api.aclose()

    async def _work(self) -> None:
        while self.todo:
            position = self.todo.popleft()
            try:
                await self._one(position)
            except ApifyMagicError as err:
                self._fail(position, _first_line(str(err)))
            except (KeyError, TypeError, ValueError) as err:  # an answer not shaped as Apify's
                self._fail(position, f"unexpected answer from {self.client.target.label}: "
                                     f"{type(err).__name__}: {err}")

    async def _one(self, position: int) -> None:
        row = self.rows[position]
        entry = self.ledger.entries.get(row.key)
        row.attempts = entry.attempt if entry is not None else 0
        if entry is not None and entry.event == "starting" and entry.run_id is None \
                and entry.marker:
            found = await self._find(entry.marker, entry.at, looks=1)
            if found is not None:
                row.run_id = str(found["id"])
                self.ledger.write(row.key, row.label, "started", attempt=entry.attempt,
                                  runId=row.run_id)
        else:
            row.run_id = entry.run_id if entry is not None else None
        if entry is not None and row.run_id is not None:
            if entry.event == "ended" and entry.status == "SUCCEEDED":
                async with self._readers:
                    if await self._reuse(position):
                        return
            elif entry.event in ("starting", "started") and await self._reattach(position):
                return
        await self._start_and_follow(position)

    async def _reuse(self, position: int) -> bool:
        """A run that succeeded before: read its result back from its storages."""
        row = self.rows[position]
        assert row.run_id is not None
        try:
            run = await self.api.run(row.run_id, 0, self.request.actor_id)
        except ApiError as err:
            if err.status == 404:  # gone (retention): run it again
                return False
            raise
        row.origin = "reused"
        self._show(row, run)
        self.merge.add(position, await self._result(run))
        row.status = "SUCCEEDED"
        return True

    async def _reattach(self, position: int) -> bool:
        """A run a previous kernel started: follow it if it goes on or succeeded."""
        row = self.rows[position]
        assert row.run_id is not None
        try:
            run = await self.api.run(row.run_id, 0, self.request.actor_id)
        except ApiError as err:
            if err.status == 404:
                return False
            raise
        if run.get("status") not in TERMINAL:
            row.origin = "reattached"
            async with self.gate.changed:
                self.gate.running += 1  # it holds memory like any other run of ours
            try:
                run = await self._follow(row, run)
            finally:
                await self.gate.release()
        if run.get("status") != "SUCCEEDED":
            return False  # failed or aborted: started again
        row.origin = "reattached" if row.origin == "reattached" else "reused"
        await self._succeeded(position, run)
        return True

    async def _start_and_follow(self, position: int) -> None:
        row = self.rows[position]
        for _ in range(self.request.retries + 1):
            if not await self._within_budget():
                row.status = "NOT-STARTED"
                row.error = "--budget-usd reached before this input started"
                self.budget_stopped = True
                return
            try:
                run = await self._start(row, position)
            except BaseException:
                await self.gate.release()
                raise
            if run is None:
                await self.gate.release()
                return
            try:
                run = await self._follow(row, run)
            finally:
                await self.gate.release()
            if run.get("status") == "SUCCEEDED":
                await self._succeeded(position, run)
                return
            row.error = await self._error_line(run)
            self.ledger.write(row.key, row.label, "ended", attempt=row.attempts,
                              runId=row.run_id, status=row.status, usd=row.usd,
                              error=row.error)
            self._finished_costs.append(row.usd or 0.0)

    async def _within_budget(self) -> bool:
        """Wait for a slot; False when the next run would pass --budget-usd: finished
        runs' cost, plus each running run's cap (its --max-total-charge-usd, else the
        dearest run so far), plus the new run's."""
        budget = self.request.budget_usd
        while True:
            if self.budget_stopped:
                return False
            await self.gate.acquire()
            if budget is None:
                return True
            cap = self.request.options.max_total_charge_usd or max(
                self._finished_costs or [0.0])
            finished = sum(self._finished_costs)
            running = self.gate.running - 1
            if finished + (running + 1) * cap <= budget:
                return True
            await self.gate.release()
            if running == 0:
                return False
            async with self.gate.changed:  # a running run may end cheaper than its cap
                await self.gate.changed.wait()

    async def _start(self, row: Row, position: int) -> dict[str, Any] | None:
        """POST the run once per outcome: "not now" waits and tries again, a lost answer
        is looked for by its marker. Holds a gate slot on return with a run."""
        row.attempts += 1
        marker = f"{row.key}.{row.attempts}"
        since = time.time()
        self.ledger.write(row.key, row.label, "starting", attempt=row.attempts,
                          marker=marker)
        row.status = "STARTING"
        job = self.request.jobs[position]
        user_agent = f"apify-magic/{__version__} (map {marker})"
        lost = 0
        tries = 0
        while True:
            outcome = await self.api.start(self.request.actor_id, self.request.options,
                                           job.payload, task=self.request.task,
                                           user_agent=user_agent, attempt=tries)
            tries += 1
            if outcome.run is not None:
                self.gate.eased()
                return self._started(row, outcome.run)
            if outcome.lost:
                self.lost_starts += 1
                found = await self._find(marker, since, looks=LOST_LOOKS)
                if found is not None:
                    return self._started(row, found)
                lost += 1
                if lost < LOST_STARTS:
                    continue
                self._fail(position, "the start's answer was lost and no run with its "
                                     f"marker {marker} was found")
                return None
            if outcome.wait_secs is not None:
                if outcome.status:
                    self.refusals[str(outcome.status)] += 1
                await self.gate.throttle(outcome.wait_secs)
                row.status = "QUEUED"
                await self.gate.acquire()
                row.status = "STARTING"
                continue
            assert outcome.error is not None
            self._fail(position, _first_line(str(outcome.error)))
            return None

    def _started(self, row: Row, run: dict[str, Any]) -> dict[str, Any]:
        row.run_id = str(run["id"])
        self.ledger.write(row.key, row.label, "started", attempt=row.attempts,
                          runId=row.run_id)
        self._show(row, run)
        return run

    async def _find(self, marker: str, since: float, looks: int) -> dict[str, Any] | None:
        """The run whose User-Agent carries `marker`, started after `since`."""
        after = (datetime.fromtimestamp(since, timezone.utc) - timedelta(seconds=60))
        since_iso = after.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        needle = f"(map {marker})"
        for look in range(looks):
            if look:
                await asyncio.sleep(LOST_LOOK_SECS)
            try:
                runs = await self.api.runs_since(self.request.actor_id, self.request.task,
                                                 since_iso)
            except ApifyMagicError:
                continue
            for run in runs:
                if needle in str((run.get("meta") or {}).get("userAgent") or ""):
                    return run
        return None

    async def _follow(self, row: Row, run: dict[str, Any]) -> dict[str, Any]:
        while run.get("status") not in TERMINAL:
            run = await self.api.run(str(run["id"]), self.request.poll_secs,
                                     self.request.actor_id)
            self._show(row, run)
        return run

    def _show(self, row: Row, run: dict[str, Any]) -> None:
        row.status = str(run.get("status"))
        row.started = run.get("startedAt") or row.started
        row.finished = run.get("finishedAt") or row.finished
        usd = run.get("usageTotalUsd")
        row.usd = float(usd) if isinstance(usd, (int, float)) else row.usd

    async def _succeeded(self, position: int, run: dict[str, Any]) -> None:
        row = self.rows[position]
        self.merge.add(position, await self._result(run))
        self._show(row, run)
        self._finished_costs.append(row.usd or 0.0)
        self.ledger.write(row.key, row.label, "ended", attempt=row.attempts,
                          runId=row.run_id, status="SUCCEEDED", usd=row.usd)

    async def _result(self, run: dict[str, Any]) -> Any:
        from apify_magic.datasets import frame_from_pages, parse_lines
        from apify_magic.result import convert

        run_id, actor = str(run["id"]), self.request.actor_id
        query = self.request.dataset
        if query is not None:
            pages = await self.api.items(str(run.get("defaultDatasetId")),
                                         query.params("jsonl"), actor, run_id, PAGE_ITEMS)
            if self.request.result_as in ("auto", "dataframe"):
                return frame_from_pages(pages)
            return parse_lines(pages)
        key = self.request.options.output_record_key or "OUTPUT"
        found = await self.api.record(str(run.get("defaultKeyValueStoreId")), key, actor,
                                      run_id)
        content, content_type = found if found is not None else (b"", "")
        return convert(content, content_type, self.request.result_as)

    async def _error_line(self, run: dict[str, Any]) -> str:
        message = str(run.get("statusMessage") or "")
        if not message:
            message = await self.api.log_tail(str(run["id"]), self.request.actor_id)
        return _first_line(message) or f"the run ended {run.get('status')}"

    def _fail(self, position: int, error: str) -> None:
        row = self.rows[position]
        row.status = "FAILED"
        row.error = error
        self.ledger.write(row.key, row.label, "ended", attempt=row.attempts,
                          runId=row.run_id, status="FAILED", error=error)

    async def _abort_all(self) -> None:
        """Abort every run of this map still going (and a start whose answer had not come
        yet, found by its marker), and record them ABORTED in the ledger."""
        async def abort(row: Row) -> None:
            if row.run_id is None:
                marker = f"{row.key}.{row.attempts}"
                found = await self._find(marker, time.time() - 120, looks=2)
                if found is None:
                    row.status = "QUEUED"
                    return
                row.run_id = str(found["id"])
            try:
                run = await self.api.abort(row.run_id, self.request.actor_id)
                if run.get("status") not in TERMINAL:  # ABORTING: see it end
                    run = await self.api.run(row.run_id, ABORT_WAIT_SECS,
                                             self.request.actor_id)
                self._show(row, run)
            except ApifyMagicError as err:
                row.error = f"abort failed: {_first_line(str(err))}"
            row.error = row.error or "aborted on interrupt"
            self.ledger.write(row.key, row.label, "ended", attempt=row.attempts,
                              runId=row.run_id, status=row.status, error=row.error)

        going = [row for row in self.rows if row.status in ("STARTING", "READY", "RUNNING")]
        await asyncio.gather(*(abort(row) for row in going), return_exceptions=True)


def _keys(client: ApifyClient, request: MapRequest) -> list[str]:
    """Each job's ledger key; the n-th copy of the same INPUT is a key of its own."""
    seen: collections.Counter[str] = collections.Counter()
    keys = []
    options = request.options.query_params()
    for job in request.jobs:
        base = input_key(client.target.base_url, request.actor_id, request.task, options,
                         job.payload.content_type, job.payload.content.decode("utf-8",
                                                                              "replace"))
        seen[base] += 1
        keys.append(base if seen[base] == 1 else input_key(base, seen[base]))
    return keys


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def limits_concurrency(limits: dict[str, Any], memory_mbytes: int, cap: int | None) -> int:
    """Runs that fit at once: the free part of the account's memory by the run's memory,
    and the free concurrent jobs, capped by --concurrency; at least 1."""
    most = limits.get("limits") or {}
    used = limits.get("current") or {}
    fits: list[int] = [cap or MAX_CONCURRENCY]
    max_gb, used_gb = most.get("maxActorMemoryGbytes"), used.get("actorMemoryGbytes", 0)
    if isinstance(max_gb, (int, float)) and isinstance(used_gb, (int, float)):
        fits.append(int((max_gb - used_gb) * 1024 // memory_mbytes))
    jobs, active = most.get("maxConcurrentActorJobs"), used.get("activeActorJobCount", 0)
    if isinstance(jobs, int) and isinstance(active, int):
        fits.append(jobs - active)
    return max(1, min(fits))


def run_memory(client: ApifyClient, request: MapRequest) -> int:
    """The memory each run takes: --memory, else the Actor's (task's) default."""
    if request.options.memory:
        return request.options.memory
    collection = "actor-tasks" if request.task else "actors"
    data = client.get((collection, request.actor_id), actor_id=request.actor_id).json()
    data = data.get("data") or {}
    options = data.get("defaultRunOptions") or data.get("options") or {}
    memory = options.get("memoryMbytes")
    return int(memory) if isinstance(memory, int) and memory > 0 else DEFAULT_MEMORY_MBYTES


def plan_concurrency(client: ApifyClient, request: MapRequest) -> tuple[int, int]:
    """(concurrency, run memory) from GET /v2/users/me/limits; checks the Actor exists."""
    memory = run_memory(client, request)
    try:
        limits = client.get(("users", "me", "limits")).json().get("data") or {}
    except ApiError as err:
        if err.status in (401, 404):
            raise
        limits = {}  # a token without account access: --concurrency (or 1) then
    return limits_concurrency(limits, memory, request.concurrency), memory


def start_thread(scheduler: Scheduler) -> threading.Thread:
    thread = threading.Thread(target=scheduler.run, name="apify-magic-map", daemon=True)
    thread.start()
    return thread
