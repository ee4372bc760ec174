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
from collections.abc import Callable
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
    api_error_class,
)
from apify_magic.options import RunOptions
from apify_magic.target import Target

SYNC_CEILING_SECS = 300.0  # the endpoint answers 408 after this, whatever `timeout` says
READ_MARGIN_SECS = 30.0
MAX_RETRY_AFTER_SECS = 60.0

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

    def __repr__(self) -> str:
        return (f"RunResult({self.actor_id!r}, {self.status_code}, {len(self.content)} bytes, "
                f"{self.content_type!r})")


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
    if value:
        when = email.utils.parsedate_to_datetime(value) if _looks_like_date(value) else None
        if when is not None:
            return max(0.0, min(when.timestamp() - time.time(), MAX_RETRY_AFTER_SECS))
    return backoff(attempt, base)


def _looks_like_date(value: str) -> bool:
    try:
        return email.utils.parsedate_to_datetime(value) is not None
    except (TypeError, ValueError):
        return False


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
        self._http = http_client or httpx.Client()
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

    def run_sync(self, actor_id: str, options: RunOptions, payload: Payload) -> RunResult:
        """POST the payload as INPUT to run-sync and return the OUTPUT record."""
        check_actor_id(actor_id)
        url = f"{self.target.base_url}/v2/actors/{quote(actor_id, safe='~')}/run-sync"
        timeout = httpx.Timeout(10.0, read=read_timeout(options), write=60.0)
        headers = {**self.headers(), "Content-Type": payload.content_type}
        started = time.monotonic()
        response = self._post_once_or_retry(
            actor_id, url, params=options.query_params(), content=payload.content,
            headers=headers, timeout=timeout)
        if response.status_code >= 400:
            raise self.api_error(response, actor_id)
        return RunResult(
            status_code=response.status_code,
            content=response.content,
            content_type=response.headers.get("Content-Type", ""),
            actor_id=actor_id,
            elapsed=time.monotonic() - started,
        )

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

    def api_error(self, response: httpx.Response, actor_id: str) -> ApiError:
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
        return cls(response.status_code, error_type, message, actor_id=actor_id)

    def _scrub(self, text: str) -> str:
        # A server or proxy may echo what it got; the token must never reach the user.
        if self.target.token is not None and self.target.token.reveal():
            text = text.replace(self.target.token.reveal(), "********")
        return text
