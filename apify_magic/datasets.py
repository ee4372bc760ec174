"""Dataset results: the items parameters, and items read as JSON lines into a DataFrame.

Items travel as `format=jsonl`. With pyarrow (the `arrow` extra) each page is parsed by
Arrow's JSON-lines reader, about 3x faster than orjson plus `DataFrame.from_records`, and
the Arrow tables are turned into one DataFrame at the end, so memory peaks at about the
tables plus the frame. Without pyarrow, or for items that are not flat records, the same
result comes from orjson and `DataFrame.from_records`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from apify_magic.arrow import arrow_table
from apify_magic.errors import OptionError
from apify_magic.result import parse_json

if TYPE_CHECKING:
    import pandas as pd

PAGE_ITEMS = 50_000


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

    def validate(self) -> DatasetQuery:
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
