"""Warm starts: Python Actor runs forked from a parent that has imported `apify` already.

Almost all of a small SDK Actor's run time is `import apify`. `WarmPool` keeps one warm
parent (`warm_parent.py`, run by path with the Actor's interpreter) per interpreter,
started on first use; each run is a fresh child forked from it. The child calls `setsid`,
so its session id and process group are its pid, as for a cold run started with
`start_new_session=True`: the runner watches, times out and kills it the same way.

The child is the warm parent's child, not ours, so its exit status comes back on the
parent's reply pipe; `WarmProcess` offers the part of `Popen` the runner uses (`pid`,
`returncode`, `wait()`). Whatever cannot run warm (a Node Actor, an interpreter whose
pre-import fails, a run that sets other `PYTHON*` startup variables, a run that comes
while its warm parent is still importing) gets `None` from `WarmPool.spawn` and runs cold.

A parent whose libraries an install changed (`pip install -U apify`: the folders of the
pre-imported packages, or the site-packages holding them, changed) is retired: it takes
no new runs and exits when its runs end; the next run starts a fresh one.

Memory is measured as for a cold run (resident pages of the session), so a forked child
also counts the library pages it shares with its parent: about the same figure as a cold
run for an SDK Actor, some 45 MB more for an Actor that does not import the SDK.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("warm_parent.py")
FORK_TIMEOUT_SECS = 15.0
# Room in the warm parent's initial environment block for a child's variables, so that
# /proc/<pid>/environ of a child shows its run's (see warm_parent._show_environment).
ENVIRON_PAD_BYTES = 32768
_DROPPED_PREFIXES = ("ACTOR_", "APIFY_", "CRAWLEE_")
# Startup variables a running interpreter cannot take on: a run setting them runs cold.
_STARTUP_IGNORED = frozenset({"PYTHONPATH", "PYTHONUNBUFFERED"})
PRE_IMPORTS = ("apify", "crawlee")


def _startup_vars(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("PYTHON") and k not in _STARTUP_IGNORED}


def _stamp(folders: list[str]) -> tuple[tuple[int, int] | None, ...]:
    stamps: list[tuple[int, int] | None] = []
    for folder in folders:
        try:
            st = os.stat(folder)
            stamps.append((st.st_ino, st.st_mtime_ns))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def warm_target(argv: list[str]) -> dict[str, str] | None:
    """`{"module": pkg}` for `python -m pkg`, `{"path": p}` for `python p.py`, else None."""
    if not argv or not os.path.basename(argv[0]).startswith("python"):
        return None
    if len(argv) == 3 and argv[1] == "-m":
        return {"module": argv[2]}
    if len(argv) == 2 and argv[1].endswith(".py"):
        return {"path": argv[1]}
    return None


class WarmProcess:
    """One forked run: the part of `subprocess.Popen` the runner needs."""

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        self.pid = 0
        self.returncode: int | None = None
        self.error: str | None = None  # the child could not set itself up
        self.started = threading.Event()
        self.done = threading.Event()

    def __repr__(self) -> str:
        return f"WarmProcess(pid={self.pid}, returncode={self.returncode})"

    def wait(self) -> int:
        self.done.wait()
        assert self.returncode is not None
        return self.returncode

    def _end(self, code: int) -> None:
        self.returncode = code
        self.started.set()
        self.done.set()


class WarmParent:
    """One warm parent process and the runs forked from it."""

    def __init__(self, python: str, pre_imports: tuple[str, ...] = PRE_IMPORTS) -> None:
        self.python = python
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
        self.env["APIFY_MAGIC_WARM_PAD"] = "x" * ENVIRON_PAD_BYTES
        self.ready = threading.Event()
        self.usable = False
        self.dead = False
        self.error: str | None = None
        self.watched: list[str] = []
        self._stamps: tuple[tuple[int, int] | None, ...] = ()
        self._pending: dict[int, WarmProcess] = {}
        self._next_id = 0
        self._lock = threading.Lock()  # _pending, _next_id, dead
        self._write_lock = threading.Lock()
        self.proc = subprocess.Popen(
            [python, str(SCRIPT), *pre_imports], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, cwd="/", env=self.env, start_new_session=True)
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"apify-local-warm-{self.proc.pid}")
        self._reader.start()

    def __repr__(self) -> str:
        return f"WarmParent({self.python!r}, pid={self.proc.pid}, usable={self.usable})"

    def stale(self) -> bool:
        """Whether an install changed the libraries it imported (their folders changed)."""
        return self.ready.is_set() and _stamp(self.watched) != self._stamps

    def retire(self) -> None:
        """Take no more runs; it exits when the runs it has end (or at `close`)."""
        with self._lock:
            self.dead = True
        with contextlib.suppress(OSError, ValueError), self._write_lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"retire": true}\n')
            self.proc.stdin.flush()

    def accepts(self, env: dict[str, str]) -> bool:
        return _startup_vars(env) == _startup_vars(self.env)

    def fork(self, request: dict[str, Any]) -> WarmProcess | None:
        """Start a child; None when this parent cannot, or not yet (run cold); OSError when
        it failed the way a cold start would have (e.g. the Actor's folder is gone).

        Runs do not wait for a parent still importing: they start cold meanwhile, so no
        run is slower than a cold one (a plain Actor's cold start is 30 ms, the parent's
        imports take about a second).
        """
        if not self.ready.is_set():
            return None
        with self._lock:
            if self.dead or not self.usable:
                return None
            self._next_id += 1
            proc = WarmProcess(self._next_id)
            self._pending[proc.request_id] = proc
        line = (json.dumps({**request, "id": proc.request_id}) + "\n").encode()
        try:
            with self._write_lock:
                assert self.proc.stdin is not None
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
        except (OSError, ValueError):
            with self._lock:
                self._pending.pop(proc.request_id, None)
            return None
        if not proc.started.wait(FORK_TIMEOUT_SECS):
            self.kill()  # a parent that does not answer is of no use; its runs end with it
            proc.started.wait()
        if proc.error is not None:
            raise OSError(proc.error)
        return proc if proc.pid else None

    def _read_loop(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "ready" in message:
                self.watched = [str(f) for f in message.get("watch") or []]
                self._stamps = _stamp(self.watched)
                self.usable = message["ready"] is True
                self.error = message.get("error")
                self.ready.set()
                continue
            with self._lock:
                proc = self._pending.get(int(message["id"]))
                if proc is not None and "exit_code" in message:
                    del self._pending[proc.request_id]
            if proc is None:
                continue
            if "exit_code" in message:
                proc._end(int(message["exit_code"]))
            elif "error" in message:
                proc.error = str(message["error"])
                proc.started.set()
            else:
                proc.pid = int(message["pid"])
                proc.started.set()
        self.proc.stdout.close()
        self._ended()

    def _ended(self) -> None:
        """The parent is gone: its children can no longer be waited for, so they go too."""
        with self._lock:
            self.dead = True
            orphans = list(self._pending.values())
            self._pending.clear()
        if self.error is None and not self.usable:
            self.error = "the warm parent ended before it was ready"
        self.ready.set()
        for proc in orphans:
            if proc.pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc._end(-signal.SIGKILL)
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.proc.wait(5.0)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self, timeout: float = 3.0) -> None:
        """EOF on its stdin: it kills what it still runs and exits; killed if it does not."""
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            with self._write_lock:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        self._reader.join(timeout)


class WarmPool:
    """The warm parents of one runtime, one per interpreter, started on first use."""

    def __init__(self, pre_imports: tuple[str, ...] = PRE_IMPORTS) -> None:
        self.pre_imports = pre_imports
        self._parents: dict[str, WarmParent] = {}
        self._retired: list[WarmParent] = []
        self._refused: dict[str, str] = {}  # interpreter -> why it cannot run warm
        self._lock = threading.Lock()
        self._closed = False

    def spawn(self, argv: list[str], env: dict[str, str], cwd: Path,
              log: Path) -> WarmProcess | None:
        """The run's process forked warm, or None: start it cold."""
        target = warm_target(argv)
        if target is None:
            return None
        parent = self._parent(argv[0])
        if parent is None or not parent.accepts(env):
            return None
        return parent.fork({"env": env, "cwd": str(cwd), "log": str(log), **target})

    def _parent(self, python: str) -> WarmParent | None:
        with self._lock:
            if self._closed or python in self._refused:
                return None
            parent = self._parents.get(python)
            if parent is not None and parent.ready.is_set() and not parent.usable:
                # Its pre-import failed (or it died starting): this interpreter runs cold.
                self._refused[python] = parent.error or "the warm parent is not usable"
                del self._parents[python]
                return None
            if parent is not None and parent.usable and not parent.dead and parent.stale():
                parent.retire()
                self._retired.append(parent)
            self._retired = [p for p in self._retired if p.proc.poll() is None]
            if parent is None or parent.dead:
                try:
                    parent = WarmParent(python, self.pre_imports)
                except OSError as err:
                    self._refused[python] = str(err)
                    return None
                self._parents[python] = parent
            return parent

    def wait_ready(self, timeout: float) -> bool:
        """Wait until every warm parent started so far is ready (or known unusable)."""
        deadline = time.monotonic() + timeout
        return all(p.ready.wait(max(0.0, deadline - time.monotonic())) for p in self.parents())

    def parents(self) -> list[WarmParent]:
        with self._lock:
            return list(self._parents.values())

    def refused(self) -> dict[str, str]:
        with self._lock:
            return dict(self._refused)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            parents = [*self._parents.values(), *self._retired]
            self._parents.clear()
            self._retired.clear()
        for parent in parents:
            parent.close()
