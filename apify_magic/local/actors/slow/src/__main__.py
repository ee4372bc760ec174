"""Slow: works for `seconds`, reporting status messages the way the SDK does off the platform.

Off the platform the SDK's `Actor.set_status_message()` only logs
`[Status message]: <text>`; the local runtime reads those lines into the run's
statusMessage.
"""

import json
import os
import time
from pathlib import Path

root = Path(os.environ.get("APIFY_LOCAL_STORAGE_DIR") or os.environ.get("CRAWLEE_STORAGE_DIR")
            or "storage")
store = root / "key_value_stores" / "default"
path = store / "INPUT"
actor_input = json.loads(path.read_bytes() or b"{}") if path.is_file() else {}
seconds = float(actor_input.get("seconds", 3))
steps = int(actor_input.get("steps", 3))

started = time.monotonic()
for step in range(1, steps + 1):
    print(f"[Status message]: Working: step {step} of {steps}", flush=True)
    time.sleep(seconds / steps)
print("[Terminal status message]: Done", flush=True)

output = {"seconds": seconds, "steps": steps, "took": round(time.monotonic() - started, 3)}
data = json.dumps(output).encode()
store.mkdir(parents=True, exist_ok=True)
(store / "OUTPUT").write_bytes(data)
meta = {"key": "OUTPUT", "content_type": "application/json; charset=utf-8", "size": len(data)}
(store / "OUTPUT.__metadata__.json").write_text(json.dumps(meta))
