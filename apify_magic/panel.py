"""The run panel: one compact line while a run goes and when it has ended; a disclosure
opens the options, the Run button, the live log and the preview.

The panel is a view over the magic's own `RunOptions`: every widget change is parsed into
`panel.options` at once, and Run sends a `RunRequest` built from it through the frontend's
rerun callable (the magic's `run_request`), with this panel as its `Progress`. Every update
comes from the kernel's main thread (see `progress.py`).

What a saved notebook keeps. nbconvert, GitHub and nbviewer have no widget state, so when
a run in a cell ends, the panel is displayed anew with a static `text/plain` and
`text/html` form of its outcome line, and the display it had while running is turned
into an empty, hidden widget whose text stays as it was. Both steps are needed because
nbval compares the outputs a kernel sends and ignores display updates, while nbclient and
the frontends apply them: the texts a cell sends are then the texts it keeps. A Run-button
re-run (no cell runs then) updates the outcome display in place, with the equivalent
`%%apify_run` cell.

Nothing secret is ever a widget value: the token stays in the client, and `isSecret`
input fields are kept by `SchemaForm` in Python (see `schema_form.py`). The static texts
hold no ports or paths; durations and run ids are masked for nbval by
`notebooks/sanitize.cfg`.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shlex
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from apify_magic import body
from apify_magic.errors import ApifyMagicError, OptionError, RunInterruptedError
from apify_magic.options import RunOptions
from apify_magic.panel_options import OptionWidgets, format_number
from apify_magic.panel_view import (
    bound,
    chip_html,
    duration,
    error_lines_html,
    outcome_html,
    outcome_text,
    outcome_words,
    preview_html,
    style_html,
)
from apify_magic.schema_form import SchemaForm

if TYPE_CHECKING:
    from apify_magic.session import RunRequest

LOG_KEEP_CHARS = 20_000  # the live log view keeps the newest part of a long log
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

Rerun = Callable[..., Any]


class RunPanel:
    """The panel one `%%apify_run` cell or `%apify_panel` shows; a `progress.Progress`."""

    wants_log = True  # a watched run streams its log into the panel

    def __init__(self, request: RunRequest, rerun: Rerun, *, form: SchemaForm | None = None,
                 target_label: str = "", expanded: bool = False,
                 in_place: bool = False) -> None:
        self.request = request
        # A background run's panel: shown once in its cell, then only changed in place
        # (a new display would land in whichever cell runs when the run ends).
        self.in_place = in_place
        # The very object the magic validated and sent: the widgets edit it in place.
        self.options = request.options
        self.rerun = rerun
        self.form = form
        self.value: Any = None
        self.state = "ready"
        self.outcome = ""
        self.target_label = target_label
        self.run_id: str | None = None
        self.elapsed: float | None = None
        self.reruns: list[str] = []  # equivalent cells of Run-button runs
        self._timeout: float | None = None
        self._status_message: str | None = None
        self._log = ""  # the live log view's text, newest LOG_KEEP_CHARS
        self._display_id: str | None = None  # the display that shows the panel now
        self._display_parent: str | None = None  # the request it was shown in
        self._hidden: Any = None
        self._build_widgets(expanded)

    # -- widgets -----------------------------------------------------------------------

    def _build_widgets(self, expanded: bool) -> None:
        self.toggle = widgets.ToggleButton(
            value=expanded, icon="chevron-down" if expanded else "chevron-right",
            tooltip="Options, log and result",
            layout=widgets.Layout(width="28px", min_width="28px", padding="0"))
        self.toggle.add_class("apify-toggle")
        self.toggle.observe(lambda _c: self._show_details(), names="value")
        self.chip = widgets.HTML(chip_html("READY"))
        self.chip.add_class("apify-status")
        self.title = widgets.HTML(self._title_html())
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout=widgets.Layout(
            width="90px", min_width="90px", display="none"))
        self.clock = widgets.HTML("")
        self.clock.add_class("apify-clock")
        self.line_message = widgets.HTML("", layout=widgets.Layout(flex="1 1 auto",
                                                                   min_width="0"))
        self.line_message.add_class("apify-message")
        # A <style> applies from a hidden element too: the sheet takes no room in the line.
        style = widgets.HTML(style_html(), layout=widgets.Layout(display="none"))
        self.line = widgets.HBox(
            [style, self.toggle, self.chip, self.title, self.bar, self.clock,
             self.line_message],
            layout=widgets.Layout(flex_flow="row nowrap", align_items="center",
                                  grid_gap="8px", width="100%"))
        self.line.add_class("apify-line")

        self.option_widgets = OptionWidgets(self.options, self._refresh_previews)
        self.run_button = widgets.Button(description="Run", button_style="primary",
                                         icon="play", tooltip="Run with these options")
        self.run_button.add_class("apify-run-button")
        self.run_button.on_click(lambda _b: self.run())
        self.json_toggle = widgets.ToggleButton(description="Show INPUT JSON", value=False)
        self.json_toggle.observe(lambda _c: self._refresh_previews(), names="value")
        self.cell_button = widgets.Button(description="As %%apify_run cell",
                                          tooltip="The equivalent cell, to paste",
                                          layout=widgets.Layout(width="auto"))
        self.cell_button.on_click(lambda _b: self._show_cell())
        self.json_view = widgets.HTML("", layout=widgets.Layout(display="none"))
        self.json_view.add_class("apify-input-json")
        self.cell_view = widgets.Textarea("", layout=widgets.Layout(
            display="none", width="95%", height="120px"))
        self.cell_view.add_class("apify-cell-text")
        self.message = widgets.HTML("")
        self.message.add_class("apify-panel-message")
        self.log_view = widgets.HTML("", layout=widgets.Layout(display="none"))
        self.log_view.add_class("apify-log")
        self.result_view = widgets.HTML("")
        self.result_view.add_class("apify-result")
        self.history = widgets.HTML("")
        parts: list[Any] = []
        if self.form is not None:  # the Actor's input first, run options after it
            self.form.on_change(self._refresh_previews)
            parts.append(self.form.widget)
        parts += [
            self.option_widgets.widget,
            widgets.HBox([self.run_button, self.json_toggle, self.cell_button]),
            self.message, self.json_view, self.cell_view, self.history, self.log_view,
            self.result_view,
        ]
        self.details = widgets.VBox(parts, layout=widgets.Layout(
            display="" if expanded else "none", padding="4px 0 2px 0"))
        self.details.add_class("apify-details")
        self.widget = widgets.VBox([self.line, self.details])
        self.widget.add_class("apify-run-panel")
        self._refresh_previews()

    def _title_html(self) -> str:
        actor = self.request.actor_id or f"run {self.request.attach}"
        into = (f" &rarr; <code>{html.escape(self.request.variable)}</code>"
                if self.request.variable else "")
        return f"<code>{html.escape(actor)}</code>{into}"

    def _show_details(self) -> None:
        shown = bool(self.toggle.value)
        self.toggle.icon = "chevron-down" if shown else "chevron-right"
        self.details.layout.display = "" if shown else "none"

    @property
    def expanded(self) -> bool:
        return bool(self.toggle.value)

    # -- displays --------------------------------------------------------------------------

    def show(self) -> None:
        """Display the panel once; later calls leave the display where it is."""
        if self._display_id is None:
            self._display({"text/plain": self._ready_text()} if self.state == "ready"
                          else {"text/plain": ""})

    def _display(self, static: dict[str, str]) -> None:
        from IPython.display import display

        self._display_id = uuid.uuid4().hex
        self._display_parent = _parent_id()
        display(self._bundle(self.widget, static), raw=True,  # type: ignore[no-untyped-call]
                display_id=self._display_id)

    def _bundle(self, widget: Any, static: dict[str, str]) -> dict[str, Any]:
        bundle = dict(static)
        view = (widget._repr_mimebundle_() or {}).get(_WIDGET_VIEW)
        if view is not None:
            bundle[_WIDGET_VIEW] = view
        return bundle

    def _show_outcome(self) -> None:
        """The outcome, as a widget view and as static text and HTML (see the module doc)."""
        from IPython.display import update_display

        words = outcome_words(self.state, self._actor, self.request.variable, self.elapsed,
                              self.value, self.run_id)
        rerun = self.reruns[-1] if self.reruns else None
        text = outcome_text(words) + (f"\nre-run from the panel as:\n{rerun}" if rerun else "")
        static = {"text/plain": text, "text/html": outcome_html(words, rerun)}
        parent = _parent_id()
        if parent is None or self.in_place:
            # A Run-button run (no cell is running): the outcome display changes in place.
            if self._display_id is not None:
                update_display(self._bundle(self.widget, static),  # type: ignore[no-untyped-call]
                               raw=True, display_id=self._display_id)
            return
        if self._display_id is not None and parent == self._display_parent:
            # Shown in this very cell: that display becomes an empty, hidden widget with
            # its text as it was sent, and the panel moves to the outcome display below.
            if self._hidden is None:
                self._hidden = widgets.Box(layout=widgets.Layout(display="none"))
            update_display(self._bundle(self._hidden, {"text/plain": ""}),  # type: ignore[no-untyped-call]
                           raw=True, display_id=self._display_id)
        self._display(static)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self._bundle(self.widget, {"text/plain": repr(self)})

    def __repr__(self) -> str:
        if self.state == "ready":
            return self._ready_text()
        return outcome_text(outcome_words(self.state, self._actor, self.request.variable,
                                          None, self.value))

    @property
    def _actor(self) -> str:
        return self.request.actor_id or str(self.request.attach)

    def _ready_text(self) -> str:
        into = f" -> {self.request.variable}" if self.request.variable else ""
        lines = [f"Apify run panel: {self.request.actor_id}{into}"
                 f" on {_stable_label(self.target_label)}",
                 "  options: " + _options_summary(self.options)]
        if self.form is not None:
            lines.append("  input fields: " + (", ".join(self.form.fields) or "none"))
        return "\n".join([*lines, "  state: ready"])

    # -- Progress ------------------------------------------------------------------------

    def started(self, actor_id: str, target_label: str, timeout: float | None) -> None:
        self.target_label = target_label
        self.title.value = self._title_html()
        self.state, self.outcome, self.value = "running", "", None
        self.run_id, self.elapsed = None, None
        self._timeout = timeout or None
        self.bar.max = self._timeout or 1.0
        self.bar.value, self.bar.bar_style = 0.0, ""
        self.bar.layout.display = "" if self._timeout else "none"
        self.chip.value = chip_html("RUNNING")
        self._status_message = None
        self.line_message.value = _dim(
            "" if self.request.watch or self.request.attach
            else "run-sync: status messages show with --watch")
        self._log, self.log_view.value, self.log_view.layout.display = "", "", "none"
        self.result_view.value = ""
        self.message.value = ""
        self.run_button.disabled = True
        self.option_widgets.set_disabled(True)
        self.tick(0.0)
        self.show()

    def tick(self, elapsed: float) -> None:
        if self._timeout:
            self.bar.value = min(elapsed, self._timeout)
            self.clock.value = f"{elapsed:.0f} s of {self._timeout:g} s"
        else:
            self.clock.value = f"{elapsed:.0f} s"

    def status(self, status: str, message: str | None) -> None:
        self._status_message = message
        if status not in ("READY", "RUNNING", ""):
            self.chip.value = chip_html(status)
        if message:
            self.line_message.value = html.escape(message)

    def identified(self, run_id: str) -> None:
        self.run_id = run_id

    def log(self, text: str) -> None:
        self._log = (self._log + text)[-LOG_KEEP_CHARS:]
        self.log_view.value = f"<pre>{html.escape(self._log, quote=False)}</pre>"
        self.log_view.layout.display = ""

    def finished(self, value: Any, elapsed: float) -> None:
        self.value, self.elapsed = value, elapsed
        self.state = "SUCCEEDED"
        self.outcome = bound(self.request.variable, value)
        self.bar.value, self.bar.bar_style = self.bar.max, "success"
        self.chip.value = chip_html("SUCCEEDED")
        self.clock.value = f"took {duration(elapsed)}"
        last = self._status_message  # e.g. the Actor's terminal status message
        self.line_message.value = html.escape(self.outcome) + (
            _dim(f" &middot; {html.escape(last)}") if last else "")
        self.result_view.value = preview_html(value)
        self._end()

    def failed(self, error: BaseException, elapsed: float) -> None:
        # The error itself is raised to the cell, which shows it once: the panel says
        # only what became of the run.
        self.elapsed = elapsed
        self.state = _terminal_status(error)
        self.outcome = type(error).__name__
        self.run_id = self.run_id or getattr(error, "run_id", None)
        self.bar.bar_style = "danger" if self.state == "FAILED" else "warning"
        self.chip.value = chip_html(self.state)
        self.clock.value = f"after {duration(elapsed)}"
        self.line_message.value = _dim(
            f"{html.escape(self.outcome)}" + (f" &middot; run {self.run_id}"
                                              if self.run_id else ""))
        self._end()

    def _end(self) -> None:
        self.option_widgets.set_disabled(False)
        self._refresh_previews()
        self._show_outcome()

    # -- Run -----------------------------------------------------------------------------

    def next_request(self) -> RunRequest:
        """The request Run would send now; ApifyMagicError when a widget holds a bad value."""
        errors = self.option_widgets.errors
        if errors:
            raise OptionError(next(iter(errors.values())), hint="fix the option in the panel")
        self.options.validate()
        payload = self.form.payload() if self.form is not None else self.request.payload
        # A copy, so later widget edits never change a request already sent.
        return dataclasses.replace(self.request, options=dataclasses.replace(self.options),
                                   payload=payload, progress="widget")

    def run(self) -> Any:
        """Run with the panel's values; the magic binds the variable when the run ends."""
        try:
            request = self.next_request()
        except ApifyMagicError as err:
            self.message.value = error_lines_html(str(err))
            return None
        self.request = request
        if _parent_id() is None or self._display_parent != _parent_id():
            self.reruns.append(self.equivalent_cell())
            self.history.value = _dim("re-run from the panel as:") + "".join(
                f"<pre style='margin:0'>{html.escape(cell)}</pre>" for cell in self.reruns)
        self.state, self.outcome = "starting", ""
        try:
            self.value = self.rerun(request, progress=self)
        except Exception as err:
            # A button callback has nowhere to raise to: show what failed() did not see
            # (an error before the run started, such as no target or no token).
            if self.state not in ("FAILED", "TIMED-OUT", "ABORTED"):
                self.state, self.outcome = "FAILED", type(err).__name__
                self.chip.value = chip_html("FAILED")
            self.message.value = error_lines_html(f"{type(err).__name__}: {err}")
            return None
        return self.value

    # -- previews ------------------------------------------------------------------------

    def input_json(self) -> str:
        """The INPUT exactly as Run would send it, secrets masked."""
        if self.form is None:
            return self.request.payload.content.decode("utf-8", "replace")
        value, _errors = self.form.value()
        return json.dumps(self.form.masked(value), ensure_ascii=False)

    def equivalent_cell(self) -> str:
        """A `%%apify_run` cell doing what Run does; secrets become `{{ name }}`."""
        words = ["%%apify_run", self.request.actor_id]
        if self.request.variable:
            words.append(self.request.variable)
        words += _option_flags(self.options)
        if self.request.result_as != "auto":
            words += ["--as", self.request.result_as]
        payload = self.request.payload
        if self.form is not None:
            value, _errors = self.form.value()
            text = json.dumps({k: f"@@secret:{k}@@" if k in self.form.secret_names() else v
                               for k, v in value.items()}, indent=2, ensure_ascii=False)
            for name in self.form.secret_names():
                text = text.replace(f'"@@secret:{name}@@"', "{{ " + name + " }}")
        else:
            text = payload.content.decode("utf-8", "replace")
            if not payload.content_type.startswith(body.JSON_TYPE):
                words += ["--content-type", shlex.quote(payload.content_type)]
        return " ".join(words) + "\n" + text

    def _refresh_previews(self) -> None:
        shown = self.json_toggle.value
        self.json_view.layout.display = "" if shown else "none"
        if shown:
            self.json_view.value = f"<pre>{html.escape(self.input_json(), quote=False)}</pre>"
        if self.cell_view.layout.display != "none":
            self.cell_view.value = self.equivalent_cell()
        form_errors = self.form.value()[1] if self.form is not None else {}
        if self.form is not None:
            self.form.show_errors(form_errors)
        # A message about a value that has since been fixed goes with the fix.
        if not self.option_widgets.errors and not form_errors:
            self.message.value = ""
        self.run_button.disabled = (not self.request.actor_id or self.state == "running"
                                    or bool(self.option_widgets.errors) or bool(form_errors))

    def _show_cell(self) -> None:
        self.cell_view.layout.display = ""
        self.cell_view.value = self.equivalent_cell()


# -- helpers -----------------------------------------------------------------------------


def _parent_id() -> str | None:
    """The id of the request the kernel is handling: a cell's execute_request, or the
    comm message of a button click; None outside a kernel."""
    try:
        from IPython.core.getipython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)  # type: ignore[no-untyped-call]
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:  # no kernel, or one without get_parent: a plain shell
        return None
    header = (parent or {}).get("header") or {}
    if header.get("msg_type") != "execute_request":
        return None
    return str(header.get("msg_id") or "") or None


def _terminal_status(error: BaseException) -> str:
    from apify_magic.errors import RunFailedError, RunTimeoutError

    if isinstance(error, RunInterruptedError):
        return "ABORTED"
    if isinstance(error, RunFailedError):
        return error.status_word()
    if isinstance(error, RunTimeoutError):
        return "TIMED-OUT"
    return "FAILED"


def _dim(text: str) -> str:
    return f"<span class='apify-dim'>{text}</span>" if text else ""


def _stable_label(label: str) -> str:
    # "local runtime (http://127.0.0.1:PORT)": the port changes every session
    return re.sub(r"\s*\(https?://[^)]*\)$", "", label) or "the default target"


def _options_summary(options: RunOptions) -> str:
    flags = _option_flags(options)
    return " ".join(flags) if flags else "Actor defaults"


def _option_flags(options: RunOptions) -> list[str]:
    flags: list[str] = []
    if options.memory is not None:
        flags += ["--memory", str(options.memory)]
    if options.timeout is not None:
        flags += ["--timeout", format_number(options.timeout)]
    if options.build is not None:
        flags += ["--build", shlex.quote(options.build)]
    if options.max_items is not None:
        flags += ["--max-items", str(options.max_items)]
    if options.max_total_charge_usd is not None:
        flags += ["--max-total-charge-usd", format_number(options.max_total_charge_usd)]
    if options.restart_on_error is not None:
        flags.append("--restart-on-error" if options.restart_on_error
                     else "--no-restart-on-error")
    if options.output_record_key is not None:
        flags += ["--output-record-key", shlex.quote(options.output_record_key)]
    if options.webhooks is not None:
        flags += ["--webhooks", shlex.quote(json.dumps(options.webhooks))]
    return flags
