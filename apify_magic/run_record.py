"""What became of a run: the last one always at hand (`%apify_last`, `apify_magic.last_run()`).

`RunSession.run` fills a `RunRecord` for every run, successful or not, through a
`RecordingProgress` that sees the run's id and status as they come; a failed run's
error carries the same record as `error.run`. The run object itself (timings, cost,
storages) is fetched once, when first asked for, so a run pays for no extra request.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from apify_magic.options import RunOptions

if TYPE_CHECKING:
    from apify_magic.client import ApifyClient
    from apify_magic.progress import Progress

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"})
HISTORY_KEEP = 100


@dataclasses.dataclass(eq=False)
class RunRecord:
    """One run as this kernel saw it; `run` is the server's run object, fetched on demand."""

    actor_id: str
    options: RunOptions
    variable: str | None = None
    target: str = ""
    run_id: str | None = None
    status: str = "STARTING"
    status_message: str | None = None
    started_at: datetime = dataclasses.field(
        default_factory=lambda: datetime.now(timezone.utc))
    elapsed: float | None = None
    error: BaseException | None = None
    _client: ApifyClient | None = dataclasses.field(default=None, repr=False)
    _run: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    _since: float = dataclasses.field(default_factory=time.time, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    # -- filled in as the run goes ---------------------------------------------------

    def attach_client(self, client: ApifyClient) -> None:
        self._client = client
        self.target = client.target.label

    def ended(self, error: BaseException | None, elapsed: float) -> None:
        self.elapsed, self.error = elapsed, error
        if error is None:
            self.status = "SUCCEEDED"
        elif self.status not in TERMINAL:
            word = getattr(error, "status_word", None)
            aborted = getattr(error, "aborted", False)
            self.status = ("ABORTED" if aborted else word() if callable(word)
                           else "FAILED" if self.run_id else "NOT STARTED")

    @property
    def done(self) -> bool:
        return self.elapsed is not None

    # -- what the server knows -------------------------------------------------------

    @property
    def run(self) -> dict[str, Any]:
        """The run object (GET /v2/actor-runs/ID), fetched once the run has ended; {}
        when it cannot be had."""
        with self._lock:
            if self._run is None or self._run.get("status") not in TERMINAL:
                self._run = self._fetch() or self._run
            return dict(self._run or {})

    def _fetch(self) -> dict[str, Any] | None:
        client = self._client
        if client is None:
            return None
        try:
            if self.run_id is None and self.actor_id and self.done:
                # run-sync on the platform does not say its run's id: the Actor's newest
                # run is ours if it started after the request.
                last = client.last_run(self.actor_id)
                if last and _epoch(last.get("startedAt")) >= self._since - 5:
                    self.run_id = str(last.get("id"))
            return client.get_run(self.run_id) if self.run_id else None
        except Exception:  # a courtesy lookup: the record still says what it knows
            return None

    @property
    def cost_usd(self) -> float | None:
        value = self.run.get("usageTotalUsd")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def storages(self) -> dict[str, str]:
        run = self.run
        return {name: str(run[key]) for name, key in (
            ("dataset", "defaultDatasetId"), ("key_value_store", "defaultKeyValueStoreId"),
            ("request_queue", "defaultRequestQueueId")) if run.get(key)}

    @property
    def timings(self) -> dict[str, Any]:
        run = self.run
        found = {"started_at": run.get("startedAt") or self.started_at.isoformat(),
                 "finished_at": run.get("finishedAt")}
        secs = (run.get("stats") or {}).get("runTimeSecs")
        found["run_secs"] = secs if secs is not None else self.elapsed
        return found

    def log(self) -> str:
        """The run's whole log, as the server keeps it ("" when there is no run)."""
        if self._client is None or self.run_id is None:
            return ""
        return self._client.get_log(self.run_id, actor_id=self.actor_id)

    # -- views -----------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "actor": self.actor_id,
                "target": self.target, "options": _flags(self.options),
                **self.timings, "cost_usd": self.cost_usd, "storages": self.storages,
                "error": None if self.error is None else type(self.error).__name__}

    def __repr__(self) -> str:
        # Durations, not clock times: a saved notebook's output then stays comparable.
        lines = [f"run {self.run_id or '(no id)'}: {self.status}",
                 f"  actor: {self.actor_id}", f"  target: {self.target}",
                 f"  options: {_flags(self.options)}"]
        secs, cost = self.timings["run_secs"], self.cost_usd
        lines.append("  " + ", ".join(
            ([f"took {float(secs):.1f} s"] if secs is not None else [])
            + ([f"cost ${cost:.4f}"] if cost is not None else [])
            + ["clock times: .timings"]))
        if self.storages:
            lines.append("  storages: " + ", ".join(f"{k} {v}" for k, v in
                                                   self.storages.items()))
        if self.error is not None:
            lines.append(f"  error: {type(self.error).__name__}")
        if self.status_message:
            lines.append(f"  status message: {self.status_message}")
        lines.append(f"  log: %apify_last --log{'' if self.run_id else ' (no run)'}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _flags(options: RunOptions) -> str:
    params = options.query_params()
    params.pop("webhooks", None)  # long, and not what the record is for
    return " ".join(f"{k}={v}" for k, v in params.items()) or "the Actor's defaults"


def _epoch(value: object) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class RecordingProgress:
    """A Progress that notes the run's id and status in a record, then passes every call
    on to the progress it wraps."""

    def __init__(self, inner: Progress, record: RunRecord) -> None:
        self.inner = inner
        self.record = record
        self.wants_log = bool(getattr(inner, "wants_log", False))

    def started(self, actor_id: str, target_label: str, timeout: float | None) -> None:
        self.record.status = "RUNNING"
        self.inner.started(actor_id, target_label, timeout)

    def tick(self, elapsed: float) -> None:
        self.inner.tick(elapsed)

    def status(self, status: str, message: str | None) -> None:
        if status:
            self.record.status = status
        self.record.status_message = message or self.record.status_message
        self.inner.status(status, message)

    def identified(self, run_id: str) -> None:
        self.record.run_id = run_id
        self.inner.identified(run_id)

    def log(self, text: str) -> None:
        self.inner.log(text)

    def finished(self, value: Any, elapsed: float) -> None:
        self.inner.finished(value, elapsed)

    def failed(self, error: BaseException, elapsed: float) -> None:
        self.inner.failed(error, elapsed)


_history: list[RunRecord] = []
_history_lock = threading.Lock()


def remember(record: RunRecord) -> None:
    """Note an ended run as the last one."""
    with _history_lock:
        if record in _history:
            _history.remove(record)
        _history.append(record)
        del _history[:-HISTORY_KEEP]


def last_run() -> RunRecord | None:
    """The run that ended last in this kernel, successful or not."""
    with _history_lock:
        return _history[-1] if _history else None


def history() -> list[RunRecord]:
    """The runs of this kernel, oldest first (the newest hundred)."""
    with _history_lock:
        return list(_history)
