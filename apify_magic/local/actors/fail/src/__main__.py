"""Fail: prints a message and exits with a non-zero code, so the run ends FAILED."""

import json
import os
import sys
from pathlib import Path

root = Path(os.environ.get("APIFY_LOCAL_STORAGE_DIR") or os.environ.get("CRAWLEE_STORAGE_DIR")
            or "storage")
path = root / "key_value_stores" / "default" / "INPUT"
actor_input = json.loads(path.read_bytes() or b"{}") if path.is_file() else {}
message = str(actor_input.get("message", "This Actor fails on purpose"))
print(f"[Terminal status message]: {message}", flush=True)
print(f"Error: {message}", file=sys.stderr)
sys.exit(int(actor_input.get("exitCode", 1)))
