"""Declares an output schema of three links: its dataset (only two fields of each item), a
SUMMARY record, and a page on a host that is not the API. Writes OUTPUT only when INPUT
says `writeOutput`, so the magic's choice between OUTPUT and the output object shows."""

import json
import os
from pathlib import Path

root = Path(os.environ["APIFY_LOCAL_STORAGE_DIR"])
store = root / "key_value_stores" / "default"
dataset = root / "datasets" / "default"
actor_input = json.loads((store / "INPUT").read_bytes() or b"{}")


def set_value(key: str, value: object) -> None:
    (store / key).write_text(json.dumps(value))
    (store / f"{key}.__metadata__.json").write_text(json.dumps(
        {"key": key, "content_type": "application/json; charset=utf-8"}))


dataset.mkdir(parents=True, exist_ok=True)
words = ["alpha", "beta", "gamma"]
for n, word in enumerate(words, 1):
    (dataset / f"{n:09d}.json").write_text(json.dumps({"n": n, "word": word, "hidden": True}))
(dataset / "__metadata__.json").write_text(json.dumps({"item_count": len(words)}))
set_value("SUMMARY", {"words": len(words)})
if actor_input.get("writeOutput"):
    set_value("OUTPUT", {"from": "OUTPUT"})
