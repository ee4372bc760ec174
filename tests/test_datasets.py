"""Dataset items to DataFrames: the Arrow fast path gives what from_records gives."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from apify_magic.datasets import DatasetQuery, frame_from_pages
from apify_magic.errors import OptionError


def jsonl(items: list[Any]) -> bytes:
    return "".join(json.dumps(i) + "\n" for i in items).encode()


FLAT = [{"i": i, "name": f"n{i}", "score": i / 3, "ok": i % 2 == 0,
         "when": "2026-11-29T12:00:00.000Z", "day": "2026-01-02"} for i in range(50)]
CASES = {
    "flat": [FLAT[:20], FLAT[20:]],
    "nested": [[{"a": 1, "tags": ["x", "y"], "meta": {"k": 1}}, {"a": 2, "tags": []}]],
    "missing keys": [[{"a": 1}, {"b": "x"}], [{"a": 3, "c": None}]],
    "types differ between pages": [[{"a": 1}, {"a": 2}], [{"a": "three"}]],
    "int then float": [[{"a": 1}], [{"a": 2.5}]],
    "empty": [[]],
}


@pytest.mark.parametrize("case", list(CASES))
def test_frames_match_from_records_with_and_without_pyarrow(
        case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = CASES[case]
    want = pd.DataFrame.from_records([item for page in pages for item in page])
    fast = frame_from_pages([jsonl(p) for p in pages])
    # As without pyarrow (pandas itself may use it, so it cannot be hidden outright).
    monkeypatch.setattr("apify_magic.datasets.arrow_table", lambda page: None)
    plain = frame_from_pages([jsonl(p) for p in pages])
    for got in (fast, plain):
        assert list(got.columns) == list(want.columns)
        assert got.astype(object).where(got.notna(), None).to_dict("records") == \
            want.astype(object).where(want.notna(), None).to_dict("records")


def test_query_parameters_and_validation() -> None:
    query = DatasetQuery(fields=["a", "b"], omit=["c"], limit=5, offset=2, clean=True,
                         desc=True, unwind=["u"], flatten=["f"])
    assert query.params() == {"format": "jsonl", "fields": "a,b", "omit": "c", "limit": "5",
                              "offset": "2", "clean": "true", "desc": "true", "unwind": "u",
                              "flatten": "f"}
    for bad in (DatasetQuery(limit=0), DatasetQuery(offset=-1), DatasetQuery(fields=[""])):
        with pytest.raises(OptionError):
            bad.validate()
