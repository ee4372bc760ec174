"""Never ends on its own; may ignore SIGTERM and may start a child that would outlive it."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

path = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"]) / "key_value_stores" / "default" / "INPUT"
actor_input = json.loads(path.read_bytes())
if actor_input.get("ignoreTerm"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if actor_input.get("child"):
    subprocess.Popen(["sleep", "300"])
print("[Status message]: hanging", flush=True)
while True:
    time.sleep(1)
