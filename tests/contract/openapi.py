"""Check one HTTP exchange against Apify's OpenAPI spec (the copy in `apify-openapi/`).

`check(method, path, status, content_type, body)` finds the spec's operation for a concrete
request (`/v2/acts/...` is the legacy twin of `/v2/actors/...`; a literal segment such as
`runs/last` wins over `runs/{runId}`), checks the status is one the operation declares,
and validates a JSON body against the declared schema (OpenAPI 3.1: JSON Schema 2020-12).
Other bodies (records, logs, csv/jsonl items) get what can be checked of them: status and
content type. Any 4xx/5xx must be the platform's `{"error": {"type", "message"}}` with a
type from its ErrorType enum.

Where the spec is narrower than the platform, `SPEC_TOO_STRICT` says so and the check is
relaxed there instead of the runtime being bent to the spec.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft202012Validator, FormatChecker

SPEC_PATH = Path(__file__).parent / "apify-openapi" / "bundled.json.gz"
METHODS = ("get", "post", "put", "delete", "patch", "head", "options")
MAX_PROBLEMS = 10
ITEMS = "/v2/datasets/{datasetId}/items"
ACTOR_ITEMS = "/v2/actors/{actorId}/run-sync-get-dataset-items"
TASK_ITEMS_NOTE = ("a task's run-sync-get-dataset-items is declared as a JSON object, but it "
                   "answers the dataset's items (an array) as the Actor's twin declares")

# Where the spec declares less than the platform answers: (path suffix, reason).
# The body of a matching 2xx is checked only for what its content type says it is.
SPEC_TOO_STRICT = [
    ("/run-sync-get-dataset-items",
     "run-sync-get-dataset-items takes the dataset items' `format` (csv, jsonl, xml, ...) "
     "but declares only JSON for its 201; other formats are checked as dataset items GET "
     "declares them"),
    ("/records/{recordKey}",
     "a record GET is declared as a JSON object, but a record is any JSON value or bytes, "
     "served with the content type it was stored with"),
    ("/run-sync",
     "run-sync answers the OUTPUT record as stored (any JSON value, any content type, or "
     "an empty 201 when the Actor wrote none); the spec declares a JSON object"),
]


# Statuses the platform answers on any operation of a kind, declared on most but not all.
SPEC_TOO_STRICT_STATUSES = {
    413: "a body over the size limit is refused with 413 request-too-large by every "
         "operation that takes one; the spec declares 413 on most of them, not on all",
}


@dataclasses.dataclass
class Operation:
    method: str
    template: str
    operation_id: str
    responses: dict[str, Any]
    # The spec's method key: `get` for a HEAD the spec declares only as GET.
    key: str


@dataclasses.dataclass
class Result:
    """What `check` found: the operation (None if the spec has none), ok, and why not."""

    method: str
    path: str
    status: int
    operation_id: str | None
    template: str | None
    ok: bool
    problems: list[str]
    # The spec has this path (with some method); False for paths it lacks altogether.
    spec_has_path: bool
    notes: list[str] = dataclasses.field(default_factory=list)


@functools.lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    with gzip.open(SPEC_PATH) as f:
        doc: dict[str, Any] = json.load(f)
    return doc


@functools.lru_cache(maxsize=1)
def _templates() -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(t.strip("/").split("/")), t) for t in spec()["paths"]]


@functools.lru_cache(maxsize=1)
def error_types() -> frozenset[str]:
    """The ErrorType enum, as the spec's error responses carry it."""
    for schema in _walk(spec()["paths"]):
        if schema.get("title") == "ErrorType" and "enum" in schema:
            return frozenset(schema["enum"])
    raise LookupError("the spec has no ErrorType enum")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def normalise(path: str) -> str:
    """The spec's form of a request path: no query, `/v2/acts` as `/v2/actors`."""
    path = path.split("?", 1)[0]
    if path == "/v2/acts" or path.startswith("/v2/acts/"):
        path = "/v2/actors" + path[len("/v2/acts"):]
    if len(path) > 1:
        path = path.rstrip("/")
    return path


def match_path(path: str) -> str | None:
    """The spec's path template for a concrete path; literal segments beat `{param}`."""
    segments = [unquote(s) for s in normalise(path).strip("/").split("/")]
    best: tuple[tuple[bool, ...], str] | None = None
    for parts, template in _templates():
        if len(parts) != len(segments):
            continue
        rank = []
        for part, segment in zip(parts, segments, strict=True):
            is_param = part.startswith("{") and part.endswith("}")
            if not is_param and part != segment:
                break
            if is_param and not segment:
                break
            rank.append(is_param)
        else:
            key = tuple(rank)
            # Lexicographic: the first segment where two templates differ decides.
            if best is None or key < best[0]:
                best = (key, template)
    return best[1] if best else None


def find_operation(method: str, path: str) -> Operation | None:
    """The operation a request names; HEAD falls back to GET (RFC 9110: GET without body)."""
    template = match_path(path)
    if template is None:
        return None
    item = spec()["paths"][template]
    name = method.lower()
    if name == "head" and "head" not in item:
        name = "get"
    op = item.get(name)
    if not isinstance(op, dict):
        return None
    return Operation(method.upper(), template, op.get("operationId", f"{name} {template}"),
                     op.get("responses", {}), name)


def _declared(responses: dict[str, Any], status: int) -> tuple[str, dict[str, Any]] | None:
    code = str(status)
    for key in (code, f"{code[0]}XX", f"{code[0]}xx", "default"):
        if key in responses:
            return key, responses[key]
    return None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _content_for(content: dict[str, Any], media: str) -> tuple[str, dict[str, Any]] | None:
    if media in content:
        return media, content[media]
    family = media.split("/", 1)[0] + "/*"
    for key in (family, "*/*"):
        if key in content:
            return key, content[key]
    return None


def _nullable(schema: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as 3.1's type union, should a schema still carry it."""
    if isinstance(schema, list):
        return [_nullable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _nullable(v) for k, v in schema.items()}
    if out.pop("nullable", False) is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


_FORMATS = FormatChecker(formats=())
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@_FORMATS.checks("date-time")
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


@functools.lru_cache(maxsize=1024)
def _validator(template: str, key: str, status_key: str, media: str) -> Draft202012Validator:
    content = spec()["paths"][template][key]["responses"][status_key]["content"]
    schema = content[media].get("schema", {})
    # A recursive `$ref` was cut to `{}` (with an `x-cyclic-ref` note) when the spec was
    # bundled: it accepts any value there, which is as much as can be said of it.
    return Draft202012Validator(_nullable(schema), format_checker=_FORMATS)


def _too_strict(template: str) -> str | None:
    for suffix, reason in SPEC_TOO_STRICT:
        if template.endswith(suffix):
            return reason
    return None


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _error_problems(body: bytes, media: str) -> list[str]:
    if not _is_json(media):
        return [f"error body is not JSON (content type {media or 'none'!r})"]
    try:
        doc = json.loads(body)
    except ValueError:
        return ["error body is not valid JSON"]
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        return ['error body is not {"error": {...}}']
    problems = []
    if not isinstance(error.get("message"), str):
        problems.append("error.message is missing or not a string")
    kind = error.get("type")
    if not isinstance(kind, str):
        problems.append("error.type is missing or not a string")
    elif kind not in error_types():
        problems.append(f"error.type {kind!r} is not in the spec's ErrorType enum")
    return problems


def check(method: str, path: str, status: int, content_type: str | None, body: bytes,
          *, truncated: bool = False) -> Result:
    """Check one response to `method path` against the spec; see the module's doc."""
    method = method.upper()
    media = media_type(content_type)
    template = match_path(path)
    op = find_operation(method, path)
    result = Result(method, path, status, op.operation_id if op else None,
                    template, True, [], spec_has_path=template is not None)
    problems = result.problems

    if status >= 400 and method != "HEAD":
        problems += _error_problems(body, media)

    if op is None:
        # Not-found answers to what the spec lacks are right; anything else is not in it.
        if status < 400:
            problems.append(f"{status} answered to {method} {normalise(path)}, which the spec "
                            "does not have")
        result.ok = not problems
        return result

    declared = _declared(op.responses, status)
    if declared is None and status in SPEC_TOO_STRICT_STATUSES and method != "GET":
        result.notes.append(f"spec too strict: {SPEC_TOO_STRICT_STATUSES[status]}")
        result.ok = not problems
        return result
    if declared is None:
        problems.append(f"status {status} is not declared (declared: "
                        f"{', '.join(sorted(op.responses))})")
        result.ok = not problems
        return result
    status_key, response = declared
    if status >= 400 and problems:
        result.ok = False
        return result  # the envelope's problems say it; the schema would repeat them
    content = response.get("content") or {}
    lenient = _too_strict(op.template) if 200 <= status < 300 else None
    schema_template = op.template

    if method == "HEAD" or status in (204, 304) or (300 <= status < 400 and not content):
        if status == 204 and body:
            problems.append("204 with a body")
        result.ok = not problems
        return result

    if not content:
        if body:
            problems.append(f"a body ({media or 'no content type'}) where the spec declares "
                            "none")
        result.ok = not problems
        return result

    if lenient and op.template.endswith("/run-sync-get-dataset-items"):
        if op.template.startswith("/v2/actor-tasks/"):
            # The task twin declares a JSON object where the Actor's declares the items'
            # array: it answers what the Actor's answers.
            result.notes.append(f"spec too strict: {TASK_ITEMS_NOTE}")
            content = spec()["paths"][ACTOR_ITEMS][op.key]["responses"]["201"]["content"]
            schema_template = ACTOR_ITEMS
        if _content_for(content, media) is None:
            result.notes.append(f"spec too strict: {lenient}")
            content = spec()["paths"][ITEMS]["get"]["responses"]["200"]["content"]
        lenient = None
    if lenient:
        result.notes.append(f"spec too strict: {lenient}")
        if _is_json(media) and not truncated and body:
            try:
                json.loads(body)
            except ValueError:
                problems.append("body is labelled JSON but does not parse")
        result.ok = not problems
        return result

    found = _content_for(content, media)
    if found is None:
        problems.append(f"content type {media or 'none'!r} is not declared for {status_key} "
                        f"(declared: {', '.join(sorted(content))})")
        result.ok = not problems
        return result
    media_key, _ = found

    if not _is_json(media_key if media_key != "*/*" else media):
        result.ok = not problems
        return result
    if truncated:
        result.notes.append("body truncated in the trace: not validated")
        result.ok = not problems
        return result
    try:
        doc = json.loads(body)
    except ValueError:
        problems.append("body is not valid JSON")
        result.ok = False
        return result
    errors = sorted(_validator(schema_template, op.key, status_key, media_key)
                    .iter_errors(doc),
                    key=lambda e: list(e.absolute_path))
    for error in errors[:MAX_PROBLEMS]:
        # Array indexes as [*]: the same fault in every item is one problem.
        where = re.sub(r"\[\d+\]", "[*]", error.json_path)
        problems.append(f"{where}: {_short(error.message)}")
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"... and {len(errors) - MAX_PROBLEMS} more schema errors")
    result.ok = not problems
    return result
