/**
 * The README's runnable examples: the first ```ts block after a marker comment (`<!-- library example: … -->`,
 * `<!-- package example: … -->`). Tests run them, so the README cannot drift from the code.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));

/** The code of the ```ts block that follows `<!-- <name>:` in README.md. */
export function readmeExample(name: "library example" | "package example"): string {
  const readme = readFileSync(path.join(root, "README.md"), "utf8");
  const marker = readme.indexOf(`<!-- ${name}:`);
  assert.ok(marker >= 0, `README.md has the ${name} marker`);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(marker));
  assert.ok(block, `a \`\`\`ts block follows the ${name} marker`);
  return block[1]!;
}
