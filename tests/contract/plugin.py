"""The session-wide contract check: every response the runtime gave, against the spec.

At the start of the session `APIFY_MAGIC_LOCAL_TRACE` names a fresh directory, so every
runtime the tests start (in this process or in a kernel) records its responses there
(`apify_magic.local.trace`). At the end each one is checked with `contract.openapi.check`;
a summary goes to the terminal and to `test-results/contract.json`, and the session fails
if any response is invalid, unless `APIFY_MAGIC_CONTRACT=report`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from apify_magic.local.trace import ENV_VAR
from contract.openapi import Result, check, normalise

MODE_VAR = "APIFY_MAGIC_CONTRACT"
RESULTS = Path("test-results") / "contract.json"  # under the session's rootdir

_state: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    # Set before any test runs and exempt from the tests' clean-environment fixtures,
    # so runtimes started anywhere in the session (and kernels they spawn) record.
    folder = tempfile.mkdtemp(prefix="apify-magic-trace-")
    _state["dir"] = Path(folder)
    _state["previous"] = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = folder


def _exchanges(folder: Path) -> list[dict[str, Any]]:
    out = []
    for file in sorted(folder.glob("trace-*.jsonl")):
        for line in file.read_bytes().splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def _body(exchange: dict[str, Any]) -> bytes:
    if exchange.get("body_encoding") == "base64":
        return base64.b64decode(exchange["body"])
    return str(exchange.get("body", "")).encode()


def summarise(exchanges: list[dict[str, Any]]) -> dict[str, Any]:
    """Check each exchange; counts by operation, and each distinct problem with an example."""
    by_op: dict[str, Counter[str]] = defaultdict(Counter)
    problems: dict[tuple[str, int, str], dict[str, Any]] = {}
    notes: Counter[str] = Counter()
    unknown: Counter[tuple[str, str, int]] = Counter()
    results: list[Result] = []
    for ex in exchanges:
        r = check(ex["method"], ex["path"], int(ex["status"]), ex.get("content_type"),
                  _body(ex), truncated=bool(ex.get("truncated")))
        results.append(r)
        name = r.operation_id or ("(not in spec)" if not r.spec_has_path
                                  else f"(no {r.method} in spec) {r.template}")
        by_op[name]["checked"] += 1
        by_op[name]["valid" if r.ok else "invalid"] += 1
        for note in r.notes:
            notes[note] += 1
        if r.operation_id is None:
            unknown[(r.method, normalise(r.path), r.status)] += 1
        for problem in r.problems:
            key = (name, r.status, problem)
            entry = problems.setdefault(key, {
                "operation": name, "status": r.status, "problem": problem, "count": 0,
                "example": f"{r.method} {r.path}" + (f"?{ex['query']}" if ex.get("query")
                                                      else "")})
            entry["count"] += 1
    invalid = sum(not r.ok for r in results)
    return {
        "responses_recorded": len(exchanges),
        "responses_checked": len(results),
        "valid": len(results) - invalid,
        "invalid": invalid,
        "operations_seen": sorted(n for n in by_op if not n.startswith("(")),
        "by_operation": {n: dict(c) for n, c in sorted(by_op.items())},
        "problems": sorted(problems.values(), key=lambda p: (p["operation"], p["problem"])),
        "not_in_spec": [{"method": m, "path": p, "status": s, "count": c}
                        for (m, p, s), c in sorted(unknown.items())],
        "notes": dict(notes),
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    folder: Path | None = _state.get("dir")
    if folder is None:
        return
    summary = summarise(_exchanges(folder))
    # One file per process that served: the test process and any kernel's runtime.
    summary["processes"] = len(list(folder.glob("trace-*.jsonl")))
    summary["mode"] = os.environ.get(MODE_VAR, "enforce")
    _state["summary"] = summary
    results = _state["results"] = session.config.rootpath / RESULTS
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    if _state["previous"] is None:
        os.environ.pop(ENV_VAR, None)
    else:
        os.environ[ENV_VAR] = _state["previous"]
    if summary["invalid"] and summary["mode"] != "report" and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    summary = _state.get("summary")
    if summary is None:
        return
    tr = terminalreporter
    tr.section("contract: responses against the OpenAPI spec")
    if not summary["responses_recorded"]:
        tr.write_line("0 responses recorded (no local runtime answered in this session)")
        return
    tr.write_line(f"{summary['responses_checked']} responses checked over "
                  f"{len(summary['operations_seen'])} operations: {summary['valid']} valid, "
                  f"{summary['invalid']} invalid (from {summary['processes']} processes)")
    width = max(len(n) for n in summary["by_operation"])
    tr.write_line(f"  {'operation':<{width}}  checked  valid  invalid")
    for name, counts in summary["by_operation"].items():
        tr.write_line(f"  {name:<{width}}  {counts.get('checked', 0):>7}  "
                      f"{counts.get('valid', 0):>5}  {counts.get('invalid', 0):>7}")
    for entry in summary["not_in_spec"]:
        tr.write_line(f"  not in the spec: {entry['method']} {entry['path']} -> "
                      f"{entry['status']} (x{entry['count']})")
    for note, count in summary["notes"].items():
        tr.write_line(f"  note (x{count}): {note}")
    for p in summary["problems"]:
        tr.write_line(f"  INVALID {p['operation']} {p['status']} (x{p['count']}): "
                      f"{p['problem']}  e.g. {p['example']}", red=True)
    if summary["invalid"]:
        verdict = ("reported only (APIFY_MAGIC_CONTRACT=report)"
                   if summary["mode"] == "report" else "the session fails")
        tr.write_line(f"{summary['invalid']} invalid responses: {verdict}; "
                      f"details in {_state['results']}")
