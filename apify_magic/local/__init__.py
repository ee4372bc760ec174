"""The local Apify runtime: the platform's HTTP API on loopback, running Actors from folders.

    registry  finding Actors (`.actor/actor.json`), their ids, input schemas and builds
    inputs    schema defaults and input validation
    runner    Actor processes: memory watch, timeouts, restarts, abort, budget
    warm      warm starts: one forking parent per interpreter (warm_parent runs in it)
    storage   run folders in the SDK's layout: records, dataset items, pagination
    webhooks  ad-hoc webhooks delivered on run events
    params    query parameters, parsed once for every route
    wire      the platform's wire format over Starlette: token, body limits, envelopes
    app       the routes, as one table in the spec's paths, and their handlers
    server    `LocalRuntime`: it all put together, served by uvicorn
    embedded  one lazily started runtime inside this process (what `%%apify_run` uses)

Start it standalone with `python -m apify_magic.local --actors DIR` or `apify-magic-local`.
"""

from __future__ import annotations

from apify_magic.local.errors import ApiError
from apify_magic.local.server import LocalRuntime

__all__ = ["ApiError", "LocalRuntime"]
