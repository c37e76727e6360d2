// Optimizer mechanics: parameter groups, zeroGrad, state dicts (in memory and through safetensors),
// validation errors, no leaked temporaries; and the fp16 loss scaler (GradScaler) on CPU.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { full, keep, manualSeed, memory, randn, readSafetensorsHeader, tidy, type Tensor } from "../../src/engine/index.js";
import { Linear } from "../../src/engine/nn/index.js";
import { AdamW, GradScaler, loadOptimizerState, saveOptimizerState, SGD } from "../../src/engine/optim/index.js";

/** A Linear layer with a fixed gradient-producing loss, for stepping optimizers by hand. */
function setup(seed = 0): { model: Linear; input: Tensor; lossOf: () => Tensor } {
  manualSeed(seed);
  const model = new Linear(4, 3);
  const input = keep(randn([6, 4]));
  return { model, input, lossOf: () => model.forward(input).square().mean() };
}

function train(optimizer: AdamW | SGD, lossOf: () => Tensor, steps: number): number[] {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    losses.push(tidy(() => {
      optimizer.zeroGrad();
      const loss = lossOf();
      loss.backward();
      optimizer.step();
      return loss.item();
    }));
  }
  return losses;
}

test("stateDict → loadStateDict into a fresh optimizer continues identically (in memory and through safetensors)", () => {
  const folder = mkdtempSync(path.join(tmpdir(), "optim-state-"));
  try {
    const reference = setup();
    const referenceOptimizer = new AdamW([{ params: [reference.model.weight] }, { params: [reference.model.bias!], lr: 0.05, weightDecay: 0 }], { lr: 0.01 });
    const expected = train(referenceOptimizer, reference.lossOf, 8);

    for (const via of ["memory", "file"] as const) {
      const run = setup();
      const optimizer = new AdamW([{ params: [run.model.weight] }, { params: [run.model.bias!], lr: 0.05, weightDecay: 0 }], { lr: 0.01 });
      const first = train(optimizer, run.lossOf, 3);
      const fresh = new AdamW([{ params: [run.model.weight] }, { params: [run.model.bias!], lr: 1, weightDecay: 0.5 }], { lr: 1 });
      if (via === "memory") {
        fresh.loadStateDict(optimizer.stateDict());
      } else {
        const file = path.join(folder, "adamw.safetensors");
        saveOptimizerState(file, optimizer);
        const header = readSafetensorsHeader(file);
        assert.deepEqual([...header.entries.keys()].sort(), ["state.0.exp_avg", "state.0.exp_avg_sq", "state.1.exp_avg", "state.1.exp_avg_sq"]);
        assert.equal(header.metadata["optimizer"], "AdamW");
        assert.deepEqual(JSON.parse(header.metadata["state"]!), { 0: { step: 3 }, 1: { step: 3 } });
        loadOptimizerState(file, fresh);
      }
      optimizer.dispose();
      assert.equal(fresh.paramGroups[1]!.lr, 0.05, "hyper-parameters come from the saved state");
      assert.equal(fresh.paramGroups[1]!.weightDecay, 0);
      assert.deepEqual([...first, ...train(fresh, run.lossOf, 5)], expected, `resumed via ${via}`);
      fresh.dispose();
      run.model.dispose();
      run.input.dispose();
    }
    referenceOptimizer.dispose();
    reference.model.dispose();
    reference.input.dispose();
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test("loading checks the groups, converts state to the parameter's dtype, and rejects another optimizer's file", () => {
  const folder = mkdtempSync(path.join(tmpdir(), "optim-state-"));
  const { model, input, lossOf } = setup();
  try {
    const sgd = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    train(sgd, lossOf, 2);
    const saved = sgd.stateDict();
    assert.deepEqual([...saved.tensors.keys()], ["state.0.momentum_buffer", "state.1.momentum_buffer"]);
    assert.throws(() => new SGD([{ params: [model.weight] }, { params: [model.bias!] }]).loadStateDict(saved), /1 parameter groups, this optimizer has 2/);
    assert.throws(() => new SGD([model.weight]).loadStateDict(saved), /2 parameters in the saved state but 1 here/);
    tidy(() => {
      const half = new Map([...saved.tensors].map(([key, value]) => [key, value.half()]));
      const other = new SGD(model.parameters());
      other.loadStateDict({ tensors: half, meta: saved.meta });
      assert.equal((other.state.get(model.weight)!["momentum_buffer"] as Tensor).dtype, "float32");
      assert.equal(other.paramGroups[0]!.momentum, 0.9);
      other.dispose();
    });
    const file = path.join(folder, "sgd.safetensors");
    saveOptimizerState(file, sgd);
    assert.throws(() => loadOptimizerState(file, new AdamW(model.parameters())), /holds SGD state, which cannot be loaded into AdamW/);
    sgd.dispose();
  } finally {
    model.dispose();
    input.dispose();
    rmSync(folder, { recursive: true, force: true });
  }
});

test("parameter groups: defaults fill missing hyper-parameters; duplicates and invalid values are refused", () => tidy(() => {
  const a = randn([2], { requiresGrad: true });
  const b = randn([2], { requiresGrad: true });
  const optimizer = new AdamW([{ params: [a] }, { params: [b], lr: 0.5, betas: [0.5, 0.6] }], { lr: 0.1 });
  assert.deepEqual(optimizer.paramGroups.map((g) => [g.lr, g.betas, g.weightDecay]), [[0.1, [0.9, 0.999], 0.01], [0.5, [0.5, 0.6], 0.01]]);
  assert.throws(() => optimizer.addParamGroup({ params: [a] }), /more than one parameter group/);
  assert.throws(() => new AdamW([a], { lr: -1 }), /invalid learning rate/);
  assert.throws(() => new AdamW([a], { betas: [1, 0.9] }), /beta parameter at index 0/);
  assert.throws(() => new SGD([a], { nesterov: true }), /Nesterov/);
  assert.throws(() => new SGD([]), /empty parameter list/);
}));

test("zeroGrad; parameters without gradients are skipped; steps leak no tensors", () => {
  const { model, input, lossOf } = setup();
  const optimizer = new AdamW(model.parameters());
  train(optimizer, lossOf, 1);
  const live = memory().tensors;
  train(optimizer, lossOf, 3);
  assert.equal(memory().tensors, live, "no tensors left behind by steps");
  tidy(() => lossOf().backward());
  optimizer.zeroGrad(false);
  assert.equal(tidy(() => model.weight.grad!.abs().sum().item()), 0);
  optimizer.zeroGrad();
  assert.equal(model.weight.grad, null);
  const before = tidy(() => model.weight.clone().detach());
  optimizer.step();
  assert.equal(tidy(() => model.weight.sub(before).abs().max().item()), 0, "no gradient, no update");
  before.dispose();
  optimizer.dispose();
  model.dispose();
  input.dispose();
});

test("GradScaler: scaled backward, unscale_, normal steps, growth after the interval, skipped step and backoff on inf", () => {
  const { model, input, lossOf } = setup(1);
  const optimizer = new SGD(model.parameters(), { lr: 0.1 });
  const scaler = new GradScaler({ growthInterval: 3 });
  assert.equal(scaler.getScale(), 65536);

  // One step by hand to check the unscaled gradients are the true ones.
  const trueGrad = tidy(() => {
    lossOf().backward();
    const grad = model.weight.grad!.clone();
    optimizer.zeroGrad();
    return grad;
  });
  tidy(() => {
    scaler.scale(lossOf()).backward();
    assert.ok(model.weight.grad!.div(trueGrad).sub(65536).abs().max().item() < 1e-2, "gradients are scaled by 2^16");
    scaler.unscale_(optimizer);
    assert.ok(model.weight.grad!.sub(trueGrad).abs().max().item() < 1e-7, "unscale_ restores the true gradients");
    assert.throws(() => scaler.unscale_(optimizer), /already been called/);
    assert.equal(scaler.step(optimizer), true);
    assert.throws(() => scaler.step(optimizer), /already been called/);
    scaler.update();
    optimizer.zeroGrad();
  });
  trueGrad.dispose();
  assert.equal(scaler.getScale(), 65536);
  assert.equal(scaler.getGrowthTracker(), 1);

  const scaledStep = (poison: boolean): boolean => tidy(() => {
    scaler.scale(lossOf()).backward();
    if (poison) model.bias!.grad!.fill_(Infinity);
    const stepped = scaler.step(optimizer);
    scaler.update();
    optimizer.zeroGrad();
    return stepped;
  });
  assert.equal(scaledStep(false), true);
  assert.equal(scaledStep(false), true);
  assert.equal(scaler.getScale(), 131072, "three clean steps in a row double the scale");
  assert.equal(scaler.getGrowthTracker(), 0);

  const weightBefore = tidy(() => model.weight.clone().detach());
  assert.equal(scaledStep(true), false, "an inf gradient skips the step");
  assert.equal(tidy(() => model.weight.sub(weightBefore).abs().max().item()), 0, "parameters untouched by the skipped step");
  assert.equal(scaler.getScale(), 65536, "and halves the scale");
  assert.equal(scaledStep(false), true);
  assert.notEqual(tidy(() => model.weight.sub(weightBefore).abs().max().item()), 0);
  weightBefore.dispose();

  const restored = new GradScaler({ growthInterval: 3 });
  restored.loadStateDict(scaler.stateDict());
  assert.deepEqual(restored.stateDict(), scaler.stateDict());
  tidy(() => assert.equal(restored.scale(full([], 1)).item(), 65536));

  tidy(() => {
    const half = keep(full([2], 1, { dtype: "float16", requiresGrad: true }));
    const fp16Optimizer = new SGD([half]);
    scaler.scale(half.sum()).backward();
    assert.throws(() => scaler.unscale_(fp16Optimizer), /unscale float16 gradients/);
    half.dispose();
  });
  const disabled = new GradScaler({ enabled: false });
  tidy(() => assert.equal(disabled.scale(full([], 3)).item(), 3));
  assert.equal(disabled.getScale(), 1);
  for (const item of [scaler, restored, disabled, optimizer, model]) item.dispose();
  input.dispose();
});
