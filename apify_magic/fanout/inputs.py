"""The inputs of a map: elements of a list, dict or DataFrame, each rendered to one INPUT.

Everything here happens before the first run starts: every element is rendered and
checked, and one bad element is an `InputError` naming it, with nothing sent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from apify_magic import body
from apify_magic.errors import InputError, OptionError

ITEM = "item"
BATCH = "batch"


@dataclasses.dataclass(frozen=True)
class Job:
    """One run of the map: its label, INPUT, and the labels of the elements it holds."""

    label: Hashable
    payload: body.Payload
    members: tuple[Hashable, ...]


def elements(name: str, value: object) -> list[tuple[Hashable, Any]]:
    """(label, element) pairs: list positions, dict keys, or a DataFrame's index and rows
    as JSON-ready dicts (pandas' own JSON writer turns NaN to null and dates to ISO)."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    if type(value).__name__ == "DataFrame" and hasattr(value, "to_json"):
        frame: Any = value
        if not frame.index.is_unique:
            raise InputError(f"--over {name}: the DataFrame's index has duplicate labels",
                             hint="labels name the results: use a unique index "
                                  "(reset_index() gives one)")
        rows = json.loads(frame.to_json(orient="records", date_format="iso"))
        return list(zip(frame.index.tolist(), rows, strict=True))
    raise InputError(f"--over {name}: a {type(value).__name__} is not a list, dict or "
                     "DataFrame", hint="each element of a list, each value of a dict, or "
                                       "each row of a DataFrame is one INPUT")


def batches(pairs: list[tuple[Hashable, Any]], size: int
            ) -> list[tuple[Hashable, tuple[Hashable, ...], list[Any]]]:
    """(batch label, member labels, elements) for runs of `size` elements each: the
    label is the batch's number from 0."""
    return [(n, tuple(label for label, _ in chunk), [e for _, e in chunk])
            for n, chunk in enumerate(pairs[i:i + size] for i in range(0, len(pairs), size))]


def jobs(name: str, value: object, template: str | None, namespace: Mapping[str, Any],
         *, batch: int | None = None, content_type: str | None = None) -> list[Job]:
    """Every run's INPUT, all checked: `template` is a cell body (None: each element is
    the INPUT, encoded as `-i` would)."""
    pairs = elements(name, value)
    if not pairs:
        raise InputError(f"--over {name} is empty: there is nothing to run")
    if batch is not None:
        groups = batches(pairs, batch)
        units: list[tuple[Hashable, tuple[Hashable, ...], Any]] = [
            (label, members, chunk) for label, members, chunk in groups]
    else:
        units = [(label, (label,), element) for label, element in pairs]
    key = BATCH if batch is not None else ITEM
    if template is None:
        return [Job(label, _encoded(name, label, element, content_type), members)
                for label, members, element in units]
    if content_type:
        raise OptionError("--content-type applies to the line form; a cell body is a "
                          "JSON template")
    if template.strip():
        body.check_template(template)
        other = BATCH if key == ITEM else ITEM
        for found in body.placeholders(template):
            if found.split(".", 1)[0] == other:
                raise InputError(f"{{{{ {found} }}}}: use {{{{ {key} }}}} "
                                 + ("with --batch" if key == BATCH else "without --batch"))
    else:
        template = "{}"
    return [Job(label, _rendered(name, label, template, key, element, namespace), members)
            for label, members, element in units]


def _encoded(name: str, label: Hashable, element: Any, content_type: str | None
             ) -> body.Payload:
    try:
        return body.from_variable("element", {"element": element}, content_type)
    except InputError as err:
        raise InputError(f"--over {name}[{label!r}]: {err.message.replace('-i element: ', '')}",
                         hint=err.hint) from None


def _rendered(name: str, label: Hashable, template: str, key: str, element: Any,
              namespace: Mapping[str, Any]) -> body.Payload:
    resolve = _resolver(name, label, key, element, namespace)
    try:
        return body.render(template, resolve)
    except InputError as err:
        if err.message.startswith(f"--over {name}["):
            raise
        raise InputError(f"--over {name}[{label!r}]: {err.message}", hint=err.hint) from None


def _resolver(name: str, label: Hashable, key: str, element: Any,
              namespace: Mapping[str, Any]) -> Callable[[str], Any]:
    def resolve(placeholder: str) -> Any:
        head, dot, rest = placeholder.partition(".")
        if head != key:
            if dot:
                raise InputError(f"{{{{ {placeholder} }}}}: only {{{{ {key}.KEY }}}} takes a "
                                 "key; other names are plain notebook variables")
            return body.lookup(placeholder, namespace)
        if not dot:
            return element
        return _field(name, label, element, rest)
    return resolve


def _field(name: str, label: Hashable, element: Any, path: str) -> Any:
    """`{{ item.KEY }}`: the key as written, else a dotted path into nested objects."""
    if isinstance(element, Mapping) and path in element:
        return element[path]
    value = element
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            keys = ", ".join(map(str, list(element)[:8])) if isinstance(element, Mapping) \
                else f"a {type(element).__name__}, which has no keys"
            raise InputError(f"--over {name}[{label!r}] has no key {path!r} for "
                             f"{{{{ {ITEM}.{path} }}}}; nothing was run",
                             hint=f"its keys: {keys}")
        value = value[part]
    return value
