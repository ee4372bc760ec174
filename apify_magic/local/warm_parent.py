"""A warm parent: one per Python interpreter, forks a fresh child for every Actor run.

Started by the runtime as `<interpreter> <path of this file>`, so it must import nothing
but the standard library (an Actor's own `.venv` may not have apify_magic) and run on any
Python 3.9+. It pre-imports the packages named by its arguments (`apify` and `crawlee`:
libraries only, never an Actor's own modules, so an edited Actor is seen on its next run),
then serves JSON lines:

    stdin   {"id": 1, "env": {...}, "cwd": "...", "log": "...", "module": "src"}
            ("path": "main.py" instead of "module" for a script)
            {"retire": true}: take no more requests, exit once every child has ended
    stdout  {"ready": true, "pid": 123, "watch": [dirs]} once, or {"ready": false,
            "error": "..."} and exit; `watch` are the folders of the pre-imported packages
            and the folders holding them (site-packages): when one changes, an install
            changed the libraries and the runtime retires this parent for a fresh one
            {"id": 1, "pid": 456} when the child runs (or {"id": 1, "error": "..."})
            {"id": 1, "pid": 456, "exit_code": 0} when it ended (negative: killed by a signal)

The parent has no threads and no event loop, so forking is safe; it waits on one pidfd per
child with poll() (no signal handlers that a child would inherit). A child starts its own
session (`setsid`, so the runtime watches and kills it as one group, exactly like a cold
run), takes the run's environment, folder and log, and runs the package as `python -m`
would. At EOF on stdin (the runtime stopped, or died) the parent kills its children's
sessions and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
from typing import Any

# `python path/warm_parent.py` puts this folder first on sys.path, where runtime modules
# such as `storage` or `inputs` would shadow an Actor's own.
del sys.path[0]

PRE_IMPORTS = tuple(sys.argv[1:]) or ("apify", "crawlee")
_STDIN, _STDOUT = 0, 1


def _send(message: dict[str, Any]) -> None:
    # Only this process writes here. A runtime that went away is noticed as EOF on stdin.
    with contextlib.suppress(OSError):
        os.write(_STDOUT, (json.dumps(message) + "\n").encode())


def _prepare() -> str | None:
    """Pre-import the libraries; a reason why this interpreter cannot run warm, or None."""
    if not hasattr(os, "pidfd_open") or not hasattr(os, "waitstatus_to_exitcode"):
        return "Python 3.9+ on Linux 5.3+ is needed"
    try:
        import ctypes  # noqa: F401  (used by children; imported here, once)
        import runpy  # noqa: F401

        for name in PRE_IMPORTS:
            __import__(name)
    except BaseException as err:  # an ImportError, or anything a broken install raises
        return f"{type(err).__name__}: {err}"
    import threading

    if threading.active_count() != 1:
        return "the pre-imports started threads: forking would not be safe"
    # Children then leave the pre-imported objects alone: fewer pages copied per run.
    import gc

    gc.collect()
    gc.freeze()
    return None


def main() -> None:
    problem = _prepare()
    if problem is not None:
        _send({"ready": False, "error": problem})
        return
    _send({"ready": True, "pid": os.getpid(), "version": sys.version.split()[0],
           "watch": _watched()})
    poller = select.poll()
    poller.register(_STDIN, select.POLLIN)
    children: dict[int, tuple[int, int]] = {}  # pidfd -> (pid, request id)
    spare: Spare | None = Spare.fork(poller)
    pending = b""
    retiring = False
    while not (retiring and not children):
        for fd, _ in poller.poll():
            if spare is not None and fd == spare.pidfd:  # killed while it waited
                spare.reap(poller)
                spare = Spare.fork(poller)
                continue
            if fd != _STDIN:
                pid, request_id = children.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                _send({"id": request_id, "pid": pid,
                       "exit_code": os.waitstatus_to_exitcode(status)})
                continue
            chunk = os.read(_STDIN, 65536)
            if not chunk:
                _stop(children, spare)
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                if request.get("retire"):
                    retiring = True
                    if spare is not None:
                        spare.reap(poller, kill=True)
                        spare = None
                elif not retiring:
                    assert spare is not None
                    spare.assign(request, children)
                    # The next run's child is forked now, while no run waits for it.
                    spare = Spare.fork(poller)


def _watched() -> list[str]:
    folders: set[str] = set()
    for name in PRE_IMPORTS:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            package = os.path.dirname(os.path.abspath(path))
            folders.update((package, os.path.dirname(package)))
    return sorted(folders)


class Spare:
    """A child forked ahead of its run, waiting for its request on a pipe of its own.

    Forking this parent (a few hundred MB of pre-imported libraries) takes milliseconds;
    done ahead, a run's start costs a pipe write and the child's own setup."""

    def __init__(self, pid: int, pidfd: int, request_w: int, ready_r: int) -> None:
        self.pid, self.pidfd, self.request_w, self.ready_r = pid, pidfd, request_w, ready_r

    @classmethod
    def fork(cls, poller: select.poll) -> Spare:
        request_r, request_w = os.pipe()
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(request_w)
            os.close(ready_r)
            _wait_for_request(request_r, ready_w)  # never returns
        os.close(request_r)
        os.close(ready_w)
        spare = cls(pid, os.pidfd_open(pid), request_w, ready_r)
        poller.register(spare.pidfd, select.POLLIN)
        return spare

    def assign(self, request: dict[str, Any], children: dict[int, tuple[int, int]]) -> None:
        """Hand the spare its run; answer with its pid (or its setup error)."""
        request_id = int(request["id"])
        with contextlib.suppress(OSError):  # a spare that died answers nothing below
            _write_all(self.request_w, json.dumps(request).encode())
        os.close(self.request_w)
        answer = b""
        while answer != b"ok":  # "ok" as soon as it is set up, or an error and EOF
            chunk = os.read(self.ready_r, 4096)
            if not chunk:
                break
            answer += chunk
        os.close(self.ready_r)
        children[self.pidfd] = (self.pid, request_id)  # its pidfd now tells its end
        if answer == b"ok":
            _send({"id": request_id, "pid": self.pid})
        else:
            _send({"id": request_id, "error": answer.decode("utf-8", "replace") or "no answer"})

    def reap(self, poller: select.poll, kill: bool = False) -> None:
        if kill:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        for fd in (self.request_w, self.ready_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        poller.unregister(self.pidfd)
        os.close(self.pidfd)
        with contextlib.suppress(OSError):
            os.waitpid(self.pid, 0)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _wait_for_request(request_r: int, ready_w: int) -> None:
    """The spare's life until its run: read the request to EOF (EOF alone: not needed)."""
    data = b""
    try:
        while chunk := os.read(request_r, 65536):
            data += chunk
    except BaseException:
        os._exit(1)
    if not data:  # the parent retired it, or went away
        os._exit(0)
    os.close(request_r)
    _child(json.loads(data), ready_w)


def _stop(children: dict[int, tuple[int, int]], spare: Spare | None) -> None:
    if spare is not None:
        with contextlib.suppress(OSError):
            os.kill(spare.pid, signal.SIGKILL)
            os.waitpid(spare.pid, 0)
    for pid, _ in children.values():
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    for pid, _ in children.values():
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)


# -- the child ---------------------------------------------------------------------------

def _child(request: dict[str, Any], ready_w: int) -> None:
    """Become the run's process: what `Popen(..., start_new_session=True)` and `-m` do."""
    try:
        os.setsid()
        env = {str(k): str(v) for k, v in request["env"].items()}
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(env)
        os.write(ready_w, b"ok")
    except BaseException as err:
        os.write(ready_w, f"{type(err).__name__}: {err}".encode())
        os._exit(1)
    # Only 0, 1 and 2 stay open, as with close_fds=True: the parent's pipes and pidfds go.
    _close_inherited_fds()
    _show_environment(env)
    _become_main(request, env)
    _run(request)


def _close_inherited_fds() -> None:
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd >= 3:
            with contextlib.suppress(OSError):
                os.close(fd)


def _show_environment(env: dict[str, str]) -> None:
    """Write the run's variables over this process's initial environment block.

    /proc/<pid>/environ shows the block the process was exec'd with, so a forked child
    would otherwise show the parent's: tools (and tests) that find a run's processes by
    ACTOR_RUN_ID would miss it. The parent started with padding there; after
    `os.environ.clear()` libc no longer points into that block, so it can be rewritten.
    """
    try:
        import ctypes

        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rfind(b")") + 2:].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end
        if not start or end <= start:
            return
        size = end - start
        entries = sorted((f"{k}={v}".encode() for k, v in env.items()),
                         key=lambda e: not e.startswith((b"ACTOR_", b"APIFY_", b"CRAWLEE_")))
        block = b""
        for entry in entries:
            if len(block) + len(entry) + 1 < size:
                block += entry + b"\0"
        block = block.ljust(size, b"\0")
        ctypes.memmove(start, block, size)
    except (OSError, ValueError, IndexError):
        pass


def _become_main(request: dict[str, Any], env: dict[str, str]) -> None:
    """sys.argv, sys.path and stdio as `PYTHONUNBUFFERED=1 python -m pkg` in cwd has them."""
    import io

    cwd = os.getcwd()
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
    first = cwd if "module" in request else os.path.dirname(os.path.join(cwd, request["path"]))
    sys.path[0:0] = [first, *extra]
    sys.argv = ["-m"] if "module" in request else [request["path"]]
    for fd, name in ((1, "stdout"), (2, "stderr")):
        old = getattr(sys, name)
        stream = io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding=old.encoding,
                                  errors=old.errors, write_through=True)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                             encoding=sys.stdin.encoding, errors=sys.stdin.errors)
    sys.stdin = stdin
    sys.__stdin__ = stdin  # type: ignore[misc]


def _run(request: dict[str, Any]) -> None:
    """Run the Actor, then end as the interpreter would, without its slow teardown."""
    import runpy

    code = 0
    interrupted = False
    try:
        if "module" in request:
            runpy.run_module(str(request["module"]), run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(str(request["path"]), run_name="__main__")
    except SystemExit as err:
        code = _exit_code(err.code)
    except BaseException as err:
        # What the interpreter prints for an uncaught exception, without this file's frames.
        tb = err.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        sys.excepthook(type(err), err.with_traceback(tb), tb)
        code, interrupted = 1, isinstance(err, KeyboardInterrupt)
    _finish(code, interrupted)


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    with contextlib.suppress(Exception):
        print(value, file=sys.stderr)
    return 1


def _finish(code: int, interrupted: bool) -> None:
    """Py_Finalize's visible part: join threads, atexit, flush; then `_exit`.

    Tearing down every module of apify and crawlee takes a forked child about 0.2 s
    (the collector touches, and so copies, every page it shares with the parent).
    """
    import atexit
    import threading

    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        with contextlib.suppress(BaseException):
            shutdown()
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    if interrupted:  # like the interpreter: die of SIGINT, so the exit status says so
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


if __name__ == "__main__":
    main()
