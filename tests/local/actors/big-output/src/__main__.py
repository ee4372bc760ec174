"""Writes as much as it is asked to, a piece at a time, so that its own memory stays small.

INPUT: `printBytes` of log in numbered lines, then `last` (a line); `recordBytes` of an
OUTPUT record (application/octet-stream); `items` dataset items of `itemBytes` each, in
the SDK's layout; `waitFor`: a record key to wait for (put by the test) before it ends.
"""

import json
import os
import sys
import time
from pathlib import Path

root = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"])
store = root / "key_value_stores" / "default"
actor_input = json.loads((store / "INPUT").read_bytes() or b"{}")

for line in actor_input.get("first", []):
    print(line, flush=True)
left = int(actor_input.get("printBytes", 0))
number = 0
while left > 0:
    number += 1
    line = f"line {number:09d} " + "x" * 84  # 99 bytes and a newline
    sys.stdout.write(line[:left - 1] + "\n")
    left -= 100
if actor_input.get("last"):
    print(actor_input["last"])
sys.stdout.flush()

size = int(actor_input.get("recordBytes", 0))
if size:
    piece = bytes(range(256)) * 4096  # 1 MiB
    with open(store / "OUTPUT", "wb") as f:
        for start in range(0, size, len(piece)):
            f.write(piece[:size - start])
    (store / "OUTPUT.__metadata__.json").write_text(json.dumps(
        {"key": "OUTPUT", "content_type": "application/octet-stream", "size": size}))

dataset = root / "datasets" / "default"
dataset.mkdir(parents=True, exist_ok=True)
filler = "y" * max(int(actor_input.get("itemBytes", 100)) - 60, 0)
for i in range(int(actor_input.get("items", 0))):
    item = {"n": i, "name": f"item {i} \u00e9", "tags": [i % 3, i % 5], "filler": filler}
    (dataset / f"{i + 1:09d}.json").write_text(json.dumps(item))

if actor_input.get("waitFor"):
    print("waiting", flush=True)
    while not (store / actor_input["waitFor"]).exists():
        time.sleep(0.05)
    print("\x1b[32mreleased\x1b[0m", flush=True)
