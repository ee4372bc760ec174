"""Tab completion in the magics' lines: option names, their values, Actor ids and run ids.

`complete_line` is a pure function of the text before the cursor and some `Sources`;
`install` hooks it into IPython's completer (a context matcher, so the kernel's
`complete_request` gets it too). Actor ids come from the local Actors' folders (no
runtime is started for a Tab), the Actors run in this kernel, and, with a token, the
account's own Actors (`GET /v2/acts?my=1`, cached for a few minutes; a failure offers
nothing rather than making Tab wait again).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apify_magic.options import MEMORY_CHOICES, RESULT_FORMS
from apify_magic.progress import PROGRESS_MODES

if TYPE_CHECKING:
    from apify_magic.session import Connection, RunSession

ACTOR_MAGICS = ("%%apify_run", "%apify_run", "%apify_panel", "%%apify_map", "%apify_map")
RUN_MAGICS = ("%apify_attach", "%apify_log")
CONFIG_MAGICS = ("%apify_config",)
VALUES: dict[str, tuple[str, ...]] = {
    "--memory": tuple(str(m) for m in MEMORY_CHOICES),
    "--as": RESULT_FORMS,
    "--progress": PROGRESS_MODES,
}
CACHE_SECS = 300.0
LIST_READ_SECS = 3.0


@dataclasses.dataclass
class Sources:
    """Where completions come from; each is called only when its kind is wanted."""

    options: Callable[[str], Sequence[str]]  # the magic's name -> its option strings
    actors: Callable[[], Iterable[str]]
    builds: Callable[[str], Iterable[str]]  # an Actor id -> its build tags and numbers
    runs: Callable[[], Iterable[str]]
    settings: Callable[[], Iterable[str]]


def complete_line(before: str, sources: Sources) -> tuple[str, list[str]] | None:
    """(the fragment being completed, its completions) for a magic's line, the text up to
    the cursor; None when the cursor is not in one of our magics' lines."""
    words, magic = _magic_words(before)
    if magic is None:
        return None
    token = "" if before[-1:].isspace() else words.pop()
    previous = words[-1] if len(words) > 1 else None
    positionals = [w for i, w in enumerate(words[1:], 1)
                   if not w.startswith("-") and not _takes_value(words[i - 1], sources, magic)]
    if previous in VALUES:
        found: Iterable[str] = VALUES[previous]
    elif previous == "--build":
        found = sources.builds(positionals[0]) if positionals else ()
    elif previous is not None and _takes_value(previous, sources, magic):
        return None  # a value we cannot guess (a number, a variable)
    elif token.startswith("-"):
        found = sorted(sources.options(magic.lstrip("%")))
    elif not positionals:
        found = (sources.actors() if magic in ACTOR_MAGICS else sources.runs()
                 if magic in RUN_MAGICS else sources.settings())
    else:
        return None
    return token, list(dict.fromkeys(f for f in found if f.startswith(token)))


def _magic_words(before: str) -> tuple[list[str], str | None]:
    line = before.split("\n")[0] if before.startswith("%%") else before.rsplit("\n", 1)[-1]
    words = line.split()
    for i, word in enumerate(words):
        if word in (*ACTOR_MAGICS, *RUN_MAGICS, *CONFIG_MAGICS):
            if before.startswith("%%") and "\n" in before:
                return [], None  # the cursor is in the body, the INPUT
            if len(words) == i + 1 and not before[-1:].isspace():
                return [], None  # the magic's own name is being typed
            return words[i:], word
    return [], None


def _takes_value(word: str, sources: Sources, magic: str) -> bool:
    return word in VALUES or word in TAKES_VALUE


TAKES_VALUE = frozenset((
    "--build", "--memory", "--timeout", "--max-items", "--max-total-charge-usd",
    "--output-record-key", "--webhooks", "--content-type", "-i", "--input", "--fields",
    "--omit", "--limit", "--offset", "--unwind", "--flatten", "--to"))


# -- sources ---------------------------------------------------------------------------


def local_folders() -> list[Path]:
    """The embedded runtime's Actor folders (as `local.embedded.actor_dirs`, without
    importing the runtime's server for a Tab)."""
    from apify_magic.local.registry import SHIPPED_ACTORS

    return [Path.cwd().resolve() / "actors", SHIPPED_ACTORS]


def local_actors() -> list[str]:
    from apify_magic.local.registry import Registry

    return sorted(actor.name for actor in Registry(local_folders()).actors())


def local_builds(actor_id: str) -> list[str]:
    from apify_magic.local.registry import Registry

    try:
        actor = Registry(local_folders()).find(actor_id)
    except Exception:  # not a local Actor
        return []
    return ["latest", actor.build_tag, actor.version, actor.build_number]


_cache: dict[str, tuple[float, list[str]]] = {}


def _cached(key: str, fetch: Callable[[], list[str]]) -> list[str]:
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECS:
        return hit[1]
    try:
        found = fetch()
    except Exception:  # offline, a bad token...: offer nothing, and don't ask again soon
        found = []
    _cache[key] = (now, found)
    return found


def is_local(connection: Connection) -> bool:
    """Whether runs go to the embedded runtime (decided without starting it or asking
    for a token)."""
    from apify_magic.target import configured_base_url, find_token

    if connection.target == "local":
        return True
    return (connection.target == "auto" and find_token() is None
            and not (connection.base_url or configured_base_url()))


def remote_actors(session: RunSession, connection: Connection) -> list[str]:
    """The account's own Actors (or a runtime's at a base URL), cached."""
    from apify_magic.target import configured_base_url, find_token, is_loopback

    base = connection.base_url or configured_base_url() or "platform"
    if find_token() is None and not (base != "platform" and is_loopback(base)):
        return []  # never prompt for a token on Tab

    def fetch() -> list[str]:
        client = session.client(connection)
        response = client.get(("acts",), params={"my": "true", "limit": "1000"},
                              read_secs=LIST_READ_SECS)
        items = (response.json().get("data") or {}).get("items") or []
        return [_actor_name(item, client.target.is_platform) for item in items
                if isinstance(item, dict) and item.get("name")]

    return _cached(f"actors {base}", fetch)


def remote_builds(session: RunSession, connection: Connection, actor_id: str) -> list[str]:
    def fetch() -> list[str]:
        client = session.client(connection)
        data = client.get(("acts", actor_id), read_secs=LIST_READ_SECS).json().get("data")
        tagged = (data or {}).get("taggedBuilds") or {}
        return ["latest", *[str(t) for t in tagged],
                *[str(b.get("buildNumber")) for b in tagged.values()
                  if isinstance(b, dict) and b.get("buildNumber")]]

    return _cached(f"builds {connection.base_url} {actor_id}", fetch)


def _actor_name(item: dict[str, Any], platform: bool) -> str:
    name = str(item["name"])
    return f"{item['username']}~{name}" if platform and item.get("username") else name


def install(shell: Any, sources: Sources) -> Any:
    """Add the matcher to IPython's completer; return it (for `uninstall`)."""
    from IPython.core.completer import SimpleCompletion, context_matcher

    @context_matcher()  # type: ignore[untyped-decorator]
    def apify_matcher(context: Any) -> dict[str, Any]:
        lines = context.full_text.split("\n")
        before = "\n".join([*lines[:context.cursor_line],
                            lines[context.cursor_line][:context.cursor_position]])
        try:
            found = complete_line(before, sources)
        except Exception:  # Tab must never raise into the user's face
            found = None
        if found is None:
            return {"completions": [], "suppress": False}
        token, matches = found
        return {"completions": [SimpleCompletion(text=m, type="apify") for m in matches],
                "suppress": True, "matched_fragment": token}

    completer = getattr(shell, "Completer", None)
    if completer is not None:
        completer.custom_matchers.append(apify_matcher)
    return apify_matcher


def uninstall(shell: Any, matcher: Any) -> None:
    completer = getattr(shell, "Completer", None)
    if completer is not None and matcher in completer.custom_matchers:
        completer.custom_matchers.remove(matcher)
