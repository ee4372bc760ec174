"""Waits `wait` seconds, then writes OUTPUT: `rows` copies of {"i": n, **INPUT}, or the
INPUT itself when `rows` is absent; exits 1 with `fail` as its last log line."""

import json
import os
import sys
import time
from pathlib import Path

root = Path(os.environ.get("APIFY_LOCAL_STORAGE_DIR") or "storage")
store = root / "key_value_stores" / "default"
path = store / "INPUT"
actor_input = json.loads(path.read_bytes() or b"{}") if path.is_file() else {}
if not isinstance(actor_input, dict):
    actor_input = {"value": actor_input}
time.sleep(float(actor_input.get("wait", 0)))
if actor_input.get("fail"):
    print(f"Error: {actor_input['fail']}", flush=True)
    sys.exit(1)
rows = actor_input.get("rows")
output = [{"i": n, **actor_input} for n in range(int(rows))] if rows is not None \
    else actor_input
data = json.dumps(output).encode()
(store / "OUTPUT").write_bytes(data)
(store / "OUTPUT.__metadata__.json").write_text(json.dumps(
    {"key": "OUTPUT", "content_type": "application/json; charset=utf-8", "size": len(data)}))
