"""The run panel: options as widgets, live progress, the result, and `%apify_panel`.

The panel is a view over the magic's own `RunOptions`: every widget change is parsed into
`panel.options` at once, and Run sends a `RunRequest` built from it through the frontend's
rerun callable (the magic's `run_request`), with this panel as its `Progress`. Every update
comes from the kernel's main thread (see `progress.py`).

Nothing secret is ever a widget value: the token stays in the client, and `isSecret`
input fields are kept by `SchemaForm` in Python (see `schema_form.py`). The panel's
`text/plain` form holds no elapsed times, ids, ports or paths, so nbval and frontends
without widgets see the same text on every run.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from apify_magic import body
from apify_magic.errors import ApiError, ApifyMagicError, OptionError
from apify_magic.options import MEMORY_CHOICES, RunOptions, check_memory
from apify_magic.schema_form import SchemaForm

if TYPE_CHECKING:
    from apify_magic.session import RunRequest

# run-sync answers 408 after 300 s whatever the timeout, so with no timeout set that is
# the scale of the elapsed-time bar.
NO_TIMEOUT_SCALE_SECS = 300.0
PREVIEW_ROWS = 10
PREVIEW_CHARS = 2000
_DESC = {"description_width": "120px"}

Rerun = Callable[..., Any]


def _text_option(label: str, value: Any, placeholder: str) -> Any:
    shown = "" if value is None else _format_number(value)
    return widgets.Text(value=shown, description=label, placeholder=placeholder, style=_DESC,
                        layout=widgets.Layout(width="300px"))


def _format_number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class OptionWidgets:
    """One widget per run option, each writing its parsed value into `options`."""

    def __init__(self, options: RunOptions, on_change: Callable[[], None]) -> None:
        self.options = options
        self.errors: dict[str, str] = {}
        self._on_change = on_change
        memory_choices = [("default", 0)] + [(f"{m} MB", m) for m in MEMORY_CHOICES]
        self.memory = widgets.Dropdown(options=memory_choices, value=options.memory or 0,
                                       description="Memory", style=_DESC,
                                       layout=widgets.Layout(width="300px"))
        self.timeout = _text_option("Timeout (s)", options.timeout, "Actor default")
        self.build = _text_option("Build", options.build, "Actor default (latest)")
        self.max_items = _text_option("Max items", options.max_items, "no limit")
        self.max_charge = _text_option("Max charge USD", options.max_total_charge_usd,
                                       "no limit")
        restart = {None: "", True: "yes", False: "no"}[options.restart_on_error]
        self.restart = widgets.Dropdown(
            options=[("default", ""), ("yes", "yes"), ("no", "no")], value=restart,
            description="Restart on error", style=_DESC, layout=widgets.Layout(width="300px"))
        self.record_key = _text_option("Output record", options.output_record_key, "OUTPUT")
        self.message = widgets.HTML("")
        self.message.add_class("apify-options-error")
        self._parsers: dict[str, tuple[Any, Callable[[Any], Any]]] = {
            "memory": (self.memory, _parse_memory),
            "timeout": (self.timeout, _parse_float("timeout", low=0.0)),
            "build": (self.build, _parse_text),
            "max_items": (self.max_items, _parse_int("max items")),
            "max_total_charge_usd": (self.max_charge, _parse_float("max charge", low=None)),
            "restart_on_error": (self.restart, lambda v: {"yes": True, "no": False}.get(v)),
            "output_record_key": (self.record_key, _parse_text),
        }
        for name, (widget, _parse) in self._parsers.items():
            widget.observe(lambda _change, name=name: self._changed(name), names="value")
        left = widgets.VBox([self.memory, self.timeout, self.build, self.restart])
        right = widgets.VBox([self.max_items, self.max_charge, self.record_key])
        self.widget = widgets.VBox([widgets.HBox([left, right]), self.message])

    def _changed(self, name: str) -> None:
        widget, parse = self._parsers[name]
        try:
            value = parse(widget.value)
            # the platform's own rules, one field at a time
            dataclasses.replace(RunOptions(), **{name: value}).validate()
        except (OptionError, ValueError) as err:
            self.errors[name] = str(err).splitlines()[0]
        else:
            self.errors.pop(name, None)
            setattr(self.options, name, value)
        self.message.value = "".join(
            f"<div style='color:#c62828'>{html.escape(m)}</div>" for m in self.errors.values())
        self._on_change()

    def set_disabled(self, disabled: bool) -> None:
        for widget, _parse in self._parsers.values():
            widget.disabled = disabled


def _parse_memory(value: int) -> int | None:
    memory = value or None
    check_memory(memory)
    return memory


def _parse_text(value: str) -> str | None:
    return value.strip() or None


def _parse_int(label: str) -> Callable[[str], int | None]:
    def parse(value: str) -> int | None:
        if not value.strip():
            return None
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"{label}: {value.strip()!r} is not a whole number") from None
    return parse


def _parse_float(label: str, low: float | None) -> Callable[[str], float | None]:
    def parse(value: str) -> float | None:
        if not value.strip():
            return None
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"{label}: {value.strip()!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{label}: must be a finite number")
        return number
    return parse


class RunPanel:
    """The panel one `%%apify_run` cell or `%apify_panel` shows; a `progress.Progress`."""

    def __init__(self, request: RunRequest, rerun: Rerun, *, form: SchemaForm | None = None,
                 target_label: str = "") -> None:
        self.request = request
        # The very object the magic validated and sent: the widgets edit it in place.
        self.options = request.options
        self.rerun = rerun
        self.form = form
        self.value: Any = None
        self.state = "ready"
        self.outcome = ""
        self.target_label = target_label
        self._displayed = False
        self._scale = NO_TIMEOUT_SCALE_SECS
        self._status_message: str | None = None
        self._build_widgets()

    # -- widgets -----------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.header = widgets.HTML(self._header_html())
        self.option_widgets = OptionWidgets(self.options, self._refresh_previews)
        self.run_button = widgets.Button(description="Run", button_style="primary",
                                         icon="play", tooltip="Run with these options")
        self.run_button.add_class("apify-run-button")
        self.run_button.on_click(lambda _b: self.run())
        self.run_button.disabled = not self.request.actor_id
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
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=self._scale,
                                         layout=widgets.Layout(width="300px"))
        self.elapsed_label = widgets.Label("")
        self.status_label = widgets.Label("")
        self.status_label.add_class("apify-status")
        self.result_view = widgets.HTML("")
        self.result_view.add_class("apify-result")
        parts: list[Any] = [self.header, self.option_widgets.widget]
        if self.form is not None:
            self.form.on_change(self._refresh_previews)
            parts.append(self.form.widget)
        parts += [
            widgets.HBox([self.run_button, self.json_toggle, self.cell_button]),
            self.message, self.json_view, self.cell_view,
            widgets.HBox([self.bar, self.elapsed_label]), self.status_label, self.result_view,
        ]
        self.widget = widgets.VBox(parts, layout=widgets.Layout(
            border="1px solid #ddd", padding="6px"))
        self.widget.add_class("apify-run-panel")

    def _header_html(self) -> str:
        target = f" on {html.escape(self.target_label)}" if self.target_label else ""
        into = f" → <code>{html.escape(self.request.variable)}</code>" \
            if self.request.variable else ""
        return (f"<b>Apify Actor</b> <code>{html.escape(self.request.actor_id)}</code>"
                f"{into}{target}")

    def show(self) -> None:
        if not self._displayed:
            from IPython.display import display

            self._displayed = True
            display(self)  # type: ignore[no-untyped-call]

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = repr(self)  # ours, not the widget's truncated VBox(...)
        return bundle

    def __repr__(self) -> str:
        into = f" -> {self.request.variable}" if self.request.variable else ""
        lines = [f"Apify run panel: {self.request.actor_id}{into}"
                 f" on {_stable_label(self.target_label)}"]
        lines.append("  options: " + _options_summary(self.options))
        if self.form is not None:
            lines.append("  input fields: " + (", ".join(self.form.fields) or "none"))
        if self.state == "running":
            # What a saved notebook keeps is this text as it was when the run started:
            # say where the live state is rather than a state that will be stale.
            lines.append("  progress and result: in the widget view")
        else:
            lines.append(f"  state: {self.state}" + (f" ({self.outcome})" if self.outcome else ""))
        return "\n".join(lines)

    # -- Progress ------------------------------------------------------------------------

    def started(self, actor_id: str, target_label: str, timeout: float | None) -> None:
        self.target_label = target_label
        self.header.value = self._header_html()
        self.state, self.outcome, self.value = "running", "", None
        self._scale = timeout if timeout else NO_TIMEOUT_SCALE_SECS
        self.bar.max = self._scale
        self.bar.value, self.bar.bar_style = 0.0, ""
        self.elapsed_label.value = f"0 s of {self._scale:g} s"
        self.status_label.value = "RUNNING"
        self._status_message = None
        self.result_view.value = ""
        self.message.value = ""
        self.run_button.disabled = True
        self.option_widgets.set_disabled(True)
        self.show()

    def tick(self, elapsed: float) -> None:
        self.bar.value = min(elapsed, self._scale)
        self.elapsed_label.value = f"{elapsed:.0f} s of {self._scale:g} s"

    def status(self, status: str, message: str | None) -> None:
        self._status_message = message
        self.status_label.value = status + (f": {message}" if message else "")

    def finished(self, value: Any, elapsed: float) -> None:
        self.value = value
        self.state, self.outcome = "SUCCEEDED", _summary(value)
        self.bar.value, self.bar.bar_style = self.bar.max, "success"
        self.elapsed_label.value = f"took {elapsed:.1f} s"
        last = self._status_message  # e.g. the Actor's terminal status message
        self.status_label.value = "SUCCEEDED" + (f": {last}" if last else "")
        self.result_view.value = preview_html(value)
        self._end()

    def failed(self, error: BaseException, elapsed: float) -> None:
        self.state, self.outcome = "FAILED", type(error).__name__
        self.bar.bar_style = "danger"
        self.elapsed_label.value = f"failed after {elapsed:.1f} s"
        self.status_label.value = "FAILED"
        self.result_view.value = error_html(error)
        self._end()

    def _end(self) -> None:
        # %apify_attach follows a given run: there is no Actor to run again
        self.run_button.disabled = not self.request.actor_id
        self.option_widgets.set_disabled(False)

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
            self.message.value = _red(str(err))
            return None
        self.request = request
        self.state, self.outcome = "starting", ""
        try:
            self.value = self.rerun(request, progress=self)
        except Exception as err:
            # A button callback has nowhere to raise to: show what failed() did not see
            # (an error before the run started, such as no target or no token).
            if self.state != "FAILED":
                self.state, self.outcome = "FAILED", type(err).__name__
                self.message.value = _red(f"{type(err).__name__}: {err}")
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
        if self.form is not None:
            self.form.show_errors(self.form.value()[1])

    def _show_cell(self) -> None:
        self.cell_view.layout.display = ""
        self.cell_view.value = self.equivalent_cell()


# -- rendering ---------------------------------------------------------------------------


def preview_html(value: Any) -> str:
    """The first rows of a DataFrame as a table, else a compact, cut-off repr."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        table = str(value.head(PREVIEW_ROWS).to_html(max_cols=20, border=0))
        more = f"<div>{_summary(value)}</div>"
        return table + more
    if isinstance(value, dict) and 0 < len(value) <= PREVIEW_ROWS * 2 and all(
            isinstance(v, (str, int, float, bool)) or v is None for v in value.values()):
        # a flat record reads best as a key/value table
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th>"
                       f"<td>{html.escape(repr(v), quote=False)}</td></tr>"
                       for k, v in value.items())
        return f"<table class='apify-record'>{rows}</table>"
    import pprint

    text = pprint.pformat(value, compact=True, width=100, sort_dicts=False)
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + " …"
    return f"<pre style='margin:0'>{html.escape(text, quote=False)}</pre>"


def error_html(error: BaseException) -> str:
    if isinstance(error, ApiError):
        parts = [f"<b>{html.escape(type(error).__name__)}</b> "
                 f"({error.status} {html.escape(error.error_type)})",
                 html.escape(error.message)]
        if error.run_id:
            parts.append(f"run id: <code>{html.escape(error.run_id)}</code>")
        if error.hint:
            parts.append(f"<i>{html.escape(error.hint)}</i>")
    else:
        message = getattr(error, "message", None) or str(error) or "interrupted"
        parts = [f"<b>{html.escape(type(error).__name__)}</b>", html.escape(str(message))]
    return "<div style='color:#c62828'>" + "<br>".join(parts) + "</div>"


def _summary(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and len(shape) == 2:
        return f"{type(value).__name__}, {shape[0]} rows x {shape[1]} columns"
    if isinstance(value, (list, dict, str, bytes)):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def _red(text: str) -> str:
    return "".join(f"<div style='color:#c62828'>{html.escape(line)}</div>"
                   for line in text.splitlines())


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
        flags += ["--timeout", _format_number(options.timeout)]
    if options.build is not None:
        flags += ["--build", shlex.quote(options.build)]
    if options.max_items is not None:
        flags += ["--max-items", str(options.max_items)]
    if options.max_total_charge_usd is not None:
        flags += ["--max-total-charge-usd", _format_number(options.max_total_charge_usd)]
    if options.restart_on_error is not None:
        flags.append("--restart-on-error" if options.restart_on_error
                     else "--no-restart-on-error")
    if options.output_record_key is not None:
        flags += ["--output-record-key", shlex.quote(options.output_record_key)]
    if options.webhooks is not None:
        flags += ["--webhooks", shlex.quote(json.dumps(options.webhooks))]
    return flags
