"""Actor runs as real processes: start, limits, memory watch, timeouts, restarts, abort.

Each run's process starts in its own session (`start_new_session=True`), and every run
process carries the run's id and the runtime's marker in its environment, so everything
an Actor starts, also what left the session, is found in /proc (`procs.py`). One thread
per run blocks in `wait()` (the end is noticed at once, which keeps a short run's overhead
small); one monitor thread for all runs scans /proc every `MONITOR_INTERVAL_SECS` for the
memory of each run's processes (proportional set size, all of them) and enforces
timeouts; a run above half its memory limit is looked at every `HOT_INTERVAL_SECS`, so
one that grows fast is stopped near its limit. When a run ends, its session is killed at
once, and the scans of the next `SWEEP_FOR_SECS` kill any process of the run that left
it. If the runtime's process dies without stopping, its reaper
(`reaper.py`) kills its runs' processes; what even that missed is killed at the next
runtime's start (`procs.kill_orphans`).

Warm starts (`warm.py`): a Python Actor's process is forked from a warm parent that has
imported `apify` already, when one can be; it starts its own session all the same, so
everything below holds for it too. `meta.startMode` of a run says `warm` or `cold`.

Stopping a run: SIGTERM to the process group, SIGKILL after `kill_grace_secs`
(timeouts and graceful aborts); SIGKILL at once for a plain abort and for a run above its
memory limit. Pruning: finished runs beyond the newest `keep_runs` are deleted with
their folders.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from apify_magic.local import outputs, procs, reaper
from apify_magic.local.done import Done
from apify_magic.local.errors import ApiError
from apify_magic.local.logpipe import LogPipe, append_line
from apify_magic.local.registry import USERNAME, ActorDef, new_id
from apify_magic.local.storage import RunFolder, remove_tree
from apify_magic.local.warm import WarmPool

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"})
MAX_RESTARTS = 3
MAX_METAMORPHS = 10  # the platform's limit per run
# One compute unit is 1 GB of memory for one hour; the price of the platform's paid plans.
COMPUTE_UNIT_USD = 0.3
MONITOR_INTERVAL_SECS = 0.2
HOT_INTERVAL_SECS = 0.01
HOT_FRACTION = 0.5
SWEEP_FOR_SECS = 2.0  # a process of an ended run forked late is still found this long

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_STATUS = re.compile(r"\[(Terminal status message|Status message)\]:\s?(.*)")
# Variables of the kernel's own Apify setup never reach a local run: not the user's
# APIFY_TOKEN (a folder cloned to try offline must not get the key to the account), not
# APIFY_IS_AT_HOME or API URLs that would send the SDK to the platform. A run gets a
# token of the runtime's own instead, as the platform gives runs theirs.
_INHERITED_PREFIXES_DROPPED = ("ACTOR_", "APIFY_", "CRAWLEE_")


class ActorProcess(Protocol):
    """A run's process: a `subprocess.Popen` (cold) or a `warm.WarmProcess` (forked)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def wait(self) -> int: ...


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class RunOptions:
    build: str
    timeout_secs: float  # 0: no timeout
    memory_mbytes: int
    max_items: int | None = None
    max_total_charge_usd: float | None = None
    restart_on_error: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "build": self.build,
            # The client's model takes whole seconds only.
            "timeoutSecs": math.ceil(self.timeout_secs),
            "memoryMbytes": self.memory_mbytes,
            "diskMbytes": 2 * self.memory_mbytes,
        }
        if self.max_items is not None:
            data["maxItems"] = self.max_items
        if self.max_total_charge_usd is not None:
            data["maxTotalChargeUsd"] = self.max_total_charge_usd
        return data


class Run:
    """One run: its state, its process and its folder."""

    def __init__(self, run_id: str, actor: ActorDef | None, options: RunOptions,
                 folder: RunFolder, *, origin: str = "API", user_agent: str = "",
                 webhooks: list[dict[str, Any]] | None = None) -> None:
        self.id = run_id
        self.actor = actor
        self.options = options
        self.folder = folder
        self.origin = origin
        self.user_agent = user_agent
        self.webhooks = webhooks or []
        self.act_id = actor.id if actor else ""
        self.task_id: str | None = None
        self.build_id = actor.build_id if actor else ""
        self.build_number = actor.build_number if actor else None
        self.kvs_id = new_id()
        self.dataset_id = new_id()
        self.queue_id = new_id()
        self.started_at = datetime.now(timezone.utc)
        self.finished_at: datetime | None = None
        self.status = "READY"
        self.status_message: str | None = None
        self.status_message_terminal = False
        self.exit_code: int | None = None
        self.restart_count = 0
        self.reboot_count = 0
        self.resurrect_count = 0
        self.input_key = "INPUT"
        self.metamorphs: list[dict[str, Any]] = []
        self.charged_events: dict[str, int] = {}
        self.charge_keys: set[str] = set()
        self.general_access = "FOLLOW_USER_SETTING"
        self.web_server_port = _free_port()
        self.api_url = ""  # the runtime's URL, for the output object's links
        self.at_home = False
        # The run's own API token: accepted while the run is not finished.
        self.token = f"apify_run_{secrets.token_urlsafe(24)}"
        self.input_body_len = 0
        self.mem_max_bytes = 0
        self.mem_current_bytes = 0
        self.lock = threading.RLock()
        self.done = Done()  # awaited by run-sync on the event loop, waited on by threads
        self.proc: ActorProcess | None = None
        self.start_mode: str | None = None  # warm | cold
        self.log_pipe: LogPipe | None = None  # the running process's stdout and stderr
        self.spawn_count = 0  # processes started (restarts, metamorphs, resurrections)
        self.spawn: tuple[str, int] = (run_id, -1)  # the current process's (procs.Spawn)
        # timeout | abort | memory | stop end the run; reboot | metamorph start it again
        self.kill_reason: str | None = None
        self.kill_at: float | None = None
        self.deadline: float | None = (
            time.monotonic() + options.timeout_secs if options.timeout_secs > 0 else None)
        self._log_offset = 0
        self._saved: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Run({self.id!r}, {self.actor.name if self.actor else '?'}, {self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def wait(self, timeout: float | None) -> bool:
        return self.done.wait(timeout)

    def refresh_status_message(self, final: bool = False) -> None:
        """Pick up `[Status message]: ...` lines the Actor logged since the last look.

        The SDK logs status messages off the platform instead of sending them, with ANSI
        colours even into a file; only complete lines are read until the run ends.
        """
        try:
            with open(self.folder.log_path, "rb") as f:
                f.seek(self._log_offset)
                chunk = f.read()
        except OSError:
            return
        if not final:
            end = chunk.rfind(b"\n") + 1
            chunk = chunk[:end]
        if not chunk:
            return
        self._log_offset += len(chunk)
        text = _ANSI.sub("", chunk.decode("utf-8", "replace"))
        for line in text.splitlines():
            match = _STATUS.search(line)
            if match:
                self.status_message = match.group(2).strip()
                self.status_message_terminal = match.group(1).startswith("Terminal")

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            if self._saved is not None:
                return self._saved
            if self.proc is not None and not self.is_terminal:
                self.refresh_status_message()
            end = self.finished_at or datetime.now(timezone.utc)
            duration = max(0.0, (end - self.started_at).total_seconds())
            memory_gb = self.options.memory_mbytes / 1024
            compute_units = memory_gb * duration / 3600
            data: dict[str, Any] = {
                "id": self.id,
                "actId": self.act_id,
                "userId": USERNAME,
                "actorTaskId": self.task_id,
                "startedAt": iso(self.started_at),
                "finishedAt": iso(self.finished_at),
                "status": self.status,
                "statusMessage": self.status_message,
                "isStatusMessageTerminal": self.status_message_terminal,
                "meta": {"origin": self.origin, "userAgent": self.user_agent,
                         "startMode": self.start_mode},
                "stats": {
                    "inputBodyLen": self.input_body_len,
                    "migrationCount": 0,
                    "rebootCount": self.reboot_count,
                    "restartCount": self.restart_count,
                    "resurrectCount": self.resurrect_count,
                    "memMaxBytes": self.mem_max_bytes,
                    "memCurrentBytes": self.mem_current_bytes if not self.is_terminal else 0,
                    "durationMillis": int(duration * 1000),
                    "runTimeSecs": round(duration, 3),
                    "computeUnits": round(compute_units, 6),
                },
                "options": self.options.to_dict(),
                "buildId": self.build_id,
                "exitCode": self.exit_code,
                "generalAccess": self.general_access,
                "defaultKeyValueStoreId": self.kvs_id,
                "defaultDatasetId": self.dataset_id,
                "defaultRequestQueueId": self.queue_id,
                "storageIds": {"datasets": {"default": self.dataset_id},
                               "keyValueStores": {"default": self.kvs_id},
                               "requestQueues": {"default": self.queue_id}},
                "buildNumber": self.build_number,
                # An Actor's web server listens on ACTOR_WEB_SERVER_PORT, reachable here.
                "containerUrl": f"http://127.0.0.1:{self.web_server_port}",
                "isContainerServerReady": False,
                "chargedEventCounts": dict(self.charged_events),
                "metamorphs": list(self.metamorphs),
                "usage": {"ACTOR_COMPUTE_UNITS": round(compute_units, 6)},
                "usageUsd": {"ACTOR_COMPUTE_UNITS": round(compute_units
                                                          * COMPUTE_UNIT_USD, 6)},
                "usageTotalUsd": round(compute_units * COMPUTE_UNIT_USD
                                       + self.charged_usd(), 6),
            }
            pricing = self.pricing_info()
            if pricing is not None:
                data["pricingInfo"] = pricing
            if self.actor is not None and self.actor.output_schema is not None:
                data["output"] = outputs.resolve(self.actor.output_schema, data, self.api_url)
            return data

    def pricing_info(self) -> dict[str, Any] | None:
        """The Actor's prices as a run carries them (`pricingInfo`), if it declares any."""
        if self.actor is None:
            return None
        return self.actor.pricing_at(iso(self.started_at))

    def charged_usd(self) -> float:
        """What the charged events cost, never beyond maxTotalChargeUsd (the platform's cap:
        charges past it are not paid)."""
        prices = self.actor.event_prices() if self.actor is not None else {}
        total = sum(prices.get(name, 0.0) * count for name, count in self.charged_events.items())
        cap = self.options.max_total_charge_usd
        return min(total, cap) if cap is not None else total

    @classmethod
    def from_saved(cls, data: dict[str, Any], folder: RunFolder) -> Run:
        """A finished run of an earlier session, read back from its run.json."""
        options = data.get("options") or {}
        run = cls(str(data["id"]), None, RunOptions(
            build=str(options.get("build", "latest")),
            timeout_secs=float(options.get("timeoutSecs", 0)),
            memory_mbytes=int(options.get("memoryMbytes", 128))), folder)
        if data.get("status") not in TERMINAL:
            # The runtime went away while the run was going: its process went with it.
            data = {**data, "status": "ABORTED", "finishedAt": iso(datetime.now(timezone.utc)),
                    "statusMessage": "The local runtime stopped before the run ended"}
            folder.save_run(data)
        run.status = str(data["status"])
        run.task_id = data.get("actorTaskId")  # a task's runs stay its runs after a restart
        run.kvs_id = str(data.get("defaultKeyValueStoreId", run.kvs_id))
        run.dataset_id = str(data.get("defaultDatasetId", run.dataset_id))
        run.queue_id = str(data.get("defaultRequestQueueId", run.queue_id))
        run.started_at = parse_iso(data.get("startedAt")) or run.started_at
        run.finished_at = parse_iso(data.get("finishedAt")) or run.started_at
        run._saved = data
        run.done.set()
        return run


def _environment(run: Run, actor: ActorDef, extra: dict[str, str], marker: str
                 ) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_INHERITED_PREFIXES_DROPPED)}
    storage = str(run.folder.storage)
    options = run.options
    env.update({
        "ACTOR_ID": actor.id,
        "ACTOR_RUN_ID": run.id,
        "ACTOR_BUILD_ID": actor.build_id,
        "ACTOR_BUILD_NUMBER": actor.build_number,
        "ACTOR_BUILD_TAGS": actor.build_tag,
        "ACTOR_DEFAULT_DATASET_ID": run.dataset_id,
        "ACTOR_DEFAULT_KEY_VALUE_STORE_ID": run.kvs_id,
        "ACTOR_DEFAULT_REQUEST_QUEUE_ID": run.queue_id,
        "ACTOR_INPUT_KEY": run.input_key,
        "ACTOR_WEB_SERVER_PORT": str(run.web_server_port),
        "ACTOR_WEB_SERVER_URL": f"http://127.0.0.1:{run.web_server_port}",
        "ACTOR_MEMORY_MBYTES": str(options.memory_mbytes),
        "ACTOR_RESTART_ON_ERROR": "1" if options.restart_on_error else "0",
        "ACTOR_STARTED_AT": iso(run.started_at) or "",
        "ACTOR_FULL_NAME": f"{USERNAME}/{actor.name}",
        "APIFY_USER_ID": USERNAME,
        "APIFY_TOKEN": run.token,
        # The run's API is the runtime's: an Actor that calls another stays here.
        "APIFY_API_BASE_URL": run.api_url,
        "APIFY_API_PUBLIC_BASE_URL": run.api_url,
        "APIFY_LOCAL_STORAGE_DIR": storage,
        "CRAWLEE_STORAGE_DIR": storage,
        "PYTHONUNBUFFERED": "1",
        # Finds the run's processes wherever they go (procs.py), and after a crash.
        procs.MARKER: marker,
    })
    pricing = run.pricing_info()
    if pricing is not None:  # the SDKs read prices and counts from these, as on the platform
        env["APIFY_ACTOR_PRICING_INFO"] = json.dumps(pricing)
        env["APIFY_CHARGED_ACTOR_EVENT_COUNTS"] = json.dumps(run.charged_events)
    if run.at_home:
        # As on the platform: the SDK keeps input, items, records and status through the
        # API instead of files, so SDK Actors in every language behave alike.
        env["APIFY_IS_AT_HOME"] = "1"
    if options.max_items is not None:
        env["ACTOR_MAX_PAID_DATASET_ITEMS"] = str(options.max_items)
    if options.max_total_charge_usd is not None:
        env["ACTOR_MAX_TOTAL_CHARGE_USD"] = str(options.max_total_charge_usd)
    if options.timeout_secs > 0:
        env["ACTOR_TIMEOUT_AT"] = iso(
            run.started_at + timedelta(seconds=options.timeout_secs)) or ""
    env.update(actor.environment)
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class Runner:
    """All runs of one runtime: starting, watching, ending and finding them."""

    def __init__(self, runs_dir: Path, *, memory_budget_mbytes: int = 8192,
                 kill_grace_secs: float = 5.0, keep_runs: int = 1000,
                 on_event: Callable[[Run, str], None] | None = None,
                 warm_starts: bool = True, sdk_at_home: bool = True) -> None:
        self.runs_dir = runs_dir
        self.memory_budget_mbytes = memory_budget_mbytes
        self.kill_grace_secs = kill_grace_secs
        self.keep_runs = keep_runs
        self.on_event = on_event
        self.runs: dict[str, Run] = {}
        self.by_store: dict[str, Run] = {}
        self._active: dict[str, Run] = {}
        # Session id -> the run's process that leads it, while the session may hold any.
        self._sessions: dict[int, procs.Spawn] = {}
        # A run's process that ended -> until when what it left is killed.
        self._ended: dict[procs.Spawn, float] = {}
        self._members: dict[procs.Spawn, list[procs.Proc]] = {}  # of active runs, last scan
        self.marker = procs.new_marker()
        self._table = procs.Table(self.marker)
        reaper.ensure_started(procs.process_id())
        procs.kill_orphans()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._waiters: list[threading.Thread] = []
        self.warm = WarmPool() if warm_starts else None
        self.api_url = ""  # set by the runtime once it knows its address
        self.sdk_at_home = sdk_at_home
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self._load_saved()
        self._monitor = threading.Thread(target=self._monitor_loop, name="apify-local-monitor",
                                         daemon=True)
        self._monitor.start()

    # -- finding ---------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise ApiError(404, "record-not-found", "Actor run was not found")
        return run

    def accepts_run_token(self, token: str) -> bool:
        """Whether `token` is the token of a run that has not finished."""
        with self._lock:
            active = list(self._active.values())
        return any(hmac.compare_digest(token.encode(), run.token.encode()) for run in active)

    def for_store(self, store_id: str) -> Run:
        run = self.by_store.get(store_id)
        if run is None:
            raise ApiError(404, "record-not-found", "Storage was not found")
        return run

    def _register(self, run: Run) -> None:
        self.runs[run.id] = run
        for store in (run.kvs_id, run.dataset_id, run.queue_id):
            self.by_store[store] = run

    def _load_saved(self) -> None:
        for entry in sorted(os.scandir(self.runs_dir), key=lambda e: e.name):
            folder = RunFolder(Path(entry.path))
            try:
                data = json.loads(folder.run_path.read_text())
                self._register(Run.from_saved(data, folder))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        self._prune()

    # -- starting --------------------------------------------------------------------

    def start(self, actor: ActorDef, options: RunOptions, input_body: bytes,
              input_type: str, *, webhooks: list[dict[str, Any]] | None = None,
              origin: str = "API", user_agent: str = "", task_id: str | None = None) -> Run:
        """Start a run, or raise 402 when its memory would pass the budget."""
        actor.command()  # an Actor that cannot start is refused before anything is made
        run_id = new_id()
        run = Run(run_id, actor, options, RunFolder(self.runs_dir / run_id), origin=origin,
                  user_agent=user_agent, webhooks=webhooks)
        run.task_id = task_id
        run.api_url = self.api_url
        run.at_home = self.sdk_at_home
        run.input_body_len = len(input_body)
        with self._lock:
            self._admit(run)
            self._register(run)
        try:
            run.folder.create()
            run.folder.write_record("INPUT", input_body, input_type)
            run.folder.save_run(run.to_dict())
            with run.lock:
                self._spawn(run)
        except OSError as err:
            with run.lock:
                run.status_message = f"The Actor could not be started: {err}"
                run.status = "FAILED"
            self._finish(run)
            return run
        self._emit(run, "ACTOR.RUN.CREATED")
        self._follow(run)
        return run

    def _follow(self, run: Run) -> None:
        """One thread that waits for the run's process and ends (or restarts) the run."""
        waiter = threading.Thread(target=self._wait_loop, args=(run,),
                                  name=f"apify-local-run-{run.id}", daemon=True)
        with self._lock:
            self._waiters = [w for w in self._waiters if w.is_alive()]
            self._waiters.append(waiter)
        waiter.start()
        self._wake.set()

    def _admit(self, run: Run) -> None:
        """Count the run against the memory budget (402 beyond it); under `_lock`."""
        if self._stopping:
            raise ApiError(503, "runtime-stopping", "The local runtime is stopping")
        used = self.memory_in_use_mbytes()
        if used + run.options.memory_mbytes > self.memory_budget_mbytes:
            raise ApiError(
                402, "actor-memory-limit-exceeded",
                "By launching this job you will exceed the memory limit of "
                f"{self.memory_budget_mbytes}MB for all your Actor runs and builds "
                f"(currently used: {used}MB, requested: {run.options.memory_mbytes}MB)")
        self._active[run.id] = run

    def memory_in_use_mbytes(self) -> int:
        return sum(r.options.memory_mbytes for r in self._active.values())

    # -- changing a run --------------------------------------------------------------

    def reboot(self, run: Run) -> None:
        """Restart a running run's process on the same storages (400 unless running)."""
        with run.lock:
            self._require_running(run, "rebooted")
            run.reboot_count += 1
            run.kill_reason = "reboot"
            _signal_group(self._pid(run), signal.SIGKILL)

    def metamorph(self, run: Run, target: ActorDef, input_body: bytes, input_type: str,
                  build_id: str) -> None:
        """Replace the run's process with `target`'s, on the same storages, with a new INPUT
        record `INPUT-METAMORPH-<n>` that the new process is told of (`ACTOR_INPUT_KEY`)."""
        target.command()
        with run.lock:
            self._require_running(run, "metamorphed")
            if len(run.metamorphs) >= MAX_METAMORPHS:
                raise ApiError(400, "invalid-request",
                               f"A run can be metamorphed at most {MAX_METAMORPHS} times")
            key = f"INPUT-METAMORPH-{len(run.metamorphs) + 1}"
            run.folder.write_record(key, input_body, input_type)
            run.metamorphs.append({"createdAt": iso(datetime.now(timezone.utc)),
                                   "actorId": target.id, "buildId": build_id,
                                   "inputKey": key})
            run.actor, run.input_key = target, key
            run.kill_reason = "metamorph"
            _signal_group(self._pid(run), signal.SIGKILL)

    def resurrect(self, run: Run, actor: ActorDef, options: RunOptions) -> None:
        """Start a finished run again on its storages with new options (400 if running)."""
        with run.lock:
            # Terminal but not yet done: the wait loop is still finishing it.
            if not run.is_terminal or not run.done.is_set():
                raise ApiError(400, "invalid-request",
                               f"The run {run.id} is {run.status}: only a finished run can be "
                               "resurrected")
            with self._lock:
                run.options = options
                self._admit(run)
            run.actor, run._saved = actor, None
            run.resurrect_count += 1
            run.status, run.finished_at, run.exit_code = "READY", None, None
            run.status_message, run.status_message_terminal = None, False
            run.kill_reason = run.kill_at = None
            run.deadline = (time.monotonic() + options.timeout_secs
                            if options.timeout_secs > 0 else None)
            run.done.clear()
            try:
                self._spawn(run)
            except (OSError, ApiError):
                with self._lock:
                    self._active.pop(run.id, None)
                run.status = "FAILED"
                run.done.set()
                raise
        self._follow(run)

    def delete(self, run: Run) -> None:
        """Forget a finished run and delete its folder (400 while it runs)."""
        if not run.is_terminal:
            raise ApiError(400, "invalid-request",
                           f"The run {run.id} is {run.status}: abort it before deleting it")
        with self._lock:
            self.runs.pop(run.id, None)
            for store in (run.kvs_id, run.dataset_id, run.queue_id):
                self.by_store.pop(store, None)
        remove_tree(run.folder.root)

    @staticmethod
    def _require_running(run: Run, what: str) -> None:
        if run.status != "RUNNING" or run.proc is None or run.kill_reason is not None:
            raise ApiError(400, "invalid-request",
                           f"The run {run.id} is {run.status}: only a running run can be "
                           f"{what}")

    @staticmethod
    def _pid(run: Run) -> int:
        assert run.proc is not None
        return run.proc.pid

    def _spawn(self, run: Run) -> None:
        assert run.actor is not None
        argv, extra_env = run.actor.command()
        spawn = (run.id, run.spawn_count)
        env = _environment(run, run.actor, extra_env, f"{self.marker}/{run.spawn_count}")
        pipe = LogPipe(run.folder.log_path, f"process-{run.spawn_count}")
        run.spawn_count += 1
        try:
            warm = None
            if self.warm is not None:
                warm = self.warm.spawn(argv, env, run.actor.folder, pipe.path)
            if warm is not None:
                run.proc, run.start_mode = warm, "warm"
            else:
                run.proc = subprocess.Popen(
                    argv, cwd=run.actor.folder, env=env, stdin=subprocess.DEVNULL,
                    stdout=pipe.write_fd, stderr=subprocess.STDOUT, start_new_session=True)
                run.start_mode = "cold"
        except BaseException:
            pipe.close()
            raise
        run.log_pipe = pipe
        with self._lock:
            self._sessions[run.proc.pid] = spawn
        run.spawn = spawn
        run.status = "RUNNING"

    # -- ending ----------------------------------------------------------------------

    def _wait_loop(self, run: Run) -> None:
        while True:
            proc = run.proc
            assert proc is not None
            code = proc.wait()
            # Whatever the Actor left running ends with it: its group now, and whatever
            # left the group or the session at the monitor's next scan.
            if not _signal_group(proc.pid, signal.SIGKILL):
                with self._lock:
                    self._sessions.pop(proc.pid, None)
            with self._lock:
                self._ended[run.spawn] = time.monotonic() + SWEEP_FOR_SECS
            if run.log_pipe is not None:  # the log is whole before the run ends or restarts
                run.log_pipe.close()
                run.log_pipe = None
            with run.lock:
                run.exit_code = code if code >= 0 else 128 - code
                if run.kill_reason in ("reboot", "metamorph") and not self._stopping:
                    # The same run goes on in a new process (a metamorph: of another Actor).
                    run.kill_reason = None
                    try:
                        self._spawn(run)
                        continue
                    except (OSError, ApiError) as err:
                        run.status_message = f"The Actor could not be started again: {err}"
                        run.kill_reason = None
                status = self._outcome(run, code)
                if (status == "FAILED" and run.options.restart_on_error
                        and run.restart_count < MAX_RESTARTS and not self._stopping):
                    run.restart_count += 1
                    run.kill_reason = None
                    append_line(run.folder.log_path,
                                f"[apify-magic-local] The run failed (exit code "
                                f"{run.exit_code}); restart {run.restart_count} of "
                                f"{MAX_RESTARTS}")
                    try:
                        self._spawn(run)
                        continue
                    except (OSError, ApiError) as err:
                        run.status_message = f"The Actor could not be restarted: {err}"
                run.status = status
            self._finish(run)
            return

    def _outcome(self, run: Run, code: int) -> str:
        run.refresh_status_message(final=True)
        reason = run.kill_reason
        if reason == "timeout":
            run.status_message = (f"The run timed out after {run.options.timeout_secs:g} s "
                                  "and was stopped")
            run.status_message_terminal = True
            return "TIMED-OUT"
        if reason in ("abort", "stop"):
            run.status_message = ("The local runtime stopped" if reason == "stop"
                                  else "The run was aborted")
            run.status_message_terminal = True
            return "ABORTED"
        if reason == "memory":
            return "FAILED"  # the status message was set when it was killed
        return "SUCCEEDED" if code == 0 else "FAILED"

    def _finish(self, run: Run) -> None:
        with run.lock:
            run.finished_at = datetime.now(timezone.utc)
            run.mem_current_bytes = 0
            data = run.to_dict()
            # Once `done` is set the run can be resurrected (READY again) at any moment.
            status = run.status
        with contextlib.suppress(OSError):
            run.folder.save_run(data)
        with self._lock:
            self._active.pop(run.id, None)
        run.done.set()
        event = {"SUCCEEDED": "ACTOR.RUN.SUCCEEDED", "FAILED": "ACTOR.RUN.FAILED",
                 "TIMED-OUT": "ACTOR.RUN.TIMED_OUT", "ABORTED": "ACTOR.RUN.ABORTED"}
        self._emit(run, event[status])
        self._prune()

    def _emit(self, run: Run, event: str) -> None:
        # Every run's events: saved webhooks may wait for runs that have no ad-hoc ones.
        if self.on_event is not None:
            self.on_event(run, event)

    def _prune(self) -> None:
        with self._lock:
            finished = [r for r in self.runs.values() if r.is_terminal and r.done.is_set()]
            if len(finished) <= self.keep_runs:
                return
            finished.sort(key=lambda r: r.finished_at or r.started_at)
            doomed = finished[:len(finished) - self.keep_runs]
            for run in doomed:
                self.runs.pop(run.id, None)
                for store in (run.kvs_id, run.dataset_id, run.queue_id):
                    self.by_store.pop(store, None)
        for run in doomed:
            remove_tree(run.folder.root)

    def abort(self, run: Run, gracefully: bool = False) -> None:
        with run.lock:
            if run.is_terminal or run.proc is None:
                return
            if run.kill_reason in ("reboot", "metamorph"):
                # Its process is being replaced: the replacement is not started.
                run.kill_reason = "abort"
                run.status = "ABORTING"
                return
            if run.kill_reason is not None:
                return
            run.kill_reason = "abort"
            run.status = "ABORTING"
            if gracefully:
                _signal_group(run.proc.pid, signal.SIGTERM)
                run.kill_at = time.monotonic() + self.kill_grace_secs
            else:
                _signal_group(run.proc.pid, signal.SIGKILL)

    # -- watching --------------------------------------------------------------------

    def _monitor_loop(self) -> None:
        next_scan = 0.0
        hot: list[Run] = []
        while not self._stopping:
            now = time.monotonic()
            with self._lock:
                active = [r for r in self._active.values() if r.proc is not None]
                over = {k for k, t in self._ended.items() if t <= now}
                if over:  # swept long enough: their sessions are empty
                    self._ended = {k: t for k, t in self._ended.items() if k not in over}
                    self._sessions = {sid: k for sid, k in self._sessions.items()
                                      if k not in over}
                ended = list(self._ended)
                sessions = dict(self._sessions)
            if not active and not ended:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            if now >= next_scan:
                try:
                    members = self._table.members(sessions, [r.spawn for r in active] + ended)
                except OSError:
                    members = {}
                for spawn in ended:  # its process ended: what it left ends too
                    procs.kill(members.get(spawn, []))
                self._members = {r.spawn: members.get(r.spawn, []) for r in active}
                hot = [r for r in active
                       if self._check(r, self._members.get(r.spawn, []), time.monotonic())]
                next_scan = now + MONITOR_INTERVAL_SECS
            else:  # between scans, only the memory of runs near their limit
                hot = [r for r in hot
                       if self._check(r, self._members.get(r.spawn, []), time.monotonic())]
            wait = HOT_INTERVAL_SECS if hot else max(0.0, next_scan - time.monotonic())
            if ended and not hot:
                wait = min(wait, MONITOR_INTERVAL_SECS)
            # Not woken by runs starting or ending (one scan each would cost a /proc scan
            # per run under load): what an ended run left is swept at the next scan, its
            # session killed at once already. `_wake` only ends the idle wait above.
            time.sleep(wait)

    def _check(self, run: Run, members: list[procs.Proc], now: float) -> bool:
        """Enforce memory and timeout; whether the run is near its memory limit."""
        with run.lock:
            proc = run.proc
            if proc is None or run.is_terminal or proc.returncode is not None:
                return False
            used = procs.memory_of(members)
            run.mem_current_bytes = used
            run.mem_max_bytes = max(run.mem_max_bytes, used)
            limit = run.options.memory_mbytes * 1024 * 1024
            if used > limit and run.kill_reason is None:
                run.kill_reason = "memory"
                run.status_message = (
                    f"The Actor used {used / 2**20:.0f} MB of memory, above the run's limit "
                    f"of {run.options.memory_mbytes} MB, and was killed")
                run.status_message_terminal = True
                _signal_group(proc.pid, signal.SIGKILL)
                procs.kill(members)
                return False
            if run.deadline is not None and now >= run.deadline and run.kill_reason is None:
                run.kill_reason = "timeout"
                run.status = "TIMING-OUT"
                _signal_group(proc.pid, signal.SIGTERM)
                run.kill_at = now + self.kill_grace_secs
            if run.kill_at is not None and now >= run.kill_at:
                _signal_group(proc.pid, signal.SIGKILL)
                procs.kill(members)
                run.kill_at = None
            return used > limit * HOT_FRACTION

    # -- stopping --------------------------------------------------------------------

    def active_runs(self) -> list[Run]:
        with self._lock:
            return list(self._active.values())

    def stop(self, timeout: float = 5.0) -> None:
        """Kill every Actor process and end every run; nothing is left behind."""
        with self._lock:
            self._stopping = True
            active = list(self._active.values())
            waiters = list(self._waiters)
        self._wake.set()
        for run in active:
            with run.lock:
                if run.kill_reason is None:
                    run.kill_reason = "stop"
                if run.proc is not None:
                    _signal_group(run.proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        for waiter in waiters:
            waiter.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            sessions = dict(self._sessions)
            self._sessions.clear()
            spawns = [(r.id, n) for r in self.runs.values() for n in range(r.spawn_count)]
        # Processes that left their group or their session.
        for _ in range(3):  # one forked while the last round ran is found by the next
            members = self._table.members(sessions, spawns)
            if not members:
                break
            for found in members.values():
                procs.kill(found)
        if self.warm is not None:
            self.warm.close()
        self._monitor.join(1.0)
