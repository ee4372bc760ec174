"""The Actor output object: a run's `output` links, read into notebook values.

An Actor that declares an output schema (`"output"` in `.actor/actor.json`) gets an
`output` object on its runs: names mapped to URLs made from the schema's templates, such
as `{{links.apiDefaultDatasetUrl}}/items`. Apify's docs call it the successor of the
OUTPUT record. A link into the API the client talks to is read: dataset items as a
DataFrame (or a list with `--as python`), a record as its value. Any other link (a
container URL, a page elsewhere) stays the string it is: the token goes to the target's
own API only, never to a host an output schema names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx

from apify_magic.datasets import DatasetQuery

if TYPE_CHECKING:
    from apify_magic.runs import RunFollower

_DATASET_ITEMS = re.compile(r"^/v2/datasets/([^/]+)/items/?$")
_RECORD = re.compile(r"^/v2/key-value-stores/([^/]+)/records/([^/]+)$")


def output_links(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run's output object (name -> link), {} when the Actor declares none."""
    output = run.get("output")
    return {str(k): v for k, v in output.items()} if isinstance(output, Mapping) else {}


def read_output(follower: RunFollower, links: Mapping[str, Any], result_as: str) -> Any:
    """Each link read; one link gives its value, several a dict of name -> value."""
    values = {name: read_link(follower, link, result_as) for name, link in links.items()}
    return next(iter(values.values())) if len(values) == 1 else values


def read_link(follower: RunFollower, link: Any, result_as: str) -> Any:
    if not isinstance(link, str):
        return link
    path = _api_path(follower.client.target.base_url, link)
    if path is None:
        return link
    items = _DATASET_ITEMS.match(path.path)
    if items:
        query = _dataset_query(path.params)
        return follower.dataset(query, as_frame=result_as in ("auto", "dataframe"),
                                dataset_id=unquote(items[1]))
    record = _RECORD.match(path.path)
    if record:
        from apify_magic.result import convert

        content, content_type = follower.record(unquote(record[2]), store=unquote(record[1]))
        return convert(content, content_type, result_as) if content else None
    return link


def _api_path(base_url: str, link: str) -> httpx.URL | None:
    """The link relative to the target's base URL, or None when it points elsewhere."""
    try:
        url, base = httpx.URL(link), httpx.URL(base_url)
    except (httpx.InvalidURL, ValueError):
        return None
    if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
        return None
    prefix = base.path.rstrip("/")
    if not url.path.startswith(prefix + "/v2/"):
        return None
    return url.copy_with(path=url.path[len(prefix):])


def _dataset_query(params: httpx.QueryParams) -> DatasetQuery:
    """The link's own dataset options (a template may say `?fields=...&clean=1`)."""

    def flag(name: str) -> bool:
        return params.get(name, "").lower() in ("1", "true")

    def number(name: str) -> int | None:
        value = params.get(name, "")
        return int(value) if value.isdigit() else None

    def names(name: str) -> list[str] | None:
        return [part.strip() for part in params.get(name, "").split(",") if part.strip()] or None

    return DatasetQuery(fields=names("fields"), omit=names("omit"), unwind=names("unwind"),
                        flatten=names("flatten"),
                        limit=number("limit") or None, offset=number("offset"),
                        clean=flag("clean") or flag("skipEmpty"), desc=flag("desc"))
