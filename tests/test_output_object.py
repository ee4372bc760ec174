"""The Actor output object in the magic, on the real local runtime: which result a run
gives when its Actor declares an output schema (issue 18)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from recording import run

# The Actors of the shared `runtime` fixture (tests/conftest.py).
TEST_ACTORS = Path(__file__).parent / "local" / "actors"


@pytest.mark.parametrize("watch", ["", " --watch"])
def test_no_output_record_gives_the_output_object(ip: Any, watch: str) -> None:
    result = run(ip, f"%%apify_run output-links out{watch}\n{{}}")
    assert result.success, result.error_in_exec
    out = ip.user_ns["out"]
    assert set(out) == {"rows", "summary", "elsewhere"}
    # The dataset link's own `fields` apply; a link to another host is never fetched.
    pd.testing.assert_frame_equal(out["rows"], pd.DataFrame(
        {"n": [1, 2, 3], "word": ["alpha", "beta", "gamma"]}))
    assert out["summary"] == {"words": 3}
    assert out["elsewhere"].startswith("http://192.0.2.1/")


def test_as_python_reads_items_as_a_list(ip: Any) -> None:
    result = run(ip, "%%apify_run output-links out --as python\n{}")
    assert result.success, result.error_in_exec
    assert ip.user_ns["out"]["rows"] == [{"n": 1, "word": "alpha"}, {"n": 2, "word": "beta"},
                                         {"n": 3, "word": "gamma"}]


@pytest.mark.parametrize("watch", ["", " --watch"])
def test_an_output_record_comes_first(ip: Any, watch: str) -> None:
    result = run(ip, f'%%apify_run output-links out{watch}\n{{"writeOutput": true}}')
    assert result.success, result.error_in_exec
    assert ip.user_ns["out"] == {"from": "OUTPUT"}


def test_a_record_named_by_key_is_that_record_or_none(ip: Any) -> None:
    result = run(ip, "%%apify_run output-links out --output-record-key NOPE\n{}")
    assert result.success, result.error_in_exec
    assert ip.user_ns["out"] is None


def test_dataset_option_still_gives_the_dataset(ip: Any) -> None:
    result = run(ip, "%%apify_run output-links out --dataset\n{}")
    assert result.success, result.error_in_exec
    assert list(ip.user_ns["out"].columns) == ["n", "word", "hidden"]


def test_actors_without_an_output_schema_are_unchanged(ip: Any) -> None:
    result = run(ip, '%%apify_run with-output out\n{}')  # an output object, nothing written
    assert result.success, result.error_in_exec
    out = ip.user_ns["out"]
    assert out["greetings"].empty and out["summary"] is None
    assert run(ip, '%%apify_run hello out\n{"count": 1}').success
    assert list(ip.user_ns["out"]["n"]) == [1]
