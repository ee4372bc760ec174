"""Request queues: requests with unique keys, forefront ordering, locks and handled marks.

All queues live in one sqlite database in the data dir (`queues.db`), so they survive a
restart and every operation is one transaction whatever thread serves it. A request's id
is derived from its `uniqueKey` as Crawlee derives it, so a client that computes ids
itself agrees with the runtime. Order: forefront requests first (newest first), then the
rest first in, first out; the head is the pending requests whose lock has expired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from apify_magic.local.errors import ApiError, invalid_request
from apify_magic.local.runner import iso

MAX_BATCH = 25  # the platform's limit for a batch add or delete
MAX_LOCK_SECS = 3600
_SCHEMA = """
create table if not exists requests (
    queue text not null, id text not null, unique_key text not null, order_no real not null,
    handled_at text, lock_until real not null default 0, body text not null,
    lock_client text, primary key (queue, id));
create index if not exists head on requests (queue, handled_at, order_no);
create table if not exists clients (queue text not null, client text not null,
    primary key (queue, client));
create table if not exists queue_stamps (queue text primary key, modified real not null);
"""


def request_id(unique_key: str) -> str:
    """Crawlee's id for a unique key: SHA-256, Base64 without `+/=`, 15 characters."""
    digest = base64.b64encode(hashlib.sha256(unique_key.encode()).digest()).decode()
    return re.sub(r"[+/=]", "", digest)[:15]


def _now() -> float:
    return time.time()


def _stamp(seconds: float) -> str:
    return iso(datetime.fromtimestamp(seconds, timezone.utc)) or ""


def _not_found() -> ApiError:
    return ApiError(404, "record-not-found", "Request was not found")


class Queues:
    """Every request queue's requests, in one database."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("pragma table_info(requests)")}
        if "lock_client" not in columns:  # a data dir from before locks had owners
            self._db.execute("alter table requests add column lock_client text")
        self._lock = threading.Lock()
        self._order = _now()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("begin immediate")
            try:
                yield self._db
            except BaseException:
                self._db.execute("rollback")
                raise
            self._db.execute("commit")

    def _next_order(self, forefront: bool) -> float:
        # Strictly increasing numbers: forefront ones negative so the newest comes first.
        self._order = max(self._order + 1e-6, _now())
        return -self._order if forefront else self._order

    def _touch(self, db: sqlite3.Connection, queue: str, client: str | None) -> None:
        db.execute("insert or replace into queue_stamps values (?, ?)", (queue, _now()))
        if client:
            db.execute("insert or ignore into clients values (?, ?)", (queue, client))

    # -- what a queue object shows ----------------------------------------------------

    def counts(self, queue: str) -> dict[str, Any]:
        with self._lock:
            total, handled = self._db.execute(
                "select count(*), count(handled_at) from requests where queue = ?",
                (queue,)).fetchone()
            clients = self._db.execute("select count(*) from clients where queue = ?",
                                       (queue,)).fetchone()[0]
        return {"totalRequestCount": total, "handledRequestCount": handled,
                "pendingRequestCount": total - handled, "hadMultipleClients": clients > 1}

    def modified_at(self, queue: str) -> str | None:
        with self._lock:
            row = self._db.execute("select modified from queue_stamps where queue = ?",
                                   (queue,)).fetchone()
        return _stamp(row[0]) if row else None

    def drop(self, queue: str) -> None:
        with self._tx() as db:
            for table in ("requests", "clients", "queue_stamps"):
                db.execute(f"delete from {table} where queue = ?", (queue,))

    # -- requests ---------------------------------------------------------------------

    def add(self, queue: str, request: Any, *, forefront: bool, client: str | None
            ) -> dict[str, Any]:
        request = _checked(request)
        with self._tx() as db:
            self._touch(db, queue, client)
            return self._add(db, queue, request, forefront)

    def _add(self, db: sqlite3.Connection, queue: str, request: dict[str, Any],
             forefront: bool) -> dict[str, Any]:
        rid = request_id(request["uniqueKey"])
        row = db.execute("select handled_at from requests where queue = ? and id = ?",
                         (queue, rid)).fetchone()
        if row is not None:
            return {"requestId": rid, "wasAlreadyPresent": True,
                    "wasAlreadyHandled": row[0] is not None}
        body = {**request, "id": rid}
        db.execute("insert into requests (queue, id, unique_key, order_no, handled_at, body) "
                   "values (?, ?, ?, ?, ?, ?)",
                   (queue, rid, request["uniqueKey"], self._next_order(forefront),
                    request.get("handledAt"), json.dumps(body)))
        return {"requestId": rid, "wasAlreadyPresent": False, "wasAlreadyHandled": False}

    def add_batch(self, queue: str, requests: Any, *, forefront: bool, client: str | None
                  ) -> dict[str, Any]:
        if not isinstance(requests, list) or not requests:
            raise invalid_request("The body must be a non-empty JSON array of requests")
        if len(requests) > MAX_BATCH:
            raise invalid_request(f"A batch holds at most {MAX_BATCH} requests")
        checked = [_checked(r) for r in requests]
        with self._tx() as db:
            self._touch(db, queue, client)
            processed = []
            for request in checked:
                done = self._add(db, queue, request, forefront)
                processed.append({**done, "uniqueKey": request["uniqueKey"]})
        return {"processedRequests": processed, "unprocessedRequests": []}

    def get(self, queue: str, rid: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("select body from requests where queue = ? and id = ?",
                                   (queue, rid)).fetchone()
        if row is None:
            raise _not_found()
        return dict(json.loads(row[0]))

    def update(self, queue: str, rid: str, request: Any, *, forefront: bool,
               client: str | None) -> dict[str, Any]:
        request = _checked(request)
        if request.get("id", rid) != rid or request_id(request["uniqueKey"]) != rid:
            raise invalid_request("The request's id and uniqueKey do not match the URL")
        with self._tx() as db:
            row = db.execute("select handled_at from requests where queue = ? and id = ?",
                             (queue, rid)).fetchone()
            if row is None:
                raise _not_found()
            self._touch(db, queue, client)
            handled = request.get("handledAt")
            db.execute("update requests set body = ?, handled_at = ?, lock_until = 0"
                       + (", order_no = ?" if not handled else "")
                       + " where queue = ? and id = ?",
                       (json.dumps({**request, "id": rid}), handled,
                        *(() if handled else (self._next_order(forefront),)), queue, rid))
        return {"requestId": rid, "wasAlreadyPresent": True,
                "wasAlreadyHandled": row[0] is not None}

    def delete(self, queue: str, rid: str, client: str | None) -> None:
        with self._tx() as db:
            self._touch(db, queue, client)
            if db.execute("delete from requests where queue = ? and id = ?",
                          (queue, rid)).rowcount == 0:
                raise _not_found()

    def delete_batch(self, queue: str, requests: Any, client: str | None) -> dict[str, Any]:
        if not isinstance(requests, list) or not requests:
            raise invalid_request("The body must be a non-empty JSON array of requests")
        if len(requests) > MAX_BATCH:
            raise invalid_request(f"A batch holds at most {MAX_BATCH} requests")
        processed: list[dict[str, Any]] = []
        unprocessed: list[dict[str, Any]] = []
        with self._tx() as db:
            self._touch(db, queue, client)
            for request in requests:
                if not isinstance(request, dict):
                    raise invalid_request("Each request must be an object with id or uniqueKey")
                key = request.get("uniqueKey")
                rid = request.get("id") or (request_id(key) if isinstance(key, str) else None)
                if not isinstance(rid, str):
                    raise invalid_request("Each request must have an id or a uniqueKey")
                db.execute("delete from requests where queue = ? and id = ?", (queue, rid))
                processed.append({"id": rid, "uniqueKey": key or rid})
        return {"processedRequests": processed, "unprocessedRequests": unprocessed}

    def requests(self, queue: str, limit: int, start_id: str | None,
                 filters: list[str] | None = None) -> dict[str, Any]:
        """A page of requests by id after `start_id` (the cursor is the last id given);
        `filters`: `pending` (not handled), `locked` (under a lock), either of them."""
        unknown = set(filters or []) - {"pending", "locked"}
        if unknown:
            raise invalid_request("Parameter filter takes pending and locked, not "
                                  + ", ".join(sorted(unknown)))
        wanted = []
        if "pending" in (filters or []):
            wanted.append("handled_at is null")
        if "locked" in (filters or []):
            wanted.append(f"(handled_at is null and lock_until > {_now()!r})")
        where = f" and ({' or '.join(wanted)})" if wanted else ""
        with self._lock:
            rows = self._db.execute(
                f"select id, body from requests where queue = ? and id > ?{where} "
                "order by id limit ?", (queue, start_id or "", limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        out: dict[str, Any] = {"items": [json.loads(body) for _, body in rows],
                               "limit": limit}
        if start_id:
            out["exclusiveStartId"] = start_id
            out["cursor"] = start_id
        if more:
            out["nextCursor"] = rows[-1][0]
        return out

    # -- the head and locks -------------------------------------------------------------

    def _head_rows(self, db: sqlite3.Connection, queue: str, limit: int) -> list[Any]:
        return db.execute(
            "select id, body from requests where queue = ? and handled_at is null "
            "and lock_until <= ? order by order_no limit ?", (queue, _now(), limit)).fetchall()

    def _head_info(self, db: sqlite3.Connection, queue: str, limit: int) -> dict[str, Any]:
        clients = db.execute("select count(*) from clients where queue = ?",
                             (queue,)).fetchone()[0]
        modified = db.execute("select modified from queue_stamps where queue = ?",
                              (queue,)).fetchone()
        return {"limit": limit, "hadMultipleClients": clients > 1,
                "queueModifiedAt": _stamp(modified[0] if modified else _now())}

    def head(self, queue: str, limit: int, client: str | None) -> dict[str, Any]:
        with self._lock:
            rows = self._head_rows(self._db, queue, limit)
            info = self._head_info(self._db, queue, limit)
        return {**info, "items": [_short(json.loads(body)) for _, body in rows]}

    def lock_head(self, queue: str, limit: int, lock_secs: int, client: str | None
                  ) -> dict[str, Any]:
        until = _now() + lock_secs
        with self._tx() as db:
            self._touch(db, queue, client)
            rows = self._head_rows(db, queue, limit)
            db.executemany("update requests set lock_until = ?, lock_client = ? "
                           "where queue = ? and id = ?",
                           [(until, client or "", queue, rid) for rid, _ in rows])
            info = self._head_info(db, queue, limit)
            locked = db.execute("select count(*) from requests where queue = ? and "
                                "handled_at is null and lock_until > ?",
                                (queue, _now())).fetchone()[0]
        items = [{**_short(json.loads(body)), "lockExpiresAt": _stamp(until)}
                 for _, body in rows]
        out = {**info, "lockSecs": lock_secs, "queueHasLockedRequests": locked > 0,
               "items": items}
        if client:
            out["clientKey"] = client
        return out

    def prolong_lock(self, queue: str, rid: str, lock_secs: int, *, forefront: bool,
                     client: str | None) -> dict[str, Any]:
        until = _now() + lock_secs
        with self._tx() as db:
            self._touch(db, queue, client)
            _check_owner(db, queue, rid, client)
            changed = db.execute(
                "update requests set lock_until = ?" + (", order_no = ?" if forefront else "")
                + " where queue = ? and id = ? and handled_at is null and lock_until > ?",
                (until, *((self._next_order(True),) if forefront else ()), queue, rid, _now()))
            if changed.rowcount == 0:
                raise ApiError(404, "record-not-found",
                               "Request was not found, is handled, or is not locked")
        return {"lockExpiresAt": _stamp(until)}

    def delete_lock(self, queue: str, rid: str, *, forefront: bool, client: str | None) -> None:
        with self._tx() as db:
            self._touch(db, queue, client)
            _check_owner(db, queue, rid, client)
            changed = db.execute(
                "update requests set lock_until = 0" + (", order_no = ?" if forefront else "")
                + " where queue = ? and id = ? and lock_until > ?",
                (*((self._next_order(True),) if forefront else ()), queue, rid, _now()))
            if changed.rowcount == 0:
                raise ApiError(404, "record-not-found", "Request was not found or not locked")

    def unlock_all(self, queue: str, client: str | None) -> dict[str, Any]:
        with self._tx() as db:
            self._touch(db, queue, client)
            # Only this client's locks, as the spec says: another client's stay.
            changed = db.execute("update requests set lock_until = 0 where queue = ? and "
                                 "lock_until > ? and coalesce(lock_client, '') = ?",
                                 (queue, _now(), client or ""))
        return {"unlockedCount": changed.rowcount}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _check_owner(db: sqlite3.Connection, queue: str, rid: str, client: str | None) -> None:
    """A live lock is prolonged or released only by the client that took it (the spec:
    "only by the client that has locked it"); no clientKey is a client of its own."""
    row = db.execute("select coalesce(lock_client, '') from requests where queue = ? and "
                     "id = ? and lock_until > ?", (queue, rid, _now())).fetchone()
    if row is not None and row[0] != (client or ""):
        raise ApiError(403, "request-handled-or-locked",
                       "The request is locked by another client")


def _checked(request: Any) -> dict[str, Any]:
    if not isinstance(request, dict):
        raise invalid_request("A request must be a JSON object")
    url = request.get("url")
    if not isinstance(url, str) or not url:
        raise invalid_request("A request must have a url")
    key = request.get("uniqueKey")
    if not isinstance(key, str) or not key:
        raise invalid_request("A request must have a uniqueKey")
    handled = request.get("handledAt")
    if handled is not None and not isinstance(handled, str):
        raise invalid_request("handledAt must be a date and time or null")
    return {"method": "GET", "retryCount": 0, **request}


def _short(request: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "uniqueKey", "url", "method", "retryCount")
    return {k: request[k] for k in keys if k in request}
