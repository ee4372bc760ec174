"""Query parameters as the platform reads them: one place for every route.

Booleans arrive as `true`/`false` or `1`/`0` (some clients send `yes`), numbers as
decimal text; an empty value counts as absent. A malformed value is 400
`invalid-request` naming the parameter, never a 500.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from apify_magic.local.errors import invalid_request

Query = Mapping[str, str]

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def is_true(value: str | None) -> bool:
    """Lenient truth, for flags where anything but a yes means no (`desc`, `clean`...)."""
    return (value or "").strip().lower() in _TRUE


def flag(query: Query, name: str) -> bool | None:
    """A strict boolean: None when absent, 400 when it is neither true nor false."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise invalid_request(f"Parameter {name} must be true, false, 1 or 0")


def number(query: Query, name: str) -> float | None:
    """A finite number, or None when absent."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise invalid_request(f"Parameter {name} must be a number") from None
    if not math.isfinite(value):
        raise invalid_request(f"Parameter {name} must be a number")
    return value


def non_negative(query: Query, name: str, default: int | None) -> int | None:
    """A whole number >= 0, or `default` when absent."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_request(f"Parameter {name} must be a non-negative integer") from None
    if value < 0:
        raise invalid_request(f"Parameter {name} must be a non-negative integer")
    return value


def names(value: str | None) -> list[str]:
    """A comma-separated list of field names, blanks dropped."""
    return [n.strip() for n in (value or "").split(",") if n.strip()]


def page(query: Query, *, default_limit: int = 1000, max_limit: int = 1000
         ) -> tuple[int, int, bool]:
    """`offset`, `limit` (capped as the platform caps list endpoints) and `desc`."""
    offset = non_negative(query, "offset", 0) or 0
    limit = non_negative(query, "limit", None)
    limit = default_limit if limit is None or limit == 0 else min(limit, max_limit)
    return offset, limit, is_true(query.get("desc"))
