"""JSON lines through Arrow: one parse on every core, kept only where pandas would agree.

Used by dataset pages (`datasets.py`) and JSON OUTPUT tables (`result.py`). Without
pyarrow (the `arrow` extra) every function here answers None and callers parse plainly.
"""

from __future__ import annotations

import functools
import importlib.util
import io
from collections.abc import Callable
from typing import Any

_FLAT = ("string", "large_string", "int64", "double", "bool", "null")



SAMPLE_BYTES = 256 * 1024


def _head(page: bytes) -> bytes:
    end = page.find(b"\n", SAMPLE_BYTES)
    return page if end < 0 else page[:end]


def _dated(pa: Any, schema: Any) -> set[str]:
    return {f.name for f in schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)}


def _read(pa: Any, pj: Any, source: Callable[[], Any], as_strings: set[str], order: list[str]
          ) -> Any:
    if not as_strings:
        return pj.read_json(source())
    options = pj.ParseOptions(explicit_schema=pa.schema([(n, pa.string()) for n in as_strings]),
                              unexpected_field_behavior="infer")
    table = pj.read_json(source(), parse_options=options)
    # Explicit fields come first in Arrow's table; pandas keeps the order the items give.
    names = table.schema.names
    return table.select([n for n in order if n in names] + [n for n in names if n not in order])


class ArrayLines(io.RawIOBase):
    """A compact JSON array of objects read as JSON lines, a piece at a time.

    Each `read` turns the next piece's `},{` into `}\n{`: Arrow's reader asks for the
    pieces on its own thread while its parser threads parse the pieces before, so the
    reshaping overlaps the parse instead of copying the whole body first (100,000 records:
    84 ms instead of 108 ms on 2 cores, and no second copy of the body in memory).
    """

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self._body, self._pos, self._end = body, 1, len(body) - 1  # inside the brackets

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        body, pos, end = self._body, self._pos, self._end
        if pos >= end:
            return b""
        cut = body.find(b"},{", pos + max(size, READ_PIECE), end) if size else -1
        if cut < 0:
            self._pos = end
            return body[pos:end].replace(b"},{", b"}\n{")
        self._pos = cut + 2  # past the comma, which becomes the piece's last newline
        return body[pos:cut + 1].replace(b"},{", b"}\n{") + b"\n"

    def readinto(self, buffer: Any) -> int:  # pragma: no cover - Arrow calls read()
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


READ_PIECE = 1 << 20


@functools.cache
def available() -> bool:
    """Whether pyarrow is installed: asked before a caller reshapes a body for Arrow."""
    return importlib.util.find_spec("pyarrow") is not None


def arrow_table(page: bytes, array: bool = False) -> Any:
    """An Arrow table of flat records, or None where Arrow would not give what pandas does.

    `page` is JSON lines, or with `array` a compact JSON array of objects (see
    `ArrayLines`)."""
    try:
        import pyarrow as pa
        import pyarrow.json as pj
    except ImportError:
        return None

    def source() -> Any:
        # A BufferReader hands Arrow slices of the page itself; BytesIO would copy each
        # block out first. The table does not keep the page: Arrow copies what it keeps.
        return pa.PythonFile(ArrayLines(page), mode="r") if array else pa.BufferReader(page)
    try:
        # Arrow reads ISO dates as timestamps; from_records keeps the strings. The dated
        # fields are learnt from the first lines and read as strings in the one full parse.
        head = _head(ArrayLines(page).read(SAMPLE_BYTES) if array else page)
        schema = pj.read_json(pa.BufferReader(head)).schema
        table = _read(pa, pj, source, _dated(pa, schema), schema.names)
        if _dated(pa, table.schema):
            return None  # a date first seen past the head: rare, and the plain path is exact
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None  # not one object per line, or mixed types: the plain path copes
    if any(str(f.type) not in _FLAT for f in table.schema):
        return None  # nested values: pandas keeps them as dicts and lists
    # Arrow has one null for a missing key and for a JSON null; pandas tells them apart in
    # columns of nothing but nulls (NaN if a key was missing, else None) and in columns of
    # booleans (NaN or None beside True/False): those keep the plain path.
    for column, field in zip(table.columns, table.schema, strict=True):
        if column.null_count and str(field.type) in ("null", "bool"):
            return None
    return table


def json_table(page: bytes) -> Any:
    """An Arrow table of any JSON lines Arrow can type, nested values kept as structs and
    lists (for a Parquet file, where no pandas dtype is at stake), ISO dates as strings;
    ResultError where the lines do not make one table (mixed types)."""
    import pyarrow as pa
    import pyarrow.json as pj

    from apify_magic.errors import ResultError

    try:
        head = pj.read_json(pa.BufferReader(_head(page))).schema
        return _read(pa, pj, lambda: pa.BufferReader(page), _dated(pa, head), head.names)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise ResultError(f"the items do not make one Arrow table ({err})",
                          hint="write .jsonl instead") from None
