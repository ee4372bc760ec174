"""Any cell a person can type ends in the project's own error or IPython's UsageError,
never an internal exception, and an invalid one sends nothing: counted as requests at a
real (recording) HTTP server on loopback. Property-based, with hypothesis."""

from __future__ import annotations

import io
import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from recording import RecordingServer, Reply, run

from apify_magic.errors import ApifyMagicError, AuthError, InputError, OptionError

NOTHING_SENT = (OptionError, InputError, AuthError, UsageError)
EXAMPLES = 1500
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

_closed = io.BytesIO(b"x")
_closed.close()


def _nested(depth: int) -> list[Any]:
    """A list `depth` levels deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


VARIABLES: dict[str, Any] = {
    "params": {"q": "coffee", "n": 3},
    "deep": _nested(5000),
    "lone": "\ud800 half a pair",
    "closed": _closed,
    "huge": b"x" * 9_437_185,
    "nan": {"x": math.nan},
    "odd": {1, 2},
    "hooks": [{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://h.example/x"}],
    "deephooks": [{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://h.example",
                   "extra": _nested(3000)}],
}

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12) | \
    st.text(max_size=6)  # the second may hold lone surrogates
_number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e308", "1e-320", "-0", "0", "nan", "inf", "0x10", "1_000", ""]))
_value = st.one_of(_number, _text, st.sampled_from(sorted(VARIABLES)),
                   st.sampled_from(["'[{\"eventTypes\": [\"ACTOR.RUN.FAILED\"], "
                                    "\"requestUrl\": \"https://h.example\"}]'",
                                    '"[[[[[["', "text/plain", "'text/pl\x01ain'", "json"]))
_flag = st.sampled_from([
    "--memory", "--timeout", "--build", "--max-items", "--max-total-charge-usd",
    "--webhooks", "--content-type", "--output-record-key", "--as", "--progress",
    "--fields", "--omit", "--limit", "--offset", "--unwind", "--flatten", "-i", "--input",
    "--restart-on-error", "--no-restart-on-error", "--dataset", "--clean", "--desc",
    "--watch", "--task", "--dry-run", "--detach", "--nope", "-x", "--",
])
_option = st.tuples(_flag, st.one_of(st.none(), _value)).map(
    lambda fv: fv[0] if fv[1] is None else f"{fv[0]} {fv[1]}")
_actor = st.one_of(st.sampled_from(["me~actor", "actor", "~a", "a/b", "../x", "me~", "~"]),
                   _text)
# A magic line is one line: a character Python splits lines on (form feed, U+2028...) would
# end the magic there, and what follows is Python that IPython's own parser rejects.
_line = st.tuples(_actor, st.one_of(st.none(), st.sampled_from(["out", "1x", "class", "_"])),
                  st.lists(_option, max_size=4)).map(
    lambda p: " ".join([p[0]] + ([p[1]] if p[1] else []) + p[2])).filter(
    lambda line: "".join(line.splitlines()) == line)

_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                       _text)
_json = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_text, inner, max_size=3), max_leaves=10)
_body = st.one_of(
    _json.map(json.dumps),
    _text,
    st.sampled_from(['{"a": ', "{", "[" * 3000, "[" * 5000 + "]" * 5000, "{{ params }}",
                     '{"x": {{ deep }}}', '{"x": {{ lone }}}', '{"x": {{ nan }}}',
                     '{"x": {{ odd }}}', '{"x": {{ nope }}}', '"{{ params }}"', "\\{{ x }}",
                     '{"a": 1,}', "\ud800", "", "  \n "]),
    st.tuples(_json.map(json.dumps), _text).map(lambda p: p[0] + p[1]),
)


def _check(ip: Any, server: RecordingServer, cell: str) -> None:
    before = len(server.seen)
    result = run(ip, cell)
    error = result.error_before_exec or result.error_in_exec
    sent = len(server.seen) - before
    if error is None:
        return
    assert isinstance(error, (ApifyMagicError, UsageError)), (cell, repr(error))
    if isinstance(error, NOTHING_SENT):
        assert sent == 0, (cell, repr(error), sent)


@SETTINGS
@given(line=_line)
def test_any_line_ends_in_our_error_and_invalid_ones_send_nothing(
        shell: Any, server: RecordingServer, line: str) -> None:
    server.default = Reply(body=b'{"ok": true}')
    shell.user_ns.update(VARIABLES)
    _check(shell, server, f"%%apify_run {line} --progress none\n{{}}")
    _check(shell, server, f"x = %apify_run {line} --progress none")


@SETTINGS
@given(body=_body, content_type=st.one_of(st.none(), _value))
def test_any_body_ends_in_our_error_and_invalid_ones_send_nothing(
        shell: Any, server: RecordingServer, body: str, content_type: str | None) -> None:
    server.default = Reply(body=b'{"ok": true}')
    shell.user_ns.update(VARIABLES)
    flags = f" --content-type {content_type}" if content_type else ""
    _check(shell, server, f"%%apify_run me~actor out --progress none{flags}\n{body}")


def test_the_variables_that_cannot_be_sent_say_why(shell: Any,
                                                   server: RecordingServer) -> None:
    shell.user_ns.update(VARIABLES)
    for cell, message in [
        ("%%apify_run me~actor\n{\"x\": {{ deep }}}", "nested too deeply"),
        ("x = %apify_run me~actor -i lone", "not valid Unicode"),
        ("x = %apify_run me~actor -i closed", "cannot be read"),
        ("x = %apify_run me~actor -i huge", "over the platform's limit of 9,437,184"),
        ("%%apify_run me~actor --webhooks deephooks\n{}", "nested too deeply"),
        ("%%apify_run me~actor --content-type 'text/pl\x01ain'\nx", "is not a media type"),
        ("%%apify_run me~actor\n{\"a\": ", "INPUT is not valid JSON"),
        ("%%apify_run me~actor --timeout 1e308\n{}", "--timeout must be"),
        ("%%apify_run me~actor --max-total-charge-usd 1e-320\n{}",
         "--max-total-charge-usd must be"),
    ]:
        error = run(shell, cell).error_in_exec
        assert isinstance(error, (InputError, OptionError)), (cell, repr(error))
        assert message in str(error), (cell, str(error))
    assert server.seen == []
