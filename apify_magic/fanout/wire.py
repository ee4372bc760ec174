"""The map's HTTP: `httpx.AsyncClient`s on the scheduler's one event loop, one per worker
coroutine, each with one connection (so in-flight requests are bounded by the workers).

Requests that cannot start a run are retried through transient faults, as the
synchronous client retries them; the POST that starts a run is sent once, and its
outcome is the scheduler's to judge (`StartOutcome`). Errors are the client's own typed
errors (`ApifyClient.api_error`), so a map's failure reads like a single run's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import ssl
import time
from collections.abc import Mapping
from typing import Any

import httpx

from apify_magic.body import Payload
from apify_magic.client import (
    MAX_RETRY_DELAY_SECS,
    POLL_RETRY_BUDGET_SECS,
    READ_MARGIN_SECS,
    ApifyClient,
    backoff,
    retry_after,
)
from apify_magic.errors import ApiError, TransportError
from apify_magic.options import RunOptions

_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ")  # a log line's time
# 402 types that mean "not now" (the account's memory or concurrent runs are used up).
NOT_NOW_402 = frozenset({"actor-memory-limit-exceeded", "concurrent-runs-limit-exceeded"})


@dataclasses.dataclass
class StartOutcome:
    """What a start POST came to: a run, "not now" (402 limits, 429) with a wait, a
    refusal for this input, or an answer lost after the request may have arrived."""

    run: dict[str, Any] | None = None
    wait_secs: float | None = None
    error: ApiError | None = None
    lost: bool = False
    status: int = 0


def tls(base_url: str) -> ssl.SSLContext | bool:
    """One TLS context for all of a map's clients (loading the CA certificates costs
    30 ms each time); none for plain http."""
    return ssl.create_default_context() if base_url.startswith("https://") else False


class AsyncApi:
    """The endpoints a map uses, over one pool of at most `connections` connections."""

    def __init__(self, client: ApifyClient, connections: int,
                 verify: ssl.SSLContext | bool = True) -> None:
        self.client = client
        self.http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=connections,
                                max_keepalive_connections=connections),
            timeout=httpx.Timeout(10.0, read=60.0, pool=None), verify=verify)
        self.base = client.retry_base_secs

    async def aclose(self) -> None:
        await self.http.aclose()

    async def start(self, actor_id: str, options: RunOptions, payload: Payload, *,
                    task: bool, user_agent: str, attempt: int) -> StartOutcome:
        params = options.query_params()
        params.pop("outputRecordKey", None)
        collection = "actor-tasks" if task else "actors"
        headers = {**self.client.headers(), "User-Agent": user_agent,
                   "Content-Type": payload.content_type}
        try:
            response = await self.http.post(
                self.client.url(collection, actor_id, "runs"), params=params,
                content=payload.content, headers=headers, timeout=httpx.Timeout(30.0))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            return StartOutcome(wait_secs=backoff(attempt, self.base))  # never arrived
        except httpx.HTTPError:
            return StartOutcome(lost=True)  # it may have arrived: the run may exist
        if response.status_code == 201:
            return StartOutcome(run=response.json()["data"], status=201)
        error = self.client.api_error(response, actor_id)
        if response.status_code == 429 or (response.status_code == 402
                                           and error.error_type in NOT_NOW_402):
            return StartOutcome(wait_secs=retry_after(response, attempt, self.base),
                                error=error, status=response.status_code)
        if response.status_code >= 500:
            return StartOutcome(lost=True, error=error, status=response.status_code)
        return StartOutcome(error=error, status=response.status_code)

    async def get(self, *segments: str, params: Mapping[str, str] | None = None,
                  read_secs: float = 60.0, actor_id: str = "", run_id: str | None = None
                  ) -> httpx.Response:
        return await self.repeatable("GET", segments, params=params, read_secs=read_secs,
                                     actor_id=actor_id, run_id=run_id)

    async def repeatable(self, method: str, segments: tuple[str, ...], *,
                         params: Mapping[str, str] | None = None, read_secs: float = 60.0,
                         actor_id: str = "", run_id: str | None = None) -> httpx.Response:
        """A request that starts no run, retried through dropped connections, 429 and
        5xx for about a minute from the first fault (as the synchronous client does)."""
        url = self.client.url(*segments)
        timeout = httpx.Timeout(10.0, read=read_secs, pool=None)
        first_fault: float | None = None
        attempt = 0
        while True:
            spent = 0.0 if first_fault is None else time.monotonic() - first_fault
            last = spent >= POLL_RETRY_BUDGET_SECS
            try:
                response = await self.http.request(method, url, params=params,
                                                   headers=self.client.headers(),
                                                   timeout=timeout)
            except httpx.TransportError as err:
                if last:
                    raise self.client._transport_error(err, actor_id, run_id) from None
                delay = backoff(attempt, self.base)
            else:
                if response.status_code < 400:
                    return response
                if last or not (response.status_code == 429 or response.status_code >= 500):
                    raise self.client.api_error(response, actor_id, run_id)
                delay = retry_after(response, attempt, self.base)
            first_fault = first_fault if first_fault is not None else time.monotonic()
            attempt += 1
            await asyncio.sleep(min(delay, MAX_RETRY_DELAY_SECS))

    async def run(self, run_id: str, wait_secs: float, actor_id: str) -> dict[str, Any]:
        params = {"waitForFinish": str(int(wait_secs))} if wait_secs > 0 else {}
        response = await self.get("actor-runs", run_id, params=params,
                                  read_secs=wait_secs + READ_MARGIN_SECS,
                                  actor_id=actor_id, run_id=run_id)
        data: dict[str, Any] = response.json()["data"]
        return data

    async def abort(self, run_id: str, actor_id: str) -> dict[str, Any]:
        response = await self.repeatable("POST", ("actor-runs", run_id, "abort"),
                                         actor_id=actor_id, run_id=run_id)
        data: dict[str, Any] = response.json()["data"]
        return data

    async def runs_since(self, actor_id: str, task: bool, since_iso: str
                         ) -> list[dict[str, Any]]:
        """The Actor's (task's) runs started after `since_iso`, newest first."""
        collection = "actor-tasks" if task else "actors"
        response = await self.get(collection, actor_id, "runs",
                                  params={"desc": "true", "limit": "1000",
                                          "startedAfter": since_iso}, actor_id=actor_id)
        items = response.json()["data"].get("items") or []
        return [item for item in items if isinstance(item, dict)]

    async def record(self, store_id: str, key: str, actor_id: str, run_id: str
                     ) -> tuple[bytes, str] | None:
        try:
            response = await self.get("key-value-stores", store_id, "records", key,
                                      actor_id=actor_id, run_id=run_id)
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return response.content, response.headers.get("Content-Type", "")

    async def items(self, dataset_id: str, params: dict[str, str], actor_id: str,
                    run_id: str, page_items: int) -> list[bytes]:
        """A dataset's items as JSON-lines pages, `offset`/`limit` honoured."""
        position = int(params.get("offset", "0"))
        limit = params.get("limit")
        end = None if limit is None else position + int(limit)
        pages: list[bytes] = []
        while end is None or position < end:
            size = page_items if end is None else min(page_items, end - position)
            response = await self.get("datasets", dataset_id, "items",
                                      params={**params, "offset": str(position),
                                              "limit": str(size)},
                                      actor_id=actor_id, run_id=run_id)
            pages.append(response.content)
            total = int(response.headers.get("X-Apify-Pagination-Total", "0"))
            position += size
            end = total if end is None else min(end, total)
        return pages

    async def log_tail(self, run_id: str, actor_id: str) -> str:
        try:
            response = await self.get("actor-runs", run_id, "log", actor_id=actor_id,
                                      run_id=run_id)
        except (ApiError, TransportError):
            return ""
        lines = [_STAMP.sub("", line) for line in response.text.splitlines() if line.strip()]
        return lines[-1] if lines else ""
