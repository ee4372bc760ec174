"""INPUT as the platform prepares it: the input schema's defaults merged, then validated.

The SDK applies no defaults off the platform, so the runtime must. Messages follow the
platform's form, `Input is not valid: Field input.count must be >= 1`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from apify_magic.local.errors import ApiError

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid-input", f"Input is not valid: {message}")


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def prepare(schema: dict[str, Any] | None, body: bytes, content_type: str) -> tuple[bytes, str]:
    """The INPUT record to store: body and content type, after defaults and validation.

    Without a schema, or with a body that is not JSON by its Content-Type (text, bytes,
    a form), the body is stored as sent. A JSON body must be an object (an empty body
    counts as `{}`) and gets the schema's defaults and checks.
    """
    content_type = content_type or "application/json"
    if schema is None or (body.strip() and not is_json(content_type)):
        return body, content_type
    try:
        value = json.loads(body) if body.strip() else {}
    except ValueError as err:
        raise _invalid(f"INPUT is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise _invalid("INPUT must be a JSON object")
    merged = with_defaults(schema, value)
    validate(schema, merged)
    return json.dumps(merged, ensure_ascii=False).encode(), content_type


def with_defaults(schema: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    merged = dict(value)
    for name, prop in _properties(schema).items():
        if name not in merged and "default" in prop:
            merged[name] = prop["default"]
    return merged


def _properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    props = schema.get("properties")
    if not isinstance(props, dict):
        return {}
    return {str(k): v for k, v in props.items() if isinstance(v, dict)}


def validate(schema: dict[str, Any], value: dict[str, Any]) -> None:
    for name in schema.get("required") or []:
        if value.get(name) is None:
            raise _invalid(f"Field input.{name} is required")
    for name, prop in _properties(schema).items():
        if name in value:
            _check_field(f"input.{name}", prop, value[name])


def _check_field(field: str, prop: dict[str, Any], item: Any) -> None:
    if item is None:
        if prop.get("nullable"):
            return
        raise _invalid(f"Field {field} must not be null")
    kind = prop.get("type")
    if isinstance(kind, str) and kind in _TYPES:
        allowed = _TYPES[kind]
        # JSON booleans are Python ints; a number field must not accept `true`.
        if (isinstance(item, bool) and kind != "boolean") or not isinstance(item, allowed):
            raise _invalid(f"Field {field} must be {kind}")
    if "enum" in prop and isinstance(prop["enum"], list) and item not in prop["enum"]:
        raise _invalid(f"Field {field} must be equal to one of the allowed values: "
                       + ", ".join(json.dumps(v) for v in prop["enum"]))
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        _check_bounds(field, item, prop.get("minimum"), prop.get("maximum"), "")
    if isinstance(item, str):
        _check_bounds(field, len(item), prop.get("minLength"), prop.get("maxLength"),
                      " characters long")
        pattern = prop.get("pattern")
        if isinstance(pattern, str) and re.search(pattern, item) is None:
            raise _invalid(f"Field {field} must match pattern {pattern}")
    if isinstance(item, list):
        _check_bounds(field, len(item), prop.get("minItems"), prop.get("maxItems"), " items")


def _check_bounds(field: str, size: float, low: Any, high: Any, unit: str) -> None:
    if isinstance(low, (int, float)) and size < low:
        raise _invalid(f"Field {field} must be >= {low}{unit}")
    if isinstance(high, (int, float)) and size > high:
        raise _invalid(f"Field {field} must be <= {high}{unit}")
