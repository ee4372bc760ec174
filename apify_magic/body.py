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
from collections.abc import Callable, Mapping
from typing import Any

from apify_magic.errors import InputError

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
BINARY_TYPE = "application/octet-stream"

_PLACEHOLDER = re.compile(r"(\\?)\{\{\s*([^{}]*?)\s*\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# RFC 9110: type "/" subtype *( OWS ";" OWS parameter ), tokens and quoted strings in ASCII.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf'^{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=({_TOKEN}|"[ !#-\[\]-~]*"))*$')
# The platform refuses a larger request body with 413; so does the magic, before sending.
MAX_INPUT_BYTES = 9_437_184


@dataclasses.dataclass(frozen=True)
class Payload:
    content: bytes
    content_type: str

    def __repr__(self) -> str:
        return f"Payload({len(self.content)} bytes, {self.content_type!r})"


def from_cell(body: str, namespace: Mapping[str, Any], content_type: str | None) -> Payload:
    """The INPUT of a `%%apify_run` cell."""
    if content_type:
        content_type = check_content_type(content_type)
        # IPython ends every cell body with a newline the user did not type.
        verbatim = body[:-1] if body.endswith("\n") else body
        return _sized(Payload(_utf8(verbatim, "the cell body"), content_type))
    if not body.strip():
        return Payload(b"{}", JSON_TYPE)
    check_template(body)
    return render(body, lambda name: lookup(name, namespace))


def check_template(body: str) -> None:
    """InputError unless the body is JSON once each `{{ }}` holds a value."""
    _check_json(_blank_placeholders(body))


def render(body: str, resolve: Callable[[str], Any]) -> Payload:
    """A checked template (`check_template`) with each `{{ name }}` replaced by
    `resolve(name)` as JSON; InputError when the result is no JSON or too large."""
    text = _PLACEHOLDER.sub(lambda m: _insert(m, resolve), body)
    try:
        json.loads(text)
    except RecursionError:
        raise _too_deep("INPUT") from None
    except ValueError as err:
        # The template parsed, so an inserted value broke it: usually a `{{ x }}` inside
        # a string, where the value's own quotes end the string.
        raise InputError(
            f"INPUT is not valid JSON after inserting variables: {err}",
            hint="put {{ name }} where a JSON value goes, not inside a string") from None
    return _sized(Payload(_utf8(text, "INPUT"), JSON_TYPE))


def check_content_type(value: str) -> str:
    """A media type as HTTP carries it (`type/subtype; param=value`), or InputError: a
    header with a control or non-ASCII character cannot be sent at all."""
    value = value.strip()
    if not _MEDIA_TYPE.match(value):
        raise InputError(
            f"--content-type {value!r} is not a media type",
            hint="use type/subtype with optional ;param=value, in ASCII, such as "
                 "text/csv or 'text/plain; charset=utf-8'")
    return value


def _sized(payload: Payload) -> Payload:
    if len(payload.content) > MAX_INPUT_BYTES:
        raise InputError(
            f"INPUT is {len(payload.content):,} bytes, over the platform's limit of "
            f"{MAX_INPUT_BYTES:,} bytes; nothing was sent",
            hint="put large data in a key-value store or dataset and pass its id")
    return payload


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(
            f"{what} holds text that is not valid Unicode (a lone surrogate, "
            f"{text[err.start]!r} at character {err.start})",
            hint="such text usually comes from decoding bytes with errors='surrogateescape'; "
                 "decode them properly, or send bytes with -i") from None


def _too_deep(what: str) -> InputError:
    return InputError(f"{what} is nested too deeply to be read or sent as JSON",
                      hint="flatten the structure: real INPUTs are a few levels deep")


def from_variable(name: str, namespace: Mapping[str, Any], content_type: str | None) -> Payload:
    """The INPUT of `-i name`, encoded as the official client does."""
    value = lookup(name, namespace)
    content_type = check_content_type(content_type) if content_type else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _sized(Payload(bytes(value), content_type or BINARY_TYPE))
    if isinstance(value, io.IOBase):
        try:
            data = value.read()
        except (OSError, ValueError) as err:  # closed, write-only, or not readable
            raise InputError(f"-i {name}: the file cannot be read ({err})",
                             hint="open it for reading, or read it into a variable") from None
        raw = (_utf8(data, f"-i {name}") if isinstance(data, str)
               else bytes(data or b""))
        return _sized(Payload(raw, content_type or BINARY_TYPE))
    if isinstance(value, str):
        return _sized(Payload(_utf8(value, f"-i {name}"), content_type or TEXT_TYPE))
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except RecursionError:
        raise _too_deep(f"-i {name}") from None
    except (TypeError, ValueError) as err:
        raise InputError(
            f"-i {name}: a {type(value).__name__} cannot be sent as JSON INPUT ({err})",
            hint="pass a dict or list (JSON), a str (text) or bytes (binary)") from None
    return _sized(Payload(_utf8(text, f"-i {name}"), content_type or JSON_TYPE))


def lookup(name: str, namespace: Mapping[str, Any]) -> Any:
    if not _NAME.match(name):
        raise InputError(f"{name!r} is not a variable name")
    if name not in namespace:
        raise InputError(f"name {name!r} is not defined in the notebook",
                         hint=f"run the cell that defines {name} first")
    return namespace[name]


def placeholders(body: str) -> list[str]:
    """The names inside the body's `{{ }}` (not the escaped `\\{{`), in order."""
    return [m.group(2) for m in _PLACEHOLDER.finditer(body) if not m.group(1)]


def _insert(match: re.Match[str], resolve: Callable[[str], Any]) -> str:
    escaped, name = match.group(1), match.group(2)
    if escaped:
        return match.group(0)[1:]
    value = resolve(name)
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except RecursionError:
        raise _too_deep(f"{{{{ {name} }}}}") from None
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
    except RecursionError:
        raise _too_deep("INPUT") from None
    except json.JSONDecodeError as err:
        # An error at the very end (an unclosed `{`) is on the line after the last one.
        lines = text.split("\n")
        line = lines[err.lineno - 1] if 0 < err.lineno <= len(lines) else ""
        raise InputError(
            f"INPUT is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}\n"
            f"  {line.rstrip()}\n  {' ' * (err.colno - 1)}^",
            hint="fix the cell body, or pass --content-type to send it verbatim") from None
