// npm pack's prepack step (after tsc): removes compiled files under dist/src whose TypeScript source is gone, so the
// package ships the current library only (tsc never deletes the output of a deleted or moved source file).
import { readdirSync, rmSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = path.join(root, "dist", "src");
let removed = 0;
for (const name of readdirSync(dist, { recursive: true, encoding: "utf8" })) {
  const match = /^(.*)\.(js|d\.ts|js\.map|d\.ts\.map)$/.exec(name);
  if (!match) continue;
  if (existsSync(path.join(root, "src", `${match[1]}.ts`))) continue;
  rmSync(path.join(dist, name));
  removed += 1;
}
if (removed > 0) console.error(`prune-dist: removed ${removed} compiled file(s) under dist/src with no source in src/`);
