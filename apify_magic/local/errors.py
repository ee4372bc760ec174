"""The one error the runtime answers with, in the platform's envelope.

Everything that refuses a request raises `ApiError`; `app` turns it into
`{"error": {"type": ..., "message": ...}}` with its status, so every module speaks the
platform's wire format without knowing about HTTP.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: HTTP status, the platform's kebab-case type and a message."""

    def __init__(self, status: int, error_type: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = headers or {}

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.error_type!r}, {self.message!r})"

    def envelope(self) -> dict[str, Any]:
        return {"error": {"type": self.error_type, "message": self.message}}


def invalid_request(message: str) -> ApiError:
    return ApiError(400, "invalid-request", message)


def not_found(error_type: str, message: str) -> ApiError:
    return ApiError(404, error_type, message)
