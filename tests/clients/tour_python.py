"""A scripted tour of Apify API v2 with the official Python client, unchanged.

    python tests/clients/tour_python.py --url http://127.0.0.1:PORT --token TOKEN \
        [--client sync|async] [--json results.json]

(or APIFY_API_BASE_URL / APIFY_TOKEN). One step per call users make: Actors, runs,
tasks, datasets, key-value stores, request queues, webhooks, logs, users. Each step records
its name, whether it passed, the error and, for an `ApifyApiError`, the HTTP status and
error type, with the wall-clock window it ran in (so a server-side trace can be matched to
it). Later steps use what earlier ones made; a failed step does not stop the tour. Prints a
table, writes JSON, exits 1 if any step failed.

The sync and the async client run the same tour: each call's result goes through `done()`,
which awaits it if it is awaitable, so the steps read like user code for both.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import http.server
import inspect
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from apify_client import ApifyClient, ApifyClientAsync
from apify_client.errors import ApifyApiError

TERMINAL = {"SUCCEEDED", "FAILED", "ABORTED", "TIMED-OUT"}


async def done(value: Any) -> Any:
    """The value of a client call, sync or async."""
    return await value if inspect.isawaitable(value) else value


def val(obj: Any, name: str) -> Any:
    """A field of a client model (snake_case) or of a plain dict (camelCase)."""
    if isinstance(obj, dict):
        if name in obj:
            out = obj[name]
        else:
            head, *rest = name.split("_")
            out = obj.get(head + "".join(p.title() for p in rest))
    else:
        out = getattr(obj, name)
    return out.value if isinstance(out, enum.Enum) else out


def check(cond: Any, what: str) -> None:
    if not cond:
        raise AssertionError(what)


class Receiver:
    """A loopback HTTP endpoint for webhooks: counts what it is sent."""

    def __init__(self) -> None:
        received = self.received = []  # type: list[bytes]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers.get("content-length", 0))))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Tour:
    def __init__(self, client: Any, receiver: Receiver) -> None:
        self.client = client
        self.receiver = receiver
        self.results: list[dict[str, Any]] = []
        self.ctx: dict[str, Any] = {}
        self.tag = f"tour-{os.getpid()}-{int(time.time())}"

    async def step(self, name: str, body: Callable[[], Awaitable[Any]],
                   needs: tuple[str, ...] = ()) -> None:
        started = time.time()
        result: dict[str, Any] = {"name": name, "ok": False, "status": None, "type": None,
                                  "error": None}
        missing = [n for n in needs if self.ctx.get(n) is None]
        try:
            if missing:
                raise RuntimeError(f"skipped: an earlier step made no {', '.join(missing)}")
            await body()
            result["ok"] = True
        except ApifyApiError as err:
            result.update(status=err.status_code, type=err.type, error=f"{err.type}: {err}")
        except Exception as err:  # a step's failure is its result; the tour goes on
            tb = traceback.extract_tb(err.__traceback__)
            where = next((f"line {f.lineno}" for f in reversed(tb)
                          if f.filename == __file__), "")
            result["error"] = f"{type(err).__name__}: {err} ({where})".strip()
        result.update(started=started, ended=time.time())
        self.results.append(result)

    # ---------------------------------------------------------------- the tour

    async def run(self) -> None:
        c, s, x = self.client, self.step, self.ctx

        # Actors
        async def actors_list() -> None:
            page = await done(c.actors().list(limit=1, offset=0, desc=False))
            check(len(page.items) <= 1, f"limit=1 gave {len(page.items)} items")
            check(page.total >= 3, f"total {page.total}, want the shipped Actors")
            page2 = await done(c.actors().list(limit=1, offset=1))
            check(page2.items and page2.items[0].id != page.items[0].id, "offset=1 same page")
        await s("actors.list", actors_list)

        async def actor_get() -> None:
            actor = await done(c.actor("hello").get())
            check(actor is not None and actor.name == "hello", f"got {actor!r}")
            x["hello_id"] = actor.id
            check(await done(c.actor("no-such-actor-here").get()) is None,
                  "an unknown Actor is not None")
        await s("actor.get", actor_get)

        async def validate_input() -> None:
            ok = await done(c.actor("hello").validate_input(run_input={"name": "x", "count": 2}))
            check(ok is True, f"valid input gave {ok!r}")
            try:
                await done(c.actor("hello").validate_input(run_input={"count": "many"}))
            except ApifyApiError as err:
                check(err.status_code == 400, f"invalid input: HTTP {err.status_code}")
            else:
                raise AssertionError("invalid input was accepted")
        await s("actor.validate_input", validate_input)

        async def builds_list() -> None:
            page = await done(c.actor("hello").builds().list(limit=10, desc=True))
            check(page.items, "no builds")
        await s("actor.builds.list", builds_list)

        async def default_build() -> None:
            build = await done(c.actor("hello").default_build())
            got = await done(build.get())
            check(got is not None and val(got, "status") == "SUCCEEDED", f"build {got!r}")
        await s("actor.default_build", default_build)

        # Runs
        async def call() -> None:
            run = await done(c.actor("hello").call(
                run_input={"name": "tour", "count": 2}, logger=None))
            check(val(run, "status") == "SUCCEEDED", f"status {val(run, 'status')}")
            x["run"] = run
        await s("actor.call", call)

        async def call_no_input() -> None:
            run = await done(c.actor("hello").call(logger=None))
            check(val(run, "status") == "SUCCEEDED", f"status {val(run, 'status')}")
        await s("actor.call (no input)", call_no_input)

        async def call_fail() -> None:
            run = await done(c.actor("fail").call(logger=None))
            check(val(run, "status") == "FAILED", f"status {val(run, 'status')}")
        await s("actor.call (fail Actor: FAILED)", call_fail)

        async def start_wait() -> None:
            run = await done(c.actor("hello").start(run_input={"count": 1}))
            check(val(run, "status") in {"READY", "RUNNING", "SUCCEEDED"}, val(run, "status"))
            end = await done(c.run(run.id).wait_for_finish(wait_duration=timedelta(seconds=60)))
            check(val(end, "status") == "SUCCEEDED", f"status {val(end, 'status')}")
        await s("actor.start + run.wait_for_finish", start_wait)

        async def run_get() -> None:
            got = await done(c.run(x["run"].id).get())
            check(got is not None and got.id == x["run"].id, f"got {got!r}")
            check(await done(c.run("noSuchRunHere0000").get()) is None, "unknown run not None")
        await s("run.get", run_get, needs=("run",))

        async def runs_list() -> None:
            page = await done(c.runs().list(limit=2, offset=0, desc=True))
            check(len(page.items) == 2, f"limit=2 gave {len(page.items)}")
            check(page.total >= 2, f"total {page.total}")
            starts = [i.started_at for i in page.items]
            check(starts == sorted(starts, reverse=True), "desc=True not newest first")
            later = await done(c.runs().list(limit=2, offset=1, desc=True))
            check(later.items[0].id == page.items[1].id, "offset=1 not the next run")
            ok = await done(c.runs().list(status="SUCCEEDED"))
            check(ok.items and all(val(i, "status") == "SUCCEEDED" for i in ok.items),
                  "status=SUCCEEDED filter")
            none = await done(c.runs().list(status="TIMED-OUT"))
            check(none.total == 0 and not none.items, "status=TIMED-OUT filter")
        await s("runs.list (offset/limit/desc/status)", runs_list)

        async def actor_runs_list() -> None:
            page = await done(c.actor("hello").runs().list(limit=1, desc=True,
                                                           status="SUCCEEDED"))
            check(len(page.items) == 1 and val(page.items[0], "status") == "SUCCEEDED",
                  f"items {page.items!r}")
            check(page.items[0].act_id == x.get("hello_id", page.items[0].act_id),
                  "a run of another Actor")
            other = await done(c.actor("fail").runs().list())
            check(all(i.act_id != page.items[0].act_id for i in other.items), "not per Actor")
        await s("actor.runs.list", actor_runs_list)

        async def last_run() -> None:
            last = c.actor("hello").last_run(status="SUCCEEDED")
            run = await done(last.get())
            check(run is not None and val(run, "status") == "SUCCEEDED", f"last {run!r}")
            items = await done(last.dataset().list_items())
            check(items.items, "last run's dataset is empty")
            output = await done(last.key_value_store().get_record("OUTPUT"))
            check(output is not None, "last run has no OUTPUT")
            keys = await done(last.key_value_store().list_keys())
            check(any(k.key == "OUTPUT" for k in keys.items), "OUTPUT not in keys")
            log = await done(last.log().get())
            check(log, "last run's log is empty")
            none = await done(c.actor("fail").last_run(status="SUCCEEDED").get())
            check(none is None, "fail never succeeds, yet has a SUCCEEDED last run")
        await s("actor.last_run(status=) + dataset/kvs/log", last_run)

        async def abort() -> None:
            run = await done(c.actor("slow").start(run_input={"seconds": 60, "steps": 2}))
            aborted = await done(c.run(run.id).abort())
            check(val(aborted, "status") in {"ABORTING", "ABORTED"}, val(aborted, "status"))
            end = await done(c.run(run.id).wait_for_finish(wait_duration=timedelta(seconds=30)))
            check(val(end, "status") == "ABORTED", f"status {val(end, 'status')}")
            x["aborted"] = run.id
        await s("run.abort", abort)

        async def abort_graceful() -> None:
            run = await done(c.actor("slow").start(run_input={"seconds": 60, "steps": 2}))
            aborted = await done(c.run(run.id).abort(gracefully=True))
            check(val(aborted, "status") in {"ABORTING", "ABORTED", "RUNNING"},
                  val(aborted, "status"))
            end = await done(c.run(run.id).wait_for_finish(wait_duration=timedelta(seconds=30)))
            check(val(end, "status") == "ABORTED", f"status {val(end, 'status')}")
        await s("run.abort(gracefully=True)", abort_graceful)

        async def resurrect() -> None:
            run = await done(c.run(x["aborted"]).resurrect())
            check(val(run, "status") in {"READY", "RUNNING"}, f"status {val(run, 'status')}")
            x["running"] = run.id
        await s("run.resurrect", resurrect, needs=("aborted",))

        async def reboot() -> None:
            run = await done(c.run(x["running"]).reboot())
            check(val(run, "status") in {"READY", "RUNNING"}, f"status {val(run, 'status')}")
        await s("run.reboot", reboot, needs=("running",))

        async def charge() -> None:
            await done(c.run(x["running"]).charge("tour-event", count=1))
        await s("run.charge", charge, needs=("running",))

        async def metamorph() -> None:
            # A run of its own, once it is RUNNING (metamorph of a READY run is a 400).
            run = await done(c.actor("slow").start(run_input={"seconds": 60, "steps": 2}))
            for _ in range(200):
                if val(await done(c.run(run.id).get()), "status") == "RUNNING":
                    break
                await asyncio.sleep(0.05)
            run = await done(c.run(run.id).metamorph(
                target_actor_id="hello", run_input={"name": "morphed", "count": 1}))
            check(val(run, "status") == "RUNNING", f"status {val(run, 'status')}")
            end = await done(c.run(run.id).wait_for_finish(wait_duration=timedelta(seconds=60)))
            check(val(end, "status") == "SUCCEEDED", f"status {val(end, 'status')}")
            items = await done(c.dataset(end.default_dataset_id).list_items())
            check("morphed" in json.dumps(items.items), f"hello did not run: {items.items!r}")
        await s("run.metamorph", metamorph)

        # Logs
        async def log_get() -> None:
            text = await done(c.run(x["run"].id).log().get())
            check(text, "empty log")
            check(await done(c.log("noSuchRunHere0000").get()) is None, "unknown log not None")
        await s("log.get", log_get, needs=("run",))

        async def log_stream() -> None:
            cm = c.run(x["run"].id).log().stream()
            if hasattr(cm, "__aenter__"):
                async with cm as response:
                    body = b"".join([chunk async for chunk in response.aiter_bytes()])
            else:
                with cm as response:
                    body = b"".join(response.iter_bytes())
            check(body, "empty stream")
        await s("log.stream", log_stream, needs=("run",))

        async def streamed_log() -> None:
            lines: list[str] = []

            class Keep(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    lines.append(record.getMessage())
            logger = logging.getLogger(f"tour.{self.tag}")
            logger.propagate = False
            logger.addHandler(Keep())
            logger.setLevel(logging.DEBUG)
            watcher = await done(c.run(x["run"].id).get_streamed_log(to_logger=logger))
            if hasattr(watcher, "__aenter__"):
                async with watcher:
                    await asyncio.sleep(1.0)
            else:
                with watcher:
                    time.sleep(1.0)
            check(lines, "nothing streamed to the logger")
        await s("run.get_streamed_log", streamed_log, needs=("run",))

        # Actor tasks
        async def task_create() -> None:
            task = await done(c.tasks().create(actor_id=x["hello_id"], name=f"{self.tag}-task",
                                               task_input={"name": "task", "count": 4}))
            check(task.name == f"{self.tag}-task", f"name {task.name}")
            x["task"] = task.id
        await s("tasks.create", task_create, needs=("hello_id",))

        async def tasks_list() -> None:
            page = await done(c.tasks().list(limit=100))
            check(any(t.id == x["task"] for t in page.items), "new task not listed")
        await s("tasks.list", tasks_list, needs=("task",))

        async def task_get_update() -> None:
            got = await done(c.task(x["task"]).get())
            check(got is not None and got.id == x["task"], f"got {got!r}")
            upd = await done(c.task(x["task"]).update(title="Tour task"))
            check(upd.title == "Tour task", f"title {upd.title!r}")
        await s("task.get + update", task_get_update, needs=("task",))

        async def task_input() -> None:
            got = await done(c.task(x["task"]).get_input())
            check(got.get("count") == 4, f"input {got!r}")
            new = await done(c.task(x["task"]).update_input(task_input={"name": "t", "count": 3}))
            check(new.get("count") == 3, f"updated input {new!r}")
        await s("task.get_input + update_input", task_input, needs=("task",))

        async def task_call() -> None:
            run = await done(c.task(x["task"]).call())
            check(val(run, "status") == "SUCCEEDED", f"status {val(run, 'status')}")
            items = await done(c.dataset(run.default_dataset_id).list_items())
            check(items.total == 3, f"task input not used: {items.total} items")
        await s("task.call", task_call, needs=("task",))

        async def task_runs() -> None:
            page = await done(c.task(x["task"]).runs().list())
            check(len(page.items) == 1, f"{len(page.items)} task runs")
            last = await done(c.task(x["task"]).last_run(status="SUCCEEDED").get())
            check(last is not None and last.actor_task_id == x["task"], f"last {last!r}")
        await s("task.runs.list + last_run", task_runs, needs=("task",))

        async def task_delete() -> None:
            await done(c.task(x["task"]).delete())
            check(await done(c.task(x["task"]).get()) is None, "deleted task still there")
        await s("task.delete", task_delete, needs=("task",))

        # Datasets
        async def ds_create() -> None:
            ds = await done(c.datasets().get_or_create(name=f"{self.tag}-ds"))
            again = await done(c.datasets().get_or_create(name=f"{self.tag}-ds"))
            check(again.id == ds.id, "get_or_create by name made a second dataset")
            x["ds"] = ds.id
        await s("datasets.get_or_create", ds_create)

        async def ds_list() -> None:
            page = await done(c.datasets().list(limit=1000, desc=True))
            check(any(d.id == x["ds"] for d in page.items), "named dataset not listed")
            one = await done(c.datasets().list(limit=1, offset=0))
            check(len(one.items) == 1, f"limit=1 gave {len(one.items)}")
        await s("datasets.list", ds_list, needs=("ds",))

        async def ds_get_update() -> None:
            got = await done(c.dataset(x["ds"]).get())
            check(got is not None and got.id == x["ds"], f"got {got!r}")
            upd = await done(c.dataset(x["ds"]).update(name=f"{self.tag}-ds2"))
            check(upd.name == f"{self.tag}-ds2", f"name {upd.name!r}")
            check(await done(c.dataset("noSuchDatasetHere").get()) is None, "unknown not None")
        await s("dataset.get + update", ds_get_update, needs=("ds",))

        async def ds_push() -> None:
            await done(c.dataset(x["ds"]).push_items([{"n": i} for i in range(5)]))
            await done(c.dataset(x["ds"]).push_items({"n": 5}))
            await done(c.dataset(x["ds"]).push_items(json.dumps([{"n": 6}])))
        await s("dataset.push_items", ds_push, needs=("ds",))

        async def ds_items() -> None:
            page = await done(c.dataset(x["ds"]).list_items(offset=1, limit=2, desc=True))
            check([i["n"] for i in page.items] == [5, 4], f"items {page.items!r}")
            check(page.total == 7, f"total {page.total}")
            every = c.dataset(x["ds"]).iterate_items()
            got = ([i async for i in every] if hasattr(every, "__aiter__") else list(every))
            check([i["n"] for i in got] == list(range(7)), f"iterate {got!r}")
        await s("dataset.list_items + iterate_items", ds_items, needs=("ds",))

        async def ds_stats() -> None:
            stats = await done(c.dataset(x["ds"]).get_statistics())
            check(stats is not None, "no statistics")
        await s("dataset.get_statistics", ds_stats, needs=("ds",))

        async def ds_delete() -> None:
            await done(c.dataset(x["ds"]).delete())
            check(await done(c.dataset(x["ds"]).get()) is None, "deleted dataset still there")
        await s("dataset.delete", ds_delete, needs=("ds",))

        # Key-value stores
        async def kvs_create() -> None:
            kvs = await done(c.key_value_stores().get_or_create(name=f"{self.tag}-kvs"))
            again = await done(c.key_value_stores().get_or_create(name=f"{self.tag}-kvs"))
            check(again.id == kvs.id, "get_or_create by name made a second store")
            x["kvs"] = kvs.id
        await s("key_value_stores.get_or_create", kvs_create)

        async def kvs_list() -> None:
            page = await done(c.key_value_stores().list(limit=1000))
            check(any(k.id == x["kvs"] for k in page.items), "named store not listed")
        await s("key_value_stores.list", kvs_list, needs=("kvs",))

        async def kvs_get_update() -> None:
            got = await done(c.key_value_store(x["kvs"]).get())
            check(got is not None and got.id == x["kvs"], f"got {got!r}")
            upd = await done(c.key_value_store(x["kvs"]).update(name=f"{self.tag}-kvs2"))
            check(upd.name == f"{self.tag}-kvs2", f"name {upd.name!r}")
        await s("key_value_store.get + update", kvs_get_update, needs=("kvs",))

        async def kvs_set() -> None:
            kvs = c.key_value_store(x["kvs"])
            await done(kvs.set_record("a-json", {"hello": "world"}))
            await done(kvs.set_record("b-text", "plain text", content_type="text/plain"))
            await done(kvs.set_record("c-bytes", b"\x00\x01", content_type="application/x-bin"))
            await done(kvs.set_record("other", [1, 2]))
        await s("key_value_store.set_record", kvs_set, needs=("kvs",))

        async def kvs_get() -> None:
            kvs = c.key_value_store(x["kvs"])
            rec = await done(kvs.get_record("a-json"))
            check(rec is not None and rec["value"] == {"hello": "world"}, f"record {rec!r}")
            txt = await done(kvs.get_record("b-text"))
            check(txt is not None and txt["value"] == "plain text", f"text {txt!r}")
            check(await done(kvs.get_record("no-such-key")) is None, "missing record not None")
        await s("key_value_store.get_record", kvs_get, needs=("kvs",))

        async def kvs_exists() -> None:
            kvs = c.key_value_store(x["kvs"])
            check(await done(kvs.record_exists("a-json")) is True, "existing record")
            check(await done(kvs.record_exists("no-such-key")) is False, "missing record")
        await s("key_value_store.record_exists", kvs_exists, needs=("kvs",))

        async def kvs_keys() -> None:
            kvs = c.key_value_store(x["kvs"])
            first = await done(kvs.list_keys(limit=2))
            check([k.key for k in first.items] == ["a-json", "b-text"], f"{first.items!r}")
            check(first.is_truncated and first.next_exclusive_start_key == "b-text",
                  f"truncated {first.is_truncated}, next {first.next_exclusive_start_key}")
            rest = await done(kvs.list_keys(exclusive_start_key="b-text"))
            check([k.key for k in rest.items] == ["c-bytes", "other"], f"{rest.items!r}")
            check(not rest.is_truncated, "last page truncated")
            pre = await done(kvs.list_keys(prefix="b-"))
            check([k.key for k in pre.items] == ["b-text"], f"prefix {pre.items!r}")
        await s("key_value_store.list_keys (limit/exclusiveStartKey/prefix)", kvs_keys,
                needs=("kvs",))

        async def kvs_delete_record() -> None:
            kvs = c.key_value_store(x["kvs"])
            await done(kvs.delete_record("other"))
            check(await done(kvs.get_record("other")) is None, "deleted record still there")
        await s("key_value_store.delete_record", kvs_delete_record, needs=("kvs",))

        async def kvs_delete() -> None:
            await done(c.key_value_store(x["kvs"]).delete())
            check(await done(c.key_value_store(x["kvs"]).get()) is None, "deleted store there")
        await s("key_value_store.delete", kvs_delete, needs=("kvs",))

        # Request queues
        async def rq_create() -> None:
            rq = await done(c.request_queues().get_or_create(name=f"{self.tag}-rq"))
            again = await done(c.request_queues().get_or_create(name=f"{self.tag}-rq"))
            check(again.id == rq.id, "get_or_create by name made a second queue")
            x["rq"] = rq.id
        await s("request_queues.get_or_create", rq_create)

        async def rq_list() -> None:
            page = await done(c.request_queues().list(limit=1000))
            check(any(q.id == x["rq"] for q in page.items), "named queue not listed")
        await s("request_queues.list", rq_list, needs=("rq",))

        async def rq_get_update() -> None:
            got = await done(c.request_queue(x["rq"]).get())
            check(got is not None and got.id == x["rq"], f"got {got!r}")
            upd = await done(c.request_queue(x["rq"]).update(name=f"{self.tag}-rq2"))
            check(upd.name == f"{self.tag}-rq2", f"name {upd.name!r}")
        await s("request_queue.get + update", rq_get_update, needs=("rq",))

        async def rq_add() -> None:
            rq = c.request_queue(x["rq"])
            reg = await done(rq.add_request({"url": "https://example.com/1",
                                              "uniqueKey": "https://example.com/1"}))
            check(not reg.was_already_present, "first add was already present")
            again = await done(rq.add_request({"url": "https://example.com/1",
                                                "uniqueKey": "https://example.com/1"}))
            check(again.was_already_present and again.request_id == reg.request_id,
                  "second add of the same uniqueKey")
            x["req"] = reg.request_id
        await s("request_queue.add_request", rq_add, needs=("rq",))

        async def rq_get_request() -> None:
            req = await done(c.request_queue(x["rq"]).get_request(x["req"]))
            check(req is not None and req.url == "https://example.com/1", f"req {req!r}")
            x["req_obj"] = req
            check(await done(c.request_queue(x["rq"]).get_request("noSuchRequest00")) is None,
                  "unknown request not None")
        await s("request_queue.get_request", rq_get_request, needs=("req",))

        async def rq_update_request() -> None:
            req = x["req_obj"].model_dump(by_alias=True, exclude_none=True)
            req["userData"] = {"label": "DETAIL"}
            reg = await done(c.request_queue(x["rq"]).update_request(req))
            check(reg.request_id == x["req"], f"reg {reg!r}")
            got = await done(c.request_queue(x["rq"]).get_request(x["req"]))
            check(got.user_data is not None, "userData not kept")
        await s("request_queue.update_request", rq_update_request, needs=("req_obj",))

        async def rq_batch_add() -> None:
            rq = c.request_queue(x["rq"])
            res = await done(rq.batch_add_requests(
                [{"url": f"https://example.com/b{i}", "uniqueKey": f"b{i}"} for i in range(4)]))
            check(len(res.processed_requests) == 4 and not res.unprocessed_requests,
                  f"batch {res!r}")
        await s("request_queue.batch_add_requests", rq_batch_add, needs=("rq",))

        async def rq_head() -> None:
            head = await done(c.request_queue(x["rq"]).list_head(limit=10))
            check(len(head.items) == 5, f"{len(head.items)} in head")
        await s("request_queue.list_head", rq_head, needs=("rq",))

        async def rq_lock() -> None:
            rq = c.request_queue(x["rq"], client_key="tour-client")
            head = await done(rq.list_and_lock_head(lock_duration=timedelta(seconds=60),
                                                    limit=2))
            check(len(head.items) == 2, f"locked {len(head.items)}")
            x["locked"] = [i.id for i in head.items]
            again = await done(rq.list_and_lock_head(lock_duration=timedelta(seconds=60),
                                                     limit=10))
            check(not set(x["locked"]) & {i.id for i in again.items}, "locked twice")
            await done(rq.unlock_requests())
            x["locked"] = x["locked"][:1]
            head = await done(rq.list_and_lock_head(lock_duration=timedelta(seconds=60),
                                                    limit=1))
            x["locked"] = [i.id for i in head.items]
        await s("request_queue.list_and_lock_head", rq_lock, needs=("rq",))

        async def rq_prolong() -> None:
            rq = c.request_queue(x["rq"], client_key="tour-client")
            info = await done(rq.prolong_request_lock(x["locked"][0],
                                                      lock_duration=timedelta(seconds=120)))
            check(info is not None and info.lock_expires_at, f"lock {info!r}")
        await s("request_queue.prolong_request_lock", rq_prolong, needs=("locked",))

        async def rq_delete_lock() -> None:
            rq = c.request_queue(x["rq"], client_key="tour-client")
            await done(rq.delete_request_lock(x["locked"][0]))
        await s("request_queue.delete_request_lock", rq_delete_lock, needs=("locked",))

        async def rq_unlock() -> None:
            rq = c.request_queue(x["rq"], client_key="tour-client")
            await done(rq.list_and_lock_head(lock_duration=timedelta(seconds=60), limit=3))
            res = await done(rq.unlock_requests())
            check(res.unlocked_count == 3, f"unlocked {res.unlocked_count}")
        await s("request_queue.unlock_requests", rq_unlock, needs=("rq",))

        async def rq_list_requests() -> None:
            page = await done(c.request_queue(x["rq"]).list_requests(limit=3))
            check(len(page.items) == 3, f"{len(page.items)} listed")
            every = await done(c.request_queue(x["rq"]).list_requests(limit=100))
            check(len(every.items) == 5, f"{len(every.items)} in all")
        await s("request_queue.list_requests", rq_list_requests, needs=("rq",))

        async def rq_delete_request() -> None:
            await done(c.request_queue(x["rq"]).delete_request(x["req"]))
            check(await done(c.request_queue(x["rq"]).get_request(x["req"])) is None,
                  "deleted request still there")
        await s("request_queue.delete_request", rq_delete_request, needs=("req",))

        async def rq_batch_delete() -> None:
            res = await done(c.request_queue(x["rq"]).batch_delete_requests(
                [{"uniqueKey": "b0"}, {"uniqueKey": "b1"}]))
            check(len(res.processed_requests) == 2, f"batch delete {res!r}")
        await s("request_queue.batch_delete_requests", rq_batch_delete, needs=("rq",))

        async def rq_delete() -> None:
            await done(c.request_queue(x["rq"]).delete())
            check(await done(c.request_queue(x["rq"]).get()) is None, "deleted queue there")
        await s("request_queue.delete", rq_delete, needs=("rq",))

        # Webhooks
        async def wh_create() -> None:
            wh = await done(c.webhooks().create(
                event_types=["ACTOR.RUN.SUCCEEDED"], request_url=self.receiver.url,
                actor_id=x["hello_id"], description="tour"))
            x["wh"] = wh.id
        await s("webhooks.create", wh_create, needs=("hello_id",))

        async def wh_list() -> None:
            page = await done(c.webhooks().list(limit=100))
            check(any(w.id == x["wh"] for w in page.items), "webhook not listed")
        await s("webhooks.list", wh_list, needs=("wh",))

        async def wh_get_update() -> None:
            got = await done(c.webhook(x["wh"]).get())
            check(got is not None and got.id == x["wh"], f"got {got!r}")
            upd = await done(c.webhook(x["wh"]).update(description="tour, updated"))
            check(upd.description == "tour, updated", f"description {upd.description!r}")
        await s("webhook.get + update", wh_get_update, needs=("wh",))

        async def wh_test() -> None:
            before = len(self.receiver.received)
            dispatch = await done(c.webhook(x["wh"]).test())
            check(dispatch is not None and dispatch.webhook_id == x["wh"], f"{dispatch!r}")
            for _ in range(100):
                if len(self.receiver.received) > before:
                    break
                await asyncio.sleep(0.05)
            check(len(self.receiver.received) > before, "the test dispatch never arrived")
            x["dispatch"] = dispatch.id
        await s("webhook.test", wh_test, needs=("wh",))

        async def wh_dispatches() -> None:
            page = await done(c.webhook(x["wh"]).dispatches().list())
            check(any(d.id == x["dispatch"] for d in page.items), "test dispatch not listed")
            got = await done(c.webhook_dispatch(x["dispatch"]).get())
            check(got is not None and got.id == x["dispatch"], f"dispatch {got!r}")
        await s("webhook.dispatches", wh_dispatches, needs=("dispatch",))

        async def wh_delete() -> None:
            await done(c.webhook(x["wh"]).delete())
            check(await done(c.webhook(x["wh"]).get()) is None, "deleted webhook still there")
        await s("webhook.delete", wh_delete, needs=("wh",))

        # Users
        async def user_me() -> None:
            me = await done(c.user().get())
            check(me is not None and me.username, f"me {me!r}")
        await s("user.get (me)", user_me)

        async def user_limits() -> None:
            limits = await done(c.user().limits())
            check(limits.limits is not None, f"limits {limits!r}")
        await s("user.limits", user_limits)


def table(results: list[dict[str, Any]]) -> str:
    width = max(len(r["name"]) for r in results)
    rows = [f"{'step':<{width}}  ok    http  error"]
    for r in results:
        rows.append(f"{r['name']:<{width}}  {'ok' if r['ok'] else 'FAIL':<4}  "
                    f"{r['status'] or '':<4}  {(r['error'] or '')[:160]}")
    passed = sum(r["ok"] for r in results)
    rows.append(f"{passed}/{len(results)} steps passed")
    return "\n".join(rows)


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    receiver = Receiver()
    kwargs: dict[str, Any] = {"api_url": args.url, "api_public_url": args.url,
                              "max_retries": 1, "timeout_medium": timedelta(seconds=60)}
    try:
        if args.client == "async":
            tour = Tour(ApifyClientAsync(args.token, **kwargs), receiver)
        else:
            tour = Tour(ApifyClient(args.token, **kwargs), receiver)
        await tour.run()
        return tour.results
    finally:
        receiver.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("APIFY_API_BASE_URL"))
    parser.add_argument("--token", default=os.environ.get("APIFY_TOKEN"))
    parser.add_argument("--client", choices=["sync", "async"], default="sync")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if not args.url or not args.token:
        parser.error("give --url and --token (or APIFY_API_BASE_URL and APIFY_TOKEN)")
    results = asyncio.run(main_async(args))
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"client": f"python-{args.client}",
                                         "results": results}, indent=1))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
