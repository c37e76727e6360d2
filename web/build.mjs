// Builds the page of `hdb serve` (web/src, Preact + TypeScript) into web/dist with esbuild: one minified script, the
// stylesheet and index.html. The built files are committed and ship with the package, so serving needs no build step;
// run `npm run build:web` after changing web/src (test/server/page.test.ts checks that web/dist is up to date).
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, "dist");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [path.join(here, "src", "main.tsx")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "safari14"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outfile: path.join(out, "app.js"),
  legalComments: "none",
  logLevel: "warning",
});
copyFileSync(path.join(here, "src", "style.css"), path.join(out, "app.css"));
copyFileSync(path.join(here, "src", "index.html"), path.join(out, "index.html"));
