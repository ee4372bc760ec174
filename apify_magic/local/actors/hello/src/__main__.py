"""Hello: reads INPUT, writes OUTPUT (a table) and dataset items, without the Apify SDK.

Files follow the Apify SDK for Python's local storage layout, rooted at
APIFY_LOCAL_STORAGE_DIR (or CRAWLEE_STORAGE_DIR, else ./storage).
"""

import json
import os
from pathlib import Path
from typing import Any

root = Path(os.environ.get("APIFY_LOCAL_STORAGE_DIR") or os.environ.get("CRAWLEE_STORAGE_DIR")
            or "storage")
store = root / "key_value_stores" / "default"
dataset = root / "datasets" / "default"


def read_input() -> dict[str, Any]:
    # A metamorphed run's INPUT is another record, named by ACTOR_INPUT_KEY.
    key = os.environ.get("ACTOR_INPUT_KEY") or "INPUT"
    for name in (key, f"{key}.json"):
        path = store / name
        if path.is_file():
            value = json.loads(path.read_bytes() or b"{}")
            return value if isinstance(value, dict) else {}
    return {}


def set_value(key: str, value: object) -> None:
    data = json.dumps(value, ensure_ascii=False).encode()
    store.mkdir(parents=True, exist_ok=True)
    (store / key).write_bytes(data)
    meta = {"key": key, "content_type": "application/json; charset=utf-8", "size": len(data)}
    (store / f"{key}.__metadata__.json").write_text(json.dumps(meta))


def push_data(items: list[Any]) -> None:
    dataset.mkdir(parents=True, exist_ok=True)
    start = len([p for p in dataset.glob("*.json") if p.name != "__metadata__.json"])
    for number, item in enumerate(items, start + 1):
        (dataset / f"{number:09d}.json").write_text(json.dumps(item, ensure_ascii=False))
    (dataset / "__metadata__.json").write_text(json.dumps({"item_count": start + len(items)}))


actor_input = read_input()
name = str(actor_input.get("name", "world"))
greeting = f"Hello, {name}!"
if actor_input.get("shout"):
    greeting = greeting.upper()
rows = [{"n": i + 1, "greeting": greeting, "name": name}
        for i in range(int(actor_input.get("count", 3)))]
push_data(rows)
set_value("OUTPUT", rows)
print(f"Wrote {len(rows)} greetings for {name}")
