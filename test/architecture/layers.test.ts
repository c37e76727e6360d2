// The layer order (.dependency-cruiser.js, docs/ARCHITECTURE.md), checked by dependency-cruiser: src/ has no
// import the wrong way, and the rules do catch one (on a small tree of wrong-way imports), so they cannot
// silently pass everything (a path pattern that matches nothing, imports that fail to resolve).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const CONFIG = path.join(root, ".dependency-cruiser.js");
const DEPCRUISE = path.join(root, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");

interface Violation {
  from: string;
  to: string;
  rule: { name: string; severity: string };
}

/** Runs dependency-cruiser on `cwd`/src with the project's rules; the violations, as "rule: from → to". */
function cruise(cwd: string): string[] {
  const run = spawnSync(process.execPath, [DEPCRUISE, "src", "--config", CONFIG, "--output-type", "json"], { cwd, encoding: "utf8" });
  if (run.error) throw run.error;
  let result: { summary: { violations: Violation[]; totalCruised: number } };
  try {
    result = JSON.parse(run.stdout) as typeof result;
  } catch {
    throw new Error(`depcruise (exit ${run.status}) printed no JSON:\n${run.stdout}\n${run.stderr}`);
  }
  assert.ok(result.summary.totalCruised > 0, "dependency-cruiser found no modules");
  return result.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();
}

test("src/ imports only its own layer, util and the layers below it", () => {
  assert.deepEqual(cruise(root), []);
});

test("the layer rules report wrong-way imports, cycles and unresolvable imports, and allow the right ones", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "hdb-layers-"));
  try {
    const files: Record<string, string> = {
      // Allowed: down the order, and within a layer.
      "src/util/a.ts": `export const a = 1;\n`,
      "src/engine/x.ts": `import { a } from "../util/a.js";\nimport { y } from "../cli/y.js";\nexport const x = a + y;\n`,
      "src/models/m.ts": `import { x } from "../engine/x.js";\nexport const m = x;\n`,
      "src/pipeline/p.ts": `import { m } from "../models/m.js";\nimport { l } from "../adapters/l.js";\nexport const p = m + l;\n`,
      "src/adapters/l.ts": `export const l = 1;\n`,
      "src/miniworld/w.ts": `import { p } from "../pipeline/p.js";\nimport { r } from "./base-model/r.js";\nexport const w = p + r;\n`,
      "src/evaluation/e.ts": `import { w } from "../miniworld/w.js";\nimport { l } from "../adapters/l.js";\nexport const e = w + l;\n`,
      "src/miniworld/base-model/r.ts": `export const r = 1;\n`,
      "src/miniworld/base-model/s.ts": `import { e } from "../../evaluation/e.js";\nimport { w } from "../w.js";\nimport { l } from "../../adapters/l.js";\nexport const s = e + w + l;\n`,
      "src/cli/y.ts": `export const y = 1;\n`,
      "src/cli/z.ts": `import { s } from "../miniworld/base-model/s.js";\nimport { t } from "../../test/t.js";\nexport const z = s + t;\n`,
      "src/index.ts": `export { z } from "./cli/z.js";\n`,
      // A cycle inside one layer, and an import of nothing.
      "src/models/c1.ts": `import { c2 } from "./c2.js";\nexport const c1 = (): number => c2();\n`,
      "src/models/c2.ts": `import { c1 } from "./c1.js";\nimport { gone } from "./missing.js";\nexport const c2 = (): number => c1() + gone;\n`,
      "test/t.ts": `export const t = 1;\n`,
      "tsconfig.json": JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true } }),
      "package.json": JSON.stringify({ name: "layers-fixture", type: "module" }),
    };
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), text);
    }
    assert.deepEqual(cruise(dir), [
      "layer-engine: src/engine/x.ts → src/cli/y.ts",
      "layer-pipeline: src/pipeline/p.ts → src/adapters/l.ts",
      "layer-recipe: src/miniworld/base-model/s.ts → src/adapters/l.ts",
      "layer-world: src/miniworld/w.ts → src/miniworld/base-model/r.ts",
      "no-circular: src/models/c1.ts → src/models/c2.ts",
      "not-to-unresolvable: src/models/c2.ts → ./missing.js",
      "src-not-to-test-or-bench: src/cli/z.ts → test/t.ts",
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
