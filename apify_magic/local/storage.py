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

import array
import asyncio
import bisect
import contextlib
import csv
import dataclasses
import io
import json
import mimetypes
import os
import re
import shutil
import stat
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from apify_magic.local.errors import ApiError, invalid_request
from apify_magic.local.params import is_true, names, non_negative
from apify_magic.local.registry import safe_segment
from apify_magic.result import parse_json

METADATA = "__metadata__.json"
_KEY = re.compile(r"^[a-zA-Z0-9!\-_.'()]{1,256}$")
DATASET_FORMATS = {
    "json": "application/json; charset=utf-8",
    "jsonl": "application/jsonl; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}
# A dataset page larger than this (its items' stored JSON) is not built in memory but
# streamed in pieces of about `PAGE_PIECE_BYTES`, so the runtime's memory does not grow
# with what an Actor writes; a smaller one is answered whole, as fast as before.
PAGE_INLINE_BYTES = 4 << 20
# The same for a page of more items than this read one by one (shaped, CSV, or of a
# dataset still written): many small items take memory as Python objects.
PAGE_INLINE_ITEMS = 50_000
PAGE_PIECE_BYTES = 1 << 20
# Items read one by one are shaped and rendered in batches of at most this many.
BATCH_ITEMS = 2_000


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
class RecordFile:
    """Where a record's value lies, to be read or streamed; not its value."""

    key: str
    path: Path
    content_type: str
    size: int

    def read(self) -> Record:
        return Record(self.key, self.path.read_bytes(), self.content_type)


@dataclasses.dataclass(frozen=True)
class ItemsPage:
    body: bytes
    content_type: str
    offset: int
    limit: int
    count: int
    total: int
    desc: bool
    # A large page's body, made while it is sent (then `body` is empty): a zero-argument
    # callable giving the pieces, as `wire.Response.stream` takes it.
    stream: Callable[[], AsyncIterator[bytes]] | None = None
    # A streamed body's size, when known before it is made (then sent as Content-Length,
    # as for a whole body, instead of in chunks).
    length: int | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Apify-Pagination-Offset": str(self.offset),
            "X-Apify-Pagination-Limit": str(self.limit),
            "X-Apify-Pagination-Count": str(self.count),
            "X-Apify-Pagination-Total": str(self.total),
            "X-Apify-Pagination-Desc": "true" if self.desc else "false",
        }
        if self.stream is not None and self.length is not None:
            headers["Content-Length"] = str(self.length)
        return headers


class RunFolder:
    """The folder of one run: its storage, log and saved run object."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lines: ItemLines | None = None  # a finished dataset's lines, once made
        self.storage = root / "storage"
        self.kvs = self.storage / "key_value_stores" / "default"
        self.dataset = self.storage / "datasets" / "default"
        self.log_path = root / "log.txt"
        self.run_path = root / "run.json"

    def create(self) -> None:
        # From the top down, one mkdir each (`mkdir(parents=True)` fails its way up first).
        self.root.mkdir(parents=True)
        for path in (self.storage, self.kvs.parent, self.kvs, self.dataset.parent,
                     self.dataset, self.storage / "request_queues",
                     self.storage / "request_queues" / "default"):
            path.mkdir()

    def push_items(self, items: list[Any]) -> None:
        """Append items, one file each, numbered after the last (safe across threads)."""
        with _push_lock(self.dataset):
            start = len(self.item_files())
            for number, item in enumerate(items, start + 1):
                (self.dataset / f"{number:09d}.json").write_bytes(_dumps(item))

    def delete_record(self, key: str) -> bool:
        """Remove a record in either layout; whether there was one."""
        found = False
        path = self.kvs / quote(key, safe="")
        candidates = [path, *(c for c in self.kvs.glob(f"{glob_escape(key)}.*")
                              if not c.name.endswith(METADATA))]
        for candidate in candidates:
            if candidate.is_file():
                candidate.unlink()
                found = True
            sidecar = candidate.with_name(f"{candidate.name}.{METADATA}")
            if sidecar.is_file():
                sidecar.unlink()
        return found

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
        found = self.record_file(key)
        return found.read() if found is not None else None

    def record_file(self, key: str) -> RecordFile | None:
        """A record in the SDK's layout, else in the older `KEY.ext` one."""
        path = self.kvs / quote(key, safe="")
        meta = _read_json(path.with_name(f"{path.name}.{METADATA}"))
        if isinstance(meta, dict):
            content_type = meta.get("content_type") or meta.get("contentType")
            with contextlib.suppress(OSError):
                return RecordFile(key, path, str(content_type or _guess_type(path)),
                                  _file_size(path))
        for candidate in sorted(self.kvs.glob(f"{glob_escape(key)}.*")):
            if candidate.name.endswith(METADATA) or not candidate.is_file():
                continue
            meta = _read_json(candidate.with_name(f"{candidate.name}.{METADATA}"))
            content_type = (meta.get("contentType") or meta.get("content_type")
                            if isinstance(meta, dict) else None)
            with contextlib.suppress(OSError):
                return RecordFile(key, candidate, str(content_type or _guess_type(candidate)),
                                  _file_size(candidate))
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

    def item_lines(self) -> ItemLines:
        """The finished dataset as JSON lines, its index read once per folder object."""
        if self._lines is None:
            self._lines = ItemLines.of(self)
        return self._lines

    def item_files(self) -> list[Path]:
        try:
            names = [n for n in os.listdir(self.dataset) if n.endswith(".json") and n != METADATA]
        except OSError:
            return []
        return [self.dataset / n for n in sorted(names)]


def _file_size(path: Path) -> int:
    """The size of a regular file; OSError for anything else (a folder named like a key)."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise IsADirectoryError(str(path))
    return st.st_size


_PUSH_LOCKS: dict[Path, threading.Lock] = {}
_PUSH_LOCKS_GUARD = threading.Lock()


def _push_lock(folder: Path) -> threading.Lock:
    with _PUSH_LOCKS_GUARD:
        return _PUSH_LOCKS.setdefault(folder, threading.Lock())


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


def items_page(folder: RunFolder, query: dict[str, str], finished: bool = False) -> ItemsPage:
    """Dataset items with the platform's parameters: format, offset, limit, desc, unwind,
    flatten, fields, omit and clean (also skipEmpty/skipHidden), applied in that order.

    A finished run's dataset no longer changes, so it is served from a JSON-lines copy
    made once (see `ItemLines`): a page is then one slice of a file, not a file per item.
    """
    fmt = query.get("format", "json").lower()
    if fmt not in DATASET_FORMATS:
        raise invalid_request(f"Format {fmt!r} is not supported by the local runtime "
                              f"(use one of {', '.join(DATASET_FORMATS)})")
    offset = non_negative(query, "offset", 0) or 0
    limit = non_negative(query, "limit", None)
    desc = is_true(query.get("desc"))
    clean = is_true(query.get("clean"))
    skip_empty = clean or is_true(query.get("skipEmpty"))
    skip_hidden = clean or is_true(query.get("skipHidden"))
    fields = names(query.get("fields"))
    omit = set(names(query.get("omit")))
    unwind = names(query.get("unwind"))
    flatten = names(query.get("flatten"))
    shaping = bool(fields or omit or skip_empty or skip_hidden or unwind or flatten)
    shape = _Shaping(fmt, fields, omit, skip_hidden, skip_empty, unwind, flatten)

    def page(body: bytes, stream: Callable[[], AsyncIterator[bytes]] | None, count: int,
             total: int, length: int | None = None) -> ItemsPage:
        return ItemsPage(body=body, content_type=DATASET_FORMATS[fmt], offset=offset,
                         limit=limit if limit is not None else max(total - offset, 1),
                         count=count, total=total, desc=desc, stream=stream, length=length)

    lines = folder.item_lines() if finished else None
    items: list[Any] | None
    if lines is not None:
        start, stop = lines.window(offset, limit, desc)
        size = lines.size(start, stop)
        if not shaping and fmt in ("json", "jsonl"):
            if size <= PAGE_INLINE_BYTES:
                body, count = lines.render(offset, limit, desc, fmt)
                return page(body, None, count, lines.count)
            # JSON: the lines' newlines become commas, and the brackets come around them.
            return page(b"", streamed(lambda: lines.pieces(start, stop, desc, fmt)),
                        stop - start, lines.count, size if fmt == "jsonl" else size + 1)
        total = lines.count
        window = stop - start
        small = size <= PAGE_INLINE_BYTES and window <= PAGE_INLINE_ITEMS
        items = lines.items(offset, limit, desc) if small else None

        def batches() -> Iterator[list[Any]]:
            return lines.item_batches(start, stop, desc)
    else:
        files = folder.item_files()
        total = len(files)
        if desc:
            files.reverse()
        chosen = files[offset:] if limit is None else files[offset:offset + limit]
        del files
        window = len(chosen)
        items = (_read_items(chosen, PAGE_INLINE_BYTES) if len(chosen) <= PAGE_INLINE_ITEMS
                 else None)

        def batches() -> Iterator[list[Any]]:
            return _file_batches(chosen)
    if items is not None:
        shaped = list(shape.apply(items))
        return page(_render(shaped, fmt, fields), None, len(shaped), total)
    # Streamed. When the headers need what only the items tell (the count after unwind
    # or skipEmpty, CSV's columns), it is found first in a pass that keeps none of them.
    if unwind or skip_empty or fmt == "csv":
        count, columns = shape.survey(batches())
    else:
        count, columns = window, []
    return page(b"", streamed(lambda: shape.pieces(batches(), columns)), count, total)


def streamed(make: Callable[[], Generator[bytes, None, None]]
             ) -> Callable[[], AsyncIterator[bytes]]:
    """A blocking generator of pieces as a response's stream: each piece is made (files
    read, items rendered) in a worker thread, never on the event loop."""
    async def stream() -> AsyncIterator[bytes]:
        pieces = make()
        try:
            while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                if piece:
                    yield piece
        finally:
            pieces.close()

    return stream


def _read_item(path: Path) -> tuple[Any, int]:
    """An item file's item (None when unreadable) and its size in bytes."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None, 0
    try:
        return json.loads(raw), len(raw)
    except ValueError:
        return None, len(raw)


def _read_items(paths: list[Path], budget: int) -> list[Any] | None:
    """The items of these files (None for one unreadable), or None once their stored JSON
    passes `budget` bytes: such a page is streamed instead."""
    items: list[Any] = []
    used = 0
    for path in paths:
        item, size = _read_item(path)
        used += size
        if used > budget:
            return None
        items.append(item)
    return items


def _file_batches(paths: list[Path]) -> Iterator[list[Any]]:
    """Items of one file each, in batches of about `PAGE_PIECE_BYTES` of stored JSON."""
    batch: list[Any] = []
    used = 0
    for path in paths:
        item, size = _read_item(path)
        batch.append(item)
        used += size
        if used >= PAGE_PIECE_BYTES or len(batch) >= BATCH_ITEMS:
            yield batch
            batch, used = [], 0
    if batch:
        yield batch


@dataclasses.dataclass(frozen=True)
class _Shaping:
    """unwind, flatten, fields, omit, clean, then a format: for a page whole or in batches."""

    fmt: str
    fields: list[str]
    omit: set[str]
    skip_hidden: bool
    skip_empty: bool
    unwind: list[str]
    flatten: list[str]

    def apply(self, items: list[Any]) -> Iterator[Any]:
        items = _flatten(_unwind(items, self.unwind), self.flatten)
        return _shape(items, self.fields, self.omit, self.skip_hidden, self.skip_empty)

    def survey(self, batches: Iterator[list[Any]]) -> tuple[int, list[str]]:
        """How many items the page has, and CSV's columns (as `_render` finds them)."""
        count = 0
        columns = list(self.fields)
        seen = set(columns)
        for batch in batches:
            for item in self.apply(batch):
                count += 1
                if self.fmt == "csv" and isinstance(item, dict):
                    for key in item:
                        if key not in seen:
                            seen.add(key)
                            columns.append(key)
        return count, columns

    def pieces(self, batches: Iterator[list[Any]], columns: list[str]
               ) -> Generator[bytes, None, None]:
        """The bytes `_render` makes of the whole page, a batch at a time."""
        first = True
        if self.fmt == "csv":
            yield _csv_rows([columns])
        elif self.fmt == "json":
            yield b"["
        for batch in batches:
            shaped = list(self.apply(batch))
            if not shaped:
                continue
            if self.fmt == "json":
                text = ", ".join(json.dumps(i, ensure_ascii=False) for i in shaped)
                yield _utf8(text if first else ", " + text)
            elif self.fmt == "jsonl":
                yield _utf8("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in shaped))
            else:
                yield _csv_rows([[_cell(row.get(c)) for c in columns]
                                 for row in (i if isinstance(i, dict) else {} for i in shaped)])
            first = False
        if self.fmt == "json":
            yield b"]"


class ItemLines:
    """A finished dataset as one JSON-lines file plus the byte offset of every line.

    Made on the first read after the run ended and kept in the run's folder (beside, not
    inside, the Actor's storage), so every later page costs one read of one file.
    """

    def __init__(self, data: Path, offsets: array.array[int]) -> None:
        self.data = data
        self.offsets = offsets

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def of(cls, folder: RunFolder) -> ItemLines:
        data, index = folder.root / "items.jsonl", folder.root / "items.idx"
        offsets: array.array[int] = array.array("q")
        try:
            offsets.frombytes(index.read_bytes())
        except OSError:
            offsets = cls._build(folder, data, index)
        return cls(data, offsets)

    @staticmethod
    def _build(folder: RunFolder, data: Path, index: Path) -> array.array[int]:
        offsets = array.array("q", [0])
        unique = f".{os.getpid()}.{threading.get_ident()}.tmp"  # per builder: two may race
        tmp_data = data.with_name(data.name + unique)
        with open(tmp_data, "wb") as out:
            for path in folder.item_files():
                raw = path.read_bytes().strip()
                if b"\n" in raw or not raw:  # pretty-printed (or empty): make it one line
                    raw = _dumps(parse_json(raw) if raw else None)
                out.write(raw + b"\n")
                offsets.append(offsets[-1] + len(raw) + 1)
        # Both files appear whole or not at all: readers racing the first build are safe.
        tmp_index = index.with_name(index.name + unique)
        tmp_index.write_bytes(offsets.tobytes())
        os.replace(tmp_data, data)
        os.replace(tmp_index, index)
        return offsets

    def window(self, offset: int, limit: int | None, desc: bool) -> tuple[int, int]:
        """The lines [start, stop) of a page."""
        n = self.count
        stop = n if limit is None else min(n, offset + limit)
        start = min(offset, n)
        if desc:  # offset counts from the newest item
            return n - stop, n - start
        return start, stop

    def _region(self, start: int, stop: int) -> bytes:
        with open(self.data, "rb") as f:
            f.seek(self.offsets[start])
            return f.read(self.offsets[stop] - self.offsets[start])

    def render(self, offset: int, limit: int | None, desc: bool, fmt: str) -> tuple[bytes, int]:
        start, stop = self.window(offset, limit, desc)
        region = self._region(start, stop)
        if desc:
            region = b"".join(reversed(region.splitlines(keepends=True)))
        if fmt == "jsonl":
            return region, stop - start
        # JSON lines hold no raw newline, so each one between items becomes a comma.
        return b"[" + region.rstrip(b"\n").replace(b"\n", b",") + b"]", stop - start

    def size(self, start: int, stop: int) -> int:
        """Bytes of the lines [start, stop)."""
        return self.offsets[stop] - self.offsets[start] if stop > start else 0

    def spans(self, start: int, stop: int, desc: bool) -> Iterator[tuple[int, int]]:
        """[start, stop) in runs of lines of about `PAGE_PIECE_BYTES` (a longer line alone),
        from the end when `desc`."""
        offsets = self.offsets
        if not desc:
            a = start
            while a < stop:
                b = bisect.bisect_right(offsets, offsets[a] + PAGE_PIECE_BYTES, a + 1, stop + 1)
                b = max(b - 1, a + 1)
                yield a, b
                a = b
        else:
            b = stop
            while b > start:
                a = bisect.bisect_left(offsets, offsets[b] - PAGE_PIECE_BYTES, start, b)
                a = min(a, b - 1)
                yield a, b
                b = a

    def _regions(self, start: int, stop: int, desc: bool) -> Generator[bytes, None, None]:
        """The page's lines a run at a time, each run's lines in the page's order."""
        with open(self.data, "rb") as f:
            for a, b in self.spans(start, stop, desc):
                f.seek(self.offsets[a])
                region = f.read(self.offsets[b] - self.offsets[a])
                if desc:
                    region = b"".join(reversed(region.splitlines(keepends=True)))
                yield region

    def pieces(self, start: int, stop: int, desc: bool, fmt: str
               ) -> Generator[bytes, None, None]:
        """The bytes `render` gives for the lines [start, stop), in pieces."""
        if fmt == "jsonl":
            yield from self._regions(start, stop, desc)
            return
        yield b"["
        first = True
        for region in self._regions(start, stop, desc):
            body = region[:-1].replace(b"\n", b",")  # every line ends with a newline
            yield body if first else b"," + body
            first = False
        yield b"]"

    def item_batches(self, start: int, stop: int, desc: bool) -> Iterator[list[Any]]:
        for region in self._regions(start, stop, desc):
            yield [parse_json(line) for line in region.splitlines()]

    def items(self, offset: int, limit: int | None, desc: bool) -> list[Any]:
        start, stop = self.window(offset, limit, desc)
        items = [parse_json(line) for line in self._region(start, stop).splitlines()]
        return items[::-1] if desc else items


def _dumps(value: Any) -> bytes:
    """JSON of a stored item: orjson's, else the standard library's for what orjson refuses
    (integers past 64 bits, lone surrogates, kept as `\\ud800`-style escapes)."""
    try:
        import orjson
    except ImportError:
        return json.dumps(value).encode()
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value).encode()


def _unwind(items: list[Any], fields: list[str]) -> list[Any]:
    """Each array element becomes an item merged into its parent; an object is merged in."""
    for field in fields:
        out: list[Any] = []
        for item in items:
            value = item.get(field) if isinstance(item, dict) else None
            if isinstance(value, dict):
                out.append({**{k: v for k, v in item.items() if k != field}, **value})
            elif isinstance(value, list):
                rest = {k: v for k, v in item.items() if k != field}
                for element in value:
                    out.append({**rest, **element} if isinstance(element, dict)
                               else {**rest, field: element})
            else:
                out.append(item)  # missing or not mergeable: kept as it is
        items = out
    return items


def _flatten(items: list[Any], fields: list[str]) -> list[Any]:
    """`{"a": {"b": 1}}` becomes `{"a.b": 1}` for each named field."""
    if not fields:
        return items
    out = []
    for item in items:
        if isinstance(item, dict):
            flat: dict[str, Any] = {}
            for key, value in item.items():
                if key in fields and isinstance(value, dict):
                    flat.update(_flat_pairs(key, value))
                else:
                    flat[key] = value
            item = flat
        out.append(item)
    return out


def _flat_pairs(prefix: str, value: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, inner in value.items():
        if isinstance(inner, dict) and inner:
            yield from _flat_pairs(f"{prefix}.{key}", inner)
        else:
            yield f"{prefix}.{key}", inner


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
        return _utf8(json.dumps(items, ensure_ascii=False))
    if fmt == "jsonl":
        return _utf8("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))
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
    return _utf8(out.getvalue())


def _csv_rows(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return _utf8(out.getvalue())


def _utf8(text: str) -> bytes:
    # An item may hold a lone surrogate (JSON allows "\udc80"); UTF-8 cannot. As the
    # escape it was, inside a JSON string it means the same code point again.
    return text.encode("utf-8", "backslashreplace")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def record_not_found() -> ApiError:
    return ApiError(404, "record-not-found", "Record was not found")
