"""`%%apify_run` in a real IPython shell against a real recording server on loopback."""

from __future__ import annotations

import base64
import json
from typing import Any

import pandas as pd
import pytest
from recording import TOKEN, Drop, RecordingServer, Reply, error_reply, run

from apify_magic import errors


def test_cell_body_is_posted_as_input_and_records_bind_as_dataframe(
        shell: Any, server: RecordingServer) -> None:
    server.default = Reply(body=b'[{"url": "a", "n": 1}, {"url": "b", "n": 2}]')
    result = run(shell, '%%apify_run apify~website-content-crawler items\n'
                        '{"startUrls": [{"url": "https://example.com"}], "maxPages": 10}')
    assert result.error_in_exec is None
    (seen,) = server.seen
    assert seen.method == "POST"
    assert seen.path == "/v2/actors/apify~website-content-crawler/run-sync"
    assert json.loads(seen.body) == {"startUrls": [{"url": "https://example.com"}],
                                     "maxPages": 10}
    assert seen.headers["Content-Type"] == "application/json"
    items = shell.user_ns["items"]
    assert isinstance(items, pd.DataFrame)
    assert list(items["url"]) == ["a", "b"]
    assert result.result is None  # bound, not displayed


def test_without_variable_the_result_is_the_cells_value(
        shell: Any, server: RecordingServer) -> None:
    server.default = Reply(body=b'{"answer": 42}')
    result = run(shell, "%%apify_run me~actor\n{}")
    assert result.result == {"answer": 42}


@pytest.mark.parametrize(("line", "query"), [
    ("--memory 256", {"memory": "256"}),
    ("--timeout 120", {"timeout": "120"}),
    ("--timeout 0.5", {"timeout": "0.5"}),
    ("--build 0.1.234", {"build": "0.1.234"}),
    ("--max-items 1000", {"maxItems": "1000"}),
    ("--max-total-charge-usd 5", {"maxTotalChargeUsd": "5"}),
    ("--max-total-charge-usd 2.5", {"maxTotalChargeUsd": "2.5"}),
    ("--restart-on-error", {"restartOnError": "true"}),
    ("--no-restart-on-error", {"restartOnError": "false"}),
    ("--output-record-key RESULT.v2(x)", {"outputRecordKey": "RESULT.v2(x)"}),
    ("", {}),
])
def test_each_option_arrives_as_its_query_parameter(
        shell: Any, server: RecordingServer, line: str, query: dict[str, str]) -> None:
    result = run(shell, f"%%apify_run me~actor out {line}\n{{}}")
    assert result.error_in_exec is None
    assert server.seen[0].query == query


def test_webhooks_inline_and_from_variable_are_base64_json(
        shell: Any, server: RecordingServer) -> None:
    hooks = [{"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "https://example.com/h"}]
    shell.user_ns["hooks"] = hooks
    assert run(shell, "%%apify_run me~actor out --webhooks hooks\n{}").error_in_exec is None
    inline = json.dumps(hooks)
    assert run(shell, f"%%apify_run me~actor out --webhooks '{inline}'\n{{}}"
               ).error_in_exec is None
    for seen in server.seen:
        assert json.loads(base64.b64decode(seen.query["webhooks"])) == hooks


def test_token_travels_only_in_the_authorization_header(
        shell: Any, server: RecordingServer) -> None:
    server.default = error_reply(400, "run-failed",
                                 "Actor run did not succeed (run ID: abc123, status: FAILED)")
    result = run(shell, '%%apify_run me~actor out --memory 256\n{"a": 1}')
    (seen,) = server.posts()
    for asked in server.seen:  # the run-sync, then the failed run and its log
        assert asked.headers["Authorization"] == f"Bearer {TOKEN}" and TOKEN not in asked.path
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in seen.path and TOKEN not in json.dumps(seen.query)
    assert TOKEN.encode() not in seen.body
    err = result.error_in_exec
    shown = "\n".join(err._render_traceback_()) + str(err) + repr(err)
    assert TOKEN not in shown


def test_server_echoing_the_token_is_scrubbed(shell: Any, server: RecordingServer) -> None:
    server.default = error_reply(401, "invalid-token", f"Token {TOKEN} is not valid")
    err = run(shell, "%%apify_run me~actor\n{}").error_in_exec
    assert isinstance(err, errors.UnauthorizedError)
    assert TOKEN not in str(err)


@pytest.mark.parametrize(("status", "error_type", "cls"), [
    (400, "run-failed", errors.RunFailedError),
    (400, "invalid-input", errors.InvalidInputError),
    (400, "unknown-build-tag", errors.InvalidRequestError),
    (401, "token-not-provided", errors.UnauthorizedError),
    (402, "actor-memory-limit-exceeded", errors.PaymentRequiredError),
    (403, "insufficient-permissions", errors.ForbiddenError),
    (404, "actor-not-found", errors.NotFoundError),
    (408, "run-timeout-exceeded", errors.RunTimeoutError),
    (413, "request-too-large", errors.RequestTooLargeError),
    (415, "unsupported-content-encoding", errors.UnsupportedMediaError),
    (429, "rate-limit-exceeded", errors.RateLimitError),
    (500, "internal-server-error", errors.ServerError),
    (503, "service-unavailable", errors.ServerError),
])
def test_each_documented_error_raises_its_class_with_run_id_and_hint(
        shell: Any, server: RecordingServer, status: int, error_type: str,
        cls: type[errors.ApiError]) -> None:
    message = f"Something went wrong (run ID: Run{status}xyz, status: FAILED)"
    server.default = error_reply(status, error_type, message)
    result = run(shell, "%%apify_run me~actor out\n{}")
    err = result.error_in_exec
    assert type(err) is cls
    assert err.status == status
    assert err.error_type == error_type
    assert err.message == message
    assert err.actor_id == "me~actor"
    assert err.run_id == f"Run{status}xyz"
    assert err.hint
    lines = err._render_traceback_()
    assert 2 <= len(lines) <= 4
    assert lines[0].startswith(f"{cls.__name__}: {status} {error_type}")
    assert "out" not in shell.user_ns


def test_error_body_that_is_not_json_still_raises_typed(
        shell: Any, server: RecordingServer) -> None:
    server.default = Reply(502, b"<html>Bad gateway</html>", "text/html")
    err = run(shell, "%%apify_run me~actor\n{}").error_in_exec
    assert isinstance(err, errors.ServerError)
    assert err.error_type == "http-502"
    assert "Bad gateway" in err.message


@pytest.mark.parametrize("cell", [
    "%%apify_run me~actor out --memory 100\n{}",
    "%%apify_run me~actor out --memory 65536\n{}",
    "%%apify_run me~actor out --timeout -1\n{}",
    "%%apify_run me~actor out --max-items 0\n{}",
    "%%apify_run me~actor out --max-total-charge-usd 0\n{}",
    "%%apify_run me~actor out --max-total-charge-usd nan\n{}",
    "%%apify_run me~actor out --output-record-key a/b\n{}",
    "%%apify_run me~actor out --output-record-key " + "k" * 257 + "\n{}",
    "%%apify_run me~actor out --build ''\n{}",
    "%%apify_run me~actor out --webhooks '[{\"eventTypes\": [\"RUN.DONE\"], "
    "\"requestUrl\": \"https://x.y\"}]'\n{}",
    "%%apify_run me~actor out --webhooks '[{\"eventTypes\": [\"ACTOR.RUN.FAILED\"], "
    "\"requestUrl\": \"ftp://x.y\"}]'\n{}",
    "%%apify_run me~actor out --webhooks '[{\"requestUrl\": \"https://x.y\"}]'\n{}",
    "%%apify_run me~actor out --webhooks '[broken'\n{}",
    "%%apify_run me~actor out --webhooks nohooks\n{}",
    "%%apify_run me~actor out\n{\"a\": 1,}",
    "%%apify_run me~actor out\n{\"a\": {{ undefined_name }}}",
    "%apify_run me~actor out -i undefined_name",
    "%%apify_run ../../etc out\n{}",
    "%%apify_run me~actor 1out\n{}",
])
def test_invalid_options_bodies_and_variables_raise_before_sending(
        shell: Any, server: RecordingServer, cell: str) -> None:
    result = run(shell, cell)
    assert isinstance(result.error_in_exec, errors.ApifyMagicError)
    assert server.seen == []


def test_malformed_magic_line_is_a_usage_error(shell: Any, server: RecordingServer) -> None:
    from IPython.core.error import UsageError

    result = run(shell, "%%apify_run me~actor out --memory lots\n{}")
    assert isinstance(result.error_in_exec, UsageError)
    assert server.seen == []


def test_json_error_names_line_and_column(shell: Any, server: RecordingServer) -> None:
    err = run(shell, '%%apify_run me~actor out\n{\n  "a": 1,\n  "b": oops\n}').error_in_exec
    assert isinstance(err, errors.InputError)
    assert "line 3, column 8" in str(err)


def test_placeholders_insert_variables_as_json(shell: Any, server: RecordingServer) -> None:
    shell.user_ns.update(n=5, urls=[{"url": "https://a.b"}], name='he said "hi"')
    result = run(shell, '%%apify_run me~actor out\n'
                        '{"maxPages": {{ n }}, "startUrls": {{urls}}, "who": {{ name }}, '
                        '"tpl": "\\{{ raw }}"}')
    assert result.error_in_exec is None
    assert json.loads(server.seen[0].body) == {
        "maxPages": 5, "startUrls": [{"url": "https://a.b"}], "who": 'he said "hi"',
        "tpl": "{{ raw }}"}


def test_empty_body_sends_empty_object(shell: Any, server: RecordingServer) -> None:
    assert run(shell, "%%apify_run me~actor out\n  \n").error_in_exec is None
    assert server.seen[0].body == b"{}"
    assert server.seen[0].headers["Content-Type"] == "application/json"


def test_content_type_sends_the_body_verbatim(shell: Any, server: RecordingServer) -> None:
    cell = "%%apify_run me~actor out --content-type text/csv\na,b\n1,{{ x }}"
    assert run(shell, cell).error_in_exec is None
    assert server.seen[0].body == b"a,b\n1,{{ x }}"
    assert server.seen[0].headers["Content-Type"] == "text/csv"


@pytest.mark.parametrize(("value", "body", "content_type"), [
    ({"q": "x"}, b'{"q": "x"}', "application/json"),
    ([1, 2], b"[1, 2]", "application/json"),
    ("plain words", b"plain words", "text/plain; charset=utf-8"),
    (b"\x00\x01", b"\x00\x01", "application/octet-stream"),
])
def test_line_form_input_from_variable_follows_the_client_encoding(
        shell: Any, server: RecordingServer, value: object, body: bytes,
        content_type: str) -> None:
    server.default = Reply(body=b'{"done": true}')
    shell.user_ns["params"] = value
    result = run(shell, "out = %apify_run me~actor -i params --memory 512")
    assert result.error_in_exec is None
    assert shell.user_ns["out"] == {"done": True}
    assert server.seen[0].body == body
    assert server.seen[0].headers["Content-Type"] == content_type
    assert server.seen[0].query == {"memory": "512"}


@pytest.mark.parametrize(("reply", "form", "expected"), [
    (Reply(body=b'{"a": 1}'), "auto", {"a": 1}),
    (Reply(body=b"[1, 2]"), "auto", [1, 2]),
    (Reply(body=b'[{"a": 1}]'), "python", [{"a": 1}]),
    (Reply(body=b"hello", content_type="text/plain; charset=utf-8"), "auto", "hello"),
    (Reply(body=b"\x89PNG", content_type="image/png"), "auto", b"\x89PNG"),
    (Reply(body=b'{"a": 1}'), "text", '{"a": 1}'),
    (Reply(body=b'{"a": 1}'), "bytes", b'{"a": 1}'),
    (Reply(body=b"", content_type=None), "auto", None),
])
def test_result_forms(shell: Any, server: RecordingServer, reply: Reply, form: str,
                      expected: object) -> None:
    server.default = reply
    assert run(shell, f"%%apify_run me~actor out --as {form}\n{{}}").error_in_exec is None
    assert shell.user_ns["out"] == expected


def test_csv_record_and_as_dataframe(shell: Any, server: RecordingServer) -> None:
    server.default = Reply(body=b'{"a": [1, 2], "b": [3, 4]}')
    assert run(shell, "%%apify_run me~actor out --as dataframe\n{}").error_in_exec is None
    assert shell.user_ns["out"].to_dict("list") == {"a": [1, 2], "b": [3, 4]}
    server.default = Reply(body=b"a,b\n1,2\n", content_type="text/csv")
    assert run(shell, "%%apify_run me~actor out\n{}").error_in_exec is None
    assert shell.user_ns["out"].to_dict("list") == {"a": [1], "b": [2]}
    server.default = Reply(body=b'"just text"')
    err = run(shell, "%%apify_run me~actor out --as dataframe\n{}").error_in_exec
    assert isinstance(err, errors.ResultError)


def test_missing_record_binds_none_with_a_note(
        shell: Any, server: RecordingServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.default = Reply(body=b"", content_type=None)
    assert run(shell, "%%apify_run me~actor out --output-record-key RESULT\n{}"
               ).error_in_exec is None
    assert shell.user_ns["out"] is None
    assert capsys.readouterr().out.strip() == "me~actor wrote no RESULT record; out = None"


def test_5xx_after_the_post_is_not_retried(shell: Any, server: RecordingServer) -> None:
    server.default = error_reply(500, "internal-server-error", "boom")
    err = run(shell, "%%apify_run me~actor\n{}").error_in_exec
    assert isinstance(err, errors.ServerError)
    assert len(server.posts()) == 1


def test_dropped_connection_is_not_retried(shell: Any, server: RecordingServer) -> None:
    server.default = Drop()
    err = run(shell, "%%apify_run me~actor\n{}").error_in_exec
    assert isinstance(err, errors.ConnectionDroppedError)
    assert err.run_may_have_started
    assert "may have started" in str(err)
    assert len(server.posts()) == 1


def test_429_is_retried_honouring_retry_after(shell: Any, server: RecordingServer) -> None:
    server.script = [error_reply(429, "rate-limit-exceeded", "slow down", **{"Retry-After": "0"}),
                     error_reply(429, "rate-limit-exceeded", "slow down")]
    server.default = Reply(body=b'{"ok": 1}')
    result = run(shell, "%%apify_run me~actor out\n{}")
    assert result.error_in_exec is None
    assert shell.user_ns["out"] == {"ok": 1}
    assert len(server.posts()) == 3


def test_connection_refused_says_no_run_started(shell: Any, server: RecordingServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    url = server.url
    server.close()  # nothing listens on the port any more
    monkeypatch.setenv("APIFY_API_BASE_URL", url)
    err = run(shell, "%%apify_run me~actor\n{}").error_in_exec
    assert isinstance(err, errors.ConnectFailedError)
    assert not err.run_may_have_started
    assert "no run was started" in str(err)


def test_config_defaults_and_precedence(shell: Any, server: RecordingServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIFY_MAGIC_MEMORY", "2048")
    monkeypatch.setenv("APIFY_MAGIC_BUILD", "beta")
    run(shell, "%%apify_run me~actor out\n{}")
    assert server.seen[-1].query == {"memory": "2048", "build": "beta"}
    shell.run_line_magic("config", "ApifyMagic.memory = 1024")
    try:
        run(shell, "%%apify_run me~actor out\n{}")
        assert server.seen[-1].query == {"memory": "1024", "build": "beta"}
        run(shell, "%%apify_run me~actor out --memory 256\n{}")
        assert server.seen[-1].query == {"memory": "256", "build": "beta"}
    finally:
        shell.run_line_magic("config", "ApifyMagic.memory = None")


def test_help_documents_every_option_and_its_api_parameter(shell: Any) -> None:
    doc = shell.find_line_magic("apify_run").__doc__
    for option, param in [("--memory", "memory"), ("--timeout", "timeout"),
                          ("--build", "build"), ("--max-items", "maxItems"),
                          ("--max-total-charge-usd", "maxTotalChargeUsd"),
                          ("--restart-on-error", "restartOnError"),
                          ("--output-record-key", "outputRecordKey"),
                          ("--webhooks", "webhooks"), ("--content-type", "Content-Type"),
                          ("--as", "DataFrame"), ("--input", "JSON")]:
        assert option in doc
        assert param in doc


def test_no_token_and_no_base_url_stops_with_how_to_set_one(
        shell: Any, server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APIFY_API_BASE_URL")
    monkeypatch.delenv("APIFY_TOKEN")
    monkeypatch.setattr("apify_magic.session._local_runtime", lambda: None)
    err = run(shell, "%%apify_run me~actor\n{}").error_in_exec
    assert isinstance(err, errors.AuthError)
    assert "APIFY_TOKEN" in str(err)
    assert server.seen == []


def test_text_progress_reports_start_and_end(shell: Any, server: RecordingServer,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    server.default = Reply(body=b'{"a": 1}', delay=0.3)
    assert run(shell, "%%apify_run me~actor out --progress text --timeout 60\n{}"
               ).error_in_exec is None
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "me~actor: started on local runtime, timeout 60 s"
    assert lines[-1].startswith("me~actor: SUCCEEDED in 0.")
    server.default = error_reply(400, "run-failed", "Actor run did not succeed "
                                 "(run ID: r1, status: FAILED)")
    assert run(shell, "%%apify_run me~actor out --progress text\n{}").error_in_exec
    assert capsys.readouterr().err.splitlines()[-1].startswith(
        "me~actor: failed after 0.0 s (RunFailedError)")


def test_errors_fail_a_real_kernel_run_with_a_short_message(
        server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """What nbval and papermill see: the kernel reports an error, in a few lines."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("APIFY_API_BASE_URL", server.url)
    monkeypatch.setenv("APIFY_TOKEN", TOKEN)
    server.default = error_reply(400, "run-failed",
                                 "Actor run did not succeed (run ID: Zx9, status: FAILED)")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext apify_magic"),
        nbformat.v4.new_code_cell('%%apify_run me~actor out\n{"a": 1}'),
    ])
    with pytest.raises(CellExecutionError) as raised:
        NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    assert raised.value.ename == "RunFailedError"
    (output,) = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert output.traceback == [
        "RunFailedError: 400 run-failed: Actor run did not succeed (run ID: Zx9, "
        "status: FAILED) (Actor me~actor)",
        "  Hint: the run left no status message",  # the server knows no such run
        "  the whole log: %apify_log Zx9",
    ]
    assert TOKEN not in json.dumps(nb)


def test_target_local_ignores_the_token(shell: Any, server: RecordingServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []

    def fake_runtime() -> str:  # stands for the embedded runtime: the recording server
        started.append("yes")
        return server.url

    monkeypatch.setattr("apify_magic.session._local_runtime", lambda: fake_runtime)
    shell.run_line_magic("config", "ApifyMagic.target = 'local'")
    try:
        assert run(shell, "%%apify_run hello out\n{}").error_in_exec is None
    finally:
        shell.run_line_magic("config", "ApifyMagic.target = 'auto'")
    assert started == ["yes"]
    assert "Authorization" not in server.seen[0].headers
