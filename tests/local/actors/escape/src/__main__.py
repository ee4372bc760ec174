"""Starts processes that try to outlive the run, writes their pids as OUTPUT, then exits
(or hangs, with `hang`): one in a session of its own, one in a process group of its own,
and a daemon made by a double fork (its parent exits, so init adopts it)."""

import json
import os
import subprocess
import time
from pathlib import Path

kvs = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"]) / "key_value_stores" / "default"
actor_input = json.loads((kvs / "INPUT").read_bytes())
pids = {
    "session": subprocess.Popen(["sleep", "300"], start_new_session=True).pid,
    "group": subprocess.Popen(["sleep", "300"], preexec_fn=os.setpgrp).pid,
}
read_end, write_end = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(write_end, str(os.getpid()).encode())
        os.close(write_end)
        os.execvp("sleep", ["sleep", "300"])
    os._exit(0)
os.close(write_end)
pids["daemon"] = int(os.read(read_end, 100))
os.wait()
data = json.dumps(pids).encode()
(kvs / "OUTPUT").write_bytes(data)
(kvs / "OUTPUT.__metadata__.json").write_text(json.dumps(
    {"key": "OUTPUT", "content_type": "application/json", "size": len(data)}))
print("started", pids, flush=True)
while actor_input.get("hang"):
    time.sleep(1)
