"""An input form generated from an Actor's input schema.

The form checks its INPUT with `input_schema.validate_input` (the same rules the local
runtime applies) and shows each message beside its field before anything is sent.

`SchemaForm` maps each property to a widget (see `widget_kind`). Secrets (`isSecret`)
never stay in widget state: the typed value is moved into this Python object the moment
it reaches the kernel and the Password widget is emptied, so a notebook saved with its
widget state holds no secret; previews show `********` instead.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
from traitlets import TraitError

from apify_magic.body import JSON_TYPE, Payload
from apify_magic.errors import InputError
from apify_magic.input_schema import validate_input
from apify_magic.panel_options import FIELD_WIDTH, LABEL_WIDTH

SECRET_MASK = "********"
WHOLE_INPUT = "INPUT"  # the one field of a form without an input schema
# -- widgets -------------------------------------------------------------------------


_KINDS = frozenset({"string", "integer", "number", "boolean", "array", "object"})
_TEXT_KEYS = ("title", "description", "sectionCaption", "editor")


def clean_schema(schema: object) -> dict[str, Any]:
    """The input schema with every key the form reads in the shape it expects; a key in
    any other shape is dropped, so a malformed schema gives a form, never a crash."""
    if not isinstance(schema, Mapping):
        return {}
    required = schema.get("required")
    props = schema.get("properties")
    return {
        "title": schema["title"] if isinstance(schema.get("title"), str) else None,
        "required": [r for r in required if isinstance(r, str)]
        if isinstance(required, list) else [],
        "properties": {str(k): _clean_prop(v) for k, v in props.items()
                       if isinstance(v, Mapping)} if isinstance(props, Mapping) else {},
        **{k: v for k, v in schema.items() if k not in ("title", "required", "properties")},
    }


def _clean_prop(prop: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in prop.items() if k not in (*_TEXT_KEYS, "type", "enum",
                                                       "enumTitles", "minimum", "maximum")}
    for key in _TEXT_KEYS:
        if isinstance(prop.get(key), str):
            out[key] = prop[key]
    if isinstance(prop.get("type"), str) and prop["type"] in _KINDS:
        out["type"] = prop["type"]
    enum = prop.get("enum")
    if isinstance(enum, list) and enum and all(
            v is None or isinstance(v, (str, int, float, bool)) for v in enum):
        out["enum"] = enum
        titles = prop.get("enumTitles")
        if isinstance(titles, list):
            out["enumTitles"] = [str(t) for t in titles]
    for key in ("minimum", "maximum"):
        value = prop.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
    return out


def widget_kind(prop: Mapping[str, Any]) -> str:
    """Which widget a property gets: the schema's `type` first, then its `editor`."""
    kind, editor = prop.get("type"), prop.get("editor")
    if prop.get("isSecret"):
        return "secret"
    if "enum" in prop and kind in ("string", "integer", "number", None):
        return "select"
    if kind == "string":
        return "textarea" if editor in ("textarea", "javascript", "python") else "text"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "array" and editor == "stringList":
        return "stringList"
    return "json"  # array, object, and anything the form has no better widget for


@dataclasses.dataclass
class FormField:
    """One property: its input widget, the message beside it, and how to read it."""

    name: str
    prop: Mapping[str, Any]
    kind: str
    input: Any  # the ipywidgets input widget
    error: Any  # an HTML widget beside it
    row: Any
    # Set when the user changes a widget: a field with no default, prefill or change is
    # left out of INPUT, so the Actor applies its own default.
    touched: bool = False
    secret: str | None = None  # isSecret values live here, never in a widget

    def initial(self) -> Any:
        for key in ("prefill", "default"):
            if key in self.prop:
                return self.prop[key]
        return None

    def read(self) -> tuple[bool, Any]:
        """(present, value) of this field; ValueError with a message when unparseable."""
        value = self.input.value
        if self.kind == "secret":
            return self.secret is not None, self.secret
        if self.kind == "select":
            return value >= 0, self.prop["enum"][value] if value >= 0 else None
        if self.kind in ("text", "textarea"):
            return value != "", value
        if self.kind == "stringList":
            lines = [line.strip() for line in value.splitlines()]
            items = [line for line in lines if line]
            return bool(items) or self.touched, items
        if self.kind == "json":
            if not value.strip():
                return False, None
            try:
                return True, json.loads(value)
            except json.JSONDecodeError as err:
                raise ValueError(f"not valid JSON: {err.msg} at line {err.lineno}") from None
        if self.kind in ("integer", "number"):
            # Typed as text and kept as typed: a value out of range is marked, not clamped.
            text = value.strip()
            if not text:
                return False, None
            try:
                number: float = int(text) if self.kind == "integer" else float(text)
            except ValueError:
                word = "a whole number" if self.kind == "integer" else "a number"
                raise ValueError(f"must be {word}, got {text!r}") from None
            if not math.isfinite(number):
                raise ValueError("must be a finite number")
            return True, number
        # booleans always hold a value: send one only when it means something
        return self.touched or self.initial() is not None, value


class SchemaForm:
    """A form for one input schema; `value()` is the INPUT it would send."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        schema = clean_schema(schema)
        self.schema = schema
        self.required = set(schema.get("required") or [])
        self.fields: dict[str, FormField] = {}
        self.problems: list[str] = []  # what of the schema could not become a field
        self._listeners: list[Callable[[], None]] = []
        rows: list[Any] = []
        title = schema.get("title")
        if title:
            rows.append(widgets.HTML(f"<b>{_escape(str(title))}</b>"))
        for name, prop in (schema.get("properties") or {}).items():
            if not isinstance(prop, Mapping) or prop.get("editor") == "hidden":
                continue
            if prop.get("sectionCaption"):
                rows.append(widgets.HTML(
                    f"<h4 class='apify-section'>{_escape(str(prop['sectionCaption']))}</h4>"))
            try:
                field = self._make_field(name, prop)
            except (TypeError, ValueError, TraitError) as err:
                # A property the form cannot show: say so, and let the rest work.
                self.problems.append(f"field {name!r} of the input schema cannot be shown "
                                     f"in the form ({type(err).__name__}: {err})")
                continue
            self.fields[name] = field
            rows.append(field.row)
        for problem in self.problems:
            rows.append(widgets.HTML(f"<div class='apify-error'>{_escape(problem)}</div>"))
        # No input schema (or no properties): the whole INPUT as one JSON object.
        self.whole: FormField | None = None
        if not self.fields:
            self.whole = self._make_field(
                WHOLE_INPUT, {"type": "object", "title": "INPUT (JSON)", "prefill": {}})
            rows.append(self.whole.row)
        self.widget = widgets.VBox(rows, layout=widgets.Layout(margin="4px 0"))
        self.widget.add_class("apify-schema-form")

    def on_change(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _make_field(self, name: str, prop: Mapping[str, Any]) -> FormField:
        kind = widget_kind(prop)
        label = str(prop.get("title") or name) + (" *" if name in self.required else "")
        input_widget = _make_input(kind, prop, label)
        error = widgets.HTML("", layout=widgets.Layout(margin="0 0 0 8px"))
        error.add_class("apify-field-error")
        parts: list[Any] = [widgets.HBox([input_widget, error])]
        if prop.get("description"):  # shown, not hidden in a tooltip
            help_text = widgets.HTML(f"<div class='apify-field-help'>"
                                     f"{_escape(str(prop['description']))}</div>")
            parts.append(help_text)
        row = widgets.VBox(parts)
        row.add_class("apify-field")
        field = FormField(name, prop, kind, input_widget, error, row)
        if kind == "secret" and field.initial() is not None:
            field.secret = str(field.initial())
            input_widget.placeholder = f"{SECRET_MASK} (kept in kernel memory only)"
        input_widget.observe(lambda change: self._changed(field, change), names="value")
        return field

    def _changed(self, field: FormField, change: Mapping[str, Any]) -> None:
        if field.kind == "secret":
            if not change["new"]:
                return  # our own reset below
            field.secret = change["new"]
            field.input.placeholder = f"{SECRET_MASK} (kept in kernel memory only)"
            field.input.value = ""  # so the browser's widget state never keeps it
        field.touched = True
        for callback in self._listeners:
            callback()

    def value(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(INPUT, errors): what the form would send, and one message per bad field."""
        if self.whole is not None:
            return self._whole_value(self.whole)
        result: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, field in self.fields.items():
            try:
                present, value = field.read()
            except ValueError as err:
                errors[name] = str(err)
                continue
            if present:
                result[name] = value
        for name, message in validate_input(self.schema, result).items():
            errors.setdefault(name, message)
        order = list(self.fields)  # messages in the order the form shows the fields
        errors = dict(sorted(errors.items(),
                             key=lambda e: order.index(e[0]) if e[0] in order else len(order)))
        return result, errors

    @staticmethod
    def _whole_value(field: FormField) -> tuple[dict[str, Any], dict[str, str]]:
        try:
            present, value = field.read()
        except ValueError as err:
            return {}, {WHOLE_INPUT: str(err)}
        if not present:
            return {}, {}
        if not isinstance(value, dict):
            return {}, {WHOLE_INPUT: "must be a JSON object"}
        return value, {}

    def show_errors(self, errors: Mapping[str, str]) -> None:
        shown = dict(self.fields)
        if self.whole is not None:
            shown[WHOLE_INPUT] = self.whole
        for name, field in shown.items():
            message = errors.get(name)
            field.error.value = (f"<span class='apify-error'>{_escape(message)}</span>"
                                 if message else "")

    def checked_input(self) -> dict[str, Any]:
        """The INPUT, after showing each field's message; InputError when any is bad."""
        value, errors = self.value()
        self.show_errors(errors)
        if errors:
            first = next(iter(errors.items()))
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise InputError(f"INPUT field {first[0]!r} {first[1]}{more}",
                             hint="fix the fields marked in the form")
        return value

    def payload(self) -> Payload:
        return Payload(json.dumps(self.checked_input(), ensure_ascii=False).encode("utf-8"),
                       JSON_TYPE)

    def masked(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """`value` with every secret field replaced by a mask: safe to show or save."""
        return {k: SECRET_MASK if k in self.fields and self.fields[k].kind == "secret" else v
                for k, v in value.items()}

    def secret_names(self) -> list[str]:
        return [name for name, field in self.fields.items() if field.kind == "secret"]


def _make_input(kind: str, prop: Mapping[str, Any], label: str) -> Any:
    common: dict[str, Any] = {
        "description": label,
        "style": {"description_width": LABEL_WIDTH},
        "layout": widgets.Layout(width=FIELD_WIDTH),
    }
    initial = next((prop[k] for k in ("prefill", "default") if k in prop), None)
    if kind == "secret":
        # Synced only on Enter/blur, then moved into Python and emptied at once.
        return widgets.Password(value="", continuous_update=False, **common)
    if kind == "select":
        titles = prop.get("enumTitles") or []
        choices = [(str(titles[i]) if i < len(titles) else str(v), i)
                   for i, v in enumerate(prop["enum"])]
        index = prop["enum"].index(initial) if initial in prop["enum"] else -1
        if index < 0 or "default" not in prop:
            choices.insert(0, ("—", -1))  # lets an optional field stay unset
        return widgets.Dropdown(options=choices, value=index, **common)
    if kind in ("text", "textarea"):
        cls = widgets.Textarea if kind == "textarea" else widgets.Text
        return cls(value="" if initial is None else str(initial), **common)
    if kind in ("integer", "number"):
        return _number_input(kind, prop, initial, common)
    if kind == "boolean":
        return widgets.Checkbox(value=bool(initial), indent=False, **common)
    if kind == "stringList":
        text = "\n".join(str(v) for v in initial) if isinstance(initial, list) else ""
        return widgets.Textarea(value=text, placeholder="one item per line", **common)
    text = "" if initial is None else json.dumps(initial, indent=2, ensure_ascii=False)
    return widgets.Textarea(value=text, placeholder="JSON", **common)


def _number_input(kind: str, prop: Mapping[str, Any], initial: Any,
                  common: dict[str, Any]) -> Any:
    """A text box: what is typed stays as typed, and the form says what is wrong with it
    (a bounded number widget would silently clamp it)."""
    low, high = prop.get("minimum"), prop.get("maximum")
    bounds = [f">= {low}" if isinstance(low, (int, float)) else "",
              f"<= {high}" if isinstance(high, (int, float)) else ""]
    word = "whole number" if kind == "integer" else "number"
    placeholder = " and ".join(b for b in bounds if b) or word
    shown = "" if initial is None or isinstance(initial, bool) else str(initial)
    return widgets.Text(value=shown, placeholder=placeholder, **common)


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)
