"""`%apify_map`: one Actor over many inputs, within the account's limits, resumable.

    inputs     the elements of a list, dict or DataFrame, each rendered to one INPUT
    ledger     the JSON-lines file a map resumes from
    wire       the map's HTTP: one async connection pool
    scheduler  the asyncio loop that starts, follows and reads the runs
    merge      the pieces as runs finish, one DataFrame at the end, the per-run table
    view       progress in one line

The magic (magic.py) parses the line and builds a `MapRequest`; `run_map` runs it from
the kernel's main thread and returns a `MapOutcome`, which the magic binds, then raises.
Nothing here imports a frontend.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from apify_magic.errors import MapFailedError, RunInterruptedError
from apify_magic.fanout.scheduler import MapRequest

if TYPE_CHECKING:
    import pandas as pd

    from apify_magic.client import ApifyClient
    from apify_magic.fanout.view import MapProgress

__all__ = ["MapOutcome", "MapRequest", "run_map"]

FAILED_SHOWN = 10  # failed inputs an error lists


@dataclasses.dataclass
class MapOutcome:
    frame: pd.DataFrame
    error: MapFailedError | RunInterruptedError | None


def run_map(client: ApifyClient, request: MapRequest, progress: MapProgress) -> MapOutcome:
    """Run every input; the frame holds what succeeded, `error` says what did not."""
    from apify_magic.fanout.scheduler import Scheduler, plan_concurrency, start_thread

    concurrency, memory = plan_concurrency(client, request)
    scheduler = Scheduler(client, request, concurrency)
    start_thread(scheduler)
    try:
        while not scheduler.done.wait(0.25):
            progress.update(scheduler.snapshot(), scheduler.rows)
    except KeyboardInterrupt:
        scheduler.interrupt()
        while True:
            try:
                if scheduler.done.wait(0.25):
                    break
            except KeyboardInterrupt:  # the aborts are under way: let them end
                continue
    snapshot = scheduler.snapshot()
    progress.finished(snapshot, scheduler.rows)
    frame = _frame(scheduler, memory)
    return MapOutcome(frame, _error(scheduler, request))


def _frame(scheduler: Any, memory: int) -> pd.DataFrame:
    import pandas as pd

    from apify_magic.fanout.merge import MapReport

    request = scheduler.request
    name = "batch" if request.batch else "label"
    labels = [row.label for row in scheduler.rows]
    frame: pd.DataFrame = scheduler.merge.frame(labels, name)
    runs = pd.DataFrame.from_records(
        [{name: row.label, "run_id": row.run_id, "status": row.status,
          "started": row.started, "finished": row.finished, "usd": row.usd,
          "error": row.error, "attempts": row.attempts, "origin": row.origin,
          **({"members": list(row.members)} if request.batch else {})}
         for row in scheduler.rows])
    if len(runs):
        started = pd.to_datetime(runs["started"], utc=True, format="ISO8601")
        finished = pd.to_datetime(runs["finished"], utc=True, format="ISO8601")
        runs.insert(5, "duration_secs", (finished - started).dt.total_seconds())
        runs = runs.set_index(name)
    stats = {"concurrency": scheduler.concurrency, "memory_mbytes": memory,
             "refused_402": scheduler.refusals["402"],
             "refused_429": scheduler.refusals["429"], "lost_starts": scheduler.lost_starts,
             "elapsed_secs": round(scheduler.elapsed, 3)}
    frame.attrs["apify_map"] = MapReport(
        runs, actor_id=request.actor_id, ledger=str(request.ledger),
        concurrency=scheduler.concurrency, stats=stats)
    return frame


def _error(scheduler: Any, request: MapRequest) -> MapFailedError | RunInterruptedError | None:
    rows = scheduler.rows
    if scheduler.interrupted:
        aborted = [r for r in rows if r.error == "aborted on interrupt"]
        done = sum(r.status == "SUCCEEDED" for r in rows)
        return RunInterruptedError(
            f"Interrupted: {len(aborted)} runs of this map were aborted; the results of "
            f"{done} succeeded runs were bound",
            aborted=True, hint="run the cell again to go on: succeeded runs are reused "
                               f"(ledger {request.ledger})")
    failed = [r for r in rows if r.status not in ("SUCCEEDED", "NOT-STARTED")]
    skipped = [r for r in rows if r.status == "NOT-STARTED"]
    if not failed and not skipped:
        return None
    lines = [f"{r.label!r}: run {r.run_id or '(none)'} {r.status}: {r.error or ''}".rstrip()
             for r in failed[:FAILED_SHOWN]]
    if len(failed) > FAILED_SHOWN:
        lines.append(f"... and {len(failed) - FAILED_SHOWN} more")
    head = f"{len(failed)} of {len(rows)} runs of {request.actor_id} did not succeed"
    if skipped:
        head = (f"{head}; {len(skipped)} inputs were not started: --budget-usd "
                f"{request.budget_usd:g} reached" if failed else
                f"{len(skipped)} of {len(rows)} inputs were not started: --budget-usd "
                f"{request.budget_usd:g} reached")
    return MapFailedError("\n".join([head, *lines]),
                          failed=[(r.label, r.run_id, r.error) for r in failed],
                          hint="the results that exist are bound (per-run table: "
                               "df.attrs['apify_map'].runs); run the cell again to retry "
                               "only these")
