"""The process table as the runtime sees it: which processes are whose run, and their memory.

A run's process starts its own session, so most of what it starts shares the session id.
A process can leave it (`setsid`, a double fork, a daemon), but it keeps the environment
it was started with, and every run process gets `ACTOR_RUN_ID` and the runtime's marker
`APIFY_MAGIC_RUNTIME=<pid>:<start time>:<n>/<k>` (the runtime's process, as the kernel
counts its start, which runtime of that process, and which of the run's processes: a
restarted, rebooted or metamorphed run starts again under the same id). So a run's
processes are those in its session, and those whose environment names the run and this
runtime. Environments are
read once per process (a pid and its start time), not at every scan.

The marker also finds what a dead runtime left behind (`kill_orphans`, at the next start)
and what a runtime killed at once leaves (the reaper, `reaper.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
from collections.abc import Iterable, Iterator

MARKER = "APIFY_MAGIC_RUNTIME"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_numbers = itertools.count(1)


@dataclasses.dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    sid: int
    start: int  # clock ticks after boot: with the pid, names one process for good
    rss_bytes: int
    zombie: bool


def _start_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rfind(b")") + 2:].split()[19])


def process_id(pid: int | None = None) -> str:
    """`<pid>:<start time>` of a process (this one by default): unique while the machine runs."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_of(pid)}"


def new_marker() -> str:
    """A runtime's marker value: this process, and which of its runtimes."""
    return f"{process_id()}:{next(_numbers)}"


def scan() -> Iterator[Proc]:
    """Every process now, from /proc/<pid>/stat."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
            # After the command: state ppid pgrp session ... starttime is the 22nd field
            # overall, rss the 24th.
            fields = stat[stat.rfind(b")") + 2:].split()
            yield Proc(int(entry.name), int(fields[1]), int(fields[3]), int(fields[19]),
                       int(fields[21]) * PAGE_SIZE, fields[0] == b"Z")
        except (OSError, ValueError, IndexError):
            continue


def environment_marks(pid: int) -> tuple[str | None, str | None]:
    """(the runtime marker, ACTOR_RUN_ID) from a process's environment, when readable."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return None, None
    marker = run_id = None
    for entry in data.split(b"\0"):
        if entry.startswith(b"APIFY_MAGIC_RUNTIME="):
            marker = entry[20:].decode("ascii", "replace")
        elif entry.startswith(b"ACTOR_RUN_ID="):
            run_id = entry[13:].decode("ascii", "replace")
    return marker, run_id


# A run's process: the run's id and which of its processes (0 first, then each restart).
Spawn = tuple[str, int]


class Table:
    """The processes of one runtime's runs, with what is known of each process kept."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self._runs_of: dict[tuple[int, int], Spawn | None] = {}  # (pid, start) -> spawn

    def members(self, sessions: dict[int, Spawn], wanted: Iterable[Spawn]
                ) -> dict[Spawn, list[Proc]]:
        """The live processes of each of `wanted`: those in its session (`sessions`: session
        id -> spawn), and those outside it whose environment names it and this runtime."""
        wanted = set(wanted)
        found: dict[Spawn, list[Proc]] = {}
        seen: set[tuple[int, int]] = set()
        for proc in scan():
            if proc.zombie:
                continue
            spawn = sessions.get(proc.sid)
            if spawn is None:
                key = (proc.pid, proc.start)
                seen.add(key)
                if key not in self._runs_of:
                    self._runs_of[key] = self._spawn_of(proc.pid)
                spawn = self._runs_of[key]
            if spawn is None or spawn not in wanted:
                continue
            found.setdefault(spawn, []).append(proc)
        # Forget processes that ended, so the cache stays the size of the process table.
        for key in [k for k in self._runs_of if k not in seen]:
            del self._runs_of[key]
        return found

    def _spawn_of(self, pid: int) -> Spawn | None:
        marker, run_id = environment_marks(pid)
        if marker is None or run_id is None:
            return None
        ours, _, number = marker.partition("/")
        return (run_id, int(number)) if ours == self.marker and number.isdigit() else None


def pss_bytes(pid: int) -> int | None:
    """A process's proportional set size: a page shared by N processes counts 1/N.

    As one physical page is counted once by the platform's containers; plain resident
    size would charge a warm run for every library page it shares with its warm parent.
    """
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_of(procs: Iterable[Proc]) -> int:
    total = 0
    for proc in procs:
        used = pss_bytes(proc.pid)
        total += proc.rss_bytes if used is None else used
    return total


def kill(procs: Iterable[Proc]) -> None:
    for proc in procs:
        # A pid can be reused between the scan and the kill: check it is still that one.
        if _start_of(proc.pid) == proc.start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGKILL)


def marked(prefix: str) -> list[Proc]:
    """Live processes whose runtime marker starts with `prefix`."""
    out = []
    for proc in scan():
        if proc.zombie or proc.pid == os.getpid():
            continue
        marker, _ = environment_marks(proc.pid)
        if marker is not None and marker.startswith(prefix):
            out.append(proc)
    return out


def kill_orphans() -> int:
    """Kill run processes of runtimes whose process is gone; how many there were.

    A runtime killed at once (SIGKILL, the OOM killer) cannot end its runs; its reaper
    does, and this is for when the reaper could not (it was killed too)."""
    doomed = []
    alive: dict[str, bool] = {}
    for proc in marked(""):
        marker, _ = environment_marks(proc.pid)
        if marker is None or marker.count(":") < 2:
            continue
        owner = marker.partition("/")[0].rsplit(":", 1)[0]
        if owner not in alive:
            pid = owner.split(":", 1)[0]
            alive[owner] = pid.isdigit() and process_id(int(pid)) == owner
        if not alive[owner]:
            doomed.append(proc)
    kill(doomed)
    return len(doomed)
