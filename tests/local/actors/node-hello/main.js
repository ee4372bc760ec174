// Writes OUTPUT in the SDK's layout without any dependency.
const fs = require("fs");
const path = require("path");
const store = path.join(process.env.APIFY_LOCAL_STORAGE_DIR, "key_value_stores", "default");
const input = JSON.parse(fs.readFileSync(path.join(store, "INPUT")));
const data = JSON.stringify({ greeting: `Hello from Node, ${input.name}!` });
fs.writeFileSync(path.join(store, "OUTPUT"), data);
fs.writeFileSync(path.join(store, "OUTPUT.__metadata__.json"), JSON.stringify(
  { key: "OUTPUT", content_type: "application/json; charset=utf-8", size: data.length }));
