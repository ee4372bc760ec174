"""The input form generated from an input schema, and the schema check of an INPUT."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import ipywidgets as widgets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apify_magic.errors import InputError
from apify_magic.input_schema import input_errors, validate_input
from apify_magic.schema_form import SECRET_MASK, SchemaForm, widget_kind

SCHEMA: dict[str, Any] = {
    "title": "Everything",
    "type": "object",
    "schemaVersion": 1,
    "required": ["query", "mode"],
    "properties": {
        "query": {"title": "Query", "type": "string", "editor": "textfield",
                  "sectionCaption": "Basics", "prefill": "coffee", "default": "tea"},
        "notes": {"title": "Notes", "type": "string", "editor": "textarea"},
        "mode": {"title": "Mode", "type": "string", "editor": "select",
                 "enum": ["fast", "slow"], "enumTitles": ["Fast mode", "Slow mode"],
                 "default": "slow"},
        "pages": {"title": "Pages", "type": "integer", "editor": "number",
                  "minimum": 1, "maximum": 50, "default": 10},
        "ratio": {"title": "Ratio", "type": "number", "minimum": 0, "maximum": 1},
        "debug": {"title": "Debug", "type": "boolean", "editor": "checkbox",
                  "sectionCaption": "Advanced"},
        "urls": {"title": "URLs", "type": "array", "editor": "stringList",
                 "prefill": ["https://a.example", "https://b.example"]},
        "headers": {"title": "Headers", "type": "object", "editor": "json"},
        "apiKey": {"title": "API key", "type": "string", "isSecret": True},
    },
}


@pytest.mark.parametrize(("prop", "kind", "cls"), [
    ({"type": "string", "editor": "textfield"}, "text", widgets.Text),
    ({"type": "string", "editor": "textarea"}, "textarea", widgets.Textarea),
    ({"type": "string", "editor": "select", "enum": ["a"]}, "select", widgets.Dropdown),
    ({"type": "string", "isSecret": True}, "secret", widgets.Password),
    ({"type": "integer", "minimum": 1, "maximum": 5}, "integer", widgets.Text),
    ({"type": "integer"}, "integer", widgets.Text),
    ({"type": "number", "minimum": 0}, "number", widgets.Text),
    ({"type": "boolean"}, "boolean", widgets.Checkbox),
    ({"type": "array", "editor": "stringList"}, "stringList", widgets.Textarea),
    ({"type": "array", "editor": "json"}, "json", widgets.Textarea),
    ({"type": "object", "editor": "json"}, "json", widgets.Textarea),
])
def test_each_type_and_editor_gets_its_widget(prop: dict[str, Any], kind: str,
                                              cls: type) -> None:
    assert widget_kind(prop) == kind
    form = SchemaForm({"properties": {"f": prop}})
    assert type(form.fields["f"].input) is cls


def test_initial_values_prefill_over_default_and_untouched_optionals_left_out() -> None:
    form = SchemaForm(SCHEMA)
    value, errors = form.value()
    assert errors == {}
    # prefill wins over default; `ratio`, `debug`, `notes`, `headers` have neither: unsent
    assert value == {"query": "coffee", "mode": "slow", "pages": 10,
                     "urls": ["https://a.example", "https://b.example"]}


def test_dropdown_uses_enum_titles_and_sends_enum_values() -> None:
    form = SchemaForm(SCHEMA)
    mode = form.fields["mode"].input
    assert [label for label, _ in mode.options] == ["Fast mode", "Slow mode"]
    mode.value = 0
    assert form.value()[0]["mode"] == "fast"


def test_numbers_are_kept_as_typed_and_marked_never_clamped() -> None:
    form = SchemaForm(SCHEMA)
    pages = form.fields["pages"].input
    assert (pages.value, pages.placeholder) == ("10", ">= 1 and <= 50")
    pages.value = "500"  # out of range: kept as typed, marked, not sent
    assert pages.value == "500"
    assert form.value()[1] == {"pages": "must be <= 50"}
    pages.value = "ten"
    assert form.value()[1] == {"pages": "must be a whole number, got 'ten'"}
    pages.value = "12"  # fixed: the message goes
    assert form.value()[1] == {} and form.value()[0]["pages"] == 12
    ratio = form.fields["ratio"].input
    assert ratio.value == ""  # no default: not sent until typed
    ratio.value = "0.5"
    assert form.value()[0]["ratio"] == 0.5


def test_descriptions_are_shown_under_their_fields() -> None:
    form = SchemaForm({"properties": {"q": {"type": "string", "title": "Query",
                                            "description": "What to <search> for"}}})
    texts = [w.value for w in _all_widgets(form.fields["q"].row)
             if isinstance(w, widgets.HTML)]
    assert any("What to &lt;search&gt; for" in t for t in texts)


def test_required_marked_and_sections_shown_as_headings() -> None:
    form = SchemaForm(SCHEMA)
    assert form.fields["query"].input.description == "Query *"
    assert form.fields["notes"].input.description == "Notes"
    headings = [w.value for w in form.widget.children if isinstance(w, widgets.HTML)]
    assert any("Basics" in h for h in headings)
    assert any("Advanced" in h for h in headings)


def test_string_list_one_per_line_and_json_parsed() -> None:
    form = SchemaForm(SCHEMA)
    form.fields["urls"].input.value = "https://x.example\n\n  https://y.example  \n"
    form.fields["headers"].input.value = '{"Accept": "text/html"}'
    value, errors = form.value()
    assert errors == {}
    assert value["urls"] == ["https://x.example", "https://y.example"]
    assert value["headers"] == {"Accept": "text/html"}


def test_messages_appear_beside_the_bad_fields_and_nothing_is_sent() -> None:
    form = SchemaForm(SCHEMA)
    form.fields["query"].input.value = ""
    form.fields["headers"].input.value = "{not json"
    with pytest.raises(InputError, match="'query' is required"):
        form.payload()
    assert "required" in form.fields["query"].error.value
    assert "not valid JSON" in form.fields["headers"].error.value
    assert form.fields["pages"].error.value == ""
    form.fields["query"].input.value = "x"
    form.fields["headers"].input.value = "[1]"  # JSON, but not an object
    with pytest.raises(InputError, match="'headers' must be object"):
        form.payload()
    assert form.fields["query"].error.value == ""


def test_secret_is_kept_in_python_and_never_in_widget_state() -> None:
    form = SchemaForm(SCHEMA)
    field = form.fields["apiKey"]
    field.input.value = "s3cret-value"
    assert field.input.value == ""  # emptied as soon as it reached the kernel
    assert field.secret == "s3cret-value"
    assert json.loads(form.payload().content)["apiKey"] == "s3cret-value"
    assert form.masked(form.value()[0])["apiKey"] == SECRET_MASK
    state = json.dumps([w.get_state() for w in _all_widgets(form.widget)], default=str)
    assert "s3cret-value" not in state


@pytest.mark.parametrize(("prop", "value", "message"), [
    ({"type": "integer"}, 1.5, "must be integer"),
    ({"type": "integer"}, True, "must be integer"),
    ({"type": "number"}, "1", "must be number"),
    ({"type": "boolean"}, 1, "must be boolean"),
    ({"type": "array"}, {}, "must be array"),
    ({"type": "string", "enum": ["a", "b"]}, "c",
     'must be equal to one of the allowed values: "a", "b"'),
    ({"type": "integer", "minimum": 2}, 1, "must be >= 2"),
    ({"type": "number", "maximum": 2}, 2.5, "must be <= 2"),
    ({"type": "string", "pattern": "^[a-z]+$"}, "A1", "must match pattern ^[a-z]+$"),
    ({"type": "string", "minLength": 3}, "ab", "must be >= 3 characters long"),
    ({"type": "string", "maxLength": 1}, "ab", "must be <= 1 characters long"),
    ({"type": "array", "minItems": 1}, [], "must be >= 1 items"),
    ({"type": "array", "maxItems": 1}, [1, 2], "must be <= 1 items"),
    ({"type": "string"}, None, "must not be null"),
])
def test_validate_input_names_the_broken_rule(prop: dict[str, Any], value: Any,
                                              message: str) -> None:
    errors = validate_input({"properties": {"f": prop}}, {"f": value})
    assert message in errors["f"]


def test_validate_input_accepts_valid_and_nullable_values() -> None:
    schema = {"required": ["a"], "properties": {
        "a": {"type": "integer", "minimum": 0}, "b": {"type": "string", "nullable": True}}}
    assert validate_input(schema, {"a": 0, "b": None}) == {}
    assert validate_input(schema, {"b": "x"}) == {"a": "is required"}


def _all_widgets(root: Any) -> list[Any]:
    found = [root]
    for child in getattr(root, "children", ()):
        found += _all_widgets(child)
    return found


def test_without_a_schema_the_whole_input_is_one_json_object() -> None:
    form = SchemaForm({})
    assert form.value() == ({}, {})
    form.whole.input.value = '{"q": [1, 2]}'  # type: ignore[union-attr]
    assert json.loads(form.payload().content) == {"q": [1, 2]}
    form.whole.input.value = "[1]"  # type: ignore[union-attr]
    with pytest.raises(InputError, match="'INPUT' must be a JSON object"):
        form.payload()
    assert "must be a JSON object" in form.whole.error.value  # type: ignore[union-attr]


# -- the input schema as JSON Schema -----------------------------------------------------

NESTED = {"required": ["startUrls"], "properties": {
    "startUrls": {"type": "array", "items": {
        "type": "object", "required": ["url"],
        "properties": {"url": {"type": "string", "pattern": "^https?://"},
                       "method": {"type": "string", "enum": ["GET", "POST"]}}}},
    "limits": {"type": "object", "properties": {"pages": {"type": "integer", "minimum": 1}}},
}}


@pytest.mark.parametrize(("value", "path", "message"), [
    ({"startUrls": [{"url": "https://a"}, {}]}, ["startUrls", "1", "url"], "is required"),
    ({"startUrls": [{"url": "ftp://a"}]}, ["startUrls", "0", "url"],
     "must match pattern ^https?://"),
    ({"startUrls": [{"url": "http://a", "method": "PUT"}]}, ["startUrls", "0", "method"],
     'must be equal to one of the allowed values: "GET", "POST"'),
    ({"startUrls": [], "limits": {"pages": 0}}, ["limits", "pages"], "must be >= 1"),
    ({"startUrls": None}, ["startUrls"], "is required"),
])
def test_nested_objects_and_array_items_are_checked(value: dict[str, Any], path: list[str],
                                                    message: str) -> None:
    assert input_errors(NESTED, value)[0] == (path, message)
    inner = ".".join(path[1:])
    assert validate_input(NESTED, value)[path[0]] == (f"{inner} {message}" if inner
                                                      else message)


def test_the_runtime_answers_with_the_whole_path() -> None:
    from apify_magic.local.errors import ApiError
    from apify_magic.local.inputs import prepare

    with pytest.raises(ApiError) as caught:
        prepare(NESTED, b'{"startUrls": [{"url": "x"}]}', "application/json")
    assert caught.value.message == ("Input is not valid: Field input.startUrls.0.url must "
                                    "match pattern ^https?://")


def test_messages_never_quote_the_value() -> None:
    secret = "s3cret-s3cret"
    schema = {"properties": {"key": {"type": "array", "uniqueItems": True, "isSecret": True},
                             "other": {"type": "object", "additionalProperties": False}}}
    errors = validate_input(schema, {"key": [secret, secret], "other": {secret: 1}})
    assert set(errors) == {"key", "other"} and secret not in json.dumps(errors)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=20)
_keywords = st.sampled_from(["type", "properties", "items", "required", "enum", "minimum",
                             "maximum", "minLength", "maxItems", "pattern", "nullable",
                             "additionalProperties", "uniqueItems", "multipleOf", "default"])
_schema = st.recursive(
    st.dictionaries(_keywords, _json, max_size=5),
    lambda inner: st.dictionaries(_keywords, inner | _json
                                  | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                                  max_size=5),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_schema, st.dictionaries(st.text(max_size=6), _json, max_size=4))
def test_any_schema_and_any_input_give_messages_not_exceptions(schema: dict[str, Any],
                                                              value: dict[str, Any]) -> None:
    errors = validate_input(schema, value)
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items())
    required = schema.get("required")
    names = {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()
    assert set(errors) <= set(value) | names


_form_keys = st.sampled_from(["type", "editor", "enum", "enumTitles", "default", "prefill",
                              "minimum", "maximum", "isSecret", "title", "description",
                              "sectionCaption", "items", "properties", "nullable"])
_form_prop = st.dictionaries(_form_keys, _json | st.sampled_from(
    ["string", "integer", "number", "boolean", "array", "object", "stringList", "json",
     "textarea", "select", "hidden"]), max_size=5)
_form_schema = st.fixed_dictionaries(
    {"properties": st.dictionaries(st.text(max_size=4), _form_prop | _json, max_size=4)},
    optional={"required": _json, "title": _json})


@settings(max_examples=1500, deadline=None)
@given(_form_schema)
def test_any_input_schema_gives_a_form_never_a_crash(schema: dict[str, Any]) -> None:
    form = SchemaForm(schema)
    value, errors = form.value()
    assert isinstance(value, dict) and all(isinstance(m, str) for m in errors.values())
    with contextlib.suppress(InputError):  # a required field without a value is said so
        form.payload()


def test_malformed_keys_of_a_property_are_dropped_and_the_rest_works() -> None:
    form = SchemaForm({"properties": {
        "ok": {"type": "string", "default": "x"},
        "odd": {"type": "integer", "editor": "select", "enum": [1, 2], "default": 3,
                "enumTitles": ["one", "two"]},
        "bad": {"type": "string", "enum": [[1], {"a": 2}]},  # dropped: not scalars
    }})
    assert list(form.fields) == ["ok", "odd", "bad"]
    assert form.value()[0]["ok"] == "x"
