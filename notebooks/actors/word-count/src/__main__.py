"""Word count: OUTPUT is a table of the `top` most frequent words of `text`.

Ties are broken alphabetically, so the same text always gives the same table. Plain
Python in the SDK's local storage layout, so it needs no packages.
"""

import collections
import json
import os
import re
from pathlib import Path

root = Path(os.environ.get("APIFY_LOCAL_STORAGE_DIR") or os.environ.get("CRAWLEE_STORAGE_DIR")
            or "storage")
store = root / "key_value_stores" / "default"

path = store / "INPUT"
actor_input = json.loads(path.read_bytes() or b"{}") if path.is_file() else {}
words = re.findall(r"[a-z']+", str(actor_input.get("text", "")).lower())
counts = collections.Counter(words)
top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: int(actor_input.get("top", 5))]
rows = [{"word": word, "count": count} for word, count in top]

data = json.dumps(rows).encode()
store.mkdir(parents=True, exist_ok=True)
(store / "OUTPUT").write_bytes(data)
meta = {"key": "OUTPUT", "content_type": "application/json; charset=utf-8", "size": len(data)}
(store / "OUTPUT.__metadata__.json").write_text(json.dumps(meta))
print(f"Counted {len(words)} words, {len(counts)} different")
