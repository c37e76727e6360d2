/**
 * Every operator of the engine and its gradient against PyTorch: the cases of parity-cases.ts run on the
 * oracle's inputs (test/oracle/fixtures_ops.py) and are compared with PyTorch's outputs and gradients.
 * One subtest per case, so a failure names the operator.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { memory, tidy } from "../../src/engine/index.js";
import { cases, Fixture, fixtureDir } from "./parity-cases.js";
import { runCase, type ManifestCase } from "./parity-check.js";

const dir = fixtureDir("ops");
const fixture = existsSync(new URL("manifest.json", dir)) ? new Fixture(dir) : undefined;
const manifest = new Map(((fixture?.manifest as { cases: ManifestCase[] } | undefined)?.cases ?? []).map((m) => [m.case.name, m]));

void test("operator parity with PyTorch (outputs and gradients)", async (t) => {
  assert.ok(fixture, `no oracle fixtures in ${fileURLToPath(dir)}: run \`.venv/bin/python test/oracle/generate.py ops\``);
  const before = memory().tensors;
  for (const k of cases) {
    await t.test(k.name, () => {
      const m = manifest.get(k.name);
      assert.ok(m, `case ${k.name} is not in the fixtures: run \`.venv/bin/python test/oracle/generate.py ops\``);
      tidy(() => runCase(k, m, fixture));
    });
  }
  await t.test("every fixture case is in the table", () => {
    const names = new Set(cases.map((k) => k.name));
    assert.deepEqual([...manifest.keys()].filter((n) => !names.has(n)), []);
  });
  await t.test("memory stays flat", () => {
    assert.equal(memory().tensors, before, "live tensors after all cases");
  });
  fixture.dispose();
});
