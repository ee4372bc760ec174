"""Property-based API test: schemathesis fuzzes every operation the runtime serves.

The operations are the runtime's own list (`served_operations`), looked up in the spec
copy in `apify-openapi/`. For each, schemathesis generates requests from the spec (path,
query, body); about half of them name real things (the `hello` Actor, a finished run of
it, its storages and build) so that success paths are exercised, the rest are whatever
the spec allows. Each response must be no 5xx, a status the operation declares, and
valid by `contract.openapi.check` (schema by content type, error envelope).

Bounded: `MAX_EXAMPLES` per operation and `BUDGET_SECS` for the whole module, after which
the remaining examples are skipped; generation is derandomized so CI sees the same cases.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from apify_magic.local import LocalRuntime
from apify_magic.local.registry import SHIPPED_ACTORS, USERNAME
from contract.openapi import check, spec

schemathesis = pytest.importorskip("schemathesis")
try:
    from apify_magic.local.app import served_operations
except ImportError:  # pragma: no cover - the route table predates the function
    served_operations = None

pytestmark = pytest.mark.contract

TEST_ACTORS = Path(__file__).parents[1] / "local" / "actors"
FAST_ACTOR = "hello"
MAX_EXAMPLES = 25
BUDGET_SECS = 240.0
# Operations that change or end the run they name get a run of their own.
MUTATING = ("PUT", "DELETE", "POST")



def _served() -> list[tuple[str, str]]:
    if served_operations is None:
        return []
    return sorted(set(served_operations()))


@pytest.fixture(scope="module")
def budget_end() -> float:
    # From the module's first test, not from collection: other tests may run in between.
    return time.monotonic() + BUDGET_SECS


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    runtime = LocalRuntime([TEST_ACTORS, SHIPPED_ACTORS],
                           data_dir=tmp_path_factory.mktemp("contract-runtime"),
                           kill_grace_secs=1.0, sync_wait_secs=20.0)
    runtime.start()
    yield runtime
    runtime.stop()


@pytest.fixture(scope="module")
def api_schema(runtime: LocalRuntime) -> Any:
    raw = copy.deepcopy(spec())
    raw["servers"] = [{"url": runtime.url}]
    return schemathesis.openapi.from_dict(raw)


def _finished_run(runtime: LocalRuntime) -> dict[str, Any]:
    with httpx.Client(base_url=f"{runtime.url}/v2", timeout=60.0) as client:
        r = client.post(f"/acts/{FAST_ACTOR}/runs", params={"waitForFinish": 60},
                        json={"name": "contract"})
        r.raise_for_status()
        run: dict[str, Any] = r.json()["data"]
    assert run["status"] == "SUCCEEDED", run
    return run


@pytest.fixture(scope="module")
def shared_run(runtime: LocalRuntime) -> dict[str, Any]:
    return _finished_run(runtime)


def _real_values(runtime: LocalRuntime, run: dict[str, Any]) -> dict[str, str]:
    actor = runtime.registry.find(FAST_ACTOR)
    return {"actorId": FAST_ACTOR, "runId": run["id"], "buildOrRunId": run["id"],
            "datasetId": run["defaultDatasetId"], "storeId": run["defaultKeyValueStoreId"],
            "recordKey": "OUTPUT", "buildId": actor.build_id, "userId": USERNAME}


@pytest.mark.skipif(served_operations is None,
                    reason="apify_magic.local.app.served_operations() is missing: "
                           "the runtime cannot say which operations it serves")
@pytest.mark.parametrize(("method", "path"), _served(), ids=lambda v: str(v))
def test_served_operation_conforms(method: str, path: str, runtime: LocalRuntime,
                                   api_schema: Any, shared_run: dict[str, Any],
                                   budget_end: float) -> None:
    operation = api_schema[path][method]
    run = _finished_run(runtime) if method in MUTATING and "{runId}" in path else shared_run
    real = _real_values(runtime, run)
    checks = [schemathesis.checks.not_a_server_error,
              schemathesis.checks.status_code_conformance]
    seen: list[int] = []

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(), use_real=st.booleans())
    def conforms(case: Any, use_real: bool) -> None:
        if time.monotonic() > budget_end:
            reject()  # the module's budget is spent: no more requests
        if use_real:
            for name in case.path_parameters or {}:
                if name in real:
                    case.path_parameters[name] = real[name]
        response = case.call(base_url=runtime.url, timeout=60)
        case.validate_response(response, checks=checks)
        content_type = (response.headers.get("content-type") or [None])[0]
        result = check(case.method, case.formatted_path, response.status_code, content_type,
                       response.content)
        assert result.ok, (f"{case.method} {case.formatted_path} {case.query} -> "
                           f"{response.status_code}: {result.problems}")
        seen.append(response.status_code)

    try:
        conforms()
    except Exception as err:
        # Every example rejected: only when the budget ran out before this operation.
        if type(err).__name__ == "Unsatisfiable" and not seen:
            pytest.skip(f"the module's {BUDGET_SECS:.0f} s budget was spent")
        raise
    assert seen
