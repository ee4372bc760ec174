"""Finding Actors in folders: `.actor/actor.json`, ids, input schemas, builds and how to start them.

An Actor is any folder with `.actor/actor.json`, either one of the configured folders
itself or a folder directly inside one. The first folder that defines a name wins, so
`./actors/hello` shadows the shipped `hello`. Folders are rescanned on every lookup (an
Actor being written next to the notebook shows up without a restart); `actor.json` and
the input schema are parsed again only when their modification times change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
import shutil
import string
import sys
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from apify_magic.local.errors import ApiError, invalid_request

USERNAME = "local"
DEFAULT_MEMORY_MBYTES = 256
DEFAULT_TIMEOUT_SECS = 3600
MIN_MEMORY_MBYTES = 128
MAX_MEMORY_MBYTES = 32768
SHIPPED_ACTORS = Path(__file__).parent / "actors"

_ALPHABET = string.ascii_letters + string.digits
_SKIPPED_DIRS = {"storage", "node_modules", "tests", "test", "__pycache__"}


def new_id() -> str:
    """A random 17-character id, like the platform's."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(17))


def stable_id(*parts: str) -> str:
    """A 17-character id derived from `parts`: the same Actor keeps its id across restarts."""
    number = int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest(), "big")
    chars = []
    for _ in range(17):
        number, index = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


def safe_segment(value: str, what: str) -> str:
    """Refuse a path segment that could leave its folder, in plain or encoded form."""
    decoded = value
    for _ in range(3):  # %252F decodes twice to '/': decode until stable
        again = unquote(decoded)
        if again == decoded:
            break
        decoded = again
    if not decoded or decoded == "." or ".." in decoded or any(c in decoded for c in "/\\\0"):
        raise invalid_request(f"{what} {value!r} is not allowed: it must not contain "
                              "'/', '\\' or '..'")
    return decoded


@dataclasses.dataclass(frozen=True)
class ActorDef:
    """One Actor folder, as the platform would describe its Actor and its single build."""

    name: str
    folder: Path
    title: str
    description: str
    version: str
    build_tag: str
    environment: dict[str, str]
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None
    # Local stand-in for the prices set in the Console: actor.json's "pricingInfo",
    # e.g. {"pricingModel": "PAY_PER_EVENT", "pricingPerEvent": {"actorChargeEvents":
    # {"page": {"eventTitle": "A page", "eventPriceUsd": 0.01}}}}.
    pricing_info: dict[str, Any] | None
    default_memory_mbytes: int
    min_memory_mbytes: int
    max_memory_mbytes: int
    default_timeout_secs: int
    modified_at: datetime

    @property
    def id(self) -> str:
        return stable_id("actor", USERNAME, self.name)

    @property
    def build_id(self) -> str:
        return stable_id("build", USERNAME, self.name, self.version)

    @property
    def build_number(self) -> str:
        # One build per version, numbered like the platform's `<major>.<minor>.<n>`.
        return f"{self.version}.1"

    def matches_build(self, build: str) -> bool:
        return build in ("latest", self.build_tag, self.version, self.build_number, self.build_id)

    def event_prices(self) -> dict[str, float]:
        """Pay-per-event prices by event name (empty unless the model is PAY_PER_EVENT)."""
        info = self.pricing_info or {}
        if info.get("pricingModel") != "PAY_PER_EVENT":
            return {}
        events = (info.get("pricingPerEvent") or {}).get("actorChargeEvents") or {}
        return {str(name): float(event.get("eventPriceUsd") or 0)
                for name, event in events.items() if isinstance(event, dict)}

    def pricing_at(self, stamp: str | None) -> dict[str, Any] | None:
        """The prices as the platform gives them (a run's `pricingInfo`, an entry of the
        Actor's `pricingInfos`), in effect since `stamp`; None when it declares none."""
        if self.pricing_info is None:
            return None
        info = json.loads(json.dumps(self.pricing_info))  # a copy to fill in
        events = (info.get("pricingPerEvent") or {}).get("actorChargeEvents") or {}
        for name, event in events.items():
            if isinstance(event, dict):  # the platform always gives both; clients need them
                event.setdefault("eventTitle", name)
                event.setdefault("eventDescription", event["eventTitle"])
        return {"apifyMarginPercentage": 0, "createdAt": stamp, "startedAt": stamp, **info}

    def is_node(self) -> bool:
        return (self.folder / "package.json").is_file() and not _python_entry(self.folder)

    def command(self) -> tuple[list[str], dict[str, str]]:
        """How the Apify CLI would start this Actor: the argv and extra environment."""
        if self.is_node():
            npm = shutil.which("npm")
            if npm is None or shutil.which("node") is None:
                raise ApiError(400, "invalid-request",
                               f"Actor {self.name} is a Node.js Actor and node/npm is not "
                               "installed")
            return _node_command(self.folder, npm), {}
        entry = _python_entry(self.folder)
        if entry is None:
            raise ApiError(400, "invalid-request",
                           f"Actor {self.name} has no entry point: expected a package with "
                           "__main__.py at its root or under src/, or main.py")
        venv_python = self.folder / ".venv" / "bin" / "python3"
        python = str(venv_python) if venv_python.exists() else sys.executable
        args, pythonpath = entry
        env = {"PYTHONPATH": pythonpath} if pythonpath else {}
        return [python, *args], env


_NODE_START = re.compile(r"^node\s+([\w./-]+\.(?:m?js|cjs))$")


def _node_command(folder: Path, npm: str) -> list[str]:
    """As the platform's Node images start an Actor: `npm start` when package.json has a
    start script, else `node` on its `main` (index.js when it names none)."""
    try:
        package = json.loads((folder / "package.json").read_bytes())
    except (OSError, ValueError):
        package = None
    if not isinstance(package, dict):
        raise invalid_request("The Actor's package.json is not a JSON object")
    scripts = package.get("scripts")
    start = scripts.get("start") if isinstance(scripts, dict) else None
    node = shutil.which("node")
    assert node is not None  # checked by the caller
    if isinstance(start, str) and start:
        # `node FILE`, the start script of Apify's templates, runs without npm in between:
        # npm's own start-up is about 0.2 s of a JavaScript run's 0.55 s. Anything else
        # (flags, other commands, shell syntax) goes through npm, as the platform runs it.
        direct = _NODE_START.match(start)
        entry = (folder / direct[1]).resolve() if direct else None
        if entry is not None and entry.is_relative_to(folder.resolve()) and entry.is_file():
            return [node, str(entry)]
        return [npm, "start", "--silent"]
    main = package.get("main")
    main = main if isinstance(main, str) and main else "index.js"
    entry = (folder / main).resolve()
    if not entry.is_relative_to(folder.resolve()) or not entry.is_file():
        raise invalid_request(f"The Actor's package.json has no start script and its main "
                              f"({main}) is not a file in the Actor's folder")
    return [node, str(entry)]


def _python_entry(folder: Path) -> tuple[list[str], str] | None:
    """`python -m <pkg>` for the single package at the root or under `src/`."""
    if (folder / "src" / "__main__.py").is_file():
        return ["-m", "src"], ""
    for base, path in ((folder, ""), (folder / "src", str(folder / "src"))):
        packages = _main_packages(base)
        if len(packages) == 1:
            return ["-m", packages[0]], path
    if (folder / "main.py").is_file():
        return ["main.py"], ""
    return None


def _main_packages(base: Path) -> list[str]:
    try:
        entries = list(os.scandir(base))
    except OSError:
        return []
    return sorted(e.name for e in entries
                  if e.is_dir() and not e.name.startswith(".") and e.name not in _SKIPPED_DIRS
                  and os.path.isfile(os.path.join(e.path, "__main__.py")))


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def load_actor(folder: Path) -> ActorDef:
    """Parse `.actor/actor.json` and its input schema; raise ValueError when unusable."""
    spec_path = folder / ".actor" / "actor.json"
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    if not isinstance(spec, dict):
        raise ValueError(f"{spec_path} is not a JSON object")
    name = str(spec.get("name") or folder.name)
    safe_segment(name, "Actor name")
    environment = spec.get("environmentVariables") or {}
    return ActorDef(
        name=name,
        folder=folder.resolve(),
        title=str(spec.get("title") or name),
        description=str(spec.get("description") or ""),
        version=str(spec.get("version") or "0.0"),
        build_tag=str(spec.get("buildTag") or "latest"),
        environment={str(k): str(v) for k, v in dict(environment).items()},
        input_schema=_input_schema(folder, spec),
        output_schema=_schema_file(folder, spec.get("output")),
        pricing_info=(spec["pricingInfo"] if isinstance(spec.get("pricingInfo"), dict)
                      else None),
        default_memory_mbytes=_int(spec.get("defaultMemoryMbytes"), DEFAULT_MEMORY_MBYTES),
        min_memory_mbytes=_int(spec.get("minMemoryMbytes"), MIN_MEMORY_MBYTES),
        max_memory_mbytes=_int(spec.get("maxMemoryMbytes"), MAX_MEMORY_MBYTES),
        default_timeout_secs=_int(spec.get("defaultRunOptions", {}).get("timeoutSecs")
                                  if isinstance(spec.get("defaultRunOptions"), dict) else None,
                                  DEFAULT_TIMEOUT_SECS),
        modified_at=datetime.fromtimestamp(spec_path.stat().st_mtime, timezone.utc),
    )


def _input_schema(folder: Path, spec: dict[str, Any]) -> dict[str, Any] | None:
    value = spec.get("input")
    if isinstance(value, dict):
        return value
    path = (folder / ".actor" / value) if isinstance(value, str) else None
    if path is None or not path.is_file():
        path = folder / ".actor" / "INPUT_SCHEMA.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    return schema if isinstance(schema, dict) else None


def _schema_file(folder: Path, value: Any) -> dict[str, Any] | None:
    """A schema given in actor.json itself, or as a path relative to `.actor/`."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return None
    path = folder / ".actor" / value
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return schema if isinstance(schema, dict) else None


def _stamp(folder: Path) -> tuple[float, ...]:
    actor = folder / ".actor"
    stamps = []
    for path in (actor / "actor.json", actor / "input_schema.json", actor / "INPUT_SCHEMA.json",
                 actor / "output_schema.json"):
        try:
            stamps.append(path.stat().st_mtime)
        except OSError:
            stamps.append(0.0)
    return tuple(stamps)


class Registry:
    """The Actors of some folders, looked up by name, `~name`, `local~name` or id."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = [Path(f) for f in folders]
        self._cache: dict[Path, tuple[tuple[float, ...], ActorDef | None]] = {}
        self._lock = threading.Lock()
        # Where each name and id was found by the last full scan, while no root changed:
        # a run-sync then stats one Actor's files instead of listing every folder.
        self._found: dict[str, Path] = {}
        self._roots_stamp: tuple[float, ...] = ()

    def _candidates(self) -> Iterable[Path]:
        for root in self.folders:
            if (root / ".actor" / "actor.json").is_file():
                yield root
                continue
            try:
                entries = sorted(os.scandir(root), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir() and os.path.isfile(
                        os.path.join(entry.path, ".actor", "actor.json")):
                    yield Path(entry.path)

    def _load(self, folder: Path) -> ActorDef | None:
        stamp = _stamp(folder)
        cached = self._cache.get(folder)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            actor: ActorDef | None = load_actor(folder)
        except (OSError, ValueError, ApiError):
            actor = None  # a broken actor.json hides that Actor, not the others
        self._cache[folder] = (stamp, actor)
        return actor

    def actors(self) -> list[ActorDef]:
        found: dict[str, ActorDef] = {}
        places: dict[str, Path] = {}
        with self._lock:
            roots_stamp = self._roots()
            for folder in self._candidates():
                actor = self._load(folder)
                if actor is not None and actor.name not in found:
                    found[actor.name] = actor
                    places[actor.name] = places[actor.id] = folder
            self._found, self._roots_stamp = places, roots_stamp
        return list(found.values())

    def _roots(self) -> tuple[float, ...]:
        # A folder added, removed or renamed under a root changes the root's mtime.
        stamps = []
        for root in self.folders:
            try:
                stamps.append(root.stat().st_mtime)
            except OSError:
                stamps.append(0.0)
        return tuple(stamps)

    def _known(self, name: str) -> ActorDef | None:
        """The Actor the last scan found under `name`, if nothing has changed since."""
        with self._lock:
            folder = self._found.get(name)
            if folder is None or self._roots() != self._roots_stamp:
                return None
            actor = self._load(folder)
        return actor if actor is not None and name in (actor.name, actor.id) else None

    def find(self, actor_id: str) -> ActorDef:
        """The Actor for an id from a URL; 404 `record-not-found` when there is none."""
        actor_id = safe_segment(actor_id, "Actor id")
        owner, _, name = actor_id.rpartition("~")
        if owner not in ("", USERNAME):
            raise _actor_not_found()
        known = self._known(name)
        if known is not None:
            return known
        for actor in self.actors():
            if name in (actor.name, actor.id):
                return actor
        raise _actor_not_found()


def _actor_not_found() -> ApiError:
    # The platform's type for a missing Actor is the generic record-not-found (the spec's
    # NotFound response), the one type both official clients turn into None/undefined.
    return ApiError(404, "record-not-found", "Actor was not found")
