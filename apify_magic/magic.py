"""The `%%apify_run` / `%apify_run` magic: parse the line, build the request, bind the result.

The magic is a thin layer: options live in `RunOptions`, the INPUT in `body`, the wire in
`client`, the conversion in `result`. Heavy imports (httpx, pandas) wait for the first run,
so `%load_ext apify_magic` stays fast.
"""

from __future__ import annotations

import json
import keyword
import re
import shlex
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Unicode

from apify_magic import body, completion, defaults
from apify_magic.datasets import DatasetQuery, split_names
from apify_magic.errors import AuthError, NotFoundError, OptionError
from apify_magic.options import RESULT_FORMS, RunOptions, check_map_options
from apify_magic.progress import (
    PROGRESS_MODES,
    NoProgress,
    Progress,
    TextProgress,
    in_kernel,
    in_terminal,
)
from apify_magic.session import (
    Connection,
    RunRequest,
    RunSession,
    fetch_input_schema,
    prompt_token,
    unknown_run_hint,
)
from apify_magic.target import set_session_token

if TYPE_CHECKING:
    from apify_magic.client import ApifyClient
    from apify_magic.fanout.scheduler import MapRequest
    from apify_magic.fanout.view import MapProgress

# Where %apify_map keeps its ledger unless --ledger says: beside the notebook.
DEFAULT_LEDGER = "apify-map.ledger.jsonl"

def _result_arguments(func: Any) -> Any:
    """Options for what comes back: shared by %apify_run and %apify_attach."""
    decorators = [
        argument("--output-record-key", metavar="KEY",
                 help="Record to return instead of OUTPUT: 1-256 of a-zA-Z0-9!-_.'() "
                      "-> outputRecordKey."),
        argument("--dataset", action="store_true", default=None,
                 help="Return the run's default dataset items (a DataFrame) instead of a "
                      "record -> run-sync-get-dataset-items, or the dataset's items."),
        argument("--fields", metavar="F1,F2", help="With --dataset: only these fields -> fields."),
        argument("--omit", metavar="F1,F2", help="With --dataset: leave these out -> omit."),
        argument("--limit", type=int, metavar="N", help="With --dataset: at most N items, "
                 "> 0 -> limit."),
        argument("--offset", type=int, metavar="N", help="With --dataset: skip N items, "
                 ">= 0 -> offset."),
        argument("--clean", action="store_true", default=None,
                 help="With --dataset: skip empty items and hidden (#) fields -> clean."),
        argument("--desc", action="store_true", default=None,
                 help="With --dataset: newest first -> desc."),
        argument("--unwind", metavar="F1,F2", help="With --dataset: expand these array or "
                 "object fields into items -> unwind."),
        argument("--flatten", metavar="F1,F2", help="With --dataset: flatten these nested "
                 "objects into a.b fields -> flatten."),
        argument("--to", metavar="PATH", help="With --dataset: write the items to PATH "
                 "(.parquet, .csv or .jsonl) as pages arrive and bind a DatasetFile handle "
                 "instead of a DataFrame; the run is watched, so pages are read."),
        argument("--progress", choices=PROGRESS_MODES, default=None,
                 help="auto (a panel in a kernel, text lines in a terminal), widget, text or "
                      "none."),
        argument("--as", dest="result_as", choices=RESULT_FORMS, default=None,
                 help="Result form: auto (DataFrame for a list of records, else the object), "
                      "python, dataframe, text or bytes."),
    ]
    for decorate in reversed(decorators):
        func = decorate(func)
    return func


def _run_arguments(func: Any) -> Any:
    """The run options: shared by %apify_run and %apify_map (each run of a map gets them)."""
    decorators = [
        argument("--memory", type=int, metavar="MB",
                 help="Memory in MB, a power of 2 from 128 to 32768 -> memory."),
        argument("--timeout", type=float, metavar="SECS",
                 help="Run timeout in seconds, >= 0 (0: none) -> timeout."),
        argument("--build", metavar="TAG",
                 help="Build tag or number, e.g. latest or 0.1.234 -> build."),
        argument("--max-items", type=int, metavar="N",
                 help="Most dataset items to be charged for, > 0 -> maxItems."),
        argument("--max-total-charge-usd", type=float, metavar="USD",
                 help="Most the run may cost, > 0 -> maxTotalChargeUsd."),
        argument("--restart-on-error", action="store_true", default=None,
                 help="Restart the run if it fails -> restartOnError=true."),
        argument("--no-restart-on-error", dest="restart_on_error", action="store_false",
                 help="-> restartOnError=false (overrides a %%config default)."),
        argument("--webhooks", metavar="JSON|VAR",
                 help="Ad-hoc webhooks: a JSON array inline or a variable holding one; each "
                      "needs eventTypes and an http(s) requestUrl -> webhooks (Base64 JSON)."),
        argument("--task", action="store_true", default=None,
                 help="The positional names an Actor task instead of an Actor: its saved "
                      "input and options apply, the cell body's fields and these options "
                      "win over them -> /v2/actor-tasks/TASK/run-sync."),
        argument("--content-type", metavar="TYPE",
                 help="Send the body verbatim with this Content-Type (default: the body is "
                      "JSON, checked before sending)."),
    ]
    for decorate in reversed(decorators):
        func = decorate(func)
    return func


def _dataset_query(args: Any) -> DatasetQuery | None:
    given = {name: getattr(args, name) for name in
             ("fields", "omit", "limit", "offset", "unwind", "flatten", "clean", "desc",
              "to")
             if getattr(args, name) not in (None, False)}
    if not args.dataset:
        if given:
            raise OptionError(f"--{next(iter(given))} needs --dataset")
        return None
    return DatasetQuery(
        fields=split_names(args.fields), omit=split_names(args.omit), limit=args.limit,
        offset=args.offset, clean=args.clean, desc=args.desc,
        unwind=split_names(args.unwind), flatten=split_names(args.flatten),
        to=args.to).validate()


@magics_class
class ApifyMagic(Magics, defaults.ConfigDefaults):
    """Run Apify Actors from cells. Defaults: `%config ApifyMagic.memory = 1024` (every
    option under its own name, `as_` for --as; see defaults.py), `%apify_config`."""

    base_url = Unicode(
        None, allow_none=True,
        help="API base URL (without /v2); overrides APIFY_API_BASE_URL.").tag(config=True)
    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.session = RunSession()
        self._matcher = completion.install(shell, self.completion_sources())

    # -- magics ------------------------------------------------------------------------

    @no_var_expand
    @magic_arguments()
    @argument("actor", help="Actor id: `username~actor-name`, `~actor-name` or the id; "
                            "with --task, an Actor task's id or `username~task-name`.")
    @argument("variable", nargs="?", default=None,
              help="Notebook variable to bind the result to; without it the result is "
                   "the cell's value.")
    @argument("-i", "--input", dest="input", metavar="VAR",
              help="INPUT from the notebook variable VAR instead of the cell body: dict/list "
                   "as JSON, str as text/plain, bytes as application/octet-stream.")
    @argument("--watch", action="store_true", default=None,
              help="Start the run (POST .../runs) and follow it: status as it changes, "
                   "Kernel > Interrupt aborts it, no 300 s limit.")
    @argument("--no-watch", dest="watch", action="store_false",
              help="Use run-sync (overrides a %%config default).")
    @_run_arguments
    @argument("--background", action="store_true", default=None,
              help="Return a job handle at once (status, run_id, result(), abort(), "
                   "log()); the run is watched, VARIABLE is bound when it ends.")
    @argument("--detach", action="store_true", default=None,
              help="With --background: the run outlives the kernel (else shutting the "
                   "kernel down aborts it).")
    @argument("--dry-run", action="store_true", default=None,
              help="Check everything, print the request that would be sent and a cost "
                   "estimate from the Actor's pricing; run nothing.")
    @_result_arguments
    @line_cell_magic
    def apify_run(self, line: str, cell: str | None = None) -> Any:
        """Run an Actor with the cell body as INPUT and return or bind its OUTPUT.

        The cell body is POSTed to `/v2/actors/ACTOR/run-sync`. `{{ name }}` in the body
        inserts the notebook variable `name` as JSON; `\\{{` sends a literal `{{`.
        The token comes from APIFY_TOKEN, `apify login` or `%apify_login`, never from
        this line. Every option's default: `%config ApifyMagic.<option> = value`, then
        APIFY_MAGIC_<OPTION>, then [tool.apify_magic] in pyproject.toml (`%apify_config`).
        """
        args = self._with_defaults(_parse_line(self.apify_run, line))
        request = self._build_request(args, cell)
        if args.dry_run:
            from apify_magic.dry_run import dry_run

            return dry_run(self.client(), request)
        if args.background:
            return self.start_job(request, detach=bool(args.detach))
        return self.run_request(request)

    @no_var_expand
    @magic_arguments()
    @argument("actor", help="Actor id: `username~actor-name`, `~actor-name` or the id; "
                            "with --task, an Actor task's id.")
    @argument("variable", nargs="?", default=None,
              help="Notebook variable to bind the DataFrame to (bound before an error is "
                   "raised); without it the DataFrame is the cell's value.")
    @argument("--over", metavar="VAR", required=True,
              help="A list (each element one INPUT), a dict (key -> INPUT, keys label the "
                   "results) or a DataFrame (each row one INPUT, the index labels them).")
    @argument("--concurrency", type=int, metavar="N",
              help="At most N runs at once (1-256); default: what the account's free "
                   "memory and concurrent jobs allow (GET /v2/users/me/limits).")
    @argument("--budget-usd", type=float, metavar="TOTAL",
              help="No new run starts once the finished runs' cost plus the running ones' "
                   "caps would pass TOTAL.")
    @argument("--retries", type=int, metavar="N",
              help="Start a failed run again up to N times (0-10, default 0).")
    @argument("--batch", type=int, metavar="K",
              help="K elements per run: the cell body sees {{ batch }} (their list) "
                   "instead of {{ item }}; results are labelled by batch.")
    @argument("--ledger", metavar="PATH",
              help=f"The JSON-lines ledger the map resumes from (default: "
                   f"./{DEFAULT_LEDGER} beside the notebook).")
    @_run_arguments
    @_result_arguments
    @line_cell_magic
    def apify_map(self, line: str, cell: str | None = None) -> Any:
        """Run an Actor once for every element of --over VAR and bind one DataFrame.

        Cell form: the body is the INPUT template, `{{ item }}` the element as JSON and
        `{{ item.KEY }}` one of its keys or columns (`{{ batch }}` with --batch). Line form:
        each element is the INPUT. Runs go as many at once as the account's limits allow;
        a ledger on disk makes a second run of the cell reuse succeeded runs, reattach to
        running ones and start only what is missing or failed. The per-run table:
        `df.attrs["apify_map"].runs`.
        """
        args = self._with_defaults(_parse_line(self.apify_map, line))
        variable = _check_variable(args.variable)
        request = self._build_map(args, cell)
        from apify_magic.fanout import run_map

        client = self.client()
        outcome = run_map(client, request, self._map_progress(args, client, request))
        if self.shell is not None:
            self.shell.user_ns["_apify_map"] = outcome.frame
            if variable is not None:
                self.shell.user_ns[variable] = outcome.frame
        if outcome.error is not None:
            raise outcome.error
        return None if variable is not None else outcome.frame

    def _build_map(self, args: Any, cell: str | None) -> MapRequest:
        """Every option and every INPUT checked: nothing is sent before this returns."""
        from pathlib import Path

        from apify_magic.client import check_actor_id
        from apify_magic.fanout.inputs import jobs
        from apify_magic.fanout.scheduler import MapRequest

        ns: dict[str, Any] = self.shell.user_ns if self.shell is not None else {}
        check_map_options(args.concurrency, args.budget_usd, args.retries, args.batch)
        if args.to is not None:
            raise OptionError("--to is for one run's dataset, not a map's",
                              hint="write the map's frame yourself: df.to_parquet(...)")
        options = self._run_options(args, ns)
        if args.ledger is not None and not args.ledger.strip():
            raise OptionError("--ledger needs a file path")
        ledger = Path(args.ledger).expanduser() if args.ledger else Path.cwd() / DEFAULT_LEDGER
        if ledger.is_dir():
            raise OptionError(f"--ledger {ledger} is a folder, not a file")
        value = body.lookup(args.over, ns)
        return MapRequest(
            actor_id=check_actor_id(args.actor),
            jobs=jobs(args.over, value, cell, ns, batch=args.batch,
                      content_type=args.content_type),
            options=options, ledger=ledger, task=args.task, dataset=_dataset_query(args),
            result_as=args.result_as or "auto", concurrency=args.concurrency,
            budget_usd=args.budget_usd, retries=args.retries or 0, batch=args.batch,
            poll_secs=min(self.defaults()["poll_secs"] * 30, 60.0))

    def _map_progress(self, args: Any, client: ApifyClient, request: MapRequest
                      ) -> MapProgress:
        from apify_magic.fanout.view import DisplayMapProgress, NoMapProgress, TextMapProgress

        mode = args.progress or self.defaults()["progress"]
        if mode == "auto":
            mode = ("widget" if in_kernel(self.shell)
                    else "text" if in_terminal(self.shell) else "none")
        if mode == "widget":
            platform = client.target.is_platform
            return DisplayMapProgress(
                request.actor_id,
                lambda run_id: f"https://console.apify.com/view/runs/{run_id}"
                if platform else None)
        return TextMapProgress(request.actor_id) if mode == "text" else NoMapProgress()

    @magic_arguments()
    @argument("run_id", help="The run's id, as errors and the run's page show it.")
    @argument("variable", nargs="?", default=None,
              help="Notebook variable to bind the result to.")
    @_result_arguments
    @line_magic
    def apify_attach(self, line: str) -> Any:
        """Wait for an existing run (running or finished) and bind its result.

        For example after run-sync answered 408 while its run went on, or after a kernel
        restart (the embedded runtime keeps finished runs across restarts). Takes the same
        result options as %apify_run.
        """
        args = self._with_defaults(_parse_line(self.apify_attach, line))
        variable = _check_variable(args.variable)
        if not re.match(r"^[A-Za-z0-9]+$", args.run_id):
            raise OptionError(f"{args.run_id!r} is not a run id")
        options = RunOptions(output_record_key=args.output_record_key).validate()
        request = RunRequest(
            actor_id="", options=options, payload=body.Payload(b"", ""), variable=variable,
            result_as=args.result_as, progress=args.progress,
            dataset=_dataset_query(args), attach=args.run_id)
        return self.run_request(request)

    @line_magic
    def apify_login(self, line: str) -> None:
        """Type an Apify token for this session; it is kept in memory, never in the notebook."""
        token = prompt_token()
        if not token:
            raise AuthError("No token was typed.", hint="run %apify_login again")
        set_session_token(token)
        print("Token set for this session.")

    @magic_arguments()
    @argument("run_id", help="The run's id, as errors and the panel show it.")
    @argument("--follow", action="store_true",
              help="Print the log as it is written until the run ends.")
    @line_magic
    def apify_log(self, line: str) -> None:
        """Print a run's log (GET /v2/actor-runs/RUN_ID/log), or follow it with --follow."""
        args = _parse_line(self.apify_log, line)
        if not re.match(r"^[A-Za-z0-9]+$", args.run_id):
            raise OptionError(f"{args.run_id!r} is not a run id")
        client = self.client()
        try:
            if not args.follow:
                print(client.get_log(args.run_id), end="")
                return
            client.get_run(args.run_id)  # a clear 404 for an unknown run, before streaming
        except NotFoundError as err:
            err.hint = unknown_run_hint(client, args.run_id)
            raise
        try:
            for chunk in client.stream_log(args.run_id):
                sys.stdout.write(chunk.decode("utf-8", "replace"))
                sys.stdout.flush()
        except KeyboardInterrupt:
            print(f"\n(stopped following the log of run {args.run_id}; the run goes on)")

    @line_magic
    def apify_panel(self, line: str) -> None:
        """Open the run panel for `ACTOR [VARIABLE]` with a form from the Actor's input schema.

        Nothing runs until you press Run; the result is then bound to VARIABLE.
        """
        self.open_panel(line)

    # -- the steps ---------------------------------------------------------------------

    def _build_request(self, args: Any, cell: str | None) -> RunRequest:
        ns: dict[str, Any] = self.shell.user_ns if self.shell is not None else {}
        variable = _check_variable(args.variable)
        options = self._run_options(args, ns)
        if args.input is not None:
            if cell is not None and cell.strip():
                raise OptionError("give INPUT either as the cell body or with -i, not both")
            payload = body.from_variable(args.input, ns, args.content_type)
        else:
            payload = body.from_cell(cell or "", ns, args.content_type)
        from apify_magic.client import check_actor_id

        return RunRequest(
            actor_id=check_actor_id(args.actor),
            options=options,
            payload=payload,
            variable=variable,
            result_as=args.result_as,
            progress=args.progress,
            watch=bool(args.watch or args.background),
            dataset=_dataset_query(args),
            task=bool(args.task),
        )

    def _run_options(self, args: Any, ns: dict[str, Any]) -> RunOptions:
        """The line's run options (the defaults already filled in), validated."""
        return RunOptions(
            memory=args.memory,
            timeout=args.timeout,
            build=args.build,
            max_items=args.max_items,
            max_total_charge_usd=args.max_total_charge_usd,
            restart_on_error=args.restart_on_error,
            output_record_key=args.output_record_key,
            webhooks=(_webhooks(args.webhooks, ns) if args.webhooks is not None
                      else self.defaults()["webhooks"]),
        ).validate()

    def defaults(self) -> dict[str, Any]:
        """Each option's effective default (see defaults.py), checked."""
        return {name: d.value for name, d in
                defaults.effective(self.configured()).items()}

    def _with_defaults(self, args: Any) -> Any:
        """The parsed line with every option it does not give taken from the defaults
        (dataset options only with --dataset, as the line's own would need it)."""
        found = self.defaults()
        dataset_on = args.dataset if getattr(args, "dataset", None) is not None \
            else found["dataset"]
        for name, option in defaults.SETTINGS.items():
            dest = "result_as" if name == "as" else name
            if (not option.option or name == "webhooks" or not hasattr(args, dest)
                    or getattr(args, dest) is not None):
                continue
            if name in defaults.DATASET_OPTIONS and not dataset_on:
                continue
            setattr(args, dest, found[name])
        return args

    def config_options(self) -> RunOptions:
        found = self.defaults()
        return RunOptions(**{f: found[f] for f in RunOptions.__dataclass_fields__})

    def connection(self) -> Connection:
        found = self.defaults()
        return Connection(target=found["target"], base_url=self.base_url,
                          max_retries=found["max_retries"],
                          retry_base_secs=found["retry_base_secs"],
                          poll_secs=found["poll_secs"])

    def client(self) -> ApifyClient:
        return self.session.client(self.connection())

    def make_progress(self, request: RunRequest, in_place: bool = False) -> Progress:
        mode = request.progress
        if mode == "auto":
            mode = ("widget" if in_kernel(self.shell)
                    else "text" if in_terminal(self.shell) else "none")
        if mode == "widget":
            try:
                from apify_magic.panel import RunPanel
            except ImportError:  # ipywidgets broken or missing: text still works
                return TextProgress()
            return RunPanel(request, rerun=self.run_request, in_place=in_place,
                            expanded=self.defaults()["panel_view"] == "expanded")
        return TextProgress() if mode == "text" else NoProgress()

    def run_request(self, request: RunRequest, progress: Progress | None = None) -> Any:
        """Run, show progress, and bind or return the result: the magic's one path."""
        progress = progress or self.make_progress(request)
        value = self.session.run(request, progress, self.connection())
        if value is None and request.result_as != "bytes":
            key = request.options.output_record_key or "OUTPUT"
            bound = f"; {request.variable} = None" if request.variable else ""
            print(f"{request.actor_id or request.attach} wrote no {key} record{bound}")
        if request.variable is None:
            return value
        assert self.shell is not None
        self.shell.user_ns[request.variable] = value
        return None

    def open_panel(self, line: str) -> Any:
        """`%apify_panel ACTOR [VARIABLE]`: the panel with the input form, without running."""
        from apify_magic.panel import RunPanel
        from apify_magic.schema_form import SchemaForm

        words = shlex.split(line)
        if not 1 <= len(words) <= 2:
            raise UsageError("usage: %apify_panel ACTOR [VARIABLE]")
        actor_id = words[0]
        variable = _check_variable(words[1] if len(words) == 2 else None)
        client = self.client()
        schema = fetch_input_schema(client, actor_id)
        options = self.config_options().validate()
        request = RunRequest(actor_id=actor_id, options=options,
                             payload=body.Payload(b"{}", body.JSON_TYPE), variable=variable,
                             result_as=self.defaults()["as"], progress="widget")
        panel = RunPanel(request, rerun=self.run_request, form=SchemaForm(schema),
                         target_label=client.target.label, expanded=True)
        panel.show()
        return panel

    def start_job(self, request: RunRequest, *, detach: bool) -> Any:
        """--background: show the panel here, in this cell, and start the run as a job."""
        from apify_magic.jobs import JOBS, kernel_schedule

        progress = self.make_progress(request, in_place=True)
        show = getattr(progress, "show", None)
        if callable(show):
            show()
        bind = None
        if request.variable is not None:
            assert self.shell is not None
            variable, ns = request.variable, self.shell.user_ns
            bind = lambda value: ns.__setitem__(variable, value)  # noqa: E731
        return JOBS.start(self.session, request, progress, self.connection(), bind=bind,
                          schedule=kernel_schedule(self.shell), detach=detach)

    def completion_sources(self) -> completion.Sources:
        def actors() -> list[str]:
            from apify_magic.run_record import history

            seen = [r.actor_id for r in history() if not r.actor_id.startswith("run ")]
            connection = self.connection()
            listed = (completion.local_actors() if completion.is_local(connection)
                      else completion.remote_actors(self.session, connection))
            return [*listed, *seen]

        def builds(actor_id: str) -> list[str]:
            connection = self.connection()
            if completion.is_local(connection):
                return completion.local_builds(actor_id)
            return completion.remote_builds(self.session, connection, actor_id)

        def runs() -> list[str]:
            from apify_magic.run_record import history

            return [r.run_id for r in history() if r.run_id]

        def options(magic: str) -> list[str]:
            parser = getattr(getattr(self, magic, None), "parser", None)
            return [o for a in getattr(parser, "_actions", []) for o in a.option_strings
                    if o.startswith("--")]

        return completion.Sources(options=options, actors=actors, builds=builds, runs=runs,
                                  settings=lambda: list(defaults.SETTINGS))

    # -- the last run, background runs, defaults -----------------------------------------

    @magic_arguments()
    @argument("--log", action="store_true", help="Print the run's whole log.")
    @line_magic
    def apify_last(self, line: str) -> Any:
        """The run that ended last in this kernel, successful or not: id, status, Actor,
        options, timings, cost, storages (`apify_magic.last_run()` in Python)."""
        from apify_magic.run_record import last_run

        args = _parse_line(self.apify_last, line)
        record = last_run()
        if record is None:
            raise OptionError("no run has ended in this kernel yet")
        if args.log:
            print(record.log(), end="")
            return None
        return record

    @line_magic
    def apify_jobs(self, line: str) -> None:
        """This kernel's background runs (`--background`) and their status."""
        from apify_magic.jobs import JOBS

        print(JOBS.table())

    @line_magic
    def apify_config(self, line: str) -> None:
        """`%apify_config`: every option's default and where it comes from;
        `%apify_config NAME = VALUE` sets one (checked now; `as` too); `NAME =` unsets."""
        text = line.strip()
        if not text:
            print(defaults.table(defaults.effective(self.configured())))
            return
        name, _, value = text.partition("=")
        option = defaults.setting(name.strip(), "%apify_config")
        if not _:
            print(defaults.table({option.name: defaults.effective(self.configured())[
                option.name]}))
            return
        value = value.strip()
        if option.kind != "json" and len(value) >= 2 and value[0] == value[-1] in "'\"":
            value = value[1:-1]
        checked = option.accept(value or None, f"%apify_config {option.name} = {value}")
        setattr(self, option.config_name, checked)

    def close(self) -> None:
        completion.uninstall(self.shell, self._matcher)
        self.session.close()


def _check_variable(name: str | None) -> str | None:
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise OptionError(f"{name!r} is not a valid variable name")
    return name


def _parse_line(magic: Any, line: str) -> Any:
    # POSIX splitting, unlike IPython's default, removes the quotes around inline JSON.
    try:
        argv = shlex.split(line)
    except ValueError as err:
        raise UsageError(f"%apify_run: {err} in the magic line") from None
    return magic.parser.parse_args(argv)


def _webhooks(value: str, ns: Mapping[str, Any]) -> list[dict[str, Any]]:
    text = value.strip()
    if not text.startswith("["):
        held = body.lookup(text, ns)
        if not isinstance(held, str):
            return held  # type: ignore[no-any-return]  # checked by RunOptions.validate
        text = held
    try:
        parsed = json.loads(text)
    except RecursionError:
        raise OptionError("--webhooks is nested too deeply to be JSON") from None
    except json.JSONDecodeError as err:
        raise OptionError(f"--webhooks is not valid JSON: {err.msg} at column {err.colno}",
                          hint="quote the array: --webhooks '[{...}]'") from None
    return parsed  # type: ignore[no-any-return]
