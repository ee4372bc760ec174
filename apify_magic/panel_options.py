"""The run options of the panel as widgets: each writes its parsed value into the
`RunOptions` it views, or keeps the text as typed and says what is wrong with it."""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from apify_magic.errors import OptionError
from apify_magic.options import MEMORY_CHOICES, RunOptions, check_memory

# One label width for run options and input fields, so their boxes line up.
LABEL_WIDTH = "160px"
_DESC = {"description_width": LABEL_WIDTH}
FIELD_WIDTH = "480px"


def _text_option(label: str, value: Any, placeholder: str) -> Any:
    shown = "" if value is None else format_number(value)
    return widgets.Text(value=shown, description=label, placeholder=placeholder, style=_DESC,
                        layout=widgets.Layout(width=FIELD_WIDTH))


def format_number(value: Any) -> str:
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
                                       layout=widgets.Layout(width=FIELD_WIDTH))
        self.timeout = _text_option("Timeout (s)", options.timeout, "Actor default")
        self.build = _text_option("Build", options.build, "Actor default (latest)")
        self.max_items = _text_option("Max items", options.max_items, "no limit")
        self.max_charge = _text_option("Max charge USD", options.max_total_charge_usd,
                                       "no limit")
        restart = {None: "", True: "yes", False: "no"}[options.restart_on_error]
        self.restart = widgets.Dropdown(
            options=[("default", ""), ("yes", "yes"), ("no", "no")], value=restart,
            description="Restart on error", style=_DESC, layout=widgets.Layout(width=FIELD_WIDTH))
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
        self.widget = widgets.VBox([self.memory, self.timeout, self.build, self.restart,
                                    self.max_items, self.max_charge, self.record_key,
                                    self.message])
        self.widget.add_class("apify-options")

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
            f"<div class='apify-error'>{html.escape(m)}</div>" for m in self.errors.values())
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
