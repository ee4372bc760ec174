"""The contract validator on hand-made exchanges: each rule can pass and can fail."""

from __future__ import annotations

import json

import pytest

from contract.openapi import check, error_types, find_operation, match_path, normalise

RUN = {
    "id": "r1", "actId": "a1", "userId": "u", "startedAt": "2026-01-01T00:00:00.000Z",
    "finishedAt": None, "status": "RUNNING", "meta": {"origin": "API"},
    "stats": {"restartCount": 0, "resurrectCount": 0, "computeUnits": 0},
    "options": {"build": "latest", "timeoutSecs": 0, "memoryMbytes": 1024, "diskMbytes": 2048},
    "buildId": "b1", "defaultKeyValueStoreId": "k1", "defaultDatasetId": "d1",
    "defaultRequestQueueId": "q1", "buildNumber": "0.0.1", "containerUrl": "http://x",
    "generalAccess": "FOLLOW_USER_SETTING",
}


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _error(kind: str, message: object = "no") -> bytes:
    return _json({"error": {"type": kind, "message": message}})


@pytest.mark.parametrize(("path", "template"), [
    ("/v2/acts/abc~x/runs/last/log", "/v2/actors/{actorId}/runs/last/log"),
    ("/v2/actors/abc~x/runs/last", "/v2/actors/{actorId}/runs/last"),
    ("/v2/actors/abc~x/runs/RUNID", "/v2/actors/{actorId}/runs/{runId}"),
    ("/v2/acts", "/v2/actors"),
    ("/v2/actor-runs/r1/", "/v2/actor-runs/{runId}"),
    ("/v2/key-value-stores/s/records/a%2Fb", "/v2/key-value-stores/{storeId}/records/{recordKey}"),
    ("/v2/no-such-thing", None),
    ("/v2/actors/a/b/c/d/e/f", None),
    ("/v2/actors//runs", None),
])
def test_paths_map_to_the_spec_templates(path: str, template: str | None) -> None:
    assert match_path(path) == template


def test_legacy_prefix_only_when_it_is_the_whole_segment() -> None:
    assert normalise("/v2/acts/x?token=1") == "/v2/actors/x"
    assert normalise("/v2/actsy") == "/v2/actsy"


def test_operations_by_method_and_head_as_get() -> None:
    op = find_operation("POST", "/v2/acts/x/runs")
    assert op is not None and op.operation_id == "actors_runs_post"
    assert op.template == "/v2/actors/{actorId}/runs"
    head = find_operation("HEAD", "/v2/actor-runs/r1")
    assert head is not None and head.key == "get"
    assert find_operation("PATCH", "/v2/actors") is None


def test_a_valid_run_passes_and_a_broken_one_names_its_fields() -> None:
    ok = check("GET", "/v2/actor-runs/r1", 200, "application/json; charset=utf-8",
               _json({"data": RUN}))
    assert ok.ok, ok.problems
    assert ok.operation_id == "actorRun_get"
    broken = {k: v for k, v in RUN.items() if k != "status"} | {"startedAt": "yesterday"}
    bad = check("GET", "/v2/actor-runs/r1", 200, "application/json", _json({"data": broken}))
    assert not bad.ok
    assert any("'status' is a required property" in p for p in bad.problems)
    assert any("startedAt" in p and "date-time" in p for p in bad.problems)


def test_undeclared_status_is_a_problem() -> None:
    result = check("GET", "/v2/actor-runs/r1", 500, "application/json",
                   _error("internal-server-error"))
    assert not result.ok
    assert any("status 500 is not declared" in p for p in result.problems)


def test_error_envelope_and_type_enum() -> None:
    assert "record-not-found" in error_types()
    good = check("GET", "/v2/actor-runs/r1", 404, "application/json", _error("record-not-found"))
    assert good.ok, good.problems
    unknown = check("GET", "/v2/actor-runs/r1", 404, "application/json", _error("no-such-type"))
    assert unknown.problems == ["error.type 'no-such-type' is not in the spec's ErrorType enum"]
    bare = check("GET", "/v2/actor-runs/r1", 404, "application/json", _json({"message": "x"}))
    assert not bare.ok
    text = check("GET", "/v2/actor-runs/r1", 404, "text/plain", b"not found")
    assert text.problems == ["error body is not JSON (content type 'text/plain')"]
    number = check("GET", "/v2/actor-runs/r1", 404, "application/json",
                   _error("record-not-found", 3))
    assert number.problems == ["error.message is missing or not a string"]


def test_paths_the_spec_lacks() -> None:
    missing = check("GET", "/v2/nowhere", 404, "application/json", _error("page-not-found"))
    assert missing.ok and not missing.spec_has_path and missing.operation_id is None
    served = check("GET", "/v2/nowhere", 200, "application/json", _json({"data": {}}))
    assert not served.ok
    assert served.problems == ["200 answered to GET /v2/nowhere, which the spec does not have"]
    wrong_method = check("PATCH", "/v2/actors", 200, "application/json", b"{}")
    assert wrong_method.spec_has_path and not wrong_method.ok


def test_non_json_bodies_by_content_type() -> None:
    log = check("GET", "/v2/actor-runs/r1/log", 200, "text/plain; charset=utf-8", b"\xffany")
    assert log.ok, log.problems
    html = check("GET", "/v2/actor-runs/r1/log", 200, "text/html", b"<p>")
    assert not html.ok and "content type 'text/html' is not declared" in html.problems[0]
    csv = check("GET", "/v2/datasets/d/items", 200, "text/csv", b"a,b\n1,2\n")
    assert csv.ok, csv.problems
    items = check("GET", "/v2/datasets/d/items", 200, "application/json", _json([1, 2]))
    assert not items.ok  # the spec's items are objects


def test_records_are_any_value_where_the_spec_is_too_strict() -> None:
    for body, ctype in [(_json([1, 2]), "application/json"), (b"\x00\x01", "image/png"),
                        (_json("text"), "application/json")]:
        result = check("GET", "/v2/key-value-stores/s/records/OUTPUT", 200, ctype, body)
        assert result.ok, result.problems
        assert result.notes and result.notes[0].startswith("spec too strict")
    broken = check("GET", "/v2/key-value-stores/s/records/OUTPUT", 200, "application/json",
                   b"{not json")
    assert broken.problems == ["body is labelled JSON but does not parse"]
    empty = check("POST", "/v2/acts/x/run-sync", 201, None, b"")
    assert empty.ok, empty.problems


def test_truncated_json_is_not_parsed_and_invalid_json_is_a_problem() -> None:
    cut = check("GET", "/v2/actor-runs/r1", 200, "application/json", b'{"data": {',
                truncated=True)
    assert cut.ok and cut.notes == ["body truncated in the trace: not validated"]
    whole = check("GET", "/v2/actor-runs/r1", 200, "application/json", b'{"data": {')
    assert whole.problems == ["body is not valid JSON"]


def test_no_content_statuses() -> None:
    assert check("DELETE", "/v2/datasets/d", 204, None, b"").ok
    assert not check("DELETE", "/v2/datasets/d", 204, None, b"x").ok
    assert check("HEAD", "/v2/actor-runs/r1", 200, "application/json", b"").ok


def test_run_sync_items_in_the_formats_dataset_items_declare() -> None:
    path = "/v2/acts/x/run-sync-get-dataset-items"
    csv = check("POST", path, 201, "text/csv; charset=utf-8", b"a\n1\n")
    assert csv.ok and csv.notes and csv.notes[0].startswith("spec too strict")
    as_json = check("POST", path, 201, "application/json", _json([{"a": 1}]))
    assert as_json.ok and not as_json.notes
    assert not check("POST", path, 201, "application/json", _json({"a": 1})).ok
    assert not check("POST", path, 201, "image/png", b"\x89").ok


def test_oversized_bodies_are_413_anywhere_a_body_is_taken() -> None:
    big = check("POST", "/v2/acts/x/run-sync", 413, "application/json",
                _error("request-too-large"))
    assert big.ok and big.notes[0].startswith("spec too strict")
    assert not check("GET", "/v2/actors", 413, "application/json", _error("request-too-large")).ok
    assert not check("POST", "/v2/acts/x/run-sync", 413, "application/json", b"{}").ok


def test_array_items_report_once() -> None:
    items = [{"id": "b"}, {"id": "c"}]
    doc = {"data": {"total": 2, "offset": 0, "limit": 2, "count": 2, "desc": False,
                    "items": items}}
    result = check("GET", "/v2/actor-builds", 200, "application/json", _json(doc))
    assert not result.ok
    assert all("[*]" in p for p in result.problems if "items" in p)
