"""The Actor output object: an output schema's templates resolved for one run.

An Actor declares `"output"` in `.actor/actor.json` (the schema, or a path to it beside
`actor.json`): `{"actorOutputSchemaVersion": 1, "properties": {name: {"title",
"template"}}}`. Each template names where a result lives, e.g.
`{{links.apiDefaultDatasetUrl}}/items`; the run object's `output` maps each property to
its resolved URL. Local runs have no Console, so the Console links are the API's run URL.
"""

from __future__ import annotations

import re
from typing import Any

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")


def links(run: dict[str, Any], api_url: str) -> dict[str, str]:
    base = f"{api_url}/v2"
    run_url = f"{base}/actor-runs/{run['id']}"
    return {
        "publicRunUrl": run_url,
        "consoleRunUrl": run_url,
        "apiRunUrl": run_url,
        "apiDefaultDatasetUrl": f"{base}/datasets/{run['defaultDatasetId']}",
        "apiDefaultKeyValueStoreUrl": f"{base}/key-value-stores/{run['defaultKeyValueStoreId']}",
        "containerRunUrl": str(run.get("containerUrl") or ""),
    }


def resolve(schema: dict[str, Any], run: dict[str, Any], api_url: str) -> dict[str, str]:
    """`{property: resolved template}`; an unknown variable resolves to an empty string."""
    scope = {"links": links(run, api_url), "run": run}
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    out = {}
    for name, spec in properties.items():
        template = spec.get("template") if isinstance(spec, dict) else None
        if isinstance(template, str):
            out[str(name)] = _VARIABLE.sub(lambda m: _lookup(scope, m.group(1)), template)
    return out


def _lookup(scope: dict[str, Any], path: str) -> str:
    value: Any = scope
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return ""
        value = value[part]
    return "" if value is None or isinstance(value, (dict, list)) else str(value)
