"""A run's options from the query, checked as the platform checks them."""

from __future__ import annotations

from collections.abc import Mapping

from apify_magic.local import params
from apify_magic.local.errors import ApiError, invalid_request
from apify_magic.local.registry import MAX_MEMORY_MBYTES, MIN_MEMORY_MBYTES, ActorDef
from apify_magic.local.runner import RunOptions


def run_options(actor: ActorDef, query: Mapping[str, str]) -> RunOptions:
    """The run's options from the query, checked like the platform does."""
    build = query.get("build") or "latest"
    if not actor.matches_build(build):
        known = ", ".join(dict.fromkeys(
            ["latest", actor.build_tag, actor.version, actor.build_number]))
        raise ApiError(400, "unknown-build-tag",
                       f'Build with tag or number "{build}" was not found for Actor '
                       f"{actor.name} (local builds: {known})")
    timeout = params.number(query, "timeout")
    if timeout is not None and timeout < 0:
        raise invalid_request("Parameter timeout must be >= 0 seconds")
    memory = params.number(query, "memory")
    memory_mb = actor.default_memory_mbytes if memory is None else int(memory)
    if (memory is not None and (memory != memory_mb or memory_mb < MIN_MEMORY_MBYTES
                                or memory_mb > MAX_MEMORY_MBYTES
                                or memory_mb & (memory_mb - 1))):
        raise invalid_request(f"Parameter memory must be a power of 2 between "
                              f"{MIN_MEMORY_MBYTES} and {MAX_MEMORY_MBYTES} MB, got {memory:g}")
    if not actor.min_memory_mbytes <= memory_mb <= actor.max_memory_mbytes:
        raise invalid_request(f"Actor {actor.name} needs between {actor.min_memory_mbytes} and "
                              f"{actor.max_memory_mbytes} MB of memory, got {memory_mb}")
    max_items = params.number(query, "maxItems")
    if max_items is not None and max_items <= 0:
        raise ApiError(400, "max-items-must-be-greater-than-zero",
                       "Parameter maxItems must be greater than zero")
    max_charge = params.number(query, "maxTotalChargeUsd")
    if max_charge is not None and max_charge <= 0:
        raise ApiError(400, "max-total-charge-usd-must-be-greater-than-zero",
                       "Parameter maxTotalChargeUsd must be greater than zero")
    return RunOptions(
        build=build,
        timeout_secs=float(actor.default_timeout_secs) if timeout is None else timeout,
        memory_mbytes=memory_mb,
        max_items=int(max_items) if max_items is not None else None,
        max_total_charge_usd=max_charge,
        restart_on_error=bool(params.flag(query, "restartOnError")),
    )
