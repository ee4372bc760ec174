"""Writes `count` items in the SDK's layout: one JSON file per item, as `push_data` does."""

import json
import os
from pathlib import Path

root = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"])
dataset = root / "datasets" / "default"
dataset.mkdir(parents=True, exist_ok=True)
store = root / "key_value_stores" / "default"
count = int(json.loads((store / "INPUT").read_bytes() or b"{}").get("count", 1000))
for i in range(count):
    item = {"url": f"https://example.com/products/{i}", "title": f"Product number {i}",
            "price": round(9.99 + i % 500 / 7, 2), "inStock": i % 3 != 0, "rating": i % 5,
            "category": ["books", "games", "tools", "toys"][i % 4],
            "scrapedAt": "2026-11-29T12:00:00.000Z"}
    (dataset / f"{i + 1:09d}.json").write_text(json.dumps(item))
(dataset / "__metadata__.json").write_text(json.dumps({"item_count": count}))
