"""Echo: OUTPUT is the INPUT record exactly as sent (same bytes, same content type).

A second record, RUN_INFO, tells what the run was given: memory, timeout, build and
limits, read from the ACTOR_* environment variables the platform (and the local runtime)
set. Plain Python in the SDK's local storage layout, so it needs no packages.
"""

import json
import os
from datetime import datetime
from pathlib import Path

root = Path(os.environ.get("APIFY_LOCAL_STORAGE_DIR") or os.environ.get("CRAWLEE_STORAGE_DIR")
            or "storage")
store = root / "key_value_stores" / "default"


def read_record(key: str) -> tuple[bytes, str]:
    path = store / key
    meta_path = store / f"{key}.__metadata__.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    value = path.read_bytes() if path.is_file() else b""
    return value, str(meta.get("content_type") or "application/json")


def write_record(key: str, value: bytes, content_type: str) -> None:
    store.mkdir(parents=True, exist_ok=True)
    (store / key).write_bytes(value)
    meta = {"key": key, "content_type": content_type, "size": len(value)}
    (store / f"{key}.__metadata__.json").write_text(json.dumps(meta))


def timeout_secs() -> int | None:
    started, timeout_at = os.environ.get("ACTOR_STARTED_AT"), os.environ.get("ACTOR_TIMEOUT_AT")
    if not started or not timeout_at:
        return None
    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return round((parse(timeout_at) - parse(started)).total_seconds())


def env_number(name: str) -> float | int | None:
    value = os.environ.get(name)
    if not value:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


body, content_type = read_record("INPUT")
write_record("OUTPUT", body, content_type)
info = {
    "inputContentType": content_type,
    "inputBytes": len(body),
    "memoryMbytes": int(os.environ.get("ACTOR_MEMORY_MBYTES", "0")),
    "timeoutSecs": timeout_secs(),
    "buildNumber": os.environ.get("ACTOR_BUILD_NUMBER"),
    "maxItems": env_number("ACTOR_MAX_PAID_DATASET_ITEMS"),
    "maxTotalChargeUsd": env_number("ACTOR_MAX_TOTAL_CHARGE_USD"),
    "restartOnError": os.environ.get("ACTOR_RESTART_ON_ERROR") == "1",
}
write_record("RUN_INFO", json.dumps(info).encode(), "application/json; charset=utf-8")
print(f"Echoed {len(body)} bytes of {content_type}")
