"""Run folders on disk, in the layout the Apify SDK for Python reads and writes.

    <data dir>/runs/<run id>/run.json        the run object, rewritten when the run ends
    <data dir>/runs/<run id>/log.txt         the Actor's stdout and stderr
    <data dir>/runs/<run id>/storage/        APIFY_LOCAL_STORAGE_DIR of the run
        key_value_stores/default/<KEY>                      (key URL-quoted, no extension)
        key_value_stores/default/<KEY>.__metadata__.json    {"key", "content_type", "size"}
        datasets/default/000000001.json ...                 one item per file

Records are also read in the older `<KEY>.<ext>` layout of the JS tools and older SDKs.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import mimetypes
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from apify_magic.local.errors import ApiError, invalid_request
from apify_magic.local.registry import safe_segment

METADATA = "__metadata__.json"
_KEY = re.compile(r"^[a-zA-Z0-9!\-_.'()]{1,256}$")
DATASET_FORMATS = {
    "json": "application/json; charset=utf-8",
    "jsonl": "application/jsonl; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}


def check_key(key: str) -> str:
    key = safe_segment(key, "Record key")
    if not _KEY.match(key):
        raise invalid_request(f"Record key {key!r} is not valid: use 1-256 of a-zA-Z0-9!-_.'()")
    return key


@dataclasses.dataclass(frozen=True)
class Record:
    key: str
    value: bytes
    content_type: str


@dataclasses.dataclass(frozen=True)
class ItemsPage:
    body: bytes
    content_type: str
    offset: int
    limit: int
    count: int
    total: int
    desc: bool

    def headers(self) -> dict[str, str]:
        return {
            "X-Apify-Pagination-Offset": str(self.offset),
            "X-Apify-Pagination-Limit": str(self.limit),
            "X-Apify-Pagination-Count": str(self.count),
            "X-Apify-Pagination-Total": str(self.total),
            "X-Apify-Pagination-Desc": "true" if self.desc else "false",
        }


class RunFolder:
    """The folder of one run: its storage, log and saved run object."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = root / "storage"
        self.kvs = self.storage / "key_value_stores" / "default"
        self.dataset = self.storage / "datasets" / "default"
        self.log_path = root / "log.txt"
        self.run_path = root / "run.json"

    def create(self) -> None:
        self.kvs.mkdir(parents=True)
        self.dataset.mkdir(parents=True)
        (self.storage / "request_queues" / "default").mkdir(parents=True)

    def write_record(self, key: str, value: bytes, content_type: str) -> None:
        path = self.kvs / quote(key, safe="")
        path.write_bytes(value)
        meta = {"key": key, "content_type": content_type, "size": len(value)}
        path.with_name(f"{path.name}.{METADATA}").write_text(json.dumps(meta))

    def save_run(self, run: dict[str, Any]) -> None:
        tmp = self.run_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(run))
        os.replace(tmp, self.run_path)

    def read_record(self, key: str) -> Record | None:
        """A record in the SDK's layout, else in the older `KEY.ext` one."""
        path = self.kvs / quote(key, safe="")
        meta = _read_json(path.with_name(f"{path.name}.{METADATA}"))
        if isinstance(meta, dict) and path.is_file():
            content_type = meta.get("content_type") or meta.get("contentType")
            return Record(key, path.read_bytes(), str(content_type or _guess_type(path)))
        for candidate in sorted(self.kvs.glob(f"{glob_escape(key)}.*")):
            if candidate.name.endswith(METADATA) or not candidate.is_file():
                continue
            meta = _read_json(candidate.with_name(f"{candidate.name}.{METADATA}"))
            content_type = (meta.get("contentType") or meta.get("content_type")
                            if isinstance(meta, dict) else None)
            return Record(key, candidate.read_bytes(),
                          str(content_type or _guess_type(candidate)))
        return None

    def record_keys(self) -> list[str]:
        keys = set()
        for path in self.kvs.glob("*"):
            name = path.name
            if name == METADATA or not name.endswith(METADATA):
                continue
            meta = _read_json(path)
            if isinstance(meta, dict) and isinstance(meta.get("key"), str):
                keys.add(meta["key"])
        return sorted(keys)

    def item_files(self) -> list[Path]:
        try:
            names = [n for n in os.listdir(self.dataset) if n.endswith(".json") and n != METADATA]
        except OSError:
            return []
        return [self.dataset / n for n in sorted(names)]

    def items(self, offset: int = 0, limit: int | None = None, desc: bool = False
              ) -> tuple[list[Any], int]:
        files = self.item_files()
        if desc:
            files.reverse()
        chosen = files[offset:] if limit is None else files[offset:offset + limit]
        return [_read_json(f) for f in chosen], len(files)

    def log(self) -> bytes:
        try:
            return self.log_path.read_bytes()
        except OSError:
            return b""


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _read_json(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def _guess_type(path: Path) -> str:
    if path.suffix == ".json" or not path.suffix:
        return "application/json; charset=utf-8"
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def items_page(folder: RunFolder, query: dict[str, str]) -> ItemsPage:
    """Dataset items with the platform's parameters: format, fields, omit, offset, limit,
    clean (also skipEmpty/skipHidden), desc."""
    fmt = query.get("format", "json").lower()
    if fmt not in DATASET_FORMATS:
        raise invalid_request(f"Format {fmt!r} is not supported by the local runtime "
                              f"(use one of {', '.join(DATASET_FORMATS)})")
    offset = _non_negative(query, "offset", 0)
    limit = _non_negative(query, "limit", None)
    desc = is_true(query.get("desc"))
    items, total = folder.items(offset, limit, desc)
    clean = is_true(query.get("clean"))
    skip_empty = clean or is_true(query.get("skipEmpty"))
    skip_hidden = clean or is_true(query.get("skipHidden"))
    fields = _names(query.get("fields"))
    omit = set(_names(query.get("omit")))
    shaped = list(_shape(items, fields, omit, skip_hidden, skip_empty))
    return ItemsPage(
        body=_render(shaped, fmt, fields),
        content_type=DATASET_FORMATS[fmt],
        offset=offset,
        limit=limit if limit is not None else max(len(items), 1),
        count=len(shaped),
        total=total,
        desc=desc,
    )


def _shape(items: list[Any], fields: list[str], omit: set[str], skip_hidden: bool,
           skip_empty: bool) -> Iterator[Any]:
    for item in items:
        if isinstance(item, dict):
            if fields:
                item = {k: item[k] for k in fields if k in item}
            if omit or skip_hidden:
                item = {k: v for k, v in item.items()
                        if k not in omit and not (skip_hidden and k.startswith("#"))}
            if skip_empty and not item:
                continue
        elif skip_empty and item in (None, [], ""):
            continue
        yield item


def _render(items: list[Any], fmt: str, fields: list[str]) -> bytes:
    if fmt == "json":
        return json.dumps(items, ensure_ascii=False).encode()
    if fmt == "jsonl":
        return "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items).encode()
    columns = list(fields)
    for item in items:
        if isinstance(item, dict):
            columns.extend(k for k in item if k not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for item in items:
        row = item if isinstance(item, dict) else {}
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue().encode()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").split(",") if n.strip()]


def _non_negative(query: dict[str, str], name: str, default: int | None) -> Any:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        number = int(raw)
    except ValueError:
        raise invalid_request(f"Parameter {name} must be a non-negative integer") from None
    if number < 0:
        raise invalid_request(f"Parameter {name} must be a non-negative integer")
    return number


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def record_not_found() -> ApiError:
    return ApiError(404, "record-not-found", "Record was not found")
