"""The run layer under every frontend: the run request, the client cache, and the run paths.

`%%apify_run` (magic.py) and the panel (panel.py) both send a `RunRequest` through
`RunSession.run`, which picks run-sync or a watched run, reports to a `Progress`, and
returns the converted result. Nothing here imports a frontend: binding a variable and
choosing a view are the frontend's business, so a fan-out panel or a CLI can reuse this.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from apify_magic import body
from apify_magic.datasets import DatasetQuery
from apify_magic.errors import ApifyMagicError, AuthError, RunInterruptedError
from apify_magic.options import RunOptions
from apify_magic.progress import Progress, wait_on_main_thread
from apify_magic.run_record import RecordingProgress, RunRecord, remember
from apify_magic.target import Target, resolve_target

if TYPE_CHECKING:
    from apify_magic.client import ApifyClient
    from apify_magic.runs import RunFollower

# An interrupted run-sync looks this many times for the run it started, this far apart.
INTERRUPT_LOOKUPS = 4
INTERRUPT_LOOKUP_SECS = 0.5

@dataclasses.dataclass
class RunRequest:
    """Everything one run needs, checked: what a frontend hands to the session."""

    actor_id: str
    options: RunOptions
    payload: body.Payload
    variable: str | None = None
    result_as: str = "auto"
    progress: str = "auto"
    watch: bool = False
    dataset: DatasetQuery | None = None
    attach: str | None = None
    # `actor_id` names an Actor task: its saved input and options are the defaults.
    task: bool = False


@dataclasses.dataclass(frozen=True)
class Connection:
    """Where runs go and how hard a request retries: the frontend's settings."""

    target: str = "auto"  # auto, local or platform
    base_url: str | None = None
    max_retries: int = 4
    retry_base_secs: float = 0.5
    poll_secs: float = 1.0


class RunSession:
    """One client per target, reused across runs; the synchronous and watched run paths."""

    def __init__(self) -> None:
        self._clients: dict[Target, ApifyClient] = {}

    def client(self, connection: Connection) -> ApifyClient:
        from apify_magic.client import ApifyClient

        local = _local_runtime()
        if connection.target == "local":
            if local is None:
                raise AuthError("The local runtime is not available in this install.")
            target = Target(local(), None, is_local=True)
        else:
            target = resolve_target(
                connection.base_url,
                local_runtime=local if connection.target == "auto" else None,
                prompt=prompt_token)
        if target not in self._clients:
            self._clients[target] = ApifyClient(target)
        client = self._clients[target]
        client.max_retries = connection.max_retries
        client.retry_base_secs = connection.retry_base_secs
        return client

    def run(self, request: RunRequest, progress: Progress, connection: Connection,
            record: RunRecord | None = None) -> Any:
        """Run, reporting to `progress`, and return the result in the form asked for.

        `record` (a new one unless given) notes what became of the run; it is the last
        run once this ends, and a failure's error carries it as `error.run`."""
        record = record or RunRecord(request.actor_id or f"run {request.attach}",
                                     request.options, request.variable)
        try:
            client = self.client(connection)
        except ApifyMagicError as err:
            record.ended(err, 0.0)
            err.run = record
            remember(record)
            raise
        record.attach_client(client)
        if request.attach:
            record.run_id = request.attach
        try:
            return self._run(client, request, RecordingProgress(progress, record),
                             connection, record)
        finally:
            remember(record)

    def _run(self, client: ApifyClient, request: RunRequest, progress: Progress,
             connection: Connection, record: RunRecord) -> Any:
        progress.started(request.actor_id or f"run {request.attach}", client.target.label,
                         request.options.timeout)
        started = time.monotonic()
        try:
            # --to reads the dataset in pages, which only a watched run does.
            if request.watch or request.attach or (request.dataset is not None
                                                   and request.dataset.to is not None):
                value = _watched(client, request, progress, started, connection.poll_secs)
            else:
                value = _synced(client, request, progress, started)
        except BaseException as err:
            if isinstance(err, ApifyMagicError):
                if client.target.is_local:
                    err.hint = local_words(err.hint)
                err.run = record
            record.ended(err, time.monotonic() - started)
            progress.failed(err, time.monotonic() - started)
            raise
        record.ended(None, time.monotonic() - started)
        progress.finished(value, time.monotonic() - started)
        return value

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _synced(client: ApifyClient, request: RunRequest, progress: Progress,
            started: float) -> Any:
    from apify_magic.datasets import frame_from_pages, parse_lines
    from apify_magic.errors import RunFailedError, RunTimeoutError
    from apify_magic.result import convert
    from apify_magic.runs import failure_hint

    dataset = request.dataset.params("jsonl") if request.dataset else None
    since = time.time()
    try:
        result = wait_on_main_thread(
            lambda: client.run_sync(request.actor_id, request.options, request.payload,
                                    dataset, task=request.task), progress, started)
    except KeyboardInterrupt:
        raise _interrupted_sync(client, request, progress, since) from None
    except RunTimeoutError as err:
        err.hint = _attach_hint(client, request, err.run_id, since)
        raise
    except RunFailedError as err:
        # run-sync says only that the run failed: the Actor's own words are in its log.
        if err.run_id:
            progress.identified(err.run_id)
            try:
                failed_run = client.get_run(err.run_id, actor_id=request.actor_id)
            except Exception:  # a courtesy lookup: the failure is what matters
                failed_run = {"id": err.run_id}
            err.hint = failure_hint(client, failed_run, request.actor_id)
        raise
    if result.run_id:
        progress.identified(result.run_id)
    if request.dataset is not None and request.result_as in ("auto", "dataframe"):
        return frame_from_pages([result.content])
    if request.dataset is not None and request.result_as == "python":
        return parse_lines([result.content])
    if not result.content and _output_object_applies(request):
        # No OUTPUT record: the run's output object, when its Actor declares one.
        run_id = result.run_id or _our_last_run(client, request, since)
        if run_id:
            from apify_magic.runs import RunFollower

            follower = RunFollower(client, progress, actor_id=request.actor_id,
                                   started=started)
            follower.attach(run_id)
            return _output_object(follower, request)
    return convert(result.content, result.content_type, request.result_as)


def _interrupted_sync(client: ApifyClient, request: RunRequest, progress: Progress,
                      since: float) -> RunInterruptedError:
    """Kernel > Interrupt during run-sync: find the run the request started and abort it.

    The request cannot be called back, and its answer (with the run's id) has not come:
    the run is the Actor's newest one started since the request, if it exists yet."""
    from apify_magic.runs import RunFollower, runs_place

    run_id = None
    for attempt in range(INTERRUPT_LOOKUPS):
        run_id = _our_last_run(client, request, since)
        if run_id or attempt == INTERRUPT_LOOKUPS - 1:
            break
        time.sleep(INTERRUPT_LOOKUP_SECS)  # the POST may not have created the run yet
    if run_id is None:
        return RunInterruptedError(
            "Interrupted: the run this cell started could not be found to abort it; it may "
            "go on (and cost) until it ends",
            hint=f"look for it among the Actor's runs: {runs_place(client)}; --watch "
                 "aborts its run on interrupt")
    progress.identified(run_id)
    follower = RunFollower(client, progress, actor_id=request.actor_id)
    follower.run = {"id": run_id}
    return follower.interrupted()


def _output_object_applies(request: RunRequest) -> bool:
    """Whether the output object may stand in for a missing record: not when a record key
    was asked for by name, not for --dataset (its own result) or --as bytes (raw)."""
    return (request.dataset is None and not request.options.output_record_key
            and request.result_as != "bytes")


def _output_object(follower: RunFollower, request: RunRequest) -> Any:
    """The followed run's output object read into values; None when it has none."""
    from apify_magic.outputs import output_links, read_output

    links = output_links(follower.run)
    return read_output(follower, links, request.result_as) if links else None


def _our_last_run(client: ApifyClient, request: RunRequest, since: float) -> str | None:
    """The id of the run a run-sync started, where the server did not say it: the Actor's
    newest run, if it started after the request (an older one cannot be ours)."""
    try:
        last = client.last_run(request.actor_id, task=request.task)
    except Exception:  # a courtesy lookup: the run itself succeeded
        return None
    if last and _epoch(last.get("startedAt")) >= since - 5:
        return str(last.get("id"))
    return None


# Hints name Apify Console, where platform runs are; the local runtime has no Console.
_LOCAL_WORDS = (
    ("(Apify Console > Runs, or the run's /log)", "(%apify_log RUN_ID)"),
    ("Apify Console (Runs)", "the runtime's runs (GET /v2/actor-runs?desc=1)"),
    ("Apify Console > Runs", "the runtime's runs (GET /v2/actor-runs?desc=1)"),
    ("raise the limit in Apify Console > Billing",
     "start the runtime with a larger --memory-budget"),
)


def local_words(hint: str) -> str:
    """A hint as it reads on the local runtime."""
    for platform, local in _LOCAL_WORDS:
        hint = hint.replace(platform, local)
    return hint


def _attach_hint(client: ApifyClient, request: RunRequest, run_id: str | None,
                 since: float) -> str:
    if run_id is None:
        run_id = _our_last_run(client, request, since)
    flags = " --dataset" if request.dataset else ""
    if request.options.output_record_key:
        flags += f" --output-record-key {request.options.output_record_key}"
    if run_id:
        return (f"the run goes on; wait for it and bind its result with:\n"
                f"    %apify_attach {run_id} {request.variable or ''}{flags}".rstrip())
    return ("the run goes on; find it in Apify Console > Runs. For runs longer than "
            "300 s use --watch, which follows the run for as long as it takes")


def unknown_run_hint(client: ApifyClient, run_id: str) -> str:
    """What a 404 for a run id means, where the run was looked for."""
    hint = (f"there is no run {run_id} on the {client.target.label}: "
            "check the run id as an error or the panel shows it")
    if client.target.is_local:
        from apify_magic.local.datadir import retention_note

        hint += f"; {retention_note()}"
    return hint


def _watched(client: ApifyClient, request: RunRequest, progress: Progress,
             started: float, poll_secs: float) -> Any:
    from apify_magic.errors import NotFoundError
    from apify_magic.result import convert
    from apify_magic.runs import RunFollower

    follower = RunFollower(client, progress, actor_id=request.actor_id, started=started,
                           poll_secs=poll_secs)
    try:
        if request.attach:
            try:
                follower.attach(request.attach)
            except NotFoundError as err:
                err.hint = unknown_run_hint(client, request.attach)
                raise
        else:
            follower.start(request.options, request.payload, task=request.task)
    except KeyboardInterrupt:
        raise follower.interrupted() from None
    follower.follow()
    if request.dataset is not None:
        return follower.dataset(request.dataset,
                                as_frame=request.result_as in ("auto", "dataframe"))
    content, content_type = follower.record(request.options.output_record_key or "OUTPUT")
    if not content and _output_object_applies(request):
        return _output_object(follower, request)
    return convert(content, content_type, request.result_as)


def fetch_input_schema(client: ApifyClient, actor_id: str) -> dict[str, Any]:
    """The input schema of the Actor's default build; {} when it has none."""
    from apify_magic.client import check_actor_id

    response = client.get(("actors", check_actor_id(actor_id), "builds", "default"),
                          actor_id=actor_id)
    data = response.json().get("data") or {}
    schema = (data.get("actorDefinition") or {}).get("input")
    if not isinstance(schema, Mapping) and isinstance(data.get("inputSchema"), str):
        schema = json.loads(data["inputSchema"])  # older builds: a JSON string
    return dict(schema) if isinstance(schema, Mapping) else {}


def _epoch(value: object) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def prompt_token() -> str | None:
    import getpass

    try:
        return getpass.getpass("Apify token (kept in memory, not saved): ").strip() or None
    except Exception:  # no stdin: nbval, papermill, a script
        return None


def _start_local_runtime() -> str:
    # Imported on first use: a run on the platform or at a given URL never pays for
    # loading the runtime's server.
    from apify_magic.local.embedded import ensure_started

    return ensure_started()


def _local_runtime() -> Callable[[], str] | None:
    return _start_local_runtime
