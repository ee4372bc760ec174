"""A Python Apify SDK Actor: each feature named in INPUT.features is used as on the platform,
and what the Actor saw goes to OUTPUT, for the local runtime's tests."""

import asyncio
import os
from typing import Any

from apify import Actor
from crawlee.crawlers import BeautifulSoupCrawler, BeautifulSoupCrawlingContext


async def main() -> None:
    async with Actor:
        actor_input = await Actor.get_input() or {}
        features = set(actor_input.get("features") or [])
        out: dict[str, Any] = {
            "input": actor_input,
            "isAtHome": Actor.is_at_home(),
            "apiBaseUrl": os.environ.get("APIFY_API_BASE_URL"),
            "hasToken": bool(Actor.configuration.token),
            "tokenIsTheRunsOwn": (Actor.configuration.token or "").startswith("apify_run_"),
        }
        if "storages" in features:
            await Actor.push_data([{"n": 1, "name": actor_input.get("name")},
                                   {"n": 2, "name": actor_input.get("name")}])
            await Actor.set_value("TEXT", "plain words", content_type="text/plain")
            out["readBack"] = await Actor.get_value("TEXT")
            named = await Actor.open_dataset(name="py-named")
            await named.push_data({"named": True})
            store = await Actor.open_key_value_store(name="py-store")
            await store.set_value("k", {"v": 1})
            out["namedValue"] = await store.get_value("k")
            queue = await Actor.open_request_queue()
            await queue.add_request("https://example.com/a")
            await queue.add_request("https://example.com/a")
            request = await queue.fetch_next_request()
            assert request is not None
            await queue.mark_request_as_handled(request)
            out["queueHandled"] = await queue.get_handled_count()
            await Actor.set_status_message("Python storages done")
        if "call" in features:
            run = await Actor.call("hello", {"name": "from Python", "count": 2})
            assert run is not None
            out["called"] = {"status": run.status, "id": run.id}
            items = await Actor.apify_client.dataset(run.default_dataset_id).list_items()
            out["calledItems"] = [i["greeting"] for i in items.items]
            started = await Actor.start("hello", {"count": 1})
            out["started"] = started.status
        if "charge" in features:
            result = await Actor.charge(event_name="page", count=5)
            out["charge"] = {"eventChargeLimitReached": result.event_charge_limit_reached,
                             "chargedCount": result.charged_count}
        if "crawl" in features:
            pages: list[str] = []
            crawler = BeautifulSoupCrawler(max_requests_per_crawl=20)

            @crawler.router.default_handler
            async def handle(context: BeautifulSoupCrawlingContext) -> None:
                pages.append(context.request.url)
                title = context.soup.title.string if context.soup.title else ""
                await context.push_data({"url": context.request.url, "title": title})
                await context.enqueue_links()

            await crawler.run(actor_input.get("startUrls") or [])
            out["crawled"] = sorted(pages)
        await Actor.set_value("OUTPUT", out)
        if "metamorph" in features:
            await Actor.metamorph("hello", {"name": "morphed", "count": 1})


asyncio.run(main())
