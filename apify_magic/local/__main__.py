"""`python -m apify_magic.local` / `apify-magic-local`: serve the runtime until interrupted."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from apify_magic.local.registry import SHIPPED_ACTORS
from apify_magic.local.server import LocalRuntime


def default_data_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "apify-magic" / "local"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="apify-magic-local",
        description="An Apify-compatible API on loopback that runs Actors from local folders.")
    p.add_argument("--actors", action="append", type=Path, metavar="DIR",
                   help="a folder of Actors, or one Actor folder (repeatable; default ./actors)."
                        " The shipped examples are always added after these.")
    p.add_argument("--no-examples", action="store_true",
                   help="do not serve the example Actors shipped in the package")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"where runs are kept (default {default_data_dir()})")
    p.add_argument("--memory-budget", type=int, default=8192, metavar="MB",
                   help="memory of all runs together (default 8192)")
    p.add_argument("--sync-wait-secs", type=float, default=300.0, metavar="S",
                   help="how long run-sync waits before 408 (default 300)")
    p.add_argument("--token", default=None,
                   help="require this token (default: any token or none is accepted)")
    p.add_argument("--keep-runs", type=int, default=1000, metavar="N",
                   help="finished runs kept on disk; older ones are deleted (default 1000)")
    p.add_argument("--no-warm-starts", action="store_true",
                   help="start every Python Actor run as a new interpreter instead of "
                        "forking it from a warm parent that has imported apify already")
    p.add_argument("--verbose", action="store_true", help="log every request")
    return p


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not is_loopback_host(args.host) and not args.token:
        # Anyone who can reach the address could run code of the Actor folders: a
        # runtime off loopback never starts open.
        print(f"apify-magic-local: --host {args.host} is reachable from other machines; "
              "give it a token to require (--token T, then clients send "
              "'Authorization: Bearer T')", file=sys.stderr)
        return 2
    dirs = [d.resolve() for d in (args.actors or [Path("actors")])]
    if not args.no_examples:
        dirs.append(SHIPPED_ACTORS)
    runtime = LocalRuntime(
        dirs, data_dir=(args.data_dir or default_data_dir()).resolve(), host=args.host,
        port=args.port, memory_budget_mbytes=args.memory_budget,
        sync_wait_secs=args.sync_wait_secs, token=args.token, keep_runs=args.keep_runs,
        verbose=args.verbose, warm_starts=not args.no_warm_starts)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    print(runtime.url, flush=True)
    try:
        runtime.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
