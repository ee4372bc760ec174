"""Checking an INPUT against an Actor's input schema: one set of rules for both sides.

The panel's form uses them to put a message beside a field before anything is sent; the
local runtime uses them to answer 400 `invalid-input` as the platform does
(`Input is not valid: Field input.count must be >= 1`). Messages are the platform's
wording after the field name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


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


def validate_input(schema: Mapping[str, Any], value: Mapping[str, Any]) -> dict[str, str]:
    """Field name -> what is wrong, for every field of `value` that breaks the schema;
    required fields first, then in the schema's order."""
    props = properties(schema)
    errors: dict[str, str] = {}
    for name in schema.get("required") or []:
        if value.get(name) is None and not (props.get(name) or {}).get("nullable"):
            errors[name] = "is required"
    for name, prop in props.items():
        if name in value and name not in errors:
            message = check_value(prop, value[name])
            if message:
                errors[name] = message
    return errors


def check_value(prop: Mapping[str, Any], value: Any) -> str | None:
    """The first rule of one property that `value` breaks, or None."""
    if value is None:
        return None if prop.get("nullable") else "must not be null"
    kind = prop.get("type")
    allowed = _TYPES.get(kind) if isinstance(kind, str) else None
    # JSON booleans are Python ints; a number field must not accept `true`.
    if allowed and (not isinstance(value, allowed)
                    or (kind != "boolean" and isinstance(value, bool))):
        return f"must be {kind}"
    enum = prop.get("enum")
    if isinstance(enum, list) and value not in enum:
        return ("must be equal to one of the allowed values: "
                + ", ".join(json.dumps(v) for v in enum))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _bounds(value, prop.get("minimum"), prop.get("maximum"), "")
    if isinstance(value, str):
        found = _bounds(len(value), prop.get("minLength"), prop.get("maxLength"),
                        " characters long")
        pattern = prop.get("pattern")
        # Schema patterns are unanchored, like re.search.
        if not found and isinstance(pattern, str) and re.search(pattern, value) is None:
            found = f"must match pattern {pattern}"
        return found
    if isinstance(value, list):
        return _bounds(len(value), prop.get("minItems"), prop.get("maxItems"), " items")
    return None


def _bounds(size: float, low: Any, high: Any, unit: str) -> str | None:
    if isinstance(low, (int, float)) and size < low:
        return f"must be >= {low}{unit}"
    if isinstance(high, (int, float)) and size > high:
        return f"must be <= {high}{unit}"
    return None
