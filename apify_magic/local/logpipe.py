"""A run's log as the platform writes it: each line prefixed with the time it came.

The platform's log lines start `2026-12-05T16:07:59.123Z ` (UTC, milliseconds); the
official clients' streamed logs split a log on exactly that prefix, so a log without it
gives their loggers nothing. An Actor's process writes into a FIFO; one thread per
process reads it and appends stamped lines to `log.txt`, flushed per read, so log reads
and streams see lines as they come.

The FIFO has a path, not just two fds, because a warm-started process is forked by
another process (`warm_parent.py`), which opens the log by path. The reader holds a write
end of its own until `close()`: a writer that opens the FIFO late never finds it ended.

A log is capped as the platform caps it (`MAX_LOG_BYTES`): whole lines up to the cap,
then one line saying the rest was dropped. The cap is the whole file's, across the
processes of one run (restarts, metamorphs) and the runtime's own lines; past it the pump
still reads the FIFO, so an Actor that keeps printing never blocks on a full pipe.
"""

from __future__ import annotations

import contextlib
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

READ_SIZE = 65536
# The platform's cap on a run's log: "Build/run maximum log size: 10,485,760 characters"
# (docs.apify.com, Actors > Limits); counted here in bytes of the log file.
MAX_LOG_BYTES = 10_485_760
# The last line of a log that reached the cap (after its stamp).
TRUNCATED = (b"...log truncated: the log reached its limit of 10,485,760 bytes, "
             b"the rest of the Actor's output is dropped...")
# A line that does not fit is left out whole, unless more than this would be lost (or it
# began in an earlier write): then it is cut at the cap, on a character's first byte.
CUT_SLACK = 4096
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
    with open(log_path, "ab+") as log:
        if not is_truncated(log):
            append_capped(log, line, ends_line=True)


def is_truncated(log: BinaryIO) -> bool:
    """Whether an open log (readable) already ends with the line that it was cut."""
    size = os.fstat(log.fileno()).st_size
    tail = len(TRUNCATED) + 1
    return size >= tail and os.pread(log.fileno(), tail, size - tail) == TRUNCATED + b"\n"


def append_capped(log: BinaryIO, text: bytes, ends_line: bool) -> bool:
    """Append stamped `text` to the log within `MAX_LOG_BYTES`; True when it did not all
    fit, and the log now ends with the `TRUNCATED` line. `ends_line`: whether the log so
    far ends with a whole line."""
    room = MAX_LOG_BYTES - os.fstat(log.fileno()).st_size
    # A line left open must still find room for its newline before the cap.
    if len(text) < room or (len(text) == room and text.endswith(b"\n")):
        log.write(text)
        return False
    cut = text.rfind(b"\n", 0, max(room, 0)) + 1  # whole lines that fit
    # A long line, or one begun before `text` (cut either way): keep what fits of it,
    # cut on a character's first byte.
    if room - cut > CUT_SLACK or (cut == 0 and not ends_line and room > 4):
        cut = room - 1
        for _ in range(3):
            if 0x80 <= text[cut] < 0xC0:
                cut -= 1
    head = text[:cut]
    if (head and not head.endswith(b"\n")) or (not head and not ends_line):
        head += b"\n"
    log.write(head + stamp() + TRUNCATED + b"\n")
    return True


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
            with open(self.log_path, "ab+") as log:
                # Another process of the run may have filled the log already.
                full = is_truncated(log)
                while chunk := os.read(self._read_fd, READ_SIZE):
                    if full:
                        continue  # drained, dropped: the Actor must not block on the pipe
                    text, ends_line = stamped(chunk, at_line_start)
                    full = append_capped(log, text, at_line_start)
                    at_line_start = ends_line
                    log.flush()
                if not at_line_start and not full:  # a last line with no newline: end it
                    append_capped(log, b"\n", False)
        except OSError:
            # The run's folder went away (deleted or pruned): nothing left to write to,
            # but the pipe is still drained, so its writers are never blocked.
            with contextlib.suppress(OSError):
                while os.read(self._read_fd, READ_SIZE):
                    pass
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
