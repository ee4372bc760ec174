"""The reaper: ends a process's Actor runs when that process dies, however it dies.

A runtime's process (a notebook kernel, `python -m apify_magic.local`) kills its runs when
it stops. Killed at once (SIGKILL, the OOM killer, a kernel restart that does not wait),
it cannot: its Actors run in sessions of their own and would go on with no one to time
them out. So the first runtime of a process starts this script beside it, in a session of
its own (so a signal to the kernel's process group does not reach it):

    <python> -I -S reaper.py <pid>:<start time>

It reads its stdin, a pipe whose only writer is that process, and never gets a byte: the
end of the pipe is the end of the process. It then kills every process whose environment
carries `APIFY_MAGIC_RUNTIME=<pid>:<start time>:...` (every run process does), again
until none is left, and exits. Standard library only; it imports nothing of apify_magic.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

SCRIPT = Path(__file__)
_ROUNDS = 5  # a process forked while the last round ran is found by the next one

_lock = threading.Lock()
_started: dict[int, tuple[int, int]] = {}  # this process's pid -> (the reaper's pid, pipe)


def ensure_started(owner: str) -> None:
    """Start this process's reaper unless it runs already (`owner`: `procs.process_id()`).

    With `posix_spawn`, not `subprocess.Popen`: a Popen object of a child that is meant to
    outlive every object here warns at interpreter exit that it is still running."""
    with _lock:
        found = _started.get(os.getpid())
        if found is not None:
            try:
                ended, _ = os.waitpid(found[0], os.WNOHANG)
            except ChildProcessError:
                ended = found[0]
            if not ended:
                return
            os.close(found[1])
        # The pipe's write end stays here and is not inheritable (Python's default), so
        # no child holds it open: EOF comes exactly when this process is gone.
        read_end, write_end = os.pipe()
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            pid = os.posix_spawn(
                sys.executable, [sys.executable, "-I", "-S", str(SCRIPT), owner], os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0),
                              (os.POSIX_SPAWN_DUP2, devnull, 1),
                              (os.POSIX_SPAWN_DUP2, devnull, 2)],
                setsid=True)
        except OSError:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
            os.close(devnull)
        _started[os.getpid()] = (pid, write_end)


def _marked(prefix: bytes) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if any(e.startswith(prefix) for e in f.read().split(b"\0")):
                    pids.append(int(name))
        except OSError:
            continue
    return pids


def _main(owner: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the runtime
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    prefix = f"APIFY_MAGIC_RUNTIME={owner}:".encode()
    for _ in range(_ROUNDS):
        pids = _marked(prefix)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    _main(sys.argv[1])
