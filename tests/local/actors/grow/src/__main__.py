"""Grows by `stepMb` MB of touched memory every `pauseSecs`, without end; after each step
it writes its own proportional set size (bytes) to the file `report`, so a test knows how
far it got before it was killed. With `child`, a child in a session of its own grows."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def pss() -> int:
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def grow(step_mb: int, pause: float, report: str) -> None:
    held = []
    while True:
        held.append(b"\x01" * (step_mb * 2**20))
        # Written whole or not at all: it is killed at any moment.
        Path(report + ".tmp").write_text(str(pss()))
        os.replace(report + ".tmp", report)
        time.sleep(pause)


if len(sys.argv) == 4:  # the child
    grow(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
kvs = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"]) / "key_value_stores" / "default"
actor_input = json.loads((kvs / "INPUT").read_bytes())
step, pause, report = actor_input["stepMb"], actor_input["pauseSecs"], actor_input["report"]
if actor_input.get("child"):
    subprocess.Popen([sys.executable, __file__, str(step), str(pause), report],
                     start_new_session=True).wait()
else:
    grow(step, pause, report)
