"""The runtime's own saved objects (Actor tasks, webhooks, webhook dispatches) in SQLite.

One file, `records.sqlite3`, in the data dir, so tasks and webhooks outlive a restart as
runs do. Each object is one row of its kind: its id, when it was made, an optional unique
key (a task's name, a webhook's idempotency key) and the object itself as JSON. Every call
uses its thread's own connection: handlers run on many threads, and SQLite's own locking
(with WAL, readers never wait for the writer) keeps them apart, also across runtimes that
share a data dir one after the other.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apify_magic.local.errors import ApiError

RECORDS_FILE = "records.sqlite3"
KINDS = ("tasks", "webhooks", "dispatches")
BUSY_TIMEOUT_SECS = 10.0


class Records:
    """Saved objects by kind; `put` inserts or replaces, keys are unique per kind."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / RECORDS_FILE
        self._local = threading.local()
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECS)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # not inside a transaction
        finally:
            db.close()
        with self._db() as db:
            for kind in KINDS:
                db.execute(f"CREATE TABLE IF NOT EXISTS {kind} (id TEXT PRIMARY KEY, "
                           "created_at TEXT NOT NULL, key TEXT UNIQUE, owner TEXT, "
                           "data TEXT NOT NULL)")
                db.execute(f"CREATE INDEX IF NOT EXISTS {kind}_owner ON {kind} (owner)")

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # One connection per thread, kept: opening one costs more than a query, and every
        # run event looks for webhooks (a sqlite3 connection belongs to its thread).
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECS,
                                                  isolation_level=None)
        db.execute("BEGIN")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def put(self, kind: str, obj: dict[str, Any], *, key: str | None = None,
            owner: str | None = None) -> None:
        """Save `obj` (it has `id` and `createdAt`); 409 when another has the same key."""
        try:
            with self._db() as db:
                # An upsert by id: INSERT OR REPLACE would also drop another row that
                # holds the same key, where the key must refuse instead.
                db.execute(f"INSERT INTO {_kind(kind)} VALUES (?, ?, ?, ?, ?) "
                           "ON CONFLICT(id) DO UPDATE SET key = excluded.key, "
                           "owner = excluded.owner, data = excluded.data",
                           (obj["id"], obj["createdAt"], key, owner,
                            json.dumps(obj, ensure_ascii=False)))
        except sqlite3.IntegrityError:
            raise ApiError(409, "actor-task-name-not-unique" if kind == "tasks"
                           else "name-not-unique",
                           f"Another object already has the name or key {key!r}") from None

    def get(self, kind: str, obj_id: str) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute(f"SELECT data FROM {_kind(kind)} WHERE id = ?",
                             (obj_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def by_key(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute(f"SELECT data FROM {_kind(kind)} WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def delete(self, kind: str, obj_id: str) -> bool:
        with self._db() as db:
            return db.execute(f"DELETE FROM {_kind(kind)} WHERE id = ?",
                              (obj_id,)).rowcount > 0

    def page(self, kind: str, offset: int, limit: int, desc: bool,
             owner: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """A page by `createdAt` (then id), and how many there are in all."""
        where, args = ("WHERE owner = ?", (owner,)) if owner is not None else ("", ())
        order = "DESC" if desc else "ASC"
        with self._db() as db:
            total = db.execute(f"SELECT COUNT(*) FROM {_kind(kind)} {where}", args).fetchone()[0]
            rows = db.execute(f"SELECT data FROM {_kind(kind)} {where} "
                              f"ORDER BY created_at {order}, id {order} LIMIT ? OFFSET ?",
                              (*args, limit, offset)).fetchall()
        return [json.loads(r[0]) for r in rows], int(total)

    def owned(self, kind: str, owners: list[str]) -> list[dict[str, Any]]:
        """Every object of a kind whose owner is one of `owners`, oldest first."""
        marks = ", ".join("?" * len(owners))
        with self._db() as db:
            rows = db.execute(f"SELECT data FROM {_kind(kind)} WHERE owner IN ({marks}) "
                              "ORDER BY created_at, id", owners).fetchall()
        return [json.loads(r[0]) for r in rows]

    def owners(self, kind: str) -> set[str]:
        with self._db() as db:
            rows = db.execute(f"SELECT DISTINCT owner FROM {_kind(kind)} "
                              "WHERE owner IS NOT NULL").fetchall()
        return {str(r[0]) for r in rows}

    def stamp(self) -> tuple[tuple[int, int], ...]:
        """Changes whenever anyone commits to the file, in this process or another: with
        WAL a commit writes the `-wal` file, and a checkpoint the file itself."""
        stamps = []
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                st = path.stat()
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append((0, 0))
        return tuple(stamps)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return self.page(kind, 0, -1, False)[0]

    def count(self, kind: str, owner: str | None = None) -> int:
        return self.page(kind, 0, 0, False, owner)[1]


def _kind(kind: str) -> str:
    if kind not in KINDS:  # table names cannot be SQL parameters: only these three
        raise ValueError(kind)
    return kind
