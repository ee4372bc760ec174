"""Defaults from %config, %apify_config, APIFY_MAGIC_* and pyproject.toml: any value of
any name ends in the project's own error (or is accepted), never an internal exception,
and a refused default sends nothing (requests counted at a real recording server).
Property-based, with hypothesis; the kernel tests show the order of the sources."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from recording import RecordingServer, run

from apify_magic import defaults
from apify_magic.errors import ApifyMagicError, OptionError

SETTINGS = settings(max_examples=400, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
_names = st.one_of(st.sampled_from(sorted(defaults.SETTINGS)),
                   st.sampled_from(["memroy", "as_", "max-items", "timout", "dataset_", "x"]))
_raw = st.one_of(st.text(max_size=12), st.sampled_from(
    ["300", "1024", "-1", "nan", "inf", "1e308", "true", "no", "python", "frame", "[]",
     '[{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://h.example"}]',
     "text/plain", "a,b", ",", "0", "1.5"]))
_typed = st.one_of(_raw, st.integers(), st.floats(), st.booleans(), st.none(),
                   st.lists(st.text(max_size=3), max_size=2))


@SETTINGS
@given(name=_names, raw=_raw)
def test_any_environment_default_is_ours_to_refuse(name: str, raw: str) -> None:
    environ = {defaults.ENV_PREFIX + name.upper().replace("-", "_"): raw}
    try:
        found = defaults.env_defaults(environ)
    except OptionError as err:
        assert defaults.ENV_PREFIX in str(err)
        return
    for value in found.values():
        assert value.source.startswith(defaults.ENV_PREFIX)


@SETTINGS
@given(name=_names, value=_typed)
def test_any_pyproject_default_is_ours_to_refuse(tmp_path: Path, name: str,
                                                 value: Any) -> None:
    folder = tmp_path / f"p{abs(hash((name, repr(value))))}"
    (folder / "sub").mkdir(parents=True)
    literal = json.dumps(value, allow_nan=False) if value is not None and \
        not (isinstance(value, float) and value != value) else '"x"'
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        literal = "inf" if value > 0 else "-inf"
    (folder / "pyproject.toml").write_text(
        f"[tool.apify_magic]\n{json.dumps(name)} = {literal}\n")
    try:
        found = defaults.pyproject_defaults(folder / "sub")  # found upward
    except OptionError as err:
        assert "pyproject.toml" in str(err)
        return
    assert all("pyproject.toml" in d.source for d in found.values())


@SETTINGS
@given(name=_names, value=_typed)
def test_any_config_value_is_refused_by_its_own_check_and_sends_nothing(
        shell: Any, server: RecordingServer, name: str, value: Any) -> None:
    magic = shell.magics_manager.registry["ApifyMagic"]
    before = len(server.seen)
    config = "as_" if name == "as" else name.replace("-", "_")
    with contextlib.suppress(ApifyMagicError, UsageError):  # anything else fails the test
        shell.run_line_magic("apify_config", f"{name} = {value if value is not None else ''}")
    if config in defaults.CONFIG_NAMES:
        try:
            setattr(magic, config, value)
        except OptionError as err:
            assert f"ApifyMagic.{config} = " in str(err)
    assert len(server.seen) == before
    for option in defaults.CONFIG_NAMES:  # back to unset for the next example
        setattr(magic, option, None)


def test_a_bad_environment_default_is_refused_before_anything_is_sent(
        shell: Any, server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, raw, message in [
        ("APIFY_MAGIC_MEMORY", "300", "APIFY_MAGIC_MEMORY='300' is refused: --memory must"),
        ("APIFY_MAGIC_AS", "frame", "--as must be one of auto, python"),
        ("APIFY_MAGIC_WATCH", "maybe", "--watch is a flag"),
        ("APIFY_MAGIC_MEMROY", "1024", "did you mean APIFY_MAGIC_MEMORY?"),
    ]:
        monkeypatch.setenv(key, raw)
        error = run(shell, "%%apify_run me~actor --progress none\n{}").error_in_exec
        assert isinstance(error, OptionError) and message in str(error), (key, str(error))
        monkeypatch.delenv(key)
    assert server.seen == []


def test_a_pyproject_default_applies_and_a_bad_one_says_where(
        shell: Any, server: RecordingServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.apify_magic]\nmemory = 512\nas = "text"\n')
    monkeypatch.chdir(tmp_path)
    assert run(shell, "%%apify_run me~actor out --progress none\n{}").error_in_exec is None
    assert server.posts()[-1].query["memory"] == "512"
    assert shell.user_ns["out"] == '{"ok": true}'  # as = "text"
    (tmp_path / "pyproject.toml").write_text("[tool.apify_magic]\nmemroy = 512\n")
    error = run(shell, "%%apify_run me~actor --progress none\n{}").error_in_exec
    assert isinstance(error, OptionError) and "did you mean memory?" in str(error)
    assert len(server.posts()) == 1


def test_dataset_defaults_apply_only_with_dataset(shell: Any, server: RecordingServer) -> None:
    shell.run_line_magic("config", "ApifyMagic.fields = 'a,b'")
    assert run(shell, "%%apify_run me~actor --progress none\n{}").error_in_exec is None
    assert "fields" not in server.posts()[-1].query
    server.default.body = b'{"a": 1}\n'
    run(shell, "%%apify_run me~actor --dataset --as python --progress none\n{}")
    assert server.posts()[-1].query["fields"] == "a,b"
