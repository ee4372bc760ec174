"""The run panel as a view over the magic's own options, against a real recording server."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from recording import TOKEN, RecordingServer, Reply, error_reply, loaded_shell, run

from apify_magic import panel as panel_module
from apify_magic.body import JSON_TYPE, Payload
from apify_magic.errors import NotFoundError, OptionError
from apify_magic.options import RunOptions
from apify_magic.panel_view import preview_html
from apify_magic.session import RunRequest

SCHEMA = {
    "title": "Table input",
    "type": "object",
    "schemaVersion": 1,
    "required": ["prefix"],
    "properties": {
        "rows": {"title": "Rows", "type": "integer", "minimum": 1, "maximum": 100,
                 "default": 5},
        "prefix": {"title": "Prefix", "type": "string", "editor": "textfield",
                   "default": "item"},
        "apiKey": {"title": "API key", "type": "string", "isSecret": True},
    },
}


@pytest.fixture
def panels(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[panel_module.RunPanel]]:
    """Every RunPanel the magic makes during the test."""
    made: list[panel_module.RunPanel] = []

    class Recorded(panel_module.RunPanel):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(panel_module, "RunPanel", Recorded)
    yield made


def _run_widget_cell(shell: Any, server: RecordingServer, panels: list[Any],
                     line: str = "me~actor out --progress widget --memory 256") -> Any:
    server.default = Reply(body=b'[{"n": 1}, {"n": 2}]')
    result = run(shell, f"%%apify_run {line}\n{{\"a\": 1}}")
    assert result.error_in_exec is None
    (panel,) = panels
    return panel


def test_widget_progress_shows_one_panel_over_the_requests_options(
        shell: Any, server: RecordingServer, panels: list[Any],
        capsys: pytest.CaptureFixture[str]) -> None:
    panel = _run_widget_cell(shell, server, panels)
    assert panel.options is panel.request.options  # a view, not a copy
    assert panel.option_widgets.memory.value == 256
    assert panel.state == "SUCCEEDED"
    assert "<table" in panel.result_view.value and "<td>2</td>" in panel.result_view.value
    assert isinstance(shell.user_ns["out"], pd.DataFrame)
    shown = capsys.readouterr().out  # display() in a plain shell prints text/plain
    assert shown.count("SUCCEEDED | me~actor -> out | took ") == 1
    assert "out: DataFrame 2 rows x 1 cols" in shown
    assert not panel.expanded  # compact unless asked


def test_changing_a_widget_changes_the_request_run_sends_and_rebinds(
        shell: Any, server: RecordingServer, panels: list[Any]) -> None:
    panel = _run_widget_cell(shell, server, panels)
    assert server.posts()[0].query["memory"] == "256"
    panel.option_widgets.memory.value = 1024
    assert panel.options.memory == 1024
    server.default = Reply(body=b'{"second": true}')
    panel.run_button.click()
    second = server.posts()[1]
    assert second.query["memory"] == "1024"
    assert json.loads(second.body) == {"a": 1}  # same INPUT as the cell
    assert shell.user_ns["out"] == {"second": True}
    assert panel.state == "SUCCEEDED" and "second" in panel.result_view.value


def test_every_option_widget_maps_to_its_query_parameter(
        shell: Any, server: RecordingServer, panels: list[Any]) -> None:
    panel = _run_widget_cell(shell, server, panels)
    ow = panel.option_widgets
    ow.timeout.value, ow.build.value, ow.max_items.value = "60", "beta", "5"
    ow.max_charge.value, ow.restart.value, ow.record_key.value = "1.5", "no", "RESULT"
    ow.memory.value = 0  # back to the Actor's default
    panel.run_button.click()
    query = server.posts()[1].query
    assert query == {"timeout": "60", "build": "beta", "maxItems": "5",
                     "maxTotalChargeUsd": "1.5", "restartOnError": "false",
                     "outputRecordKey": "RESULT"}
    assert panel.options == RunOptions(timeout=60.0, build="beta", max_items=5,
                                       max_total_charge_usd=1.5, restart_on_error=False,
                                       output_record_key="RESULT")


@pytest.mark.parametrize(("widget", "text", "message"), [
    ("timeout", "soon", "not a number"),
    ("timeout", "-1", "--timeout"),
    ("max_items", "0", "--max-items must be from 1"),
    ("max_items", "2.5", "not a whole number"),
    ("record_key", "bad key!", "not a valid record key"),
])
def test_a_bad_option_value_is_shown_and_nothing_is_sent(
        shell: Any, server: RecordingServer, panels: list[Any], widget: str, text: str,
        message: str) -> None:
    panel = _run_widget_cell(shell, server, panels)
    before = panel.options.__dict__.copy()
    getattr(panel.option_widgets, widget).value = text
    assert message in html.unescape(panel.option_widgets.message.value)
    assert panel.options.__dict__ == before  # the options keep their last good value
    assert panel.run_button.disabled  # Run waits for the fix
    panel.run_button.click()  # what a click would do anyway
    assert len(server.posts()) == 1
    assert message in html.unescape(panel.message.value)
    getattr(panel.option_widgets, widget).value = ""  # fixed: the messages go
    assert panel.option_widgets.message.value == "" and panel.message.value == ""
    assert not panel.run_button.disabled


def test_a_failed_run_shows_type_message_and_run_id(
        shell: Any, server: RecordingServer, panels: list[Any]) -> None:
    server.default = error_reply(400, "run-failed",
                                 "Actor run did not succeed (run ID: abcRUN123, status: FAILED)")
    result = run(shell, "%%apify_run me~actor out --progress widget\n{}")
    assert result.error_in_exec is not None  # the cell still fails
    (panel,) = panels
    assert panel.state == "FAILED" and "FAILED" in panel.chip.value
    assert "RunFailedError" in panel.line_message.value
    assert "abcRUN123" in panel.line_message.value
    assert "did not succeed" not in panel.line_message.value  # the error says it, once
    assert panel.bar.bar_style == "danger"
    assert not panel.run_button.disabled  # can run again


def test_progress_calls_move_the_bar_against_the_timeout() -> None:
    panel = _panel()
    panel.show = lambda: None  # type: ignore[method-assign]
    panel._show_outcome = lambda: None  # type: ignore[method-assign]
    panel.started("me~actor", "Apify platform", 10.0)
    assert (panel.bar.value, panel.bar.max, panel.run_button.disabled) == (0.0, 10.0, True)
    assert panel.bar.layout.display == ""
    panel.tick(4.2)
    assert panel.bar.value == 4.2 and panel.clock.value == "4 s of 10 s"
    panel.status("RUNNING", "Crawled 3 of 10 pages")
    assert panel.line_message.value == "Crawled 3 of 10 pages" and "RUNNING" in panel.chip.value
    panel.tick(99)
    assert panel.bar.value == 10.0  # never past the end
    panel.finished({"ok": True}, 11.0)
    assert panel.bar.bar_style == "success" and panel.clock.value == "took 11.0 s"
    assert "dict of 1" in panel.line_message.value
    # Without a timeout there is no bar to fill, only a running clock.
    panel.started("me~actor", "Apify platform", None)
    assert panel.bar.layout.display == "none"
    panel.tick(75.4)
    assert panel.clock.value == "75 s"


def test_text_plain_is_deterministic_without_ports_times_or_ids() -> None:
    panel = _panel()
    panel.show = lambda: None  # type: ignore[method-assign]
    panel.started("me~actor", "local runtime (http://127.0.0.1:41234)", None)
    panel.tick(3.7)
    panel._show_outcome = lambda: None  # type: ignore[method-assign]
    panel.finished(pd.DataFrame({"n": [1, 2, 3]}), 3.8)
    text = panel._repr_mimebundle_()["text/plain"]
    assert text == "SUCCEEDED | me~actor -> out | out: DataFrame 3 rows x 1 cols"
    assert _panel()._repr_mimebundle_()["text/plain"] == (
        "Apify run panel: me~actor -> out on the default target\n"
        "  options: --memory 512\n"
        "  state: ready")
    assert "application/vnd.jupyter.widget-view+json" in panel._repr_mimebundle_()


def test_auto_progress_in_a_kernel_is_the_panel(shell: Any, monkeypatch: pytest.MonkeyPatch,
                                                server: RecordingServer,
                                                panels: list[Any]) -> None:
    magic = shell.magics_manager.registry["ApifyMagic"]
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    assert isinstance(magic.make_progress(_request(progress="auto")), panel_module.RunPanel)
    monkeypatch.setattr(shell, "kernel", None)
    assert not isinstance(magic.make_progress(_request(progress="auto")),
                          panel_module.RunPanel)


def test_apify_panel_opens_the_schema_form_and_runs_only_on_run(
        shell: Any, server: RecordingServer, panels: list[Any]) -> None:
    server.script = [Reply(200, json.dumps(
        {"data": {"actorDefinition": {"input": SCHEMA}}}).encode())]
    shell.run_line_magic("apify_panel", "me~table tbl")
    (panel,) = panels
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("GET", "/v2/actors/me~table/builds/default")
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert panel.state == "ready" and "tbl" not in shell.user_ns
    assert panel.expanded  # %apify_panel opens with its form
    form = panel.form
    form.fields["rows"].input.value = "7"
    form.fields["prefix"].input.value = "row"
    form.fields["apiKey"].input.value = "key-123"
    panel.json_toggle.value = True
    assert '"rows": 7' in panel.json_view.value and "key-123" not in panel.json_view.value
    panel.option_widgets.memory.value = 2048
    server.default = Reply(body=b'[{"label": "row-1"}]')
    panel.run_button.click()
    post = server.posts()[0]
    assert json.loads(post.body) == {"rows": 7, "prefix": "row", "apiKey": "key-123"}
    assert post.query["memory"] == "2048"
    assert list(shell.user_ns["tbl"]["label"]) == ["row-1"]
    cell = panel.equivalent_cell()
    assert cell.startswith("%%apify_run me~table tbl --memory 2048\n")
    assert '"apiKey": {{ apiKey }}' in cell and "key-123" not in cell


def test_apify_panel_validates_before_sending(
        shell: Any, server: RecordingServer, panels: list[Any]) -> None:
    server.script = [Reply(200, json.dumps(
        {"data": {"actorDefinition": {"input": SCHEMA}}}).encode())]
    shell.run_line_magic("apify_panel", "me~table")
    (panel,) = panels
    panel.form.fields["prefix"].input.value = ""
    panel.run_button.click()
    assert server.posts() == []
    assert "required" in panel.form.fields["prefix"].error.value
    assert "'prefix' is required" in html.unescape(panel.message.value)


def test_no_widget_state_holds_the_token_or_a_secret(
        shell: Any, server: RecordingServer, panels: list[Any]) -> None:
    server.script = [Reply(200, json.dumps(
        {"data": {"actorDefinition": {"input": SCHEMA}}}).encode())]
    shell.run_line_magic("apify_panel", "me~table tbl")
    (panel,) = panels
    panel.form.fields["apiKey"].input.value = "key-123"
    panel.json_toggle.value = True
    panel.cell_button.click()
    panel.run_button.click()
    state = json.dumps([w.get_state() for w in _all_widgets(panel.widget)], default=str)
    assert TOKEN not in state and "key-123" not in state
    assert "apify_api_" not in repr(panel)


def panels_base() -> type:
    """The class the `panels` fixture records: the panel class the magic really uses."""
    return panel_module.RunPanel.__mro__[1]


def _request(progress: str = "widget") -> RunRequest:
    return RunRequest(actor_id="me~actor", options=RunOptions(memory=512),
                      payload=Payload(b"{}", JSON_TYPE), variable="out", progress=progress)


def _panel() -> panel_module.RunPanel:
    return panel_module.RunPanel(_request(), rerun=lambda request, progress=None: None)


def _all_widgets(root: Any) -> list[Any]:
    found = [root]
    for child in getattr(root, "children", ()):
        found += _all_widgets(child)
    return found


def test_a_result_that_is_no_table_previews_as_a_compact_repr() -> None:
    assert re.fullmatch(r"<pre[^>]*>\[1, 2\]</pre>", preview_html([1, 2]))
    record = preview_html({"took": 1.5, "name": "x"})
    assert record.startswith("<table") and "<th>took</th><td>1.5</td>" in record
    assert preview_html({"a": [1]}).startswith("<pre")
    frame = pd.DataFrame({f"c{i}": [i] for i in range(14)})
    assert preview_html(frame) == frame._repr_html_()  # pandas' own view


def test_an_error_before_the_run_starts_is_shown_in_the_panel() -> None:
    def rerun(request: RunRequest, progress: Any = None) -> None:
        raise OptionError("no target here")

    panel = panel_module.RunPanel(_request(), rerun=rerun)
    panel.run_button.click()
    assert panel.state == "FAILED"
    assert "no target here" in panel.message.value


def test_equivalent_cell_of_a_cell_run_repeats_its_options_and_body() -> None:
    request = RunRequest(actor_id="me~actor", options=RunOptions(
        memory=512, restart_on_error=False, webhooks=[{"eventTypes": ["ACTOR.RUN.FAILED"],
                                                      "requestUrl": "https://h.example"}]),
        payload=Payload(b'{"q": "x"}', JSON_TYPE), variable="out", result_as="python")
    panel = panel_module.RunPanel(request, rerun=lambda r, progress=None: None)
    panel.options.max_items = 3
    assert panel.equivalent_cell() == (
        "%%apify_run me~actor out --memory 512 --max-items 3 --no-restart-on-error "
        "--webhooks '[{\"eventTypes\": [\"ACTOR.RUN.FAILED\"], "
        "\"requestUrl\": \"https://h.example\"}]' --as python\n{\"q\": \"x\"}")


def test_apify_panel_on_an_unknown_actor_raises_not_found(
        shell: Any, server: RecordingServer, panels: list[Any]) -> None:
    server.script = [error_reply(404, "record-not-found", "Actor was not found")]
    with pytest.raises(NotFoundError, match="Actor was not found"):
        shell.run_line_magic("apify_panel", "me~nothing")
    assert panels == []


def test_apify_panel_reads_an_older_builds_input_schema_string(
        shell: Any, server: RecordingServer, panels: list[Any]) -> None:
    server.script = [Reply(200, json.dumps({"data": {"inputSchema": json.dumps(SCHEMA)}})
                           .encode())]
    shell.run_line_magic("apify_panel", "me~table")
    (panel,) = panels
    assert list(panel.form.fields) == ["rows", "prefix", "apiKey"]


@pytest.fixture
def local_shell(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A shell aimed at a real local runtime running the shipped example Actors."""
    from apify_magic.local import LocalRuntime
    from apify_magic.local.registry import SHIPPED_ACTORS

    runtime = LocalRuntime([SHIPPED_ACTORS], data_dir=tmp_path / "rt", kill_grace_secs=1.0)
    runtime.start()
    monkeypatch.setenv("APIFY_API_BASE_URL", runtime.url)
    try:
        with loaded_shell(poll_secs=0.2) as ip:
            yield ip
    finally:
        runtime.stop()


def test_watched_run_shows_status_messages_as_they_come(
        local_shell: Any, panels: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    original = panel_module.RunPanel.status

    def status(self: Any, status: str, message: str | None) -> None:
        original(self, status, message)
        shown.append(self.line_message.value)

    monkeypatch.setattr(panels_base(), "status", status)
    result = run(local_shell, '%%apify_run slow out --watch --progress widget\n'
                              '{"seconds": 0.8, "steps": 2}')
    assert result.error_in_exec is None
    (panel,) = panels
    assert "SUCCEEDED" in panel.chip.value and "Done" in panel.line_message.value
    assert "Working: step 1 of 2" in shown
    assert "[Status message]: Working: step 2 of 2" in panel.log_view.value  # the live log
    assert "<th>steps</th><td>2</td>" in panel.result_view.value
    assert local_shell.user_ns["out"]["steps"] == 2


def test_a_log_line_reaches_the_panel_within_a_second(
        local_shell: Any, panels: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime

    arrivals: list[tuple[float, str]] = []
    original = panel_module.RunPanel.log

    def log(self: Any, text: str) -> None:
        arrivals.append((time.time(), text))
        original(self, text)

    monkeypatch.setattr(panels_base(), "log", log)
    result = run(local_shell, '%%apify_run slow out --watch --progress widget\n'
                              '{"seconds": 3, "steps": 3}')
    assert result.error_in_exec is None
    delays = []
    for arrived, text in arrivals:
        for stamp in re.findall(r"^(\S+Z) .*Working: step", text, flags=re.MULTILINE):
            written = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            delays.append(arrived - written)
    assert len(delays) == 3, arrivals
    assert max(delays) < 1.0, delays
