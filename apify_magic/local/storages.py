"""Datasets, key-value stores and request queues: named or not, listed, made, renamed, dropped.

A run's default storages are the run's own (its folder, `runner.Run`); every other one is
kept in `<data dir>/storages/<id>/` in the same file layout, with its name and dates in
`storages.db`, so both kinds answer the same routes. Request queues' requests are in
`queues.db` (`queues.py`). Names follow the platform's rule: letters, digits and inner
hyphens, at most 63 characters, unique per kind.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sqlite3
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from apify_magic.local import params, storage
from apify_magic.local.errors import ApiError, invalid_request
from apify_magic.local.queues import MAX_LOCK_SECS, Queues
from apify_magic.local.registry import USERNAME, new_id
from apify_magic.local.runner import Run, iso
from apify_magic.local.wire import Request, Response, data_response, file_response, paginated

if TYPE_CHECKING:
    from apify_magic.local.app import Api, RouteTable

KINDS = {"dataset": "Dataset", "kvs": "Key-value store", "queue": "Request queue"}
_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_TABLE = """create table if not exists storages (id text primary key, kind text not null,
    name text, created text not null, modified text not null, unique (kind, name))"""


@dataclasses.dataclass
class Storage:
    """One storage: where its files are, what its object says, whether it can still grow."""

    kind: str
    id: str
    folder: storage.RunFolder
    name: str | None
    created: str
    modified: str
    act_id: str | None = None
    run_id: str | None = None
    finished: bool = False


def _now() -> str:
    return iso(datetime.now(timezone.utc)) or ""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise invalid_request(f"Name {name!r} is not valid: use letters, digits and hyphens "
                              "(not first or last), at most 63 characters")
    return name


class StoragesApi:
    """The storage routes, for run-default and named storages alike."""

    ROUTES: ClassVar[RouteTable] = [
        (("GET",), "/v2/datasets", "list_datasets", False),
        (("POST",), "/v2/datasets", "create_dataset", False),
        (("GET",), "/v2/datasets/{datasetId}", "get_dataset", False),
        (("PUT",), "/v2/datasets/{datasetId}", "update_dataset", False),
        (("DELETE",), "/v2/datasets/{datasetId}", "delete_dataset", False),
        (("GET",), "/v2/datasets/{datasetId}/items", "get_items", False),
        (("POST",), "/v2/datasets/{datasetId}/items", "push_items", False),
        (("GET",), "/v2/datasets/{datasetId}/statistics", "dataset_statistics", False),
        (("GET",), "/v2/key-value-stores", "list_stores", False),
        (("POST",), "/v2/key-value-stores", "create_store", False),
        (("GET",), "/v2/key-value-stores/{storeId}", "get_store", False),
        (("PUT",), "/v2/key-value-stores/{storeId}", "update_store", False),
        (("DELETE",), "/v2/key-value-stores/{storeId}", "delete_store", False),
        (("GET",), "/v2/key-value-stores/{storeId}/keys", "list_keys", False),
        (("GET",), "/v2/key-value-stores/{storeId}/records/{recordKey}", "get_record", False),
        (("PUT", "POST"), "/v2/key-value-stores/{storeId}/records/{recordKey}", "put_record",
         False),
        (("DELETE",), "/v2/key-value-stores/{storeId}/records/{recordKey}", "delete_record",
         False),
        (("GET",), "/v2/request-queues", "list_queues", False),
        (("POST",), "/v2/request-queues", "create_queue", False),
        (("GET",), "/v2/request-queues/{queueId}", "get_queue", False),
        (("PUT",), "/v2/request-queues/{queueId}", "update_queue", False),
        (("DELETE",), "/v2/request-queues/{queueId}", "delete_queue", False),
        (("GET",), "/v2/request-queues/{queueId}/requests", "list_requests", False),
        (("POST",), "/v2/request-queues/{queueId}/requests", "add_request", False),
        (("POST",), "/v2/request-queues/{queueId}/requests/batch", "add_requests", False),
        (("DELETE",), "/v2/request-queues/{queueId}/requests/batch", "delete_requests", False),
        (("POST",), "/v2/request-queues/{queueId}/requests/unlock", "unlock_requests", False),
        (("GET",), "/v2/request-queues/{queueId}/requests/{requestId}", "get_request", False),
        (("PUT",), "/v2/request-queues/{queueId}/requests/{requestId}", "update_request",
         False),
        (("DELETE",), "/v2/request-queues/{queueId}/requests/{requestId}", "delete_request",
         False),
        (("PUT",), "/v2/request-queues/{queueId}/requests/{requestId}/lock", "prolong_lock",
         False),
        (("DELETE",), "/v2/request-queues/{queueId}/requests/{requestId}/lock",
         "delete_lock", False),
        (("GET",), "/v2/request-queues/{queueId}/head", "get_head", False),
        (("POST",), "/v2/request-queues/{queueId}/head/lock", "lock_head", False),
    ]

    def __init__(self, api: Api) -> None:
        self.api = api
        data_dir = api.runner.runs_dir.parent
        self.root = data_dir / "storages"
        self._db = sqlite3.connect(str(data_dir / "storages.db"), check_same_thread=False,
                                   isolation_level=None)
        self._db.execute(_TABLE)
        self._lock = threading.Lock()
        self.queues = Queues(data_dir / "queues.db")

    # -- finding, making, listing -------------------------------------------------------

    def find(self, kind: str, given: str) -> Storage:
        """A storage by id or name (`name`, `~name`, `local~name`); 404 when none."""
        run = self.api.runner.by_store.get(given)
        if run is not None and self.api.storage_of(run, kind) == given:
            return self._of_run(kind, run)
        owner, _, name = given.rpartition("~")
        with self._lock:
            row = self._db.execute(
                "select id, name, created, modified from storages where kind = ? and "
                "(id = ? or (name = ? and ? in ('', ?)))",
                (kind, given, name, owner, USERNAME)).fetchone()
        if row is None:
            raise ApiError(404, "record-not-found", f"{KINDS[kind]} was not found")
        return self._of_row(kind, row)

    def _of_run(self, kind: str, run: Run) -> Storage:
        stamp = iso(run.finished_at or datetime.now(timezone.utc)) or ""
        return Storage(kind, self.api.storage_of(run, kind), run.folder, None,
                       iso(run.started_at) or "", stamp, run.act_id, run.id, run.is_terminal)

    def _of_row(self, kind: str, row: tuple[str, str | None, str, str]) -> Storage:
        sid, name, created, modified = row
        return Storage(kind, sid, storage.RunFolder(self.root / sid), name, created, modified)

    def _create(self, kind: str, name: str | None) -> tuple[Storage, bool]:
        if name is not None:
            check_name(name)
        with self._lock:
            if name is not None:
                row = self._db.execute("select id, name, created, modified from storages "
                                       "where kind = ? and name = ?", (kind, name)).fetchone()
                if row is not None:
                    return self._of_row(kind, row), False
            sid, stamp = new_id(), _now()
            self._db.execute("insert into storages values (?, ?, ?, ?, ?)",
                             (sid, kind, name, stamp, stamp))
        made = self._of_row(kind, (sid, name, stamp, stamp))
        made.folder.create()
        return made, True

    def _touch(self, item: Storage) -> None:
        if item.run_id is None:
            with self._lock:
                self._db.execute("update storages set modified = ? where id = ?",
                                 (_now(), item.id))

    def _list(self, kind: str, req: Request) -> Response:
        offset, limit, desc = params.page(req.query)
        with self._lock:
            rows = self._db.execute("select id, name, created, modified from storages "
                                    "where kind = ?", (kind,)).fetchall()
        found = [self._of_row(kind, r) for r in rows]
        if params.is_true(req.query.get("unnamed")):
            found += [self._of_run(kind, r) for r in list(self.api.runner.runs.values())]
        else:
            found = [f for f in found if f.name is not None]
        found.sort(key=lambda f: f.created, reverse=desc)
        # A list's items name every storage (the spec and the clients require a string):
        # an unnamed one, listed with unnamed=1, shows an empty name.
        page = [{**self.describe(f), "name": f.name or ""} for f in found[offset:offset + limit]]
        return data_response(paginated(page, offset, limit, desc, total=len(found)))

    def _make(self, kind: str, req: Request) -> Response:
        made, new = self._create(kind, req.query.get("name") or None)
        return data_response(self.describe(made), 201 if new else 200)

    def _rename(self, kind: str, req: Request, given: str) -> Response:
        item = self.find(kind, given)
        change = _json_object(req.body)
        name = change.get("name")
        if name is not None and not isinstance(name, str):
            raise invalid_request("Field name must be a string or null")
        if item.run_id is not None:
            raise invalid_request("A run's default storage keeps its name")
        if name is not None:
            check_name(name)
        with self._lock:
            try:
                self._db.execute("update storages set name = ?, modified = ? where id = ?",
                                 (name, _now(), item.id))
            except sqlite3.IntegrityError:
                raise ApiError(400, "invalid-request",
                               f"{KINDS[kind]} named {name!r} exists already") from None
        return data_response(self.describe(self.find(kind, item.id)))

    def _drop(self, kind: str, given: str) -> Response:
        item = self.find(kind, given)
        if kind == "queue":
            self.queues.drop(item.id)
        if item.run_id is None:
            with self._lock:
                self._db.execute("delete from storages where id = ?", (item.id,))
            storage.remove_tree(item.folder.root)
        else:  # a run's default storage: emptied, as the run still names it
            folder = item.folder.kvs if kind == "kvs" else item.folder.dataset
            if kind != "queue":
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True, exist_ok=True)
        return Response(204, b"", None)

    def describe(self, item: Storage) -> dict[str, Any]:
        base = f"{self.api.base_url()}/v2"
        common: dict[str, Any] = {
            "id": item.id, "name": item.name, "userId": USERNAME, "username": USERNAME,
            "createdAt": item.created, "modifiedAt": item.modified, "accessedAt": _now(),
            "actId": item.act_id, "actRunId": item.run_id,
            "generalAccess": "FOLLOW_USER_SETTING"}
        if item.kind == "dataset":
            count = len(item.folder.item_files())
            return {**common, "itemCount": count, "cleanItemCount": count,
                    "consoleUrl": f"{base}/datasets/{item.id}",
                    "itemsPublicUrl": f"{base}/datasets/{item.id}/items"}
        if item.kind == "kvs":
            return {**common, "consoleUrl": f"{base}/key-value-stores/{item.id}",
                    "keysPublicUrl": f"{base}/key-value-stores/{item.id}/keys",
                    "recordsPublicUrl": f"{base}/key-value-stores/{item.id}/records"}
        modified = self.queues.modified_at(item.id)
        return {**common, **self.queues.counts(item.id),
                "modifiedAt": max(item.modified, modified or ""),
                "consoleUrl": f"{base}/request-queues/{item.id}"}

    # -- datasets -----------------------------------------------------------------------

    def list_datasets(self, req: Request) -> Response:
        return self._list("dataset", req)

    def create_dataset(self, req: Request) -> Response:
        return self._make("dataset", req)

    def get_dataset(self, req: Request, dataset_id: str) -> Response:
        return data_response(self.describe(self.find("dataset", dataset_id)))

    def update_dataset(self, req: Request, dataset_id: str) -> Response:
        return self._rename("dataset", req, dataset_id)

    def delete_dataset(self, req: Request, dataset_id: str) -> Response:
        return self._drop("dataset", dataset_id)

    def get_items(self, req: Request, dataset_id: str) -> Response:
        item = self.find("dataset", dataset_id)
        page = storage.items_page(item.folder, req.query, finished=item.finished)
        return Response(200, page.body, page.content_type, page.headers(), stream=page.stream)

    def push_items(self, req: Request, dataset_id: str) -> Response:
        item = self.find("dataset", dataset_id)
        try:
            value = json.loads(req.body) if req.body.strip() else None
        except ValueError:
            raise invalid_request("The request body is not valid JSON") from None
        items = value if isinstance(value, list) else [value]
        if value is None or not items or not all(isinstance(i, dict) for i in items):
            raise ApiError(400, "invalid-input",
                           "Dataset items must be a JSON object or an array of objects")
        item.folder.push_items(items)
        self._touch(item)
        return Response(201, b"{}")

    def dataset_statistics(self, req: Request, dataset_id: str) -> Response:
        self.find("dataset", dataset_id)
        return data_response({"fieldStatistics": None})

    # -- key-value stores ---------------------------------------------------------------

    def list_stores(self, req: Request) -> Response:
        return self._list("kvs", req)

    def create_store(self, req: Request) -> Response:
        return self._make("kvs", req)

    def get_store(self, req: Request, store_id: str) -> Response:
        return data_response(self.describe(self.find("kvs", store_id)))

    def update_store(self, req: Request, store_id: str) -> Response:
        return self._rename("kvs", req, store_id)

    def delete_store(self, req: Request, store_id: str) -> Response:
        return self._drop("kvs", store_id)

    def list_keys(self, req: Request, store_id: str) -> Response:
        item = self.find("kvs", store_id)
        base = f"{self.api.base_url()}/v2/key-value-stores/{item.id}/records/"
        limit = min(params.non_negative(req.query, "limit", None) or 1000, 1000)
        start = req.query.get("exclusiveStartKey") or None
        prefix = req.query.get("prefix") or ""
        keys = [k for k in item.folder.record_keys()
                if k.startswith(prefix) and (start is None or k > start)]
        items = []
        for key in keys[:limit]:
            found = item.folder.record_file(key)
            size = found.size if found else 0
            items.append({"key": key, "size": size, "recordPublicUrl": base + key})
        truncated = len(keys) > limit
        return data_response({"items": items, "count": len(items), "limit": limit,
                              "exclusiveStartKey": start, "isTruncated": truncated,
                              "nextExclusiveStartKey": items[-1]["key"] if truncated else None})

    def get_record(self, req: Request, store_id: str, key: str) -> Response:
        found = self.find("kvs", store_id).folder.record_file(storage.check_key(key))
        if found is None:
            raise storage.record_not_found()
        return file_response(200, found.path, found.content_type, found.size)

    def put_record(self, req: Request, store_id: str, key: str) -> Response:
        item = self.find("kvs", store_id)
        item.folder.write_record(storage.check_key(key), req.body,
                                 req.content_type or "application/octet-stream")
        self._touch(item)
        return Response(201, b"{}")

    def delete_record(self, req: Request, store_id: str, key: str) -> Response:
        item = self.find("kvs", store_id)
        if not item.folder.delete_record(storage.check_key(key)):
            raise storage.record_not_found()
        self._touch(item)
        return Response(204, b"", None)

    # -- request queues -----------------------------------------------------------------

    def list_queues(self, req: Request) -> Response:
        return self._list("queue", req)

    def create_queue(self, req: Request) -> Response:
        return self._make("queue", req)

    def get_queue(self, req: Request, queue_id: str) -> Response:
        return data_response(self.describe(self.find("queue", queue_id)))

    def update_queue(self, req: Request, queue_id: str) -> Response:
        return self._rename("queue", req, queue_id)

    def delete_queue(self, req: Request, queue_id: str) -> Response:
        return self._drop("queue", queue_id)

    def _queue(self, queue_id: str) -> str:
        return self.find("queue", queue_id).id

    def list_requests(self, req: Request, queue_id: str) -> Response:
        limit = min(params.non_negative(req.query, "limit", None) or 1000, 10000)
        start = req.query.get("cursor") or req.query.get("exclusiveStartId") or None
        return data_response(self.queues.requests(self._queue(queue_id), limit, start,
                                                  params.names(req.query.get("filter"))))

    def add_request(self, req: Request, queue_id: str) -> Response:
        return data_response(self.queues.add(
            self._queue(queue_id), _json(req.body), forefront=_forefront(req),
            client=_client(req)), 201)

    def add_requests(self, req: Request, queue_id: str) -> Response:
        return data_response(self.queues.add_batch(
            self._queue(queue_id), _json(req.body), forefront=_forefront(req),
            client=_client(req)), 201)

    def delete_requests(self, req: Request, queue_id: str) -> Response:
        return data_response(self.queues.delete_batch(self._queue(queue_id), _json(req.body),
                                                      _client(req)))

    def unlock_requests(self, req: Request, queue_id: str) -> Response:
        return data_response(self.queues.unlock_all(self._queue(queue_id), _client(req)))

    def get_request(self, req: Request, queue_id: str, request_id: str) -> Response:
        return data_response(self.queues.get(self._queue(queue_id), request_id))

    def update_request(self, req: Request, queue_id: str, request_id: str) -> Response:
        return data_response(self.queues.update(
            self._queue(queue_id), request_id, _json(req.body), forefront=_forefront(req),
            client=_client(req)))

    def delete_request(self, req: Request, queue_id: str, request_id: str) -> Response:
        self.queues.delete(self._queue(queue_id), request_id, _client(req))
        return Response(204, b"", None)

    def prolong_lock(self, req: Request, queue_id: str, request_id: str) -> Response:
        return data_response(self.queues.prolong_lock(
            self._queue(queue_id), request_id, _lock_secs(req), forefront=_forefront(req),
            client=_client(req)))

    def delete_lock(self, req: Request, queue_id: str, request_id: str) -> Response:
        self.queues.delete_lock(self._queue(queue_id), request_id, forefront=_forefront(req),
                                client=_client(req))
        return Response(204, b"", None)

    def get_head(self, req: Request, queue_id: str) -> Response:
        limit = min(params.non_negative(req.query, "limit", None) or 100, 10000)
        return data_response(self.queues.head(self._queue(queue_id), limit, _client(req)))

    def lock_head(self, req: Request, queue_id: str) -> Response:
        limit = min(params.non_negative(req.query, "limit", None) or 25, 10000)
        return data_response(self.queues.lock_head(self._queue(queue_id), limit,
                                                   _lock_secs(req), _client(req)), 201)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise invalid_request("The request body is not valid JSON") from None


def _json_object(body: bytes) -> dict[str, Any]:
    value = _json(body) if body.strip() else {}
    if not isinstance(value, dict):
        raise invalid_request("The request body must be a JSON object")
    return value


def _forefront(req: Request) -> bool:
    return bool(params.flag(req.query, "forefront"))


def _client(req: Request) -> str | None:
    return req.query.get("clientKey") or None


def _lock_secs(req: Request) -> int:
    secs = params.number(req.query, "lockSecs")
    if secs is None or not 0 < secs <= MAX_LOCK_SECS:
        raise invalid_request(f"Parameter lockSecs must be between 1 and {MAX_LOCK_SECS}")
    return int(secs)

