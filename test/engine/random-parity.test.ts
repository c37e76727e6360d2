/**
 * Random numbers against PyTorch, bit for bit: after manualSeed(s) (and with a Generator seeded s + 1) every
 * case of the random table in parity-cases.ts must give exactly the numbers torch gives for the same seed
 * (test/oracle/fixtures_random.py). Also: saving and restoring generator states replays the same numbers.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { Generator, getRngState, manualSeed, memory, rand, randn, setRngState, tidy, torchSeed, type Tensor } from "../../src/engine/index.js";
import { Fixture, fixtureDir, randomCases, randomSpec, seedValue, type RandomSpec } from "./parity-cases.js";

interface ManifestCase {
  case: RandomSpec;
  outputs: Record<string, number>;
}

const dir = fixtureDir("random");
const fixture = existsSync(new URL("manifest.json", dir)) ? new Fixture(dir) : undefined;
const manifest = new Map(((fixture?.manifest as { cases: ManifestCase[] } | undefined)?.cases ?? []).map((m) => [m.case.name, m]));
const regenerate = "run `.venv/bin/python test/oracle/generate.py random`";

function assertIdentical(what: string, actual: Tensor, expected: Tensor): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape [${actual.shape.join(", ")}], PyTorch's is [${expected.shape.join(", ")}]`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype ${actual.dtype}, PyTorch's is ${expected.dtype}`);
  const a = actual.bytes();
  const b = expected.bytes();
  const first = a.findIndex((byte, i) => byte !== b[i]);
  assert.ok(first < 0, `${what}: not bitwise equal (first difference at byte ${first}: ${actual.toString()} vs PyTorch's)`);
}

void test("random numbers are PyTorch's, bit for bit", async (t) => {
  assert.ok(fixture, `no oracle fixtures in ${fileURLToPath(dir)}: ${regenerate}`);
  const before = memory().tensors;
  const saved = getRngState();
  try {
    for (const k of randomCases) {
      await t.test(k.name, () => {
        const m = manifest.get(k.name);
        assert.ok(m, `case ${k.name} is not in the fixtures: ${regenerate}`);
        assert.deepEqual(m.case, JSON.parse(JSON.stringify(randomSpec(k))), `the fixtures are stale: ${regenerate}`);
        for (const seed of k.seeds) {
          tidy(() => {
            manualSeed(seedValue(seed));
            const g = new Generator("cpu", BigInt(seed) + 1n);
            const result = k.run(g);
            const outs = Array.isArray(result) ? result : [result];
            assert.equal(outs.length, m.outputs[seed], `seed ${seed}: ${outs.length} outputs, PyTorch's expression gave ${m.outputs[seed]}`);
            outs.forEach((out, i) => assertIdentical(`seed ${seed}, output ${i}`, out, fixture.tensor(`${k.name}/${seed}/y${i}`)));
          });
        }
      });
    }
  } finally {
    setRngState(saved);
    saved.dispose();
  }
  await t.test("memory stays flat", () => {
    assert.equal(memory().tensors, before, "live tensors after all cases");
  });
  fixture.dispose();
});

void test("getRngState / setRngState replay the same numbers", () => {
  tidy(() => {
    manualSeed(1234);
    randn([3]); // leave a cached normal sample in the state
    const state = getRngState();
    const first = [randn([5]), rand([20]), randn([17], { dtype: "float64" })];
    randn([100]);
    setRngState(state);
    const again = [randn([5]), rand([20]), randn([17], { dtype: "float64" })];
    first.forEach((x, i) => assert.deepEqual(again[i]!.bytes(), x.bytes(), `draw ${i} after setRngState`));
    setRngState(state);
    assert.deepEqual(getRngState().bytes(), state.bytes(), "getRngState after setRngState");
  });
});

void test("Generator getState / setState replay the same numbers without touching the default generator", () => {
  tidy(() => {
    const g = new Generator("cpu", 99);
    randn([2], { generator: g });
    const state = g.getState();
    const globalBefore = getRngState();
    const first = [randn([6], { generator: g }), rand([18], { generator: g })];
    g.setState(state);
    const again = [randn([6], { generator: g }), rand([18], { generator: g })];
    first.forEach((x, i) => assert.deepEqual(again[i]!.bytes(), x.bytes(), `draw ${i} after setState`));
    assert.deepEqual(getRngState().bytes(), globalBefore.bytes(), "the default generator's state changed");
    g.manualSeed(99);
    const reseeded = randn([2], { generator: g });
    assert.deepEqual(reseeded.bytes(), (() => { const h = new Generator("cpu", 99); return randn([2], { generator: h }).bytes(); })());
  });
});

void test("seeds take exactly PyTorch's manual_seed range: a negative seed is taken modulo 2^64, the rest refused", () => {
  tidy(() => {
    // torch.Generator().manual_seed(-1) and manual_seed(2**64 - 1) draw the same: randn(2) = [1.2198, -0.3930].
    assert.equal(torchSeed(-1), 2n ** 64n - 1n);
    assert.equal(torchSeed(-(2n ** 63n)), 2n ** 63n);
    const negative = randn([2], { generator: new Generator("cpu", -1n) });
    assert.deepEqual(negative.bytes(), randn([2], { generator: new Generator("cpu", 2n ** 64n - 1n) }).bytes());
    (negative.toArray() as number[]).forEach((x, i) => assert.ok(Math.abs(x - [1.2198, -0.393][i]!) < 1e-4, `draw ${i}: ${x}`));
    manualSeed(-1);
    assert.deepEqual(randn([2]).bytes(), negative.bytes(), "manualSeed(-1) is torch.manual_seed(-1)");
    // Before this check the addon kept a BigInt's low 64 bits: 2^64 was silently seed 0.
    for (const seed of [2n ** 64n, -(2n ** 63n) - 1n, 1.5, 2 ** 60]) {
      assert.throws(() => new Generator("cpu", seed), RangeError, String(seed));
      assert.throws(() => manualSeed(seed), RangeError, String(seed));
    }
  });
});
