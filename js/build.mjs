// Bundles js/src into dragstream_widget/widget/static/: one ES module per widget and the stylesheet.
// Each bundle's first line records a hash of the sources so the tests can tell a stale build.
import { createHash } from "node:crypto";
import { copyFileSync, readdirSync, readFileSync } from "node:fs";
import { build } from "esbuild";

const source = new URL("./src/", import.meta.url);
const out = new URL("../dragstream_widget/widget/static/", import.meta.url);
const BUNDLES = [
  ["index.js", "widget.js"], // DragStreamWidget
  ["strips.js", "strips.js"], // LiveStrips
];

function sourceHash() {
  const hash = createHash("sha256");
  for (const name of readdirSync(source).sort()) {
    hash.update(name);
    hash.update("\0");
    hash.update(readFileSync(new URL(name, source)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

const banner = `// dragstream_widget front end, built from js/src (source sha256 ${sourceHash()})`;
for (const [entry, bundle] of BUNDLES) {
  await build({
    entryPoints: [new URL(entry, source).pathname],
    bundle: true,
    format: "esm",
    target: "es2020",
    outfile: new URL(bundle, out).pathname,
    banner: { js: banner },
    legalComments: "none",
  });
}
copyFileSync(new URL("widget.css", source), new URL("widget.css", out));
console.log("built", out.pathname);
