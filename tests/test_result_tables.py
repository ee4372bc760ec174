"""JSON OUTPUT tables: the Arrow path gives exactly what orjson + `from_records` gives."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apify_magic import result

JSON = "application/json; charset=utf-8"
KEYS = st.sampled_from(["a", "b", "url", "név", "},{", "x y"])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["},{", '"},{"', "2026-12-02T10:00:00.000Z", "2026-12-02", "ü\u2028x"]))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2),
                   st.dictionaries(KEYS, SCALARS, max_size=2))
RECORDS = st.lists(st.dictionaries(KEYS, VALUES, min_size=1, max_size=5), min_size=1,
                   max_size=30)


def plain(body: bytes) -> pd.DataFrame:
    return pd.DataFrame.from_records(orjson.loads(body))


def test_flat_records_take_the_arrow_path() -> None:
    pytest.importorskip("pyarrow")
    body = orjson.dumps([{"n": i, "s": f"x{i}", "f": i / 3, "b": i % 2 == 0,
                          "gap": None if i % 3 else i} for i in range(1000)])
    fast = result.records_frame(body)
    assert fast is not None
    pd.testing.assert_frame_equal(fast, plain(body))
    pd.testing.assert_frame_equal(result.convert(body, JSON), plain(body))


@pytest.mark.parametrize("body", [
    b'[{"a": "},{"}, {"a": "x"}]',  # the separator inside a string
    b'[{"a": [{"b": 1},{"b": 2}]}]',  # and at a nested level
    b'[{"a": 1}, {"a": "one"}]',  # mixed types
    b'[{"a": "2026-12-02T10:00:00Z"}]',  # a date Arrow would make a timestamp
    b'[\n  {"a": 1},\n  {"a": 2}\n]',  # pretty-printed
])
def test_awkward_tables_match_the_plain_path(body: bytes) -> None:
    pd.testing.assert_frame_equal(result.convert(body, JSON), plain(body))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RECORDS)
def test_any_records_match_the_plain_path(records: list[dict[str, Any]]) -> None:
    body = orjson.dumps(records)
    got = result.convert(body, JSON)
    pd.testing.assert_frame_equal(got, plain(body))


@pytest.mark.parametrize("piece", [1, 40, 1 << 20])
def test_a_body_read_in_pieces_matches_the_plain_path(
        piece: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrow reads the array a piece at a time (`arrow.ArrayLines`): every cut between
    records, a string holding `},{` across a cut, and bodies of several pieces."""
    pytest.importorskip("pyarrow")
    monkeypatch.setattr("apify_magic.arrow.READ_PIECE", piece)
    body = orjson.dumps([{"n": i, "s": "é" * (i % 50), "f": i / 7, "t": f"p{i}"}
                         for i in range(60_000)])
    fast = result.records_frame(body)
    assert fast is not None
    pd.testing.assert_frame_equal(fast, plain(body))
    tricky = orjson.dumps([{"a": "x},{y" if i == 3 else f"v{i}"} for i in range(9)])
    pd.testing.assert_frame_equal(result.convert(tricky, JSON), plain(tricky))


@settings(max_examples=200, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(RECORDS)
def test_any_records_in_small_pieces_match_the_plain_path(
        monkeypatch: pytest.MonkeyPatch, records: list[dict[str, Any]]) -> None:
    monkeypatch.setattr("apify_magic.arrow.READ_PIECE", 5)
    body = orjson.dumps(records)
    pd.testing.assert_frame_equal(result.convert(body, JSON), plain(body))
