"""Where a run goes and with which token.

Base URL: `APIFY_API_BASE_URL`, then `APIFY_CLIENT_BASE_URL` (both without `/v2`), else
the Apify platform when a token is found, else the embedded local runtime.
Token: `APIFY_TOKEN`, then the Apify CLI's `~/.apify/auth.json`, then one typed in with
`%apify_login` (kept in this process only). The token is never a magic option, never in a
URL, and every object that holds it hides it in its repr.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from apify_magic.errors import AuthError

PLATFORM_URL = "https://api.apify.com"


class Secret:
    """A token that does not show itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclasses.dataclass(frozen=True)
class Target:
    base_url: str
    token: Secret | None
    is_local: bool = False

    @property
    def is_platform(self) -> bool:
        return not self.is_local and urlsplit(self.base_url).hostname == "api.apify.com"

    @property
    def label(self) -> str:
        if self.is_local:
            return "local runtime"  # its port changes every session: not worth showing
        return "Apify platform" if self.is_platform else self.base_url


_session_token: Secret | None = None


def set_session_token(token: str | None) -> None:
    """Keep a token typed in with `%apify_login` for this process only."""
    global _session_token
    _session_token = Secret(token) if token else None


def cli_auth_file() -> Path:
    return Path.home() / ".apify" / "auth.json"


def find_token() -> Secret | None:
    """The first token found: environment, Apify CLI login, `%apify_login`."""
    if value := os.environ.get("APIFY_TOKEN", "").strip():
        return Secret(value)
    try:
        data = json.loads(cli_auth_file().read_text())
    except (OSError, ValueError):
        data = None
    # Since CLI 1.6.3 the token usually sits in the OS keyring; auth.json then has none.
    if isinstance(data, dict) and isinstance(data.get("token"), str) and data["token"].strip():
        return Secret(data["token"].strip())
    return _session_token


def configured_base_url() -> str | None:
    for name in ("APIFY_API_BASE_URL", "APIFY_CLIENT_BASE_URL"):
        if value := os.environ.get(name, "").strip():
            return value.rstrip("/")
    return None


def is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def resolve_target(
    base_url: str | None = None,
    *,
    local_runtime: Callable[[], str] | None = None,
    prompt: Callable[[], str | None] | None = None,
) -> Target:
    """Decide where a run goes; raise AuthError before anything is sent when it can't.

    `base_url` is a configured override (`%config ApifyMagic.base_url`); `local_runtime`
    starts the embedded runtime and returns its URL; `prompt` asks for a token.
    """
    base_url = (base_url or "").rstrip("/") or configured_base_url()
    token = find_token()
    if base_url is None and token is None:
        if local_runtime is not None:
            return Target(local_runtime(), None, is_local=True)
        raise AuthError("No Apify token found and no APIFY_API_BASE_URL set.")
    if base_url is None:
        return Target(PLATFORM_URL, token)
    if token is None and not is_loopback(base_url):
        typed = prompt() if prompt is not None else None
        if not typed:
            raise AuthError(f"{base_url} needs an Apify token and none was found.")
        set_session_token(typed)
        token = Secret(typed)
    return Target(base_url, token, is_local=is_loopback(base_url))
