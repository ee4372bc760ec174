"""Allocates `mb` MB of resident memory in 10 MB steps, then holds it."""

import json
import os
import time
from pathlib import Path

path = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"]) / "key_value_stores" / "default" / "INPUT"
mb = int(json.loads(path.read_bytes()).get("mb", 300))
held = []
for _ in range(mb // 10):
    held.append(b"\x01" * (10 * 2**20))
print(f"holding {mb} MB", flush=True)
time.sleep(60)
