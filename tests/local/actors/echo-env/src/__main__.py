"""No input schema: echoes its raw INPUT and environment, in the older `OUTPUT.json` layout."""

import base64
import json
import os
from pathlib import Path

store = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"]) / "key_value_stores" / "default"
meta = json.loads((store / "INPUT.__metadata__.json").read_text())
output = {
    "input": base64.b64encode((store / "INPUT").read_bytes()).decode(),
    "inputContentType": meta["content_type"],
    "env": {k: v for k, v in os.environ.items()
            if k.startswith(("ACTOR_", "APIFY_", "CRAWLEE_")) or k == "GREETING"},
    "cwd": os.getcwd(),
}
(store / "OUTPUT.json").write_text(json.dumps(output))
