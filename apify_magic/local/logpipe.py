"""A run's log as the platform writes it: each line prefixed with the time it came.

The platform's log lines start `2026-12-05T16:07:59.123Z ` (UTC, milliseconds); the
official clients' streamed logs split a log on exactly that prefix, so a log without it
gives their loggers nothing. An Actor's process writes into a FIFO; one thread per
process reads it and appends stamped lines to `log.txt`, flushed per read, so log reads
and streams see lines as they come.

The FIFO has a path, not just two fds, because a warm-started process is forked by
another process (`warm_parent.py`), which opens the log by path. The reader holds a write
end of its own until `close()`: a writer that opens the FIFO late never finds it ended.
"""

from __future__ import annotations

import contextlib
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

READ_SIZE = 65536
# How long close() waits for the rest of the log: a process that escaped its session
# (setsid) can keep the FIFO open after its run ended; its lines still come, but late.
DRAIN_SECS = 3.0


def stamp(when: datetime | None = None) -> bytes:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ ` for now (or `when`), UTC."""
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z ".encode()


def stamped(text: bytes, at_line_start: bool = True) -> tuple[bytes, bool]:
    """`text` with a stamp before each line that starts in it, and whether it ends a line."""
    if not text:
        return text, at_line_start
    prefix = stamp()
    lines = text.split(b"\n")
    out = bytearray()
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:  # text ended with a newline: nothing starts after it
            break
        if at_line_start or i > 0:
            out += prefix
        out += line
        if not last:
            out += b"\n"
    return bytes(out), text.endswith(b"\n")


def append_line(log_path: Path, text: str) -> None:
    """The runtime's own line in a run's log (a restart, say), stamped like the Actor's."""
    line, _ = stamped(text.encode() + b"\n")
    with open(log_path, "ab") as log:
        log.write(line)


class LogPipe:
    """One process's stdout and stderr, stamped line by line into the run's log."""

    def __init__(self, log_path: Path, name: str) -> None:
        self.log_path = log_path
        self.path = log_path.with_name(f".{name}.pipe")
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.mkfifo(self.path, 0o600)
        # Non-blocking so the open does not wait for a writer; our own write end makes
        # the reader's EOF mean "every writer closed, and close() was called".
        self._read_fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self.write_fd = os.open(self.path, os.O_WRONLY)
        os.set_blocking(self._read_fd, True)
        self._thread = threading.Thread(target=self._pump, name=f"apify-local-log-{name}",
                                        daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        at_line_start = True
        try:
            with open(self.log_path, "ab") as log:
                while chunk := os.read(self._read_fd, READ_SIZE):
                    text, at_line_start = stamped(chunk, at_line_start)
                    log.write(text)
                    log.flush()
                if not at_line_start:  # the last line had no newline: end it, as a log does
                    log.write(b"\n")
        except OSError:
            pass  # the run's folder went away (deleted or pruned): nothing left to write to
        finally:
            os.close(self._read_fd)

    def close(self, timeout: float = DRAIN_SECS) -> None:
        """Once the process has ended: let the pump write what is left, then tidy up."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1
        self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self.path.unlink()
