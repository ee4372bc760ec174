"""Dataset results: the items parameters, pages read several at a time (`read_pages`),
and items read as JSON lines into a DataFrame (or a file: dataset_files.py).

Items travel as `format=jsonl`. With pyarrow (the `arrow` extra) each page is parsed by
Arrow's JSON-lines reader, about 3x faster than orjson plus `DataFrame.from_records`, and
the Arrow tables are turned into one DataFrame at the end, so memory peaks at about the
tables plus the frame. Without pyarrow, or for items that are not flat records, the same
result comes from orjson and `DataFrame.from_records`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from apify_magic.arrow import arrow_table
from apify_magic.errors import OptionError
from apify_magic.result import parse_json

if TYPE_CHECKING:
    import pandas as pd

PAGE_ITEMS = 50_000
# Pages in flight at once, each on its own connection of the client's pool: over a network
# a page costs a round trip and a connection's bandwidth, so one page at a time waits on
# both. Memory holds about this many pages beside the one being parsed.
IN_FLIGHT = 8
# With --to, memory is what matters: each page in flight costs about three times its size
# while its answer is read (h11's buffer, the pieces, the joined body).
TO_PAGE_ITEMS = 20_000
TO_FORMATS = (".parquet", ".csv", ".jsonl")


@dataclasses.dataclass
class DatasetQuery:
    """The dataset-items parameters the magic exposes; `None` means the server's default."""

    fields: list[str] | None = None
    omit: list[str] | None = None
    limit: int | None = None
    offset: int | None = None
    clean: bool = False
    desc: bool = False
    unwind: list[str] | None = None
    flatten: list[str] | None = None
    # A file the items are written to as pages arrive (see dataset_files.py), not a param.
    to: str | None = None

    def validate(self) -> DatasetQuery:
        if self.to is not None:
            check_to(self.to)
        if self.limit is not None and self.limit <= 0:
            raise OptionError(f"--limit must be > 0, got {self.limit}")
        if self.offset is not None and self.offset < 0:
            raise OptionError(f"--offset must be >= 0, got {self.offset}")
        for name in ("fields", "omit", "unwind", "flatten"):
            for field in getattr(self, name) or []:
                if not field or "," in field:
                    raise OptionError(f"--{name} takes field names separated by commas")
        return self

    def params(self, fmt: str = "jsonl") -> dict[str, str]:
        params = {"format": fmt}
        for name in ("fields", "omit", "unwind", "flatten"):
            if getattr(self, name):
                params[name] = ",".join(getattr(self, name))
        if self.limit is not None:
            params["limit"] = str(self.limit)
        if self.offset is not None:
            params["offset"] = str(self.offset)
        if self.clean:
            params["clean"] = "true"
        if self.desc:
            params["desc"] = "true"
        return params


def check_to(to: str) -> Path:
    """The --to path, or OptionError: a file (not a folder) ending in a known format."""
    path = Path(to).expanduser()
    suffix = path.suffix.lower()
    if not to.strip() or path.is_dir() or to.endswith(("/", "\\")):
        raise OptionError(f"--to {to!r} is not a file path")
    if suffix not in TO_FORMATS:
        raise OptionError(f"--to {to!r}: the name must end in {', '.join(TO_FORMATS)}")
    if suffix == ".parquet":
        from apify_magic.arrow import available

        if not available():
            raise OptionError("--to .parquet needs pyarrow",
                              hint="pip install 'apify-magic[arrow]', or write .csv or .jsonl")
    if not path.parent.is_dir():
        raise OptionError(f"--to {to!r}: the folder {str(path.parent)!r} does not exist")
    return path


def split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",")]


def parse_lines(pages: Iterable[bytes]) -> list[Any]:
    """Items from JSON-lines pages, as Python objects."""
    items: list[Any] = []
    for page in pages:
        items.extend(parse_json(line) for line in page.splitlines() if line.strip())
    return items


class FrameBuilder:
    """Builds one DataFrame from JSON-lines pages, parsing each page as it arrives."""

    def __init__(self) -> None:
        self._parts: list[Any] = []

    def add(self, page: bytes) -> None:
        import pandas as pd

        table = arrow_table(page)
        self._parts.append(table if table is not None
                           else pd.DataFrame.from_records(parse_lines([page])))

    def result(self) -> Any:
        return self.frame()

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        parts, self._parts = self._parts, []
        if not parts:
            return pd.DataFrame()
        if all(not isinstance(p, pd.DataFrame) for p in parts):
            import pyarrow as pa

            try:
                table = pa.concat_tables(parts, promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                pass  # types differ between pages: pandas will upcast them below
            else:
                parts.clear()
                frame: pd.DataFrame = table.to_pandas()
                return frame
        frames = [p if isinstance(p, pd.DataFrame) else p.to_pandas() for p in parts]
        parts.clear()
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def frame_from_pages(pages: list[bytes]) -> pd.DataFrame:
    """One DataFrame from JSON-lines pages; each page's bytes are dropped once parsed."""
    builder = FrameBuilder()
    for n, page in enumerate(pages):
        builder.add(page)
        pages[n] = b""
    return builder.frame()


@dataclasses.dataclass
class Page:
    """One answer of GET .../items: `asked` stored items from `offset`, `count` returned."""

    offset: int
    asked: int
    body: bytes
    count: int
    total: int  # the dataset's item count when the page was served: a hint, not an end


class PageSink(Protocol):
    """Where pages go as they arrive: a DataFrame, a list, or a file."""

    def add(self, page: bytes) -> None: ...

    def result(self) -> Any: ...


class ItemList:
    """Pages as Python objects (`--as python`)."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, page: bytes) -> None:
        self.items.extend(parse_lines([page]))

    def result(self) -> Any:
        return self.items


def read_pages(fetch: Callable[[int, int], Page], start: int, end: int | None,
               wait: Callable[[concurrent.futures.Future[Page]], Page], *,
               page_items: int = PAGE_ITEMS, in_flight: int | None = None
               ) -> Iterator[Page]:
    """Every page from `start` (to `end`, when a limit sets one), in order, with up to
    `in_flight` requests under way.

    The end is an empty page past the item count its own answer gives, never `total`
    alone: a dataset may grow while it is read, and `clean` pages come back short (or
    empty, in a run of empty items) while stored items go on after them. Offsets step by
    the stored items asked for, which is what offset and limit count on the platform.
    """
    in_flight = in_flight or IN_FLIGHT
    queue: collections.deque[concurrent.futures.Future[Page]] = collections.deque()
    pool = concurrent.futures.ThreadPoolExecutor(in_flight, thread_name_prefix="apify-page")
    position = start

    def submit() -> bool:
        nonlocal position
        if end is not None and position >= end:
            return False
        size = page_items if end is None else min(page_items, end - position)
        queue.append(pool.submit(fetch, position, size))
        position += size
        return True

    ended = False
    try:
        while len(queue) < in_flight and submit():
            pass
        while queue:
            page = wait(queue.popleft())
            if page.count == 0 and page.offset >= page.total:
                break
            yield page
            while len(queue) < in_flight and submit():
                pass
        ended = True
    finally:
        for pending in queue:
            pending.cancel()
        # At the end, the requests already under way (pages past the end: small) finish
        # before the read returns, so none still holds a connection of the client when its
        # owner closes it; on an error or interrupt they are left to end on their own.
        pool.shutdown(wait=ended, cancel_futures=True)


class ReadRate:
    """Items, bytes, items per second and an ETA from the item count, for the progress."""

    def __init__(self, every_secs: float = 2.0) -> None:
        self.items = self.bytes = 0
        self.started = time.monotonic()
        self.every_secs = every_secs
        self._shown = float("-inf")  # the first page is shown at once

    def add(self, page: Page) -> None:
        self.items += page.count
        self.bytes += len(page.body)

    def due(self, last: bool = False) -> bool:
        """Whether to show the rate now: at most every `every_secs`, and at the end."""
        now = time.monotonic()
        if last or now - self._shown >= self.every_secs:
            self._shown = now
            return True
        return False

    def message(self, total: int) -> str:
        secs = max(time.monotonic() - self.started, 1e-6)
        rate = self.items / secs
        text = (f"read {self.items:,} dataset items of {total:,} "
                f"({self.bytes / 1e6:,.1f} MB, {rate:,.0f} items/s")
        if self.items < total and rate > 0:
            text += f", about {(total - self.items) / rate:,.0f} s left"
        return text + ")"
