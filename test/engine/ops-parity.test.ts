/**
 * Every operator of the engine and its gradient against PyTorch: the cases of parity-cases.ts run on the
 * oracle's inputs (test/oracle/fixtures_ops.py) and are compared with PyTorch's outputs and gradients.
 * One subtest per case, so a failure names the operator.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { grad, isFloatingDType, manualSeed, memory, tidy, zerosLike, type Tensor } from "../../src/engine/index.js";
import { cases, caseSpec, defaultTolerance, Fixture, fixtureDir, type CaseSpec, type Inputs, type ParityCase } from "./parity-cases.js";

interface ManifestCase {
  case: CaseSpec;
  outputs: number;
  requiresGrad: boolean[];
  gradInputs: number[];
}

const dir = fixtureDir("ops");
const fixture = existsSync(new URL("manifest.json", dir)) ? new Fixture(dir) : undefined;
const manifest = new Map(((fixture?.manifest as { cases: ManifestCase[] } | undefined)?.cases ?? []).map((m) => [m.case.name, m]));

/** |actual - expected| <= tol * max(1, |expected|); NaN only where NaN, infinities only where equal. */
function assertClose(what: string, actual: Tensor, expected: Tensor, tol: number | null): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape [${actual.shape.join(", ")}], PyTorch's is [${expected.shape.join(", ")}]`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype ${actual.dtype}, PyTorch's is ${expected.dtype}`);
  if (!isFloatingDType(expected.dtype)) {
    assert.deepEqual(actual.bytes(), expected.bytes(), `${what}: ${expected.dtype} values differ`);
    return;
  }
  const limit = tol ?? defaultTolerance[expected.dtype]!;
  const a = actual.to("float64").data() as Float64Array;
  const b = expected.to("float64").data() as Float64Array;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(y) || !Number.isFinite(y)) {
      if (!Object.is(x, y) && !(Number.isNaN(x) && Number.isNaN(y))) { worst = i; break; }
      continue;
    }
    const excess = Math.abs(x - y) / (limit * Math.max(1, Math.abs(y)));
    if (!(excess <= 1)) {
      if (worst < 0 || excess > worstExcess || Number.isNaN(excess)) { worst = i; worstExcess = excess; }
    }
  }
  if (worst >= 0) {
    assert.fail(`${what}: element ${worst} is ${a[worst]}, PyTorch's is ${b[worst]} (tolerance ${limit} relative, max(1, |x|)-scaled)`);
  }
}

function runCase(k: ParityCase, m: ManifestCase, f: Fixture): void {
  assert.deepEqual(m.case, JSON.parse(JSON.stringify(caseSpec(k))), "the fixtures are stale: run `.venv/bin/python test/oracle/generate.py ops`");
  const xs = k.inputs.map((spec, i) => {
    const x = f.tensor(`${k.name}/x${i}`);
    if (spec.grad) x.requiresGrad = true;
    return x;
  });
  if (k.seed !== null) manualSeed(k.seed);
  const result = k.run(xs as Inputs);
  const outs = Array.isArray(result) ? result : [result];
  assert.equal(outs.length, m.outputs, `${outs.length} outputs, PyTorch's expression gave ${m.outputs}`);
  outs.forEach((out, i) => {
    assertClose(`output ${i}`, out, f.tensor(`${k.name}/y${i}`), k.tol);
    assert.equal(out.requiresGrad, m.requiresGrad[i], `output ${i}: requiresGrad ${out.requiresGrad}, PyTorch's is ${m.requiresGrad[i]}`);
  });
  if (m.gradInputs.length === 0) return;
  const diff = outs.filter((o) => o.requiresGrad);
  const gradOutputs = diff.map((_, i) => f.tensor(`${k.name}/g${i}`));
  const inputs = m.gradInputs.map((i) => xs[i]!);
  const grads = grad(diff, inputs, { gradOutputs, allowUnused: true });
  m.gradInputs.forEach((i, j) => {
    const dx = grads[j] ?? zerosLike(xs[i]!);
    assertClose(`gradient of input ${i}`, dx, f.tensor(`${k.name}/dx${i}`), k.gradTol ?? k.tol);
  });
}

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
