"""INPUT as the platform prepares it: the input schema's defaults merged, then validated.

The SDK applies no defaults off the platform, so the runtime must. Messages follow the
platform's form, `Input is not valid: Field input.count must be >= 1`.
"""

from __future__ import annotations

import json
from typing import Any

from apify_magic.input_schema import input_errors, with_defaults
from apify_magic.local.errors import ApiError


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
    if value is None:  # apify-client sends `null` for no input: the platform runs on defaults
        value = {}
    if not isinstance(value, dict):
        raise _invalid("INPUT must be a JSON object")
    merged = with_defaults(schema, value)
    validate(schema, merged)
    return json.dumps(merged, ensure_ascii=False).encode(), content_type


def validate(schema: dict[str, Any], value: dict[str, Any]) -> None:
    """Raise the platform's 400 `invalid-input` for the first broken rule."""
    for path, message in input_errors(schema, value):
        raise _invalid(f"Field input.{'.'.join(path)} {message}")
