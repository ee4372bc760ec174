"""Fails its first `failTimes` attempts (counted in a file of the run's folder), then succeeds."""

import json
import os
import sys
from pathlib import Path

root = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"])
store = root / "key_value_stores" / "default"
counter = root / "attempts.txt"
attempts = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(attempts))
if attempts <= int(json.loads((store / "INPUT").read_bytes()).get("failTimes", 1)):
    print(f"attempt {attempts} fails", flush=True)
    sys.exit(3)
data = json.dumps({"attempts": attempts}).encode()
(store / "OUTPUT").write_bytes(data)
(store / "OUTPUT.__metadata__.json").write_text(json.dumps(
    {"key": "OUTPUT", "content_type": "application/json; charset=utf-8", "size": len(data)}))
