"""One runtime inside the current process, started on first use: the magic's offline default.

It serves on 127.0.0.1 at a free port, runs Actors from `./actors` (the folder of the
working directory when it starts; created later is fine) and the examples shipped in
this package. Its runs are kept where a restarted kernel finds them (`datadir.py`): a
folder of its own under `APIFY_MAGIC_DATA_DIR` (else `$XDG_DATA_HOME/apify-magic`, else
`~/.local/share/apify-magic`), taken over by the next runtime once this one has gone, so
`%apify_attach RUN_ID` reads a finished run's results after a restart; runs that finished
more than `APIFY_MAGIC_RETENTION_DAYS` (7) days ago are deleted at start, the newest ten
excepted. Where that base folder cannot be used, runs go to a temporary folder deleted at
stop, as they all did before.

It stops at interpreter exit (atexit) and on SIGTERM when nothing else handles SIGTERM,
killing every Actor process it started; its data stays. Python Actors start warm (forked
from a parent that has imported `apify`) unless `APIFY_MAGIC_WARM_STARTS=0`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from apify_magic.local import datadir
from apify_magic.local.registry import SHIPPED_ACTORS
from apify_magic.local.server import LocalRuntime
from apify_magic.local.storage import remove_tree

_lock = threading.Lock()
_runtime: LocalRuntime | None = None
_claim: datadir.Claim | None = None  # None: a temporary data dir, deleted at stop
_atexit_registered = False


def actor_dirs() -> list[Path]:
    return [Path.cwd().resolve() / "actors", SHIPPED_ACTORS]


def warm_starts_enabled() -> bool:
    """Warm starts unless `APIFY_MAGIC_WARM_STARTS` is `0` (or `false`, `no`, `off`)."""
    value = os.environ.get("APIFY_MAGIC_WARM_STARTS", "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def ensure_started() -> str:
    """Start the runtime unless it runs already; return its base URL (no `/v2`)."""
    global _runtime, _claim, _atexit_registered
    with _lock:
        if _runtime is None:
            settings = datadir.Settings.from_env()  # a bad setting is an error, not a default
            claim = _claim_data_dir(settings)
            data_dir = claim.path if claim is not None else Path(
                tempfile.mkdtemp(prefix="apify-magic-local-"))
            try:
                _runtime = LocalRuntime(actor_dirs(), data_dir=data_dir,
                                        keep_runs=settings.keep_runs,
                                        warm_starts=warm_starts_enabled()).start()
            except BaseException:
                if claim is not None:
                    claim.release()
                else:
                    remove_tree(data_dir)
                raise
            _claim = claim
            if not _atexit_registered:
                atexit.register(stop)
                _install_sigterm_handler()
                _atexit_registered = True
        return _runtime.url


def _claim_data_dir(settings: datadir.Settings) -> datadir.Claim | None:
    try:
        return datadir.claim(settings.base, retention_days=settings.retention_days)
    except OSError as err:
        # A read-only home, say: the magic still works, its runs just end with the kernel.
        print(f"apify-magic: the local runtime cannot keep its runs in {settings.base} "
              f"({err}); they are kept until the kernel stops. Set APIFY_MAGIC_DATA_DIR "
              "to a writable folder to keep them.", file=sys.stderr)
        return None


def data_dir() -> Path | None:
    """The running runtime's data dir, or None when it is not running."""
    runtime = _runtime
    return runtime.data_dir if runtime is not None else None


def stop() -> None:
    """Stop the runtime (if started) and kill its Actor processes. Its runs stay for the
    next runtime (unless they were in a temporary folder: that is deleted)."""
    global _runtime, _claim
    with _lock:
        runtime, _runtime = _runtime, None
        claim, _claim = _claim, None
    if runtime is not None:
        runtime.stop()
        if claim is not None:
            claim.release()  # only once its runs have ended and been saved
        else:
            remove_tree(runtime.data_dir)


def _install_sigterm_handler() -> None:
    # Actor processes live in their own sessions, so a kernel killed by SIGTERM would
    # leave them running; only take SIGTERM over when nobody else has.
    with contextlib.suppress(ValueError):  # not the main thread
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    stop()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
