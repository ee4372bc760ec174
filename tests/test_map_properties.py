"""Any `%apify_map` line or template a person can type ends in the project's own error
or IPython's UsageError when it is invalid, and then nothing is sent: counted at a real
recording HTTP server on loopback. Property-based, with hypothesis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from recording import RecordingServer

from apify_magic.errors import AuthError, InputError, OptionError

NOTHING_SENT = (OptionError, InputError, AuthError, UsageError)
SETTINGS = settings(max_examples=400, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
VARIABLES: dict[str, Any] = {
    "rows": [{"u": "a", "n": 1}, {"u": "b"}],
    "named": {"x": {"u": "a"}, "y": {"u": 3}},
    "frame": pd.DataFrame({"u": ["a", "b"]}, index=[1, 1]),  # duplicate labels
    "empty": [],
    "scalar": 42,
    "odd": [{1, 2}],
    "nan": [{"x": float("nan")}],
}

_number = st.one_of(st.integers(-(2**40), 2**40).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["", "x", "1e400", "-0"]))
_option = st.one_of(
    st.tuples(st.sampled_from(["--concurrency", "--retries", "--batch", "--budget-usd",
                               "--memory", "--timeout", "--max-items"]), _number),
    st.tuples(st.sampled_from(["--ledger", "--over", "--as", "--progress"]),
              st.text(max_size=8)),
)
_template = st.one_of(
    st.just('{"u": {{ item.u }}, "n": {{ item.n }}}'),   # n missing in one element
    st.just('{"u": "{{ item.u }}"}'),                   # a value inside a string
    st.just('{"all": {{ batch }}}'),
    st.just('{"x": {{ undefined_name }}}'),
    st.just('{"x": {{ item.a.b }}}'),
    st.text(max_size=30),
)


@pytest.fixture(autouse=True)
def in_a_folder_of_its_own(tmp_path: Path) -> Iterator[None]:
    """A map that reaches the server writes its ledger (and `--ledger` may name any
    file): both go to the test's folder, never the checkout. Not monkeypatch.chdir:
    hypothesis runs every example inside this one fixture."""
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield
    finally:
        os.chdir(before)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "") + "'"


@given(over=st.sampled_from([*sorted(VARIABLES), "missing", "1bad"]),
       options=st.lists(_option, max_size=3), template=st.none() | _template)
@SETTINGS
def test_invalid_maps_send_nothing(server: RecordingServer, shell: Any, over: str,
                                   options: list[tuple[str, str]],
                                   template: str | None) -> None:
    shell.user_ns.update(VARIABLES)
    before = len(server.seen)
    line = f"hello out --over {over} " + " ".join(f"{name} {_quote(value)}"
                                                    for name, value in options)
    try:
        if template is None:
            shell.run_line_magic("apify_map", line)
        else:
            shell.run_cell_magic("apify_map", line, template)
    except NOTHING_SENT:
        assert len(server.seen) == before
    except SystemExit:  # argparse on a malformed line, as IPython reports it
        assert len(server.seen) == before
    except Exception as err:  # it was valid: it reached the server, which is no Apify
        assert len(server.seen) > before, repr(err)
