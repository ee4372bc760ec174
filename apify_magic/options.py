"""The run options: one typed object shared by the magic, the panel and the client.

Each field is one query parameter of `POST /v2/actors/{actorId}/run-sync`; validation
happens here, before anything is sent, with the platform's own rules.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from apify_magic.errors import OptionError

MEMORY_MIN_MB = 128
MEMORY_MAX_MB = 32768
MEMORY_CHOICES = tuple(2**n for n in range(7, 16))  # 128 .. 32768

# The platform's record-key rule: up to 256 characters of a-zA-Z0-9!-_.'()
RECORD_KEY = re.compile(r"^[a-zA-Z0-9!\-_.'()]{1,256}$")

WEBHOOK_EVENT_TYPES = frozenset({
    "ACTOR.RUN.CREATED",
    "ACTOR.RUN.SUCCEEDED",
    "ACTOR.RUN.FAILED",
    "ACTOR.RUN.TIMED_OUT",
    "ACTOR.RUN.ABORTED",
    "ACTOR.RUN.RESURRECTED",
})

RESULT_FORMS = ("auto", "python", "dataframe", "text", "bytes")

# Bounds the platform documents none of, chosen so that every value sent is one a server
# stores as it was meant: a timeout fits the 32-bit seconds of `timeoutSecs`, counts stay
# exact in JSON numbers, and a charge cap is at least a millionth of a dollar (a smaller
# positive float would be sent as 0 or as a denormal such as 1e-320).
TIMEOUT_MAX_SECS = 2**31 - 1
COUNT_MAX = 2**53 - 1
CHARGE_MIN_USD = 1e-6
CHARGE_MAX_USD = 1e9
BUILD_MAX_CHARS = 256


@dataclasses.dataclass
class RunOptions:
    """Options of one run; `None` means "the Actor's own default"."""

    memory: int | None = None
    timeout: float | None = None
    build: str | None = None
    max_items: int | None = None
    max_total_charge_usd: float | None = None
    restart_on_error: bool | None = None
    output_record_key: str | None = None
    webhooks: list[dict[str, Any]] | None = None

    def validate(self) -> RunOptions:
        """Raise OptionError for the first invalid value; return self for chaining."""
        check_memory(self.memory)
        if self.timeout is not None and not (
            math.isfinite(self.timeout) and 0 <= self.timeout <= TIMEOUT_MAX_SECS
        ):
            raise OptionError(f"--timeout must be a number of seconds from 0 to "
                              f"{TIMEOUT_MAX_SECS}, got {self.timeout:g}")
        if self.build is not None and (
                not self.build.strip() or len(self.build) > BUILD_MAX_CHARS
                or not self.build.isprintable()):
            raise OptionError(f"--build must be a build tag or number (1 to {BUILD_MAX_CHARS} "
                              "printable characters)")
        if self.max_items is not None and not 0 < self.max_items <= COUNT_MAX:
            raise OptionError(f"--max-items must be from 1 to {COUNT_MAX}, got {self.max_items}")
        if self.max_total_charge_usd is not None and not (
            math.isfinite(self.max_total_charge_usd)
            and CHARGE_MIN_USD <= self.max_total_charge_usd <= CHARGE_MAX_USD
        ):
            raise OptionError(
                f"--max-total-charge-usd must be from {CHARGE_MIN_USD:g} to "
                f"{CHARGE_MAX_USD:g} USD, got {self.max_total_charge_usd:g}")
        if self.output_record_key is not None:
            check_record_key(self.output_record_key)
        if self.webhooks is not None:
            check_webhooks(self.webhooks)
        return self

    def query_params(self) -> dict[str, str]:
        """The query string the endpoint expects, only for options that are set."""
        params: dict[str, str] = {}
        if self.output_record_key is not None:
            params["outputRecordKey"] = self.output_record_key
        if self.timeout is not None:
            params["timeout"] = _number(self.timeout)
        if self.memory is not None:
            params["memory"] = str(self.memory)
        if self.max_items is not None:
            params["maxItems"] = str(self.max_items)
        if self.max_total_charge_usd is not None:
            params["maxTotalChargeUsd"] = _number(self.max_total_charge_usd)
        if self.restart_on_error is not None:
            params["restartOnError"] = "true" if self.restart_on_error else "false"
        if self.build is not None:
            params["build"] = self.build
        if self.webhooks is not None:
            params["webhooks"] = encode_webhooks(self.webhooks)
        return params

    def merged_over(self, defaults: RunOptions) -> RunOptions:
        """These options, with unset fields taken from `defaults`."""
        values = {
            f.name: getattr(self, f.name) if getattr(self, f.name) is not None
            else getattr(defaults, f.name)
            for f in dataclasses.fields(self)
        }
        return RunOptions(**values)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def check_memory(memory: int | None) -> None:
    if memory is None:
        return
    if memory not in MEMORY_CHOICES:
        raise OptionError(
            f"--memory must be a power of 2 from {MEMORY_MIN_MB} to {MEMORY_MAX_MB} MB, "
            f"got {memory}",
            hint="one of " + ", ".join(str(m) for m in MEMORY_CHOICES))


def check_record_key(key: str) -> None:
    if not RECORD_KEY.match(key):
        raise OptionError(
            f"--output-record-key {key!r} is not a valid record key",
            hint="use 1 to 256 characters of a-z A-Z 0-9 ! - _ . ' ( )")


def webhooks_problem(webhooks: object, name: str = "webhooks") -> str | None:
    """What is wrong with a webhooks array, or None; the local runtime checks with it too."""
    if not isinstance(webhooks, list) or not webhooks:
        return f"{name} must be a non-empty JSON array of webhook objects"
    for n, hook in enumerate(webhooks):
        where = f"{name}[{n}]"
        if not isinstance(hook, Mapping):
            return f"{where} must be an object"
        events = hook.get("eventTypes")
        if not isinstance(events, list) or not events:
            return f"{where}.eventTypes must be a non-empty array"
        unknown = [e for e in events if e not in WEBHOOK_EVENT_TYPES]
        if unknown:
            return (f"{where}.eventTypes has unknown event {unknown[0]!r} (one of "
                    + ", ".join(sorted(WEBHOOK_EVENT_TYPES)) + ")")
        url = hook.get("requestUrl")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
            return f"{where}.requestUrl must be an http(s) URL, got {url!r}"
        for key in ("payloadTemplate", "headersTemplate"):
            if key in hook and not isinstance(hook[key], str):
                return f"{where}.{key} must be a string"
    return None


def check_webhooks(webhooks: object) -> None:
    problem = webhooks_problem(webhooks, "--webhooks")
    if problem:
        raise OptionError(problem)
    try:  # what encode_webhooks will send: JSON, not too deep to write
        json.dumps(webhooks, allow_nan=False)
    except RecursionError:
        raise OptionError("--webhooks is nested too deeply to be JSON") from None
    except (TypeError, ValueError) as err:
        raise OptionError(f"--webhooks cannot be sent as JSON ({err})") from None


def encode_webhooks(webhooks: list[dict[str, Any]]) -> str:
    """Base64 of the compact JSON array, as the endpoint's `webhooks` parameter wants."""
    raw = json.dumps(webhooks, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode("ascii")


# %apify_map's own options.
CONCURRENCY_MAX = 256  # the largest plan's concurrent runs
RETRIES_MAX = 10
BATCH_MAX = 100_000


def check_map_options(concurrency: int | None, budget_usd: float | None, retries: int | None,
                      batch: int | None) -> None:
    """OptionError for the first out-of-range %apify_map option; nothing was sent."""
    if concurrency is not None and not 1 <= concurrency <= CONCURRENCY_MAX:
        raise OptionError(f"--concurrency must be from 1 to {CONCURRENCY_MAX}, "
                          f"got {concurrency}")
    if budget_usd is not None and not (
            math.isfinite(budget_usd) and CHARGE_MIN_USD <= budget_usd <= CHARGE_MAX_USD):
        raise OptionError(f"--budget-usd must be from {CHARGE_MIN_USD:g} to "
                          f"{CHARGE_MAX_USD:g} USD, got {budget_usd:g}")
    if retries is not None and not 0 <= retries <= RETRIES_MAX:
        raise OptionError(f"--retries must be from 0 to {RETRIES_MAX}, got {retries}")
    if batch is not None and not 1 <= batch <= BATCH_MAX:
        raise OptionError(f"--batch must be from 1 to {BATCH_MAX}, got {batch}")
