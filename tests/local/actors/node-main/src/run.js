// No start script: the runtime runs package.json's `main` with node, as Node images do.
const fs = require("fs");
const path = require("path");
const store = path.join(process.env.APIFY_LOCAL_STORAGE_DIR, "key_value_stores", "default");
const data = JSON.stringify({ script: path.relative(process.cwd(), process.argv[1]),
                              npm: Boolean(process.env.npm_lifecycle_event) });
fs.writeFileSync(path.join(store, "OUTPUT"), data);
fs.writeFileSync(path.join(store, "OUTPUT.__metadata__.json"), JSON.stringify(
  { key: "OUTPUT", content_type: "application/json; charset=utf-8", size: data.length }));
