"""One runtime inside the current process, started on first use: the magic's offline default.

It serves on 127.0.0.1 at a free port, runs Actors from `./actors` (the folder of the
working directory when it starts; created later is fine) and the examples shipped in
this package, and keeps its runs in a fresh temporary folder that is deleted when it
stops. It stops at interpreter exit (atexit) and on SIGTERM when nothing else handles
SIGTERM, killing every Actor process it started. Python Actors start warm (forked from a
parent that has imported `apify`) unless `APIFY_MAGIC_WARM_STARTS=0`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType

from apify_magic.local.registry import SHIPPED_ACTORS
from apify_magic.local.server import LocalRuntime
from apify_magic.local.storage import remove_tree

_lock = threading.Lock()
_runtime: LocalRuntime | None = None
_atexit_registered = False


def actor_dirs() -> list[Path]:
    return [Path.cwd().resolve() / "actors", SHIPPED_ACTORS]


def warm_starts_enabled() -> bool:
    """Warm starts unless `APIFY_MAGIC_WARM_STARTS` is `0` (or `false`, `no`, `off`)."""
    value = os.environ.get("APIFY_MAGIC_WARM_STARTS", "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def ensure_started() -> str:
    """Start the runtime unless it runs already; return its base URL (no `/v2`)."""
    global _runtime, _atexit_registered
    with _lock:
        if _runtime is None:
            data_dir = Path(tempfile.mkdtemp(prefix="apify-magic-local-"))
            try:
                _runtime = LocalRuntime(actor_dirs(), data_dir=data_dir,
                                        warm_starts=warm_starts_enabled()).start()
            except BaseException:
                remove_tree(data_dir)
                raise
            if not _atexit_registered:
                atexit.register(stop)
                _install_sigterm_handler()
                _atexit_registered = True
        return _runtime.url


def stop() -> None:
    """Stop the runtime (if started), kill its Actor processes and delete its runs."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.stop()
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
