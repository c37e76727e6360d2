// Deterministic lifetimes: tidy scopes, keep, `using`, dispose, the GC backstop, and live-tensor counting.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { keep, memory, ones, randn, tidy, type Tensor } from "../../src/engine/index.js";

test("tidy frees intermediates and keeps returned tensors (also nested in arrays and objects)", () => {
  const before = memory().tensors;
  const result = tidy(() => {
    const a = ones([4, 4]);
    const b = a.mul(3).add(1);
    return { sum: b.sum(), parts: [b.mean()] };
  });
  assert.equal(memory().tensors, before + 2);
  assert.equal(result.sum.item(), 16 * 4); // 16 elements of 1 * 3 + 1
  result.sum.dispose();
  result.parts[0]!.dispose();
  assert.equal(memory().tensors, before);
});

test("returned tensors move to the enclosing scope and are freed with it", () => {
  const before = memory().tensors;
  tidy(() => {
    const inner = tidy(() => ones([2]).mul(2));
    assert.equal(inner.disposed, false);
  });
  assert.equal(memory().tensors, before);
});

test("keep exempts a tensor from every scope", () => {
  const before = memory().tensors;
  let kept: Tensor | undefined;
  tidy(() => {
    kept = keep(randn([3]));
    randn([3]);
  });
  assert.equal(kept!.disposed, false);
  assert.equal(memory().tensors, before + 1);
  kept!.dispose();
  assert.equal(memory().tensors, before);
});

test("a throwing scope still frees what it made", () => {
  const before = memory().tensors;
  assert.throws(() => tidy(() => {
    ones([8]);
    throw new Error("boom");
  }), /boom/);
  assert.equal(memory().tensors, before);
});

test("`using` disposes at the end of the block; dispose is idempotent; use after dispose is a clear error", () => {
  const before = memory().tensors;
  let escaped: Tensor;
  {
    using t = ones([2, 2]);
    escaped = t;
    assert.equal(memory().tensors, before + 1);
  }
  assert.equal(memory().tensors, before);
  escaped.dispose();
  assert.throws(() => escaped.sum(), /disposed/);
});

test("memory() counts distinct storages once (views share their base's bytes)", () => {
  tidy(() => {
    const base = memory();
    const t = ones([256], { dtype: "float32" });
    const view = t.view(16, 16);
    const after = memory();
    assert.equal(after.tensors - base.tensors, 2);
    assert.equal(after.bytes - base.bytes, 1024);
    void view;
  });
});

test("the FinalizationRegistry backstop frees forgotten tensors once they are garbage collected", () => {
  const script = fileURLToPath(new URL("./fixtures/gc-backstop.js", import.meta.url));
  const child = spawnSync(process.execPath, ["--expose-gc", script], { encoding: "utf8", timeout: 60_000 });
  assert.equal(child.status, 0, child.stderr);
  const { before, forgotten, after } = JSON.parse(child.stdout.trim()) as { before: number; forgotten: number; after: number };
  assert.equal(forgotten, before + 1000);
  assert.ok(after <= before + 10, `expected the backstop to free forgotten tensors: before=${before} after=${after}`);
});
