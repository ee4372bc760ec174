"""The map's ledger: one JSON line per event of each input, on disk, so a map resumes.

Each input has a key, a hash of the target, Actor, run options and rendered INPUT: the
same input with the same options is the same key in any kernel, and a changed input or
option is a new one. Lines (appended and flushed one at a time, so a killed kernel
loses at most the line it was writing):

    {"key", "label", "event": "starting", "attempt", "marker", "at"}   before the POST
    {"key", "label", "event": "started", "attempt", "runId", "at"}     the run's id known
    {"key", "label", "event": "ended", "attempt", "runId", "status", "usd", "error", "at"}

The last line of a key is its state. `starting` without `started` means the POST's
answer never arrived: the run is looked for by its marker before anything else starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any

DEFAULT_NAME = "apify-map.ledger.jsonl"


def input_key(*parts: object) -> str:
    """A stable 20-hex-digit key of what decides a run: JSON of the parts, hashed."""
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


@dataclasses.dataclass
class Entry:
    """What the ledger knows of one key: its last event."""

    key: str
    event: str
    attempt: int = 0
    run_id: str | None = None
    status: str | None = None
    marker: str | None = None
    at: float = 0.0
    usd: float | None = None
    error: str | None = None


class Ledger:
    """An append-only JSON-lines file, read once at the start of a map."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, Entry] = {}
        self._file: Any = None

    def load(self) -> Ledger:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self
        for line in text.splitlines():
            try:
                data = json.loads(line)
                key, event = str(data["key"]), str(data["event"])
            except (ValueError, KeyError, TypeError):
                continue  # a line a killed kernel left half-written
            old = self.entries.get(key)
            entry = Entry(key, event, attempt=int(data.get("attempt", 0)),
                          run_id=data.get("runId"), status=data.get("status"),
                          marker=data.get("marker"), at=float(data.get("at", 0)),
                          usd=data.get("usd"), error=data.get("error"))
            if event == "starting" and old is not None and old.attempt == entry.attempt:
                entry.run_id = old.run_id
            self.entries[key] = entry
        return self

    def write(self, key: str, label: Hashable, event: str, **fields: Any) -> None:
        line = {"key": key, "label": _jsonable(label), "event": event, "at": time.time(),
                **{k: v for k, v in fields.items() if v is not None}}
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
        self._file.flush()
        entry = self.entries.get(key)
        if entry is None or event == "starting":
            entry = self.entries[key] = Entry(key, event)
        entry.event = event
        entry.at = line["at"]
        entry.attempt = int(fields.get("attempt", entry.attempt))
        entry.run_id = fields.get("runId", entry.run_id)
        entry.status = fields.get("status", entry.status)
        entry.marker = fields.get("marker", entry.marker)
        entry.usd = fields.get("usd", entry.usd)
        entry.error = fields.get("error", entry.error)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def default_path(cwd: str | None = None) -> Path:
    """Beside the notebook: Jupyter starts a kernel in its notebook's folder."""
    return Path(cwd or os.getcwd()) / DEFAULT_NAME


def _jsonable(label: Hashable) -> Any:
    return label if isinstance(label, (str, int, float, bool)) or label is None else str(label)
