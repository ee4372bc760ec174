"""Writes `n` (default 100,000) records as its OUTPUT: the table bench_magic.py converts."""

import json
import os
from pathlib import Path

kvs = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"]) / "key_value_stores" / "default"
n = json.loads((kvs / "INPUT").read_bytes() or b"{}").get("n", 100_000)
text = "lorem ipsum dolor sit amet " * 10
body = json.dumps([
    {"url": f"https://example.com/page/{i}", "title": f"Page number {i}", "depth": i % 5,
     "score": i / 7, "ok": i % 3 == 0, "text": text[: 200 + i % 80],
     "loadedAt": "2026-11-29T12:00:00.000Z"}
    for i in range(n)]).encode()
(kvs / "OUTPUT").write_bytes(body)
(kvs / "OUTPUT.__metadata__.json").write_text(json.dumps(
    {"key": "OUTPUT", "content_type": "application/json", "size": len(body)}))
