// Text stats: a JavaScript Actor on the Apify SDK, as it would run on the platform. It
// writes no OUTPUT record: its output schema (.actor/output_schema.json) names what it
// gives, the dataset of rows and the SUMMARY record, and the run's `output` links to both.
import { Actor } from 'apify';

await Actor.init();
const { texts = [] } = (await Actor.getInput()) ?? {};
const rows = texts.map((text, i) => {
    const words = text.split(/\s+/).filter(Boolean);
    const longest = words.reduce((a, b) => (b.length > a.length ? b : a), '');
    return { n: i + 1, text, characters: text.length, words: words.length, longest };
});
await Actor.setStatusMessage(`Measured ${rows.length} texts`);
await Actor.pushData(rows);
await Actor.setValue('SUMMARY', {
    texts: rows.length,
    words: rows.reduce((sum, row) => sum + row.words, 0),
    longest: rows.map((row) => row.longest).reduce((a, b) => (b.length > a.length ? b : a), ''),
});
await Actor.exit();
