// Bundles js/src into dragstream_widget/widget/static/ (one ES module and its stylesheet).
// The bundle's first line records a hash of the sources so the tests can tell a stale build.
import { createHash } from "node:crypto";
import { copyFileSync, readdirSync, readFileSync } from "node:fs";
import { build } from "esbuild";

const source = new URL("./src/", import.meta.url);
const out = new URL("../dragstream_widget/widget/static/", import.meta.url);

export function sourceHash() {
  const hash = createHash("sha256");
  for (const name of readdirSync(source).sort()) {
    hash.update(name);
    hash.update("\0");
    hash.update(readFileSync(new URL(name, source)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

await build({
  entryPoints: [new URL("index.js", source).pathname],
  bundle: true,
  format: "esm",
  target: "es2020",
  outfile: new URL("widget.js", out).pathname,
  banner: { js: `// dragstream_widget front end, built from js/src (source sha256 ${sourceHash()})` },
  legalComments: "none",
});
copyFileSync(new URL("widget.css", source), new URL("widget.css", out));
console.log("built", new URL("widget.js", out).pathname);
