// The example's asset build: every file of resources/css, joined into public/build/panel.css, with
// a manifest naming the content hash (as a bundler's would). No dependencies, so `npm ci` needs no
// network.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";

const css = readdirSync("resources/css").sort().map((name) => readFileSync(`resources/css/${name}`, "utf8")).join("\n");
const hash = createHash("sha256").update(css).digest("hex").slice(0, 12);
mkdirSync("public/build", { recursive: true });
writeFileSync("public/build/panel.css", css);
writeFileSync("public/build/manifest.json", JSON.stringify({ "panel.css": { file: "panel.css", hash } }, null, 2) + "\n");
console.log(`built public/build/panel.css (${hash})`);
