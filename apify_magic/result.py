"""Turning a returned record (bytes and a content type) into the Python value to bind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apify_magic import arrow
from apify_magic.errors import ResultError

if TYPE_CHECKING:
    import pandas as pd


def is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def is_text(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime in ("application/xml", "application/javascript")


def is_csv(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in ("text/csv", "application/csv")


def charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def parse_json(content: bytes) -> Any:
    import json
    try:
        import orjson
    except ImportError:  # orjson is a core dependency; stay correct without it
        return json.loads(content)
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        # orjson refuses a lone surrogate escape ("\udc80"), which JSON allows and an
        # Actor's JavaScript may well write; json takes it, and fails on what is invalid.
        return json.loads(content)


def is_records(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def to_dataframe(value: object) -> pd.DataFrame:
    import pandas as pd

    if is_records(value):
        return pd.DataFrame.from_records(value)  # type: ignore[arg-type]
    if isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
        return pd.DataFrame(value)
    raise ResultError(f"a {type(value).__name__} OUTPUT is not a table")


def records_frame(content: bytes) -> pd.DataFrame | None:
    """A JSON array of flat records as a DataFrame through Arrow, or None to parse it plainly.

    Arrow's JSON reader takes one object per line and parses lines on every core, far
    faster than orjson plus `DataFrame.from_records`; a compact array becomes such lines
    by replacing `},{`, a piece at a time as Arrow reads (`arrow.ArrayLines`). Where that
    replace is wrong (`},{` inside a string, or at a nested level) a line is left
    unterminated or unbalanced and Arrow refuses it, so the plain path runs instead; so it
    does for nested values, mixed types and dates, where Arrow's types would differ from
    pandas'. Needs pyarrow (the `arrow` extra).
    """
    if not arrow.available():
        return None
    body = content.strip()
    if not (body.startswith(b"[{") and body.endswith(b"}]")):
        return None
    table = arrow.arrow_table(body, array=True)
    if table is None:
        return None
    frame: pd.DataFrame = table.to_pandas()
    return frame


def convert(content: bytes, content_type: str, form: str = "auto") -> Any:
    """The value to bind: see `RESULT_FORMS` in options.py for the forms."""
    if form == "bytes":
        return content
    if not content:
        return None
    if form == "text":
        return content.decode(charset(content_type), errors="replace")
    if is_json(content_type):
        if form in ("auto", "dataframe"):
            frame = records_frame(content)
            if frame is not None:
                return frame
        try:
            value = parse_json(content)
        except ValueError as err:
            raise ResultError(f"the record says it is JSON but does not parse: {err}") from None
        if form == "dataframe" or (form == "auto" and is_records(value)):
            return to_dataframe(value)
        return value
    if is_csv(content_type) and form in ("auto", "dataframe"):
        import io

        import pandas as pd

        return pd.read_csv(io.BytesIO(content), encoding=charset(content_type))
    if form == "dataframe":
        raise ResultError(f"a {content_type or 'untyped'} record is not a table")
    if is_text(content_type):
        return content.decode(charset(content_type), errors="replace")
    return content
