/**
 * Running one case of the operator parity table (parity-cases.ts) against the oracle's fixtures and comparing
 * outputs and gradients: shared by test/engine/ops-parity.test.ts (CPU fixtures) and bench/gpu/parity.ts (the
 * same table on an accelerator, with fixtures that PyTorch computed on that device).
 */
import assert from "node:assert/strict";
import { grad, isFloatingDType, manualSeed, zerosLike, type Tensor } from "../../src/engine/index.js";
import { caseSpec, defaultTolerance, type CaseSpec, type Fixture, type Inputs, type ParityCase } from "./parity-cases.js";

/** One case of the oracle's manifest.json (test/oracle/fixtures_ops.py). */
export interface ManifestCase {
  case: CaseSpec;
  outputs: number;
  requiresGrad: boolean[];
  gradInputs: number[];
  /** Only for fixtures made on an accelerator: PyTorch itself failed on this case there (its message). */
  error?: string;
}

/**
 * |actual - expected| <= tol * max(1, |expected|); NaN only where NaN, infinities only where equal. The values
 * are read on the CPU (data() and bytes() copy a device tensor there).
 */
export function assertClose(what: string, actual: Tensor, expected: Tensor, tol: number | null): void {
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

/**
 * Runs case `k` on the fixture's inputs moved to `device` and asserts that its outputs, their requires_grad
 * and the gradients of sum(output · g) equal the oracle's (compared on the CPU). Call it inside a tidy scope.
 */
export function runCase(k: ParityCase, m: ManifestCase, f: Fixture, device = "cpu"): void {
  assert.deepEqual(m.case, JSON.parse(JSON.stringify(caseSpec(k))), "the fixtures are stale: run `.venv/bin/python test/oracle/generate.py ops`");
  if (m.error !== undefined) assert.fail(`PyTorch itself failed on ${device}: ${m.error}`);
  const xs = k.inputs.map((spec, i) => {
    const x = device === "cpu" ? f.tensor(`${k.name}/x${i}`) : f.tensor(`${k.name}/x${i}`).to(device);
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
  const gradOutputs = diff.map((o, i) => (o.device === "cpu" ? f.tensor(`${k.name}/g${i}`) : f.tensor(`${k.name}/g${i}`).to(o.device)));
  const inputs = m.gradInputs.map((i) => xs[i]!);
  const grads = grad(diff, inputs, { gradOutputs, allowUnused: true });
  m.gradInputs.forEach((i, j) => {
    const dx = grads[j] ?? zerosLike(xs[i]!);
    assertClose(`gradient of input ${i}`, dx, f.tensor(`${k.name}/dx${i}`), k.gradTol ?? k.tol);
  });
}
