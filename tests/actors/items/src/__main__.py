"""Pushes `count` items into the default dataset, in the SDK's one-file-per-item layout."""

import json
import os
from pathlib import Path

root = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"])
store = root / "key_value_stores" / "default"
dataset = root / "datasets" / "default"
dataset.mkdir(parents=True, exist_ok=True)
actor_input = json.loads((store / "INPUT").read_bytes() or b"{}")
count = int(actor_input.get("count", 10))
items = []
for i in range(count):
    item = {"i": i, "name": f"item {i}", "score": i / 4, "even": i % 2 == 0,
            "day": f"2026-11-{1 + i % 28:02d}", "#debug": f"d{i}"}
    if actor_input.get("nested"):
        item["tags"] = [f"t{i}", f"u{i}"]
        item["meta"] = {"depth": i % 3, "url": f"https://example.com/{i}"}
    items.append(item)
    if actor_input.get("empties") and i % 3 == 0:
        items.append({})
for n, item in enumerate(items, 1):
    (dataset / f"{n:09d}.json").write_text(json.dumps(item))
(dataset / "__metadata__.json").write_text(json.dumps({"item_count": len(items)}))
