"""Timing `apify run` (the Apify CLI from npm) of a copy of the shipped sdk-table Actor."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from apify_magic.local.registry import SHIPPED_ACTORS

SDK_INPUT = {"rows": 5}
INSTALL_HINT = "the Apify CLI is not installed (npm install -g apify-cli)"


def time_apify_run(tmp: Path, runs: int) -> float | None:
    """Median seconds of `apify run` of sdk-table, or None without the CLI."""
    cli = shutil.which("apify")
    if cli is None:
        return None
    folder = tmp / "sdk-table-cli"
    shutil.copytree(SHIPPED_ACTORS / "sdk-table", folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APIFY_", "ACTOR_"))}
    env["APIFY_CLI_DISABLE_TELEMETRY"] = "1"
    times = []
    for i in range(runs + 1):
        started = time.perf_counter()
        subprocess.run([cli, "run", "--input", json.dumps(SDK_INPUT)], cwd=folder, env=env,
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT)
        json.loads((folder / "storage" / "key_value_stores" / "default" / "OUTPUT")
                   .read_bytes())
        if i:  # the first one warms the CLI's caches
            times.append(time.perf_counter() - started)
    return statistics.median(times)
