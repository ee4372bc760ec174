"""Checking an INPUT against an Actor's input schema: one set of rules for both sides.

The platform checks INPUT against the input schema as JSON Schema (nested objects, array
items, patterns, enums, `required`); so do we, with `jsonschema`, the reference validator.
An Apify input schema is JSON Schema plus UI keys (`editor`, `prefill`, `sectionCaption`...)
and `nullable`; `json_schema` keeps the validation keywords whose values are well formed
(an Actor's schema may be wrong, and a wrong schema must never crash a run) and turns
`nullable` into a `null` type.

The panel's form uses the messages to put one beside a field before anything is sent; the
local runtime answers 400 `invalid-input` with them as the platform does
(`Input is not valid: Field input.count must be >= 1`). Messages are the platform's
wording after the field's path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})
_NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                    "multipleOf")
_COUNT_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties",
                   "maxProperties")
# Which rule a value breaks is told first by its type, then its allowed values, then the rest.
_KEYWORD_ORDER = {"required": 0, "type": 1, "enum": 2, "const": 2}
MAX_DEPTH = 32


def properties(schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return {}
    return {str(k): v for k, v in props.items() if isinstance(v, dict)}


def with_defaults(schema: Mapping[str, Any], value: Mapping[str, Any]) -> dict[str, Any]:
    """`value` with each missing field's schema `default`, as the platform merges them."""
    merged = dict(value)
    for name, prop in properties(schema).items():
        if name not in merged and "default" in prop:
            merged[name] = prop["default"]
    return merged


def json_schema(prop: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """The JSON Schema of an input schema (or of one of its properties)."""
    out: dict[str, Any] = {}
    if depth > MAX_DEPTH:  # deeper than any real input: checked no further
        return out
    kind = prop.get("type")
    if isinstance(kind, str) and kind in _TYPES:
        out["type"] = kind
    elif isinstance(kind, list) and kind and all(isinstance(k, str) and k in _TYPES for k in kind):
        out["type"] = list(kind)
    for key in _NUMBER_KEYWORDS:
        value = prop.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                key != "multipleOf" or value > 0):
            out[key] = value
    for key in _COUNT_KEYWORDS:
        value = prop.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            out[key] = value
    pattern = prop.get("pattern")
    if isinstance(pattern, str) and _compiles(pattern):
        out["pattern"] = pattern
    for key in ("enum", "required"):
        value = prop.get(key)
        if isinstance(value, list) and (key == "enum" or all(isinstance(v, str) for v in value)):
            out[key] = list(value)
    if isinstance(prop.get("uniqueItems"), bool):
        out["uniqueItems"] = prop["uniqueItems"]
    if isinstance(prop.get("properties"), Mapping):
        out["properties"] = {str(k): json_schema(v, depth + 1)
                             for k, v in prop["properties"].items()
                             if isinstance(v, Mapping)}
    if isinstance(prop.get("items"), Mapping):
        out["items"] = json_schema(prop["items"], depth + 1)
    if isinstance(prop.get("additionalProperties"), bool):
        out["additionalProperties"] = prop["additionalProperties"]
    elif isinstance(prop.get("additionalProperties"), Mapping):
        out["additionalProperties"] = json_schema(prop["additionalProperties"], depth + 1)
    if prop.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def input_errors(schema: Mapping[str, Any], value: Mapping[str, Any]
                 ) -> list[tuple[list[str], str]]:
    """(path, what is wrong) for each broken rule: required fields first, then in the
    schema's order of fields, the type before anything else of the same place."""
    order = list(properties(schema))
    props = properties(schema)
    # A required field sent as null is missing, as the platform counts it (unless nullable).
    required = schema.get("required")
    required = required if isinstance(required, list) else []
    value = {k: v for k, v in value.items()
             if not (v is None and k in required and props.get(k, {}).get("nullable") is not True)}
    found = []
    for error in _validator(json.dumps(json_schema(schema), sort_keys=True)).iter_errors(value):
        path, message = _describe(error)
        if not path:
            continue
        top = order.index(path[0]) if path[0] in order else len(order)
        rank = (error.validator != "required", top, len(path),
                _KEYWORD_ORDER.get(str(error.validator), 3))
        found.append((rank, path, message))
    found.sort(key=lambda f: f[0])
    return [(path, message) for _, path, message in found]


def validate_input(schema: Mapping[str, Any], value: Mapping[str, Any]) -> dict[str, str]:
    """Field name -> what is wrong, for every field of `value` that breaks the schema; the
    first rule each breaks, with the place inside the field for nested ones."""
    errors: dict[str, str] = {}
    for path, message in input_errors(schema, value):
        inner = ".".join(path[1:])
        errors.setdefault(path[0], f"{inner} {message}" if inner else message)
    return errors


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


def _describe(error: ValidationError) -> tuple[list[str], str]:
    path = [str(p) for p in error.absolute_path]
    rule = str(error.validator)
    limit: Any = error.validator_value
    if rule == "required":
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        missing = next((r for r in limit if r not in instance), "")
        return [*path, str(missing)], "is required"
    if rule == "type":
        if error.instance is None:
            return path, "must not be null"
        kinds = [limit] if isinstance(limit, str) else [k for k in limit if k != "null"]
        return path, f"must be {' or '.join(kinds)}"
    if rule == "enum":
        allowed = ", ".join(json.dumps(v) for v in limit if v is not None)
        return path, f"must be equal to one of the allowed values: {allowed}"
    words = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
             "exclusiveMaximum": "<", "minLength": ">=", "maxLength": "<=",
             "minItems": ">=", "maxItems": "<=", "minProperties": ">=", "maxProperties": "<="}
    if rule in words:
        unit = (" characters long" if "Length" in rule else " items" if "Items" in rule
                else " properties" if "Properties" in rule else "")
        return path, f"must be {words[rule]} {limit}{unit}"
    # Never jsonschema's own message for the rest: it quotes the value, which may be secret.
    return path, {
        "pattern": f"must match pattern {limit}",
        "multipleOf": f"must be multiple of {limit}",
        "uniqueItems": "must not contain duplicate items",
        "additionalProperties": "must not have additional properties",
    }.get(rule, f"does not match the schema ({rule})")
