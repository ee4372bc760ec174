// A JavaScript Apify SDK Actor: each feature named in INPUT.features is used as on the
// platform, and what the Actor saw goes to OUTPUT, for the local runtime's tests.
import { Actor } from 'apify';
import { CheerioCrawler } from 'crawlee';

await Actor.init();
const input = (await Actor.getInput()) ?? {};
const features = new Set(input.features ?? []);
const env = Actor.getEnv();
const out = {
    input,
    isAtHome: Actor.isAtHome(),
    apiBaseUrl: env.apiBaseUrl ?? process.env.APIFY_API_BASE_URL,
    hasToken: Boolean(env.token),
    tokenIsTheRunsOwn: (env.token ?? '').startsWith('apify_run_'),
};

if (features.has('storages')) {
    await Actor.pushData([{ n: 1, name: input.name }, { n: 2, name: input.name }]);
    await Actor.setValue('TEXT', 'plain words', { contentType: 'text/plain' });
    out.readBack = await Actor.getValue('TEXT');
    const named = await Actor.openDataset('js-named');
    await named.pushData({ named: true });
    const store = await Actor.openKeyValueStore('js-store');
    await store.setValue('k', { v: 1 });
    out.namedValue = await store.getValue('k');
    const queue = await Actor.openRequestQueue();
    await queue.addRequest({ url: 'https://example.com/a' });
    await queue.addRequest({ url: 'https://example.com/a' });
    const request = await queue.fetchNextRequest();
    await queue.markRequestHandled(request);
    out.queueHandled = await queue.handledCount();
    await Actor.setStatusMessage('JS storages done');
}

if (features.has('call')) {
    const run = await Actor.call('hello', { name: 'from JS', count: 2 });
    out.called = { status: run.status, id: run.id };
    const client = Actor.newClient();
    const { items } = await client.dataset(run.defaultDatasetId).listItems();
    out.calledItems = items.map((i) => i.greeting);
    const started = await Actor.start('hello', { count: 1 });
    out.started = started.status;
}

if (features.has('charge')) {
    out.charge = await Actor.charge({ eventName: 'page', count: 5 });
}

if (features.has('crawl')) {
    const pages = [];
    const crawler = new CheerioCrawler({
        maxRequestsPerCrawl: 20,
        async requestHandler({ request, $, enqueueLinks }) {
            pages.push(request.url);
            await Actor.pushData({ url: request.url, title: $('title').text() });
            await enqueueLinks();
        },
    });
    await crawler.run(input.startUrls ?? []);
    out.crawled = pages.sort();
}

await Actor.setValue('OUTPUT', out);

if (features.has('metamorph')) {
    await Actor.metamorph('hello', { name: 'morphed', count: 1 });
}
await Actor.exit();
