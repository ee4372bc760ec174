// A scripted tour of Apify API v2 with the official JavaScript client, unchanged: the same
// steps as ../tour_python.py (same names), the same table and JSON, exit 1 on a failure.
//   node tour.mjs --url http://127.0.0.1:PORT [--json results.json]   (token: APIFY_TOKEN)
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { ApifyClient } from 'apify-client';

const args = process.argv.slice(2);
const opt = (name, fallback) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : fallback; };
const url = opt('--url', process.env.APIFY_API_BASE_URL);
const token = opt('--token', process.env.APIFY_TOKEN);
const jsonOut = opt('--json');
if (!url || !token) { console.error('give --url and APIFY_TOKEN'); process.exit(2); }

const c = new ApifyClient({ token, baseUrl: url, maxRetries: 1 });
const tag = `tour-js-${process.pid}-${Date.now()}`;
const x = {};
const results = [];
const check = (cond, what) => { if (!cond) throw new Error(`AssertionError: ${what}`); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function step(name, body, needs = []) {
    const r = { name, ok: false, status: null, type: null, error: null, started: Date.now() / 1000 };
    try {
        const missing = needs.filter((n) => x[n] === undefined || x[n] === null);
        if (missing.length) throw new Error(`skipped: an earlier step made no ${missing.join(', ')}`);
        await body();
        r.ok = true;
    } catch (err) {
        if (err && err.statusCode) { r.status = err.statusCode; r.type = err.type ?? null; r.error = `${err.type}: ${err.message}`; }
        else r.error = String(err && err.message ? err.message : err);
    }
    r.ended = Date.now() / 1000;
    results.push(r);
}

const received = [];
const receiver = http.createServer((req, res) => { req.resume(); req.on('end', () => { received.push(1); res.end(); }); });
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;

// Actors
await step('actors.list', async () => {
    const page = await c.actors().list({ limit: 1, offset: 0 });
    check(page.items.length <= 1, `limit=1 gave ${page.items.length}`);
    check(page.total >= 3, `total ${page.total}`);
    const page2 = await c.actors().list({ limit: 1, offset: 1 });
    check(page2.items.length && page2.items[0].id !== page.items[0].id, 'offset=1 same page');
});
await step('actor.get', async () => {
    const actor = await c.actor('hello').get();
    check(actor && actor.name === 'hello', `got ${JSON.stringify(actor)}`);
    x.hello_id = actor.id;
    check((await c.actor('no-such-actor-here').get()) === undefined, 'an unknown Actor is not undefined');
});
await step('actor.validate_input', async () => {
    check((await c.actor('hello').validateInput({ name: 'x', count: 2 })) === true, 'valid input');
    let status = null;
    try { await c.actor('hello').validateInput({ count: 'many' }); } catch (err) { status = err.statusCode; }
    check(status === 400, `invalid input: HTTP ${status}`);
});
await step('actor.builds.list', async () => {
    const page = await c.actor('hello').builds().list({ limit: 10, desc: true });
    check(page.items.length, 'no builds');
});
await step('actor.default_build', async () => {
    const build = await (await c.actor('hello').defaultBuild()).get();
    check(build && build.status === 'SUCCEEDED', `build ${JSON.stringify(build)}`);
});

// Runs
await step('actor.call', async () => {
    const run = await c.actor('hello').call({ name: 'tour', count: 2 }, { log: null });
    check(run.status === 'SUCCEEDED', `status ${run.status}`);
    x.run = run;
});
await step('actor.call (no input)', async () => {
    const run = await c.actor('hello').call(undefined, { log: null });
    check(run.status === 'SUCCEEDED', `status ${run.status}`);
});
await step('actor.call (fail Actor: FAILED)', async () => {
    const run = await c.actor('fail').call(undefined, { log: null });
    check(run.status === 'FAILED', `status ${run.status}`);
});
await step('actor.start + run.wait_for_finish', async () => {
    const run = await c.actor('hello').start({ count: 1 });
    const end = await c.run(run.id).waitForFinish({ waitSecs: 60 });
    check(end.status === 'SUCCEEDED', `status ${end.status}`);
});
await step('run.get', async () => {
    const got = await c.run(x.run.id).get();
    check(got && got.id === x.run.id, 'run.get');
    check((await c.run('noSuchRunHere0000').get()) === undefined, 'unknown run not undefined');
}, ['run']);
await step('runs.list (offset/limit/desc/status)', async () => {
    const page = await c.runs().list({ limit: 2, offset: 0, desc: true });
    check(page.items.length === 2, `limit=2 gave ${page.items.length}`);
    const starts = page.items.map((i) => new Date(i.startedAt).getTime());
    check(starts[0] >= starts[1], 'desc not newest first');
    const later = await c.runs().list({ limit: 2, offset: 1, desc: true });
    check(later.items[0].id === page.items[1].id, 'offset=1 not the next run');
    const ok = await c.runs().list({ status: 'SUCCEEDED' });
    check(ok.items.length && ok.items.every((i) => i.status === 'SUCCEEDED'), 'status filter');
    const none = await c.runs().list({ status: 'TIMED-OUT' });
    check(none.total === 0 && !none.items.length, 'status=TIMED-OUT filter');
});
await step('actor.runs.list', async () => {
    const page = await c.actor('hello').runs().list({ limit: 1, desc: true, status: 'SUCCEEDED' });
    check(page.items.length === 1 && page.items[0].status === 'SUCCEEDED', 'per-Actor list');
    const other = await c.actor('fail').runs().list();
    check(other.items.every((i) => i.actId !== page.items[0].actId), 'not per Actor');
});
await step('actor.last_run(status=) + dataset/kvs/log', async () => {
    const last = c.actor('hello').lastRun({ status: 'SUCCEEDED' });
    const run = await last.get();
    check(run && run.status === 'SUCCEEDED', 'last run');
    check((await last.dataset().listItems()).items.length, "last run's dataset is empty");
    check(await last.keyValueStore().getRecord('OUTPUT'), 'no OUTPUT');
    const keys = await last.keyValueStore().listKeys();
    check(keys.items.some((k) => k.key === 'OUTPUT'), 'OUTPUT not in keys');
    check(await last.log().get(), "last run's log is empty");
    check((await c.actor('fail').lastRun({ status: 'SUCCEEDED' }).get()) === undefined, 'fail has a SUCCEEDED run');
});
await step('run.abort', async () => {
    const run = await c.actor('slow').start({ seconds: 60, steps: 2 });
    const aborted = await c.run(run.id).abort();
    check(['ABORTING', 'ABORTED'].includes(aborted.status), aborted.status);
    const end = await c.run(run.id).waitForFinish({ waitSecs: 30 });
    check(end.status === 'ABORTED', `status ${end.status}`);
    x.aborted = run.id;
});
await step('run.abort(gracefully=True)', async () => {
    const run = await c.actor('slow').start({ seconds: 60, steps: 2 });
    await c.run(run.id).abort({ gracefully: true });
    const end = await c.run(run.id).waitForFinish({ waitSecs: 30 });
    check(end.status === 'ABORTED', `status ${end.status}`);
});
await step('run.resurrect', async () => {
    const run = await c.run(x.aborted).resurrect();
    check(['READY', 'RUNNING'].includes(run.status), `status ${run.status}`);
    x.running = run.id;
}, ['aborted']);
await step('run.reboot', async () => {
    const run = await c.run(x.running).reboot();
    check(['READY', 'RUNNING'].includes(run.status), `status ${run.status}`);
}, ['running']);
await step('run.charge', async () => {
    await c.run(x.running).charge({ eventName: 'tour-event', count: 1 });
}, ['running']);
await step('run.metamorph', async () => {
    let run = await c.actor('slow').start({ seconds: 60, steps: 2 });
    for (let i = 0; i < 200 && (await c.run(run.id).get()).status !== 'RUNNING'; i++) await sleep(50);
    run = await c.run(run.id).metamorph('hello', { name: 'morphed', count: 1 });
    const end = await c.run(run.id).waitForFinish({ waitSecs: 60 });
    check(end.status === 'SUCCEEDED', `status ${end.status}`);
    const items = await c.dataset(end.defaultDatasetId).listItems();
    check(JSON.stringify(items.items).includes('morphed'), 'hello did not run');
});

// Logs
await step('log.get', async () => {
    check(await c.run(x.run.id).log().get(), 'empty log');
    check((await c.log('noSuchRunHere0000').get()) === undefined, 'unknown log not undefined');
}, ['run']);
await step('log.stream', async () => {
    const stream = await c.run(x.run.id).log().stream();
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    check(Buffer.concat(chunks).length, 'empty stream');
}, ['run']);

// Actor tasks
await step('tasks.create', async () => {
    const task = await c.tasks().create({ actId: x.hello_id, name: `${tag}-task`, input: { name: 'task', count: 4 } });
    check(task.name === `${tag}-task`, `name ${task.name}`);
    x.task = task.id;
}, ['hello_id']);
await step('tasks.list', async () => {
    const page = await c.tasks().list({ limit: 100 });
    check(page.items.some((t) => t.id === x.task), 'new task not listed');
}, ['task']);
await step('task.get + update', async () => {
    const got = await c.task(x.task).get();
    check(got && got.id === x.task, 'task.get');
    const upd = await c.task(x.task).update({ title: 'Tour task' });
    check(upd.title === 'Tour task', `title ${upd.title}`);
}, ['task']);
await step('task.get_input + update_input', async () => {
    check((await c.task(x.task).getInput()).count === 4, 'input');
    check((await c.task(x.task).updateInput({ name: 't', count: 3 })).count === 3, 'updated input');
}, ['task']);
await step('task.call', async () => {
    const run = await c.task(x.task).call();
    check(run.status === 'SUCCEEDED', `status ${run.status}`);
    const items = await c.dataset(run.defaultDatasetId).listItems();
    check(items.total === 3, `task input not used: ${items.total} items`);
}, ['task']);
await step('task.runs.list + last_run', async () => {
    const page = await c.task(x.task).runs().list();
    check(page.items.length === 1, `${page.items.length} task runs`);
    const last = await c.task(x.task).lastRun({ status: 'SUCCEEDED' }).get();
    check(last && last.actorTaskId === x.task, 'last task run');
}, ['task']);
await step('task.delete', async () => {
    await c.task(x.task).delete();
    check((await c.task(x.task).get()) === undefined, 'deleted task still there');
}, ['task']);

// Datasets
await step('datasets.get_or_create', async () => {
    const ds = await c.datasets().getOrCreate(`${tag}-ds`);
    check((await c.datasets().getOrCreate(`${tag}-ds`)).id === ds.id, 'a second dataset');
    x.ds = ds.id;
});
await step('datasets.list', async () => {
    const page = await c.datasets().list({ limit: 1000, desc: true });
    check(page.items.some((d) => d.id === x.ds), 'named dataset not listed');
    check((await c.datasets().list({ limit: 1, offset: 0 })).items.length === 1, 'limit=1');
}, ['ds']);
await step('dataset.get + update', async () => {
    check((await c.dataset(x.ds).get()).id === x.ds, 'dataset.get');
    check((await c.dataset(x.ds).update({ name: `${tag}-ds2` })).name === `${tag}-ds2`, 'rename');
    check((await c.dataset('noSuchDatasetHere').get()) === undefined, 'unknown not undefined');
}, ['ds']);
await step('dataset.push_items', async () => {
    await c.dataset(x.ds).pushItems([0, 1, 2, 3, 4].map((n) => ({ n })));
    await c.dataset(x.ds).pushItems({ n: 5 });
    await c.dataset(x.ds).pushItems(JSON.stringify([{ n: 6 }]));
}, ['ds']);
await step('dataset.list_items + iterate_items', async () => {
    const page = await c.dataset(x.ds).listItems({ offset: 1, limit: 2, desc: true });
    check(JSON.stringify(page.items.map((i) => i.n)) === '[5,4]', `items ${JSON.stringify(page.items)}`);
    check(page.total === 7, `total ${page.total}`);
    const all = [];
    for await (const item of c.dataset(x.ds).listItems()) all.push(item.n);
    check(JSON.stringify(all) === '[0,1,2,3,4,5,6]', `iterate ${JSON.stringify(all)}`);
}, ['ds']);
await step('dataset.get_statistics', async () => {
    check(await c.dataset(x.ds).getStatistics(), 'no statistics');
}, ['ds']);
await step('dataset.delete', async () => {
    await c.dataset(x.ds).delete();
    check((await c.dataset(x.ds).get()) === undefined, 'deleted dataset still there');
}, ['ds']);

// Key-value stores
await step('key_value_stores.get_or_create', async () => {
    const kvs = await c.keyValueStores().getOrCreate(`${tag}-kvs`);
    check((await c.keyValueStores().getOrCreate(`${tag}-kvs`)).id === kvs.id, 'a second store');
    x.kvs = kvs.id;
});
await step('key_value_stores.list', async () => {
    const page = await c.keyValueStores().list({ limit: 1000 });
    check(page.items.some((k) => k.id === x.kvs), 'named store not listed');
}, ['kvs']);
await step('key_value_store.get + update', async () => {
    check((await c.keyValueStore(x.kvs).get()).id === x.kvs, 'kvs.get');
    check((await c.keyValueStore(x.kvs).update({ name: `${tag}-kvs2` })).name === `${tag}-kvs2`, 'rename');
}, ['kvs']);
await step('key_value_store.set_record', async () => {
    const kvs = c.keyValueStore(x.kvs);
    await kvs.setRecord({ key: 'a-json', value: { hello: 'world' } });
    await kvs.setRecord({ key: 'b-text', value: 'plain text', contentType: 'text/plain' });
    await kvs.setRecord({ key: 'c-bytes', value: Buffer.from([0, 1]), contentType: 'application/x-bin' });
    await kvs.setRecord({ key: 'other', value: [1, 2] });
}, ['kvs']);
await step('key_value_store.get_record', async () => {
    const kvs = c.keyValueStore(x.kvs);
    const rec = await kvs.getRecord('a-json');
    check(rec && JSON.stringify(rec.value) === '{"hello":"world"}', `record ${JSON.stringify(rec)}`);
    check((await kvs.getRecord('b-text')).value === 'plain text', 'text record');
    check((await kvs.getRecord('no-such-key')) === undefined, 'missing record not undefined');
}, ['kvs']);
await step('key_value_store.record_exists', async () => {
    const kvs = c.keyValueStore(x.kvs);
    check((await kvs.recordExists('a-json')) === true, 'existing record');
    check((await kvs.recordExists('no-such-key')) === false, 'missing record');
}, ['kvs']);
await step('key_value_store.list_keys (limit/exclusiveStartKey/prefix)', async () => {
    const kvs = c.keyValueStore(x.kvs);
    const first = await kvs.listKeys({ limit: 2 });
    check(JSON.stringify(first.items.map((k) => k.key)) === '["a-json","b-text"]', JSON.stringify(first.items));
    check(first.isTruncated && first.nextExclusiveStartKey === 'b-text', 'truncation');
    const rest = await kvs.listKeys({ exclusiveStartKey: 'b-text' });
    check(JSON.stringify(rest.items.map((k) => k.key)) === '["c-bytes","other"]', JSON.stringify(rest.items));
    const pre = await kvs.listKeys({ prefix: 'b-' });
    check(JSON.stringify(pre.items.map((k) => k.key)) === '["b-text"]', JSON.stringify(pre.items));
}, ['kvs']);
await step('key_value_store.delete_record', async () => {
    await c.keyValueStore(x.kvs).deleteRecord('other');
    check((await c.keyValueStore(x.kvs).getRecord('other')) === undefined, 'deleted record there');
}, ['kvs']);
await step('key_value_store.delete', async () => {
    await c.keyValueStore(x.kvs).delete();
    check((await c.keyValueStore(x.kvs).get()) === undefined, 'deleted store there');
}, ['kvs']);

// Request queues
await step('request_queues.get_or_create', async () => {
    const rq = await c.requestQueues().getOrCreate(`${tag}-rq`);
    check((await c.requestQueues().getOrCreate(`${tag}-rq`)).id === rq.id, 'a second queue');
    x.rq = rq.id;
});
await step('request_queues.list', async () => {
    const page = await c.requestQueues().list({ limit: 1000 });
    check(page.items.some((q) => q.id === x.rq), 'named queue not listed');
}, ['rq']);
await step('request_queue.get + update', async () => {
    check((await c.requestQueue(x.rq).get()).id === x.rq, 'rq.get');
    check((await c.requestQueue(x.rq).update({ name: `${tag}-rq2` })).name === `${tag}-rq2`, 'rename');
}, ['rq']);
await step('request_queue.add_request', async () => {
    const rq = c.requestQueue(x.rq);
    const reg = await rq.addRequest({ url: 'https://example.com/1', uniqueKey: 'https://example.com/1' });
    check(!reg.wasAlreadyPresent, 'first add was already present');
    const again = await rq.addRequest({ url: 'https://example.com/1', uniqueKey: 'https://example.com/1' });
    check(again.wasAlreadyPresent && again.requestId === reg.requestId, 'second add');
    x.req = reg.requestId;
}, ['rq']);
await step('request_queue.get_request', async () => {
    const req = await c.requestQueue(x.rq).getRequest(x.req);
    check(req && req.url === 'https://example.com/1', 'getRequest');
    x.req_obj = req;
    check((await c.requestQueue(x.rq).getRequest('noSuchRequest00')) === undefined, 'unknown request');
}, ['req']);
await step('request_queue.update_request', async () => {
    const reg = await c.requestQueue(x.rq).updateRequest({ ...x.req_obj, userData: { label: 'DETAIL' } });
    check(reg.requestId === x.req, 'updateRequest');
    check((await c.requestQueue(x.rq).getRequest(x.req)).userData, 'userData not kept');
}, ['req_obj']);
await step('request_queue.batch_add_requests', async () => {
    const res = await c.requestQueue(x.rq).batchAddRequests([0, 1, 2, 3].map((i) => ({ url: `https://example.com/b${i}`, uniqueKey: `b${i}` })));
    check(res.processedRequests.length === 4 && !res.unprocessedRequests.length, 'batch add');
}, ['rq']);
await step('request_queue.list_head', async () => {
    const head = await c.requestQueue(x.rq).listHead({ limit: 10 });
    check(head.items.length === 5, `${head.items.length} in head`);
}, ['rq']);
await step('request_queue.list_and_lock_head', async () => {
    const rq = c.requestQueue(x.rq, { clientKey: 'tour-client' });
    const head = await rq.listAndLockHead({ lockSecs: 60, limit: 2 });
    check(head.items.length === 2, `locked ${head.items.length}`);
    const locked = new Set(head.items.map((i) => i.id));
    const again = await rq.listAndLockHead({ lockSecs: 60, limit: 10 });
    check(!again.items.some((i) => locked.has(i.id)), 'locked twice');
    await rq.unlockRequests();
    x.locked = (await rq.listAndLockHead({ lockSecs: 60, limit: 1 })).items.map((i) => i.id);
}, ['rq']);
await step('request_queue.prolong_request_lock', async () => {
    const rq = c.requestQueue(x.rq, { clientKey: 'tour-client' });
    const info = await rq.prolongRequestLock(x.locked[0], { lockSecs: 120 });
    check(info && info.lockExpiresAt, 'prolong');
}, ['locked']);
await step('request_queue.delete_request_lock', async () => {
    await c.requestQueue(x.rq, { clientKey: 'tour-client' }).deleteRequestLock(x.locked[0]);
}, ['locked']);
await step('request_queue.unlock_requests', async () => {
    const rq = c.requestQueue(x.rq, { clientKey: 'tour-client' });
    await rq.listAndLockHead({ lockSecs: 60, limit: 3 });
    const res = await rq.unlockRequests();
    check(res.unlockedCount === 3, `unlocked ${res.unlockedCount}`);
}, ['rq']);
await step('request_queue.list_requests', async () => {
    check((await c.requestQueue(x.rq).listRequests({ limit: 3 })).items.length === 3, 'limit=3');
    check((await c.requestQueue(x.rq).listRequests({ limit: 100 })).items.length === 5, 'all 5');
}, ['rq']);
await step('request_queue.delete_request', async () => {
    await c.requestQueue(x.rq).deleteRequest(x.req);
    check((await c.requestQueue(x.rq).getRequest(x.req)) === undefined, 'deleted request there');
}, ['req']);
await step('request_queue.batch_delete_requests', async () => {
    const res = await c.requestQueue(x.rq).batchDeleteRequests([{ uniqueKey: 'b0' }, { uniqueKey: 'b1' }]);
    check(res.processedRequests.length === 2, 'batch delete');
}, ['rq']);
await step('request_queue.delete', async () => {
    await c.requestQueue(x.rq).delete();
    check((await c.requestQueue(x.rq).get()) === undefined, 'deleted queue there');
}, ['rq']);

// Webhooks
await step('webhooks.create', async () => {
    const wh = await c.webhooks().create({ eventTypes: ['ACTOR.RUN.SUCCEEDED'], requestUrl: hookUrl, condition: { actorId: x.hello_id }, description: 'tour' });
    x.wh = wh.id;
}, ['hello_id']);
await step('webhooks.list', async () => {
    check((await c.webhooks().list({ limit: 100 })).items.some((w) => w.id === x.wh), 'not listed');
}, ['wh']);
await step('webhook.get + update', async () => {
    check((await c.webhook(x.wh).get()).id === x.wh, 'webhook.get');
    check((await c.webhook(x.wh).update({ description: 'tour, updated' })).description === 'tour, updated', 'update');
}, ['wh']);
await step('webhook.test', async () => {
    const before = received.length;
    const dispatch = await c.webhook(x.wh).test();
    check(dispatch && dispatch.webhookId === x.wh, 'test dispatch');
    for (let i = 0; i < 100 && received.length <= before; i++) await sleep(50);
    check(received.length > before, 'the test dispatch never arrived');
    x.dispatch = dispatch.id;
}, ['wh']);
await step('webhook.dispatches', async () => {
    const page = await c.webhook(x.wh).dispatches().list();
    check(page.items.some((d) => d.id === x.dispatch), 'test dispatch not listed');
    check((await c.webhookDispatch(x.dispatch).get()).id === x.dispatch, 'dispatch get');
}, ['dispatch']);
await step('webhook.delete', async () => {
    await c.webhook(x.wh).delete();
    check((await c.webhook(x.wh).get()) === undefined, 'deleted webhook still there');
}, ['wh']);

// Users
await step('user.get (me)', async () => {
    const me = await c.user().get();
    check(me && me.username, 'me');
});
await step('user.limits', async () => {
    check((await c.user().limits()).limits, 'limits');
});

receiver.close();
const width = Math.max(...results.map((r) => r.name.length));
console.log(`${'step'.padEnd(width)}  ok    http  error`);
for (const r of results) console.log(`${r.name.padEnd(width)}  ${(r.ok ? 'ok' : 'FAIL').padEnd(4)}  ${String(r.status ?? '').padEnd(4)}  ${(r.error ?? '').slice(0, 160)}`);
console.log(`${results.filter((r) => r.ok).length}/${results.length} steps passed`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ client: 'js', results }, null, 1));
process.exit(results.every((r) => r.ok) ? 0 : 1);
