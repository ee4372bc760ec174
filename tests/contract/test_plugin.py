"""The session-wide check in a pytest of its own: it counts, reports, and fails the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contract.plugin import summarise

TESTS = Path(__file__).parents[1]

_CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
pytest_plugins = ["contract.plugin"]
"""

# A test that records what a runtime would have answered, as TraceMiddleware does.
_TEST = """
import json, os
from pathlib import Path

def test_answers():
    lines = [
        {"method": "GET", "path": "/v2/actor-runs/r1", "query": "", "status": 200,
         "content_type": "application/json", "body": '{"data": {"id": "r1"}}',
         "body_encoding": "utf-8", "truncated": False},
        {"method": "GET", "path": "/v2/nowhere", "query": "", "status": 404,
         "content_type": "application/json",
         "body": '{"error": {"type": "page-not-found", "message": "no"}}',
         "body_encoding": "utf-8", "truncated": False},
    ][:int(os.environ["LINES"])]
    out = Path(os.environ["APIFY_MAGIC_LOCAL_TRACE"]) / "trace-1.jsonl"
    out.write_text("".join(json.dumps(line) + "\\n" for line in lines))
"""


def _session(tmp_path: Path, lines: int, mode: str | None = None
             ) -> tuple[int, str, dict[str, object]]:
    (tmp_path / "conftest.py").write_text(_CONFTEST)
    (tmp_path / "test_answers.py").write_text(_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIFY_MAGIC_CONTRACT")}
    env["LINES"] = str(lines)
    if mode:
        env["APIFY_MAGIC_CONTRACT"] = mode
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    summary = json.loads((tmp_path / "test-results" / "contract.json").read_text())
    return done.returncode, done.stdout, summary


def test_an_invalid_response_fails_the_session(tmp_path: Path) -> None:
    code, out, summary = _session(tmp_path, 2)
    assert code == pytest.ExitCode.TESTS_FAILED, out
    assert "1 passed" in out
    assert "2 responses checked over 1 operations: 1 valid, 1 invalid (from 1 processes)" in out
    assert "INVALID actorRun_get 200" in out and "e.g. GET /v2/actor-runs/r1" in out
    assert "not in the spec: GET /v2/nowhere -> 404" in out
    assert summary["invalid"] == 1 and summary["valid"] == 1
    assert summary["by_operation"]["actorRun_get"] == {"checked": 1, "invalid": 1}


def test_report_mode_only_reports(tmp_path: Path) -> None:
    code, out, summary = _session(tmp_path, 2, mode="report")
    assert code == 0, out
    assert "reported only (APIFY_MAGIC_CONTRACT=report)" in out
    assert summary["mode"] == "report" and summary["invalid"] == 1


def test_nothing_recorded_passes_and_says_so(tmp_path: Path) -> None:
    code, out, summary = _session(tmp_path, 0)
    assert code == 0, out
    assert "0 responses recorded" in out
    assert summary["responses_recorded"] == 0


def test_problems_are_deduplicated_with_a_count() -> None:
    bad = {"method": "GET", "path": "/v2/actor-runs/r1", "query": "x=1", "status": 200,
           "content_type": "application/json", "body": '{"data": {}}',
           "body_encoding": "utf-8"}
    summary = summarise([bad, bad | {"path": "/v2/actor-runs/r2"}])
    assert summary["invalid"] == 2
    problems = summary["problems"]
    assert problems and all(p["count"] == 2 for p in problems)
    assert problems[0]["example"] == "GET /v2/actor-runs/r1?x=1"
