"""SDK table: the Apify SDK for Python reads INPUT, pushes rows and sets OUTPUT to them."""

import asyncio
import sys

try:
    from apify import Actor
except ImportError:
    # The runtime turns this line into the run's status message.
    print("[Terminal status message]: The sdk-table Actor needs the Apify SDK for Python: "
          "pip install 'apify-magic[sdk]'", flush=True)
    sys.exit(1)


async def main() -> None:
    async with Actor:
        actor_input = await Actor.get_input() or {}
        prefix = str(actor_input.get("prefix", "item"))
        rows = [{"id": i, "label": f"{prefix}-{i}", "square": i * i}
                for i in range(1, int(actor_input.get("rows", 5)) + 1)]
        await Actor.push_data(rows)
        await Actor.set_value("OUTPUT", rows)
        await Actor.set_status_message(f"Wrote {len(rows)} rows")


asyncio.run(main())
