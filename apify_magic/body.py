"""The INPUT a run gets: the cell body or a notebook variable, as bytes and a content type.

A cell body is JSON by default. `{{ name }}` inserts the notebook variable `name` as JSON
(`{{ a.b }}` and `{{ a["k"] }}` forms are not evaluated: only plain names, so a body never
runs code). `\\{{` sends a literal `{{`. With `--content-type` the body goes verbatim.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Mapping
from typing import Any

from apify_magic.errors import InputError

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
BINARY_TYPE = "application/octet-stream"

_PLACEHOLDER = re.compile(r"(\\?)\{\{\s*([^{}]*?)\s*\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class Payload:
    content: bytes
    content_type: str

    def __repr__(self) -> str:
        return f"Payload({len(self.content)} bytes, {self.content_type!r})"


def from_cell(body: str, namespace: Mapping[str, Any], content_type: str | None) -> Payload:
    """The INPUT of a `%%apify_run` cell."""
    if content_type:
        # IPython ends every cell body with a newline the user did not type.
        verbatim = body[:-1] if body.endswith("\n") else body
        return Payload(verbatim.encode("utf-8"), content_type)
    if not body.strip():
        return Payload(b"{}", JSON_TYPE)
    _check_json(_blank_placeholders(body))
    text = _PLACEHOLDER.sub(lambda m: _insert(m, namespace), body)
    try:
        json.loads(text)
    except ValueError as err:
        # The template parsed, so an inserted value broke it: usually a `{{ x }}` inside
        # a string, where the value's own quotes end the string.
        raise InputError(
            f"INPUT is not valid JSON after inserting variables: {err}",
            hint="put {{ name }} where a JSON value goes, not inside a string") from None
    return Payload(text.encode("utf-8"), JSON_TYPE)


def from_variable(name: str, namespace: Mapping[str, Any], content_type: str | None) -> Payload:
    """The INPUT of `-i name`, encoded as the official client does."""
    value = lookup(name, namespace)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Payload(bytes(value), content_type or BINARY_TYPE)
    if isinstance(value, io.IOBase):
        data = value.read()
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        return Payload(raw, content_type or BINARY_TYPE)
    if isinstance(value, str):
        return Payload(value.encode("utf-8"), content_type or TEXT_TYPE)
    try:
        raw = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as err:
        raise InputError(
            f"-i {name}: a {type(value).__name__} cannot be sent as JSON INPUT ({err})",
            hint="pass a dict or list (JSON), a str (text) or bytes (binary)") from None
    return Payload(raw, content_type or JSON_TYPE)


def lookup(name: str, namespace: Mapping[str, Any]) -> Any:
    if not _NAME.match(name):
        raise InputError(f"{name!r} is not a variable name")
    if name not in namespace:
        raise InputError(f"name {name!r} is not defined in the notebook",
                         hint=f"run the cell that defines {name} first")
    return namespace[name]


def _insert(match: re.Match[str], namespace: Mapping[str, Any]) -> str:
    escaped, name = match.group(1), match.group(2)
    if escaped:
        return match.group(0)[1:]
    value = lookup(name, namespace)
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise InputError(f"{{{{ {name} }}}}: a {type(value).__name__} is not JSON ({err})",
                         hint="insert a dict, list, str, number, bool or None") from None


def _blank_placeholders(body: str) -> str:
    # Same-width stand-ins keep every line and column where the user typed them, so a
    # syntax error points at the user's own text.
    def blank(m: re.Match[str]) -> str:
        if m.group(1):
            return " " + m.group(0)[1:]  # `\{{` is no JSON escape: drop it, keep the width
        return "0" + " " * (len(m.group(0)) - 1)
    return _PLACEHOLDER.sub(blank, body)


def _check_json(text: str) -> None:
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        line = text.splitlines()[err.lineno - 1] if text.splitlines() else ""
        raise InputError(
            f"INPUT is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}\n"
            f"  {line.rstrip()}\n  {' ' * (err.colno - 1)}^",
            hint="fix the cell body, or pass --content-type to send it verbatim") from None
