"""Dataset reads on the real local runtime over HTTP: pages in flight at once, read to an
empty page (a dataset that grows while read, `clean` pages that come back short or empty),
and `--to` files equal to the in-memory result."""

from __future__ import annotations

import io
import json
import shlex
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recording import RecordingServer, Reply, run

from apify_magic import errors
from apify_magic.body import Payload
from apify_magic.client import ApifyClient
from apify_magic.dataset_files import DatasetFile
from apify_magic.datasets import TO_FORMATS, DatasetQuery
from apify_magic.local import LocalRuntime
from apify_magic.options import RunOptions
from apify_magic.progress import NoProgress
from apify_magic.runs import TERMINAL, RunFollower
from apify_magic.target import Target

TEST_ACTORS = Path(__file__).parent / "actors"


class PushOnFirstPage(NoProgress):
    """A progress that pushes more items into the dataset when the first page is read:
    the dataset grows while it is read."""

    def __init__(self, push: Any) -> None:
        self.push = push
        self.messages: list[str] = []

    def status(self, status: str, message: str | None) -> None:
        if not self.messages:
            self.push()
        self.messages.append(message or "")


@pytest.fixture
def running(runtime: LocalRuntime) -> Any:
    """A `slow` run that stays RUNNING while a test reads its dataset, and a push."""
    client = ApifyClient(Target(runtime.url, None), retry_base_secs=0.01)
    follower = RunFollower(client, NoProgress(), actor_id="slow", poll_secs=0.2)
    run_ = follower.start(RunOptions(), Payload(b'{"seconds": 20, "steps": 1}',
                                                "application/json"))
    dataset = run_["defaultDatasetId"]

    def push(items: list[Any]) -> None:
        httpx.post(f"{runtime.url}/v2/datasets/{dataset}/items", json=items,
                   timeout=10).raise_for_status()

    yield client, run_, push
    client.abort_run(run_["id"])
    while client.get_run(run_["id"], 1.0)["status"] not in TERMINAL:
        pass
    client.close()


def _read(client: ApifyClient, run_: dict[str, Any], progress: Any,
          query: DatasetQuery) -> Any:
    follower = RunFollower(client, progress, actor_id="slow")
    follower.run = run_
    return follower.dataset(query, as_frame=False)


def test_a_dataset_that_grows_while_read_is_read_to_the_end(
        running: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, run_, push = running
    monkeypatch.setattr("apify_magic.runs.PAGE_ITEMS", 5)
    monkeypatch.setattr("apify_magic.datasets.IN_FLIGHT", 4)
    push([{"i": i} for i in range(25)])
    # Four pages (20 items) are asked for at once; the fifth after the first page's
    # answer said 25 items and the dataset then grew to 45.
    progress = PushOnFirstPage(lambda: push([{"i": i} for i in range(25, 45)]))
    items = _read(client, run_, progress, DatasetQuery())
    assert items == [{"i": i} for i in range(45)]
    assert "read 45 dataset items" in progress.messages[-1]


def test_clean_pages_that_come_back_short_or_empty_are_read_past(
        running: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, run_, push = running
    monkeypatch.setattr("apify_magic.runs.PAGE_ITEMS", 4)
    monkeypatch.setattr("apify_magic.runs.TO_PAGE_ITEMS", 4)
    # Three whole pages of empty items in the middle: `clean` returns them empty.
    stored = [{"i": 0}, {}, {"i": 1}, *([{}] * 13), {"i": 2}, {"#hidden": 1}, {"i": 3}]
    push(stored)
    items = _read(client, run_, NoProgress(), DatasetQuery(clean=True))
    assert items == [{"i": i} for i in range(4)]
    assert _read(client, run_, NoProgress(), DatasetQuery(clean=True, offset=2, limit=15)
                 ) == [{"i": 1}, {"i": 2}]


def test_progress_says_items_bytes_rate_and_time_left(
        running: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, run_, push = running
    monkeypatch.setattr("apify_magic.runs.PAGE_ITEMS", 10)
    push([{"i": i} for i in range(30)])
    progress = PushOnFirstPage(lambda: None)
    _read(client, run_, progress, DatasetQuery())
    first, last = progress.messages[0], progress.messages[-1]
    assert first.startswith("read 10 dataset items of 30 (0.0 MB, ")
    assert "items/s" in first and "s left" in first
    assert last.startswith("read 30 dataset items of 30 (") and "left" not in last


def _items(count: int) -> list[dict[str, Any]]:
    return [{"i": i, "name": f"item {i}", "score": i / 4, "even": i % 2 == 0,
             "day": f"2026-11-{1 + i % 28:02d}", "#debug": f"d{i}"} for i in range(count)]


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_to_a_file_equals_the_in_memory_result(
        ip: Any, tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apify_magic.runs.PAGE_ITEMS", 7)
    monkeypatch.setattr("apify_magic.runs.TO_PAGE_ITEMS", 7)
    path = tmp_path / f"out{suffix}"
    assert run(ip, '%%apify_run items mem --dataset --watch\n{"count": 30}'
               ).error_in_exec is None
    assert run(ip, f'%%apify_run items out --dataset --to {path}\n{{"count": 30}}'
               ).error_in_exec is None
    handle, mem = ip.user_ns["out"], ip.user_ns["mem"]
    assert isinstance(handle, DatasetFile)
    assert handle.path == path and handle.items == 30 and path.is_file()
    pd.testing.assert_frame_equal(mem, pd.DataFrame.from_records(_items(30)))
    if suffix == ".csv":
        pd.testing.assert_frame_equal(handle.to_pandas(),
                                      pd.read_csv(io.StringIO(mem.to_csv(index=False))))
    else:
        pd.testing.assert_frame_equal(handle.to_pandas(), mem)
    if suffix == ".parquet":
        assert handle.dataset().count_rows() == 30
    if suffix == ".jsonl":
        assert [json.loads(line) for line in path.read_text().splitlines()] == _items(30)
    assert not list(tmp_path.glob(".out*"))


def test_to_jsonl_keeps_nested_items_and_attach_writes_too(
        ip: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apify_magic.runs.PAGE_ITEMS", 4)
    monkeypatch.setattr("apify_magic.runs.TO_PAGE_ITEMS", 4)
    assert run(ip, '%%apify_run items mem --dataset --watch\n{"count": 9, "nested": true}'
               ).error_in_exec is None
    from apify_magic.run_record import last_run

    record = last_run()
    assert record is not None and record.run_id
    path = tmp_path / "nested.jsonl"
    line = f"%apify_attach {record.run_id} out --dataset --to {path}"
    assert run(ip, line).error_in_exec is None
    pd.testing.assert_frame_equal(ip.user_ns["out"].to_pandas(), ip.user_ns["mem"])


def test_parquet_refuses_a_page_with_new_fields_and_leaves_no_file(
        running: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client, run_, push = running
    monkeypatch.setattr("apify_magic.runs.PAGE_ITEMS", 2)
    monkeypatch.setattr("apify_magic.runs.TO_PAGE_ITEMS", 2)
    push([{"a": 1}, {"a": 2}, {"a": 3, "b": "new"}])
    (tmp_path / "out").mkdir()
    path = tmp_path / "out" / "x.parquet"
    with pytest.raises(errors.ResultError, match="first page had not"):
        _read(client, run_, NoProgress(), DatasetQuery(to=str(path)))
    assert not list(path.parent.iterdir())
    push([{"a": None}])  # a null where an int was: fits
    path = tmp_path / "y.parquet"
    handle = _read(client, run_, NoProgress(), DatasetQuery(to=str(path), limit=2))
    assert handle.to_pandas()["a"].tolist() == [1, 2]


_stem = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zl", "Zp"],
                              exclude_characters="/\\\x00"), min_size=1, max_size=8)
_bad_suffix = st.sampled_from(["", ".txt", ".json", ".parq", ".parquet.gz", ".xlsx", ".CSVX"])


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stem=_stem, suffix=_bad_suffix, kind=st.sampled_from(
    ["folder", "suffix", "parquet without pyarrow", "no folder", "no --dataset"]))
def test_bad_to_values_are_an_option_error_and_send_nothing(
        shell: Any, server: RecordingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        stem: str, suffix: str, kind: str) -> None:
    server.default = Reply(body=b'{"ok": true}')
    value = {"folder": str(tmp_path), "suffix": str(tmp_path / f"{stem}{suffix}"),
             "parquet without pyarrow": str(tmp_path / f"{stem}.parquet"),
             "no folder": str(tmp_path / "missing" / f"{stem}.csv"),
             "no --dataset": str(tmp_path / f"{stem}.jsonl")}[kind]
    if kind == "suffix" and Path(value).suffix.lower() in TO_FORMATS:
        return
    dataset = "" if kind == "no --dataset" else " --dataset"
    with monkeypatch.context() as patch:
        if kind == "parquet without pyarrow":
            patch.setattr("apify_magic.arrow.available", lambda: False)
        for cell in (f"%%apify_run me~actor out{dataset} --to {shlex.quote(value)} "
                     "--progress none\n{}",
                     f"%apify_attach abc123 out{dataset} --to {shlex.quote(value)}"):
            before = len(server.seen)
            result = run(shell, cell)
            error = result.error_before_exec or result.error_in_exec
            assert isinstance(error, errors.OptionError), (cell, repr(error))
            assert len(server.seen) == before, cell
