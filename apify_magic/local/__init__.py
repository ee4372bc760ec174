"""The local Apify runtime: the platform's HTTP API on loopback, running Actors from folders.

    registry  finding Actors (`.actor/actor.json`), their ids, input schemas and builds
    inputs    schema defaults and input validation
    runner    Actor processes: memory watch, timeouts, restarts, abort, budget
    warm      warm starts: one forking parent per interpreter (warm_parent runs in it)
    storage   run folders in the SDK's layout: records, dataset items, pagination
    webhooks  ad-hoc webhooks delivered on run events
    app       the HTTP routes and the error envelope; `LocalRuntime` puts it all together
    embedded  one lazily started runtime inside this process (what `%%apify_run` uses)

Start it standalone with `python -m apify_magic.local --actors DIR` or `apify-magic-local`.
"""

from __future__ import annotations

from apify_magic.local.app import LocalRuntime
from apify_magic.local.errors import ApiError

__all__ = ["ApiError", "LocalRuntime"]
