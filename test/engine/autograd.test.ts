// Autograd entry points: backward, .grad, grad mode scopes, torch.autograd.grad equivalents.
import assert from "node:assert/strict";
import { test } from "node:test";
import { enableGrad, grad, isGradEnabled, noGrad, ones, randn, stack, tensor, tidy } from "../../src/engine/index.js";

const close = (a: number, b: number, tol = 1e-6): void => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test("backward accumulates into .grad of leaves; setting grad to null clears it", () => tidy(() => {
  const w = tensor([1, 2, 3], { requiresGrad: true });
  w.mul(w).sum().backward();
  w.mul(w).sum().backward();
  assert.deepEqual(w.grad!.toArray(), [4, 8, 12]);
  w.grad = null;
  assert.equal(w.grad, null);
  assert.equal(w.isLeaf, true);
  assert.match(w.mul(2).gradFn ?? "", /^MulBackward/);
}));

test("backward with an explicit output gradient", () => tidy(() => {
  const w = tensor([1, 2], { requiresGrad: true });
  w.mul(3).backward(tensor([1, 10]));
  assert.deepEqual(w.grad!.toArray(), [3, 30]);
}));

test("noGrad records nothing; enableGrad re-enables inside it; modes restore after throws", () => tidy(() => {
  const w = ones([2], { requiresGrad: true });
  assert.equal(noGrad(() => w.mul(2)).requiresGrad, false);
  assert.equal(noGrad(() => enableGrad(() => w.mul(2))).requiresGrad, true);
  assert.throws(() => noGrad(() => {
    throw new Error("inside");
  }));
  assert.equal(isGradEnabled(), true);
}));

test("grad() returns gradients without touching .grad; allowUnused gives null", () => tidy(() => {
  const a = tensor([2], { requiresGrad: true });
  const b = tensor([5], { requiresGrad: true });
  const unused = tensor([1], { requiresGrad: true });
  const y = a.mul(b).sum();
  const [ga, gb, gu] = grad(y, [a, b, unused], { allowUnused: true });
  assert.deepEqual(ga!.toArray(), [5]);
  assert.deepEqual(gb!.toArray(), [2]);
  assert.equal(gu, null);
  assert.equal(a.grad, null);
  assert.throws(() => grad(a.mul(b).sum(), [unused]), /not have been used|unused/i);
}));

test("createGraph gives higher-order gradients (d²/dx² x³ = 6x)", () => tidy(() => {
  const x = tensor([1.5], { requiresGrad: true });
  const [dx] = grad(x.pow(3).sum(), [x], { createGraph: true });
  const [ddx] = grad(dx!.sum(), [x]);
  close(ddx!.item(), 9);
}));

test("per-sample gradients: grad of each sample's loss equals a loop, and grads flow through stacked weights", () => tidy(() => {
  const w = randn([3, 4], { requiresGrad: true });
  const xs = randn([5, 4]);
  const perSample = xs.matmul(w.mT()).square().sum(1);
  const rows = [0, 1, 2, 3, 4].map((i) => grad(perSample.select(0, i), [w], { retainGraph: true })[0]!);
  const all = grad(perSample.sum(), [w])[0]!;
  const summed = stack(rows).sum(0);
  assert.ok(summed.sub(all).abs().max().item() < 1e-5);
}));
