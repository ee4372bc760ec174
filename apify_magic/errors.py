"""Every error apify-magic raises, rooted in one class.

    ApifyMagicError
    ├── OptionError            an option value out of range (nothing was sent)
    ├── InputError             a malformed body or an unknown variable (nothing was sent)
    ├── AuthError              no token where one is needed (nothing was sent)
    ├── ResultError            the OUTPUT cannot take the asked form (--as)
    ├── RunInterruptedError    the kernel was interrupted during a run (aborted, or could not be)
    ├── MapFailedError         some runs of a %apify_map did not succeed (the rest were bound)
    ├── TransportError         the HTTP exchange itself broke
    │   ├── ConnectFailedError     the server could not be reached: no run was started
    │   ├── ReadTimeoutError       no answer in time: the run may have started
    │   └── ConnectionDroppedError the connection broke mid-request: the run may have started
    └── ApiError               the server answered with an error envelope
        ├── InvalidRequestError    400 (other types)
        │   ├── RunFailedError         400 run-failed
        │   └── InvalidInputError      400 invalid-input
        ├── UnauthorizedError      401
        ├── PaymentRequiredError   402
        ├── ForbiddenError         403
        ├── NotFoundError          404
        ├── RunTimeoutError        408 run-timeout-exceeded (the run goes on)
        ├── RequestTooLargeError   413
        ├── UnsupportedMediaError  415
        ├── RateLimitError         429
        └── ServerError            5xx

Each error renders in a notebook as a few lines (``_render_traceback_``) and still raises,
so nbval and papermill fail on it. No error ever holds the token.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apify_magic.run_record import RunRecord

_RUN_ID = re.compile(r"run ID: ([A-Za-z0-9]+)")
_STATUS = re.compile(r"status: ([A-Z][A-Z-]+)")


class ApifyMagicError(Exception):
    """Root of every apify-magic error."""

    hint: str = ""
    # The run this error ended, when it came from one (apify_magic.run_record.RunRecord):
    # its id, status, options, timings, cost, storages and log, as `%apify_last` shows.
    run: RunRecord | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\nHint: {self.hint}" if self.hint else self.message

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback; the kernel still sends `error`.
        return [f"{type(self).__name__}: {line}" if i == 0 else f"  {line}"
                for i, line in enumerate(str(self).splitlines())]


class OptionError(ApifyMagicError, ValueError):
    """An option value is out of range or malformed; nothing was sent."""


class InputError(ApifyMagicError, ValueError):
    """The INPUT body or a variable it names is unusable; nothing was sent."""


class AuthError(ApifyMagicError):
    """No token is available for a target that needs one; nothing was sent."""

    hint = ("set APIFY_TOKEN in the environment, run `apify login`, or `%apify_login` "
            "to type it without storing it in the notebook")


class ResultError(ApifyMagicError, ValueError):
    """The run succeeded but its OUTPUT cannot be turned into the form asked for."""

    hint = "use --as python (or --as bytes) to get the record as it came"


class RunInterruptedError(ApifyMagicError):
    """Kernel > Interrupt during a run: the run was aborted, or it could not be.

    Raised instead of KeyboardInterrupt so the cell shows these few lines, not a traceback
    through our internals, and still fails (Run All stops, nbval and papermill fail)."""

    def __init__(self, message: str, *, run_id: str | None = None, aborted: bool = False,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.run_id = run_id
        self.aborted = aborted


class MapFailedError(ApifyMagicError):
    """Some inputs of a map failed (or were not started): raised after binding the rest,
    so a notebook run headless still fails. `failed` is (label, run id, first error line)
    for each."""

    def __init__(self, message: str, *, failed: list[tuple[object, str | None, str | None]],
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failed = failed


class TransportError(ApifyMagicError):
    """The HTTP exchange broke before a complete answer arrived."""

    run_may_have_started = True

    def __init__(self, message: str, *, actor_id: str = "", run_id: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.actor_id = actor_id
        self.run_id = run_id


class ConnectFailedError(TransportError):
    run_may_have_started = False
    hint = "no run was started; check the base URL and that the server is up, then run again"


class ReadTimeoutError(TransportError):
    hint = ("the run may have started and may still be running: look it up in Apify Console "
            "(Runs) before running again, or use a longer --timeout")


class ConnectionDroppedError(TransportError):
    hint = ("the run may have started: look it up in Apify Console (Runs) before running "
            "again, so you do not pay for a second run")


class ApiError(ApifyMagicError):
    """The server answered with `{"error": {"type", "message"}}` and a status >= 400."""

    hint = "see the message above"

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        actor_id: str = "",
        run_id: str | None = None,
        hint: str | None = None,
        answered: bool = True,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.error_type = error_type
        # False for an error the magic concluded itself (a watched run that failed): no
        # server answered with this status, so the message shows none.
        self.answered = answered
        self.actor_id = actor_id
        found = _RUN_ID.search(message)
        self.run_id = run_id or (found.group(1) if found else None)

    def __str__(self) -> str:
        named = self.run_id and self.run_id not in self.message
        where = f" (Actor {self.actor_id}" + (f", run {self.run_id})" if named else ")")
        code = f"{self.status} " if self.answered else ""
        head = f"{code}{self.error_type}: {self.message}{where if self.actor_id else ''}"
        return f"{head}\nHint: {self.hint}" if self.hint else head

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(status={self.status}, error_type={self.error_type!r}, "
                f"message={self.message!r}, actor_id={self.actor_id!r}, run_id={self.run_id!r})")


class InvalidRequestError(ApiError):
    hint = "fix the request as the message says; no run was started"


class RunFailedError(InvalidRequestError):
    hint = "the run ended without success: read its log (Apify Console > Runs, or the run's /log)"

    def status_word(self) -> str:
        """The run's terminal status the message names (FAILED, TIMED-OUT, ABORTED)."""
        found = _STATUS.search(self.message)
        return found.group(1) if found else "FAILED"


class InvalidInputError(InvalidRequestError):
    hint = "the INPUT does not match the Actor's input schema; fix the field the message names"


class UnauthorizedError(ApiError):
    hint = "the token is missing or wrong: set APIFY_TOKEN, or run `%apify_login`"


class PaymentRequiredError(ApiError):
    hint = ("your account's limits would be exceeded: lower --memory, wait for other runs to "
            "finish, or raise the limit in Apify Console > Billing")


class ForbiddenError(ApiError):
    hint = "the token may not run this Actor: check its permissions or the Actor's availability"


class NotFoundError(ApiError):
    hint = ("check the Actor id: `username~actor-name` or the Actor's id "
            "(a local Actor: the folder's .actor/actor.json name)")


class RunTimeoutError(ApiError):
    hint = ("the run goes on after this endpoint's wait: find it in Apify Console > Runs; "
            "for long runs set a shorter --timeout")


class RequestTooLargeError(ApiError):
    hint = "INPUT is over the 9 MB limit: put large data in a key-value store or dataset"


class UnsupportedMediaError(ApiError):
    hint = "send the body uncompressed, or gzip/deflate/br encoded"


class RateLimitError(ApiError):
    hint = "too many requests: wait a little and run again"


class ServerError(ApiError):
    hint = ("the server failed; the run may have started, so check Apify Console > Runs "
            "before running again")


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: UnauthorizedError,
    402: PaymentRequiredError,
    403: ForbiddenError,
    404: NotFoundError,
    408: RunTimeoutError,
    413: RequestTooLargeError,
    415: UnsupportedMediaError,
    429: RateLimitError,
}
_BY_TYPE: dict[str, type[ApiError]] = {
    "run-failed": RunFailedError,
    "invalid-input": InvalidInputError,
}


def api_error_class(status: int, error_type: str) -> type[ApiError]:
    """The exception class for an error answer."""
    if status == 400 and error_type in _BY_TYPE:
        return _BY_TYPE[error_type]
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)
