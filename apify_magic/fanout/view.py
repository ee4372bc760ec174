"""How a map shows its progress: one line, updated in place (a display in a kernel),
plain lines at most every few seconds (a terminal), or nothing."""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from apify_magic.fanout.scheduler import Row, Snapshot

TABLE_ROWS = 50  # rows of the per-run table in the expanded view


def line(actor_id: str, s: Snapshot) -> str:
    done = s.succeeded + s.failed
    eta = ""
    if 0 < done < s.total:
        eta = f" · ETA {s.elapsed / done * (s.total - done):.0f} s"
    return (f"apify_map {actor_id}: {s.total} inputs · {s.succeeded} succeeded · "
            f"{s.running} running · {s.queued} queued · {s.failed} failed · "
            f"{s.elapsed:.0f} s{eta} · ${s.usd:.4f} · concurrency {s.concurrency}")


class MapProgress(Protocol):
    def update(self, snapshot: Snapshot, rows: list[Row]) -> None: ...

    def finished(self, snapshot: Snapshot, rows: list[Row]) -> None: ...


class NoMapProgress:
    def update(self, snapshot: Snapshot, rows: list[Row]) -> None:
        pass

    def finished(self, snapshot: Snapshot, rows: list[Row]) -> None:
        pass


class TextMapProgress(NoMapProgress):
    """A line at most every `every_secs`, and the last one."""

    def __init__(self, actor_id: str, every_secs: float = 5.0,
                 write: Callable[[str], Any] | None = None) -> None:
        self.actor_id = actor_id
        self.every_secs = every_secs
        self._write = write or (lambda text: print(text, file=sys.stderr, flush=True))
        self._next = time.monotonic() + every_secs

    def update(self, snapshot: Snapshot, rows: list[Row]) -> None:
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every_secs
            self._write(line(self.actor_id, snapshot))

    def finished(self, snapshot: Snapshot, rows: list[Row]) -> None:
        self._write(line(self.actor_id, snapshot))


class DisplayMapProgress(NoMapProgress):
    """One output updated in place: the line, and under a disclosure the runs (failed
    and running first), each with its run id or, on the platform, a link to it."""

    def __init__(self, actor_id: str, run_link: Callable[[str], str | None],
                 every_secs: float = 0.5) -> None:
        from IPython.display import display

        self.actor_id = actor_id
        self.run_link = run_link
        self.every_secs = every_secs
        self._next = 0.0
        # The live line is an update of an empty output, and the final line a new output:
        # nbval compares what a kernel sends and ignores updates, so a saved notebook
        # keeps exactly the final line.
        self._display = display
        self._handle = display({"text/plain": ""}, raw=True,  # type: ignore[no-untyped-call]
                               display_id=True)

    def _bundle(self, snapshot: Snapshot, rows: list[Row]) -> dict[str, str]:
        text = line(self.actor_id, snapshot)
        order = {"FAILED": 0, "TIMED-OUT": 0, "ABORTED": 0, "NOT-STARTED": 1, "RUNNING": 2}
        shown = sorted(rows, key=lambda r: order.get(r.status, 3))[:TABLE_ROWS]
        cells = "".join(
            f"<tr><td>{html.escape(str(r.label))}</td><td>{self._run_cell(r.run_id)}</td>"
            f"<td>{r.status}</td><td>{html.escape(r.error or '')}</td></tr>" for r in shown)
        more = f"<p>{len(rows) - len(shown)} more runs in df.attrs['apify_map'].runs</p>" \
            if len(rows) > len(shown) else ""
        page = (f"<details><summary><code>{html.escape(text)}</code></summary><table>"
                "<tr><th>label</th><th>run</th><th>status</th><th>error</th></tr>"
                f"{cells}</table>{more}</details>")
        return {"text/plain": text, "text/html": page}

    def _run_cell(self, run_id: str | None) -> str:
        if not run_id:
            return ""
        link = self.run_link(run_id)
        return f'<a href="{html.escape(link)}">{run_id}</a>' if link else run_id

    def update(self, snapshot: Snapshot, rows: list[Row]) -> None:
        if self._handle is not None and time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every_secs
            self._handle.update(self._bundle(snapshot, rows), raw=True)

    def finished(self, snapshot: Snapshot, rows: list[Row]) -> None:
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
        self._display(self._bundle(snapshot, rows), raw=True)  # type: ignore[no-untyped-call]
