"""`--dry-run`: what a run would send and roughly cost, with nothing run.

Everything a run checks is checked (options, INPUT, and the INPUT against the Actor's
input schema when the schema can be fetched); the exact POST is shown (method, URL with
its query, the headers but Authorization, the body) and the cost is estimated from the
Actor's `pricingInfos` (the newest entry):

- pay per event: each event's price, and the `maxTotalChargeUsd` cap (the most a run
  can cost);
- pay per result (`PRICE_PER_DATASET_ITEM`): the price times `maxItems`;
- otherwise (free, a monthly rental, no pricing): compute, memory x timeout at the
  platform's unit price, $0.30 per compute unit (1 GB for an hour), an upper bound.

Only GETs (the Actor and its default build) reach the server; no run starts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from apify_magic.errors import ApiError, InputError

if TYPE_CHECKING:
    from apify_magic.client import ApifyClient
    from apify_magic.session import RunRequest

COMPUTE_UNIT_USD = 0.30  # the platform's price of one compute unit (1 GB-hour)
BODY_SHOWN_CHARS = 4000


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A cost estimate: the most a run may cost (None: no bound), and how it was found."""

    model: str
    most_usd: float | None
    lines: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class DryRun:
    """The request a run would send and its cost estimate; shown as text."""

    method: str
    url: str
    headers: dict[str, str]
    body: str
    estimate: Estimate
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        lines = ["Dry run: nothing was run.", f"{self.method} {self.url}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        lines += ["", self.body, "", f"Estimated cost ({self.estimate.model}):"]
        lines += [f"  {line}" for line in self.estimate.lines]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def dry_run(client: ApifyClient, request: RunRequest) -> DryRun:
    """Check the request as a run would, and describe it; raise what a run would raise
    before it sends (InputError for INPUT the Actor's schema refuses)."""
    notes: list[str] = []
    actor: dict[str, Any] = {}
    if not request.task:
        actor = _actor(client, request.actor_id)
        _check_input(client, request, notes)
    else:
        notes.append("an Actor task's saved input and options are merged by the server; "
                     "its INPUT is not checked here")
    dataset = request.dataset.params("jsonl") if request.dataset is not None else None
    post = client.run_request(request.actor_id, request.options, request.payload,
                              None if request.watch else dataset, task=request.task,
                              start=request.watch)
    query = f"?{urlencode(post.params)}" if post.params else ""
    if request.watch:
        notes.append("--watch: the run is then followed with GET /v2/actor-runs/RUN_ID")
    return DryRun("POST", post.url + query, post.shown_headers(), _body(post.content),
                  estimate(actor, request), tuple(notes))


def _actor(client: ApifyClient, actor_id: str) -> dict[str, Any]:
    from apify_magic.client import check_actor_id

    response = client.get(("actors", check_actor_id(actor_id)), actor_id=actor_id)
    data = response.json().get("data")
    return data if isinstance(data, dict) else {}


def _check_input(client: ApifyClient, request: RunRequest, notes: list[str]) -> None:
    from apify_magic.body import JSON_TYPE
    from apify_magic.input_schema import validate_input
    from apify_magic.session import fetch_input_schema

    if not request.payload.content_type.startswith(JSON_TYPE):
        notes.append("the body is not JSON: not checked against the input schema")
        return
    try:
        schema = fetch_input_schema(client, request.actor_id)
    except ApiError:
        notes.append("the Actor's input schema could not be fetched: INPUT not checked")
        return
    if not schema:
        notes.append("the Actor has no input schema: INPUT not checked")
        return
    value = json.loads(request.payload.content or b"{}")
    if not isinstance(value, Mapping):
        raise InputError("INPUT must be a JSON object for an Actor with an input schema")
    problems = validate_input(schema, value)
    if problems:
        raise InputError(
            "INPUT does not match the Actor's input schema: "
            + "; ".join(f"{field}: {message}" for field, message in problems.items()),
            hint="fix the fields named; nothing was sent")
    notes.append("INPUT matches the Actor's input schema")


def _body(content: bytes) -> str:
    text = content.decode("utf-8", "replace")
    if len(text) > BODY_SHOWN_CHARS:
        return text[:BODY_SHOWN_CHARS] + f"\n... ({len(content):,} bytes in all)"
    return text


def pricing(actor: Mapping[str, Any]) -> dict[str, Any]:
    """The Actor's current pricing: the newest of `pricingInfos` ({} when it has none)."""
    infos = actor.get("pricingInfos")
    if isinstance(infos, list) and infos:
        dated = [i for i in infos if isinstance(i, dict)]
        return max(dated, key=lambda i: str(i.get("startedAt") or ""), default={})
    info = actor.get("pricingInfo")
    return info if isinstance(info, dict) else {}


def estimate(actor: Mapping[str, Any], request: RunRequest) -> Estimate:
    """The cost estimate of a run of `actor` with the request's options."""
    info = pricing(actor)
    model = str(info.get("pricingModel") or "")
    options = request.options
    if model == "PAY_PER_EVENT":
        events = (info.get("pricingPerEvent") or {}).get("actorChargeEvents") or {}
        lines = [f"{name}: {_usd(_price(event))} each"
                 + (f" ({event['eventTitle']})" if event.get("eventTitle") else "")
                 for name, event in events.items() if isinstance(event, dict)]
        cap = options.max_total_charge_usd
        lines.append(f"at most {_usd(cap)} (--max-total-charge-usd)" if cap is not None
                     else "no cap: set --max-total-charge-usd to bound what a run costs")
        return Estimate("pay per event", cap, tuple(lines))
    if model == "PRICE_PER_DATASET_ITEM":
        price = float(info.get("pricePerUnitUsd") or 0)
        unit = str(info.get("unitName") or "result")
        if options.max_items is not None:
            most = price * options.max_items
            return Estimate("pay per result", most, (
                f"{_usd(price)} per {unit} x --max-items {options.max_items:,} = "
                f"at most {_usd(most)}",))
        return Estimate("pay per result", None, (
            f"{_usd(price)} per {unit}; no cap: set --max-items to bound what a run costs",))
    return _compute(actor, request, model)


def _compute(actor: Mapping[str, Any], request: RunRequest, model: str) -> Estimate:
    defaults = actor.get("defaultRunOptions") or {}
    memory = request.options.memory or defaults.get("memoryMbytes")
    timeout = request.options.timeout if request.options.timeout is not None else \
        defaults.get("timeoutSecs")
    name = {"FLAT_PRICE_PER_MONTH": "monthly rental + compute",
            "FREE": "compute"}.get(model, "compute")
    lines: list[str] = []
    if model == "FLAT_PRICE_PER_MONTH":
        lines.append(f"rental: {_usd(float(info_price(actor)))} a month, not per run")
    if not memory or not timeout:
        lines.append(f"memory {memory or '?'} MB, no timeout: no upper bound; set "
                     "--timeout to bound compute")
        return Estimate(name, None, tuple(lines))
    units = float(memory) / 1024 * float(timeout) / 3600
    most = units * COMPUTE_UNIT_USD
    lines.append(f"memory {memory} MB x timeout {float(timeout):g} s = {units:.4g} compute "
                 f"units x {_usd(COMPUTE_UNIT_USD)} = at most {_usd(most)}")
    lines.append("a run that ends sooner costs less")
    return Estimate(name, most, tuple(lines))


def info_price(actor: Mapping[str, Any]) -> float:
    return float(pricing(actor).get("pricePerUnitUsd") or 0)


def _price(event: Mapping[str, Any]) -> float:
    value = event.get("eventPriceUsd")
    return float(value) if isinstance(value, (int, float)) else 0.0


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.6g}"
