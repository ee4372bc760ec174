"""The HTTP client: run-sync against the Apify platform or the local runtime, one code path.

Retries never start a second (paid) run: the POST is repeated only when it cannot have
reached the server (the connection was never made) or when the server refused it with 429.
A 5xx, a read timeout or a dropped connection may come after the run started: they raise.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from apify_magic import __version__
from apify_magic.body import Payload
from apify_magic.errors import (
    ApiError,
    ConnectFailedError,
    ConnectionDroppedError,
    OptionError,
    ReadTimeoutError,
    TransportError,
    api_error_class,
)
from apify_magic.options import RunOptions
from apify_magic.target import Target, is_loopback

SYNC_CEILING_SECS = 300.0  # the endpoint answers 408 after this, whatever `timeout` says
READ_MARGIN_SECS = 30.0
MAX_RETRY_AFTER_SECS = 60.0
POLL_RETRIES = 8  # a GET may be repeated: ride out a server restart or a network blip...
POLL_RETRY_BUDGET_SECS = 60.0  # ...but say within about a minute that the server is gone
MAX_RETRY_DELAY_SECS = 10.0

# An Actor id or `username~name`: what the platform accepts, and nothing that can
# change the URL path.
_ACTOR_ID = re.compile(r"^[A-Za-z0-9._-]*~?[A-Za-z0-9._-]+$")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """A successful run-sync answer: the raw record and how it came."""

    status_code: int
    content: bytes
    content_type: str
    actor_id: str
    elapsed: float
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def run_id(self) -> str | None:
        """The run's id where the server tells it (the local runtime does)."""
        return self.headers.get("x-apify-run-id")

    def __repr__(self) -> str:
        return (f"RunResult({self.actor_id!r}, {self.status_code}, {len(self.content)} bytes, "
                f"{self.content_type!r})")


@dataclasses.dataclass(frozen=True)
class RunPost:
    """The request that starts a run, as it is sent (the token is in `headers`)."""

    url: str
    params: dict[str, str]
    headers: dict[str, str] = dataclasses.field(repr=False)
    content: bytes = dataclasses.field(repr=False)

    def shown_headers(self) -> dict[str, str]:
        """The headers without Authorization: what may be printed."""
        return {k: v for k, v in self.headers.items() if k.lower() != "authorization"}


def _data(response: httpx.Response) -> dict[str, Any]:
    envelope = response.json()
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if not isinstance(data, dict):
        raise ValueError(f"expected {{'data': {{...}}}} from {response.request.url.path}")
    return data


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _collection(task: bool) -> str:
    """The path segment of what a run-starting id names: an Actor, or an Actor task."""
    return "actor-tasks" if task else "actors"


def check_actor_id(actor_id: str) -> str:
    if not _ACTOR_ID.match(actor_id) or actor_id.strip(".~") == "" or ".." in actor_id:
        raise OptionError(f"{actor_id!r} is not an Actor id",
                          hint="use `username~actor-name`, `~actor-name` or the Actor's id")
    return actor_id


def read_timeout(options: RunOptions) -> float:
    """Long enough for the endpoint's own answer, whichever comes first."""
    wait = SYNC_CEILING_SECS
    if options.timeout:
        wait = min(wait, options.timeout)
    return wait + READ_MARGIN_SECS


def backoff(attempt: int, base: float = 0.5) -> float:
    """The platform's recommended backoff: base x 2^n x uniform(1, 2)."""
    return float(base * 2**attempt * random.uniform(1, 2))


def retry_after(response: httpx.Response, attempt: int, base: float = 0.5) -> float:
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECS)
    try:
        when = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        when = None
    if when is not None:
        return max(0.0, min(when.timestamp() - time.time(), MAX_RETRY_AFTER_SECS))
    return backoff(attempt, base)


def _http_client(base_url: str) -> httpx.Client:
    if not base_url.startswith("http://"):
        return httpx.Client()
    if is_loopback(base_url):
        from apify_magic.transport import LoopbackTransport

        return httpx.Client(transport=LoopbackTransport())
    # Plain http needs no certificates: loading them costs 60 ms.
    return httpx.Client(verify=False)


class ApifyClient:
    """A small client for the endpoints the magic uses."""

    def __init__(
        self,
        target: Target,
        *,
        http_client: httpx.Client | None = None,
        max_retries: int = 4,
        retry_base_secs: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = target
        self.retry_base_secs = retry_base_secs
        self._http = http_client or _http_client(target.base_url)
        self._owns_http = http_client is None
        self.max_retries = max_retries
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"ApifyClient({self.target.label!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"apify-magic/{__version__}"}
        if self.target.token is not None:
            headers["Authorization"] = f"Bearer {self.target.token.reveal()}"
        return headers

    def url(self, *segments: str) -> str:
        return "/".join([self.target.base_url, "v2", *(quote(s, safe="~") for s in segments)])

    def run_sync(self, actor_id: str, options: RunOptions, payload: Payload,
                 dataset: Mapping[str, str] | None = None, *, task: bool = False) -> RunResult:
        """POST the payload as INPUT to run-sync and return the OUTPUT record.

        With `dataset` (the items parameters), run-sync-get-dataset-items returns the
        default dataset's items instead. With `task`, `actor_id` names an Actor task.
        """
        request = self.run_request(actor_id, options, payload, dataset, task=task)
        timeout = httpx.Timeout(10.0, read=read_timeout(options), write=60.0)
        started = time.monotonic()
        response = self._post_once_or_retry(
            actor_id, request.url, params=request.params, content=request.content,
            headers=request.headers, timeout=timeout)
        if response.status_code >= 400:
            raise self.api_error(response, actor_id)
        return RunResult(
            status_code=response.status_code,
            content=response.content,
            content_type=response.headers.get("Content-Type", ""),
            actor_id=actor_id,
            elapsed=time.monotonic() - started,
            headers=dict(response.headers),
        )

    def run_request(self, actor_id: str, options: RunOptions, payload: Payload,
                    dataset: Mapping[str, str] | None = None, *, task: bool = False,
                    start: bool = False) -> RunPost:
        """The POST that starts a run: run-sync (with `dataset`, run-sync-get-dataset-items),
        or with `start` POST .../runs, which returns the run at once."""
        check_actor_id(actor_id)
        params = options.query_params()
        if start or dataset is not None:
            params.pop("outputRecordKey", None)  # not a parameter of these endpoints
        if dataset is not None and not start:
            params.update(dataset)
        endpoint = ("runs" if start else "run-sync" if dataset is None
                    else "run-sync-get-dataset-items")
        return RunPost(self.url(_collection(task), actor_id, endpoint), params,
                       {**self.headers(), "Content-Type": payload.content_type},
                       payload.content)

    # -- asynchronous runs ---------------------------------------------------------------

    def start_run(self, actor_id: str, options: RunOptions, payload: Payload, *,
                  task: bool = False) -> dict[str, Any]:
        """POST .../runs: start a run (of an Actor task with `task`), return it at once."""
        request = self.run_request(actor_id, options, payload, task=task, start=True)
        response = self._post_once_or_retry(
            actor_id, request.url, params=request.params, content=request.content,
            headers=request.headers, timeout=httpx.Timeout(30.0))
        if response.status_code >= 400:
            raise self.api_error(response, actor_id)
        return _data(response)

    def get_run(self, run_id: str, wait_secs: float = 0, *, actor_id: str = ""
                ) -> dict[str, Any]:
        """GET /v2/actor-runs/{id}, waiting up to `wait_secs` (the server caps it at 60)."""
        params = {"waitForFinish": _number(wait_secs)} if wait_secs > 0 else {}
        response = self.get(("actor-runs", run_id), params=params, actor_id=actor_id,
                            run_id=run_id, read_secs=wait_secs + READ_MARGIN_SECS)
        return _data(response)

    def abort_run(self, run_id: str, *, actor_id: str = "") -> dict[str, Any]:
        """POST .../abort; aborting twice is harmless, so this one may be retried."""
        response = self._send_repeatable("POST", ("actor-runs", run_id, "abort"),
                                         actor_id=actor_id, run_id=run_id)
        return _data(response)

    def last_run(self, actor_id: str, *, task: bool = False) -> dict[str, Any] | None:
        """The Actor's (or task's) most recently started run, if the server lists any."""
        response = self.get((_collection(task), actor_id, "runs"),
                            params={"desc": "true", "limit": "1"}, actor_id=actor_id)
        items = _data(response).get("items") or []
        return items[0] if items and isinstance(items[0], dict) else None

    def get_log(self, run_id: str, *, actor_id: str = "") -> str:
        return self.get(("actor-runs", run_id, "log"), actor_id=actor_id, run_id=run_id).text

    def stream_log(self, run_id: str) -> Iterator[bytes]:
        """The run's log as it is written (`stream=1`): the server ends the stream when the
        run ends. A courtesy view: any failure just ends the iteration."""
        try:
            with self._http.stream("GET", self.url("actor-runs", run_id, "log"),
                                   params={"stream": "1"}, headers=self.headers(),
                                   timeout=httpx.Timeout(10.0, read=None)) as response:
                if response.status_code >= 400:
                    return
                yield from response.iter_bytes()
        except httpx.HTTPError:
            return

    def get_record(self, store_id: str, key: str, *, actor_id: str = "",
                   run_id: str | None = None) -> tuple[bytes, str] | None:
        """A key-value store record and its content type; None when there is no such record."""
        try:
            response = self.get(("key-value-stores", store_id, "records", key),
                                actor_id=actor_id, run_id=run_id)
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return response.content, response.headers.get("Content-Type", "")

    def dataset_items(self, dataset_id: str, params: Mapping[str, str], *,
                      actor_id: str = "", run_id: str | None = None) -> httpx.Response:
        return self.get(("datasets", dataset_id, "items"), params=params, actor_id=actor_id,
                        run_id=run_id)

    # -- the wire ------------------------------------------------------------------------

    def get(self, segments: tuple[str, ...], *, params: Mapping[str, str] | None = None,
            actor_id: str = "", run_id: str | None = None, read_secs: float = 60.0
            ) -> httpx.Response:
        return self._send_repeatable("GET", segments, params=params, actor_id=actor_id,
                                     run_id=run_id, read_secs=read_secs)

    def _send_repeatable(self, method: str, segments: tuple[str, ...], *,
                         params: Mapping[str, str] | None = None, actor_id: str = "",
                         run_id: str | None = None, read_secs: float = 60.0
                         ) -> httpx.Response:
        """A request that is safe to repeat (no run can start twice): retried on every
        transient fault. The POST that starts a run never comes here."""
        url = self.url(*segments)
        timeout = httpx.Timeout(10.0, read=read_secs)
        tries = max(self.max_retries, POLL_RETRIES)
        first_fault: float | None = None
        for attempt in range(tries + 1):
            # The budget runs from the first fault: the last try is the one that would
            # wait past it (each wait is capped too, so a budget is never overslept much).
            spent = 0.0 if first_fault is None else time.monotonic() - first_fault
            last = attempt == tries or spent >= POLL_RETRY_BUDGET_SECS
            try:
                response = self._http.request(method, url, params=params, headers=self.headers(),
                                              timeout=timeout)
            except httpx.TransportError as err:
                if last:
                    raise self._transport_error(err, actor_id, run_id) from None
                first_fault = first_fault if first_fault is not None else time.monotonic()
                self._sleep(min(backoff(attempt, self.retry_base_secs), MAX_RETRY_DELAY_SECS))
                continue
            if (response.status_code == 429 or response.status_code >= 500) and not last:
                first_fault = first_fault if first_fault is not None else time.monotonic()
                self._sleep(min(retry_after(response, attempt, self.retry_base_secs),
                                MAX_RETRY_DELAY_SECS))
                continue
            if response.status_code >= 400:
                raise self.api_error(response, actor_id, run_id)
            return response
        raise AssertionError("unreachable")

    def _transport_error(self, err: httpx.TransportError, actor_id: str,
                         run_id: str | None) -> TransportError:
        where = f" (run {run_id})" if run_id else ""
        if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout)):
            return ConnectFailedError(
                f"Could not connect to {self.target.label}{where}: {self._scrub(str(err))}",
                actor_id=actor_id, run_id=run_id,
                hint="the run, if any, is not affected; attach to it again when the server "
                     "is back")
        return ConnectionDroppedError(
            f"Lost the connection to {self.target.label}{where} ({type(err).__name__}).",
            actor_id=actor_id, run_id=run_id,
            hint="the run is not affected; attach to it again to wait for its result")

    def _post_once_or_retry(self, actor_id: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._http.post(url, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as err:
                # No connection was made, so the server never saw the request.
                if last:
                    raise ConnectFailedError(
                        f"Could not connect to {self.target.label}: {self._scrub(str(err))}",
                        actor_id=actor_id) from None
                self._sleep(backoff(attempt, self.retry_base_secs))
                continue
            except httpx.TimeoutException:
                raise ReadTimeoutError(
                    f"No answer from {self.target.label} within "
                    f"{kwargs['timeout'].read:.0f} s; the run may have started and may "
                    "still be running.", actor_id=actor_id) from None
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as err:
                raise ConnectionDroppedError(
                    f"The connection to {self.target.label} broke before the answer came "
                    f"({type(err).__name__}); the run may have started.",
                    actor_id=actor_id) from None
            if response.status_code == 429 and not last:
                # 429 means the request was refused: no run was started.
                self._sleep(retry_after(response, attempt, self.retry_base_secs))
                continue
            return response
        raise AssertionError("unreachable")

    def api_error(self, response: httpx.Response, actor_id: str,
                  run_id: str | None = None) -> ApiError:
        """The typed error for an error answer, with the server's own words."""
        error_type, message = f"http-{response.status_code}", ""
        try:
            envelope = response.json()
            error = envelope.get("error") if isinstance(envelope, dict) else None
            if isinstance(error, dict):
                error_type = str(error.get("type") or error_type)
                message = str(error.get("message") or "")
        except ValueError:
            message = response.text[:300].strip()
        message = self._scrub(message or response.reason_phrase or "no message")
        cls = api_error_class(response.status_code, error_type)
        run_id = run_id or response.headers.get("X-Apify-Run-Id") or None
        return cls(response.status_code, error_type, message, actor_id=actor_id, run_id=run_id)

    def _scrub(self, text: str) -> str:
        # A server or proxy may echo what it got; the token must never reach the user.
        if self.target.token is not None and self.target.token.reveal():
            text = text.replace(self.target.token.reveal(), "********")
        return text
