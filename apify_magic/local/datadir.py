"""Where the embedded runtime keeps its runs: a folder of its own under a base folder that
outlives the kernel, taken over by a later runtime once its owner has gone.

    <base>/                    APIFY_MAGIC_DATA_DIR, else $XDG_DATA_HOME/apify-magic,
                               else ~/.local/share/apify-magic
        claim.lock             held (flock) for the moment a runtime claims its folder
        runtimes/<id>/         one runtime's data dir: runs/, storages, records.sqlite3 ...
            owner.lock         held (flock) by the runtime that owns the folder while it runs
            owner.json         that runtime's process: pid, start time, boot id, host, cwd

One folder per runtime because every kernel has a runtime of its own: a runtime takes the
runs it finds at start that had not ended for cut off, and its named storages, request
queues, tasks and webhooks (SQLite files and folders) are kept apart from other processes
by locks inside the process only. So a folder is written by one runtime at a time.

Claiming, at start: a folder whose `owner.lock` can be taken has no live owner (the kernel
ended, however: the lock goes with the process, even one killed by SIGKILL); one that
cannot be taken is another live kernel's and is never touched. The new runtime takes over
one dead folder whole, so named storages, tasks and webhooks carry over with the runs (the
one last used by the same notebook session, else from the same working folder, else the
newest), and moves the runs of the other dead folders into it; their other storages stay
for a later runtime to take over, and a dead folder left with nothing is deleted. Runs
that had not ended read as the platform's runs that were stopped: ABORTED, with a status
message that says why; any of their processes still going is killed.

Retention: runs that finished more than `APIFY_MAGIC_RETENTION_DAYS` (default 7) days ago
are deleted at start, except the newest ten, as the platform deletes runs beyond the
latest ten after its retention period; the runner also keeps at most
`APIFY_MAGIC_KEEP_RUNS` (default 1000) finished runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import math
import os
import secrets
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from apify_magic.errors import OptionError
from apify_magic.local.logpipe import append_line
from apify_magic.local.runner import TERMINAL, iso, parse_iso
from apify_magic.local.storage import RunFolder, remove_tree

DEFAULT_RETENTION_DAYS = 7.0
DEFAULT_KEEP_RUNS = 1000
KEEP_NEWEST = 10  # the platform keeps the latest ten runs beyond its retention period
CLAIM_WAIT_SECS = 30.0
CUT_OFF_MESSAGE = ("The run was aborted: the kernel whose local runtime ran it stopped "
                   "before the run ended")
_CLAIM_LOCK = "claim.lock"
_OWNER_LOCK = "owner.lock"
_OWNER_FILE = "owner.json"
_SESSION_VAR = "JPY_SESSION_NAME"  # the notebook's path, in kernels Jupyter Server starts


@dataclasses.dataclass(frozen=True)
class Settings:
    """The embedded runtime's storage settings, from the environment."""

    base: Path
    retention_days: float = DEFAULT_RETENTION_DAYS
    keep_runs: int = DEFAULT_KEEP_RUNS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        return cls(base_dir(environ),
                   _number(environ, "APIFY_MAGIC_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 0),
                   int(_number(environ, "APIFY_MAGIC_KEEP_RUNS", DEFAULT_KEEP_RUNS, 1,
                               whole=True)))


def base_dir(environ: Mapping[str, str] | None = None) -> Path:
    """APIFY_MAGIC_DATA_DIR, else $XDG_DATA_HOME/apify-magic, else ~/.local/share/..."""
    environ = os.environ if environ is None else environ
    given = environ.get("APIFY_MAGIC_DATA_DIR", "").strip()
    if given:
        return Path(given).expanduser().absolute()
    data_home = environ.get("XDG_DATA_HOME", "").strip()
    # The XDG spec: a relative XDG_DATA_HOME is invalid and is ignored.
    if not data_home or not os.path.isabs(data_home):
        data_home = str(Path.home() / ".local" / "share")
    return Path(data_home) / "apify-magic"


def _number(environ: Mapping[str, str], name: str, default: float, least: float,
            whole: bool = False) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = math.nan
    if not value >= least:  # also NaN
        kind = "a whole number" if whole else "a number"
        raise OptionError(f"{name}={raw!r} is not valid: give {kind} of at least {least:g}")
    return value


def retention_note(environ: Mapping[str, str] | None = None) -> str:
    """What a hint says of the runs the embedded runtime keeps."""
    try:
        days = Settings.from_env(environ).retention_days
    except OptionError:
        days = DEFAULT_RETENTION_DAYS
    return (f"the embedded runtime keeps finished runs across kernel restarts for {days:g} "
            "days (APIFY_MAGIC_RETENTION_DAYS; the newest ten always), but a run of another "
            "kernel that is still running is only in that kernel's runtime")


@dataclasses.dataclass
class Claim:
    """A runtime's own data dir, held until `release`; what claiming it did."""

    path: Path
    _fd: int | None
    adopted: list[str] = dataclasses.field(default_factory=list)  # run ids moved in
    cut_off: list[str] = dataclasses.field(default_factory=list)  # marked ABORTED
    deleted: list[str] = dataclasses.field(default_factory=list)  # past retention

    def release(self) -> None:
        """Let the folder go (its data stays): a later runtime may take it over."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def claim(base: Path, *, retention_days: float = DEFAULT_RETENTION_DAYS,
          keep_newest: int = KEEP_NEWEST, now: datetime | None = None) -> Claim:
    """A data dir for a new runtime under `base`: a dead runtime's taken over, or a new one.

    Raises OSError when `base` cannot be used (not writable, or claim.lock stays taken)."""
    runtimes = base / "runtimes"
    runtimes.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _claim_lock(base):
        dead = [found for folder in sorted(runtimes.iterdir())
                if not folder.name.startswith(".") and folder.is_dir()
                and (found := _take_if_dead(folder)) is not None]
        dead.sort(key=lambda found: _preference(found[1]))
        try:
            if dead:
                path, fd = dead[0][0], dead[0][2]
            else:
                path, fd = _new_folder(runtimes)
            result = Claim(path, fd)
            try:
                _write_owner(path)
                runs = path / "runs"
                runs.mkdir(exist_ok=True)
                for folder, _, _ in dead[1:]:
                    result.adopted += _move_runs(folder / "runs", runs)
                    if _holds_nothing(folder):
                        remove_tree(folder)
                unended, ended = _survey(runs)
                ended += _end_cut_off_runs(runs, unended, now)
                result.cut_off = sorted(unended)
            except BaseException:
                result.release()
                raise
        finally:
            for _, _, other_fd in dead[1:]:
                os.close(other_fd)
    # Our own folder now: deleting old runs need not keep other runtimes waiting.
    result.deleted = apply_retention(runs, ended, retention_days, keep_newest, now)
    return result


@contextlib.contextmanager
def _claim_lock(base: Path) -> Iterator[None]:
    fd = os.open(base / _CLAIM_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + CLAIM_WAIT_SECS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OSError(errno.ETIMEDOUT,
                                  f"{base / _CLAIM_LOCK} stayed locked") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # and with it the lock


def _lock_file(folder: Path) -> int:
    return os.open(folder / _OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _take_if_dead(folder: Path) -> tuple[Path, dict[str, Any], int] | None:
    """(folder, its owner, the fd holding its lock) when nobody runs it; else None."""
    try:
        fd = _lock_file(folder)
    except OSError:
        return None  # not ours to take (permissions), or gone
    owner = _read_owner(folder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)  # its owner runs
        return None
    except OSError:
        # No flock on this file system (ENOLCK): tell by the owner's process instead.
        if owner_alive(owner):
            os.close(fd)
            return None
    return folder, owner, fd


def _new_folder(runtimes: Path) -> tuple[Path, int]:
    path = runtimes / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    path.mkdir(mode=0o700)
    fd = _lock_file(path)
    with contextlib.suppress(OSError):  # no flock here: the owner file says who owns it
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return path, fd


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """A process as owner.json names it: a reused pid has another start time, a reboot
    another boot id, so neither is taken for the owner."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "startTicks": _start_ticks(pid), "bootId": _boot_id(),
            "host": socket.gethostname()}


def _start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        # After "(comm) ": state is field 3 overall, starttime field 22.
        return int(stat[stat.rfind(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def owner_alive(owner: Mapping[str, Any]) -> bool:
    """Whether the process owner.json names still runs; True when it cannot be told."""
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False  # no owner was ever written: a claim that did not finish
    if owner.get("host") != socket.gethostname():
        return True  # another machine (or container) sharing the folder: leave it alone
    if owner.get("bootId") and _boot_id() and owner.get("bootId") != _boot_id():
        return False
    ticks = _start_ticks(pid)
    return ticks is not None and ticks == owner.get("startTicks")


def _read_owner(folder: Path) -> dict[str, Any]:
    try:
        owner = json.loads((folder / _OWNER_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _write_owner(folder: Path) -> None:
    owner = {**process_identity(), "startedAt": iso(datetime.now(timezone.utc)),
             "cwd": os.getcwd(), "session": os.environ.get(_SESSION_VAR)}
    tmp = folder / f".{_OWNER_FILE}.tmp"
    tmp.write_text(json.dumps(owner))
    os.replace(tmp, folder / _OWNER_FILE)


def _preference(owner: Mapping[str, Any]) -> tuple[int, int, float]:
    """Sort key, best first: the same notebook session, the same folder, the newest."""
    session = os.environ.get(_SESSION_VAR)
    started = parse_iso(owner.get("startedAt"))
    return (0 if session and owner.get("session") == session else 1,
            0 if owner.get("cwd") == os.getcwd() else 1,
            -(started.timestamp() if started else 0.0))


def _move_runs(source: Path, target: Path) -> list[str]:
    moved = []
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(source.iterdir()):
            destination = target / entry.name
            if entry.is_dir() and not destination.exists():
                with contextlib.suppress(OSError):
                    os.rename(entry, destination)
                    moved.append(entry.name)
    return moved


def _holds_nothing(folder: Path) -> bool:
    """Whether a dead runtime's folder has nothing left: no runs, no storages' files, and
    no row in any table of its SQLite files (named storages, queues, tasks, webhooks)."""
    for entry in folder.iterdir():
        if entry.name in (_OWNER_LOCK, _OWNER_FILE) or entry.name.endswith(
                ("-wal", "-shm", "-journal")):
            continue
        if entry.is_dir():
            if any(entry.iterdir()):
                return False
        elif entry.suffix in (".db", ".sqlite3"):
            if not _empty_database(entry):
                return False
        else:
            return False
    return True


def _empty_database(path: Path) -> bool:
    try:
        db = sqlite3.connect(path)  # the folder's lock is ours: nobody else has it open
        try:
            tables = [row[0] for row in db.execute(
                "select name from sqlite_master where type = 'table' and name not like "
                "'sqlite%'")]
            return not any(db.execute(f'select 1 from "{table}" limit 1').fetchone()
                           for table in tables)
        finally:
            db.close()
    except sqlite3.Error:
        return False


def _survey(runs: Path) -> tuple[dict[str, dict[str, Any]], list[tuple[datetime, str]]]:
    """One look at every run folder: the runs that had not ended (id -> run.json), and
    when each of the others ended (a folder without a readable run.json: its own time)."""
    unended: dict[str, dict[str, Any]] = {}
    ended: list[tuple[datetime, str]] = []
    with os.scandir(runs) as entries:
        for entry in entries:
            if not entry.is_dir():
                continue
            data = _read_run(os.path.join(entry.path, "run.json"))
            if data is None:
                ended.append((_utc(_mtime(entry.path)), entry.name))
            elif data.get("status") not in TERMINAL:
                unended[entry.name] = data
            else:
                moment = _when(data.get("finishedAt")) or _when(data.get("startedAt"))
                ended.append((moment or _utc(_mtime(entry.path)), entry.name))
    return unended, ended


def _end_cut_off_runs(runs: Path, unended: dict[str, dict[str, Any]],
                      now: datetime | None) -> list[tuple[datetime, str]]:
    """Runs of a runtime gone while they ran: ABORTED, as the platform says of a run that
    was stopped, and any process of theirs still going is killed (the reaper of the
    runtime that died should have done it). When each ended: when it was killed, else its
    last sign of life (its log's last line, or its run.json)."""
    killed = kill_run_processes(set(unended)) if unended else set()
    ended = []
    for run_id, data in sorted(unended.items()):
        folder = RunFolder(runs / run_id)
        started = _when(data.get("startedAt"))
        if run_id in killed:
            end = now or datetime.now(timezone.utc)
        else:
            end = _utc(max(_mtime(folder.log_path), _mtime(folder.run_path)))
        if started is not None:
            end = max(end, started)
        stats = dict(data.get("stats") or {})
        if started is not None:
            duration = (end - started).total_seconds()
            stats.update(durationMillis=int(duration * 1000), runTimeSecs=round(duration, 3))
        stats["memCurrentBytes"] = 0
        data.update(status="ABORTED", finishedAt=iso(end), statusMessage=CUT_OFF_MESSAGE,
                    isStatusMessageTerminal=True, stats=stats)
        with contextlib.suppress(OSError):
            for pipe in folder.root.glob(".*.pipe"):  # the FIFOs its log came through
                pipe.unlink()
            append_line(folder.log_path, f"[apify-magic-local] {CUT_OFF_MESSAGE}")
            folder.save_run(data)
        ended.append((end, run_id))
    return ended


def kill_run_processes(run_ids: set[str]) -> set[str]:
    """SIGKILL every process of this user whose environment has `ACTOR_RUN_ID` of one of
    `run_ids` (the runtime gives it to each run's process, and children inherit it);
    the ids of the runs that had one."""
    needles = {f"ACTOR_RUN_ID={run_id}".encode(): run_id for run_id in run_ids}
    killed: set[str] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue  # gone, or not this user's
        found = next((needles[v] for v in environ if v in needles), None)
        if found is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.add(found)
    return killed


def apply_retention(runs: Path, ended: list[tuple[datetime, str]], days: float,
                    keep_newest: int = KEEP_NEWEST, now: datetime | None = None
                    ) -> list[str]:
    """Delete the runs that ended more than `days` ago, except the newest `keep_newest`."""
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    deleted = []
    for moment, run_id in sorted(ended, reverse=True)[keep_newest:]:
        if moment < cutoff:
            remove_tree(runs / run_id)
            deleted.append(run_id)
    return sorted(deleted)


def _read_run(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _mtime(path: str | Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _when(value: Any) -> datetime | None:
    """A run.json time; one without a zone (hand-edited, say) is taken as UTC."""
    moment = parse_iso(value)
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)
