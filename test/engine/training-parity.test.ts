// Training parity with PyTorch (test/oracle/fixtures_training.py): a small MLP and a tiny transformer,
// built after the same manual seed and trained on the same data for 50 steps, give the same loss at every
// step. Tolerance: max relative difference of the per-step losses <= 1e-5 (the engine runs PyTorch's own
// kernels, so in practice the losses agree to the last bit or nearly). Also: saving the optimizer state
// mid-run and resuming in fresh objects continues exactly as uninterrupted training does.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { crossEntropy, keep, loadSafetensors, manualSeed, saveSafetensors, tidy, type Tensor } from "../../src/engine/index.js";
import { clipGradNorm_, GELU, Linear, Sequential, SiLU, type Module } from "../../src/engine/nn/index.js";
import { AdamW, cosineSchedule, loadOptimizerState, saveOptimizerState, type LRScheduler } from "../../src/engine/optim/index.js";
import { bitIdentical, decodeState, decodeTensor, maxAbsDiff, maxRelDiffOf, readFixture, type EncodedTensor } from "./nn-fixtures.js";
import { TinyTransformer } from "./tiny-transformer.js";

/** The acceptance bound on per-step loss differences against PyTorch. */
const LOSS_TOLERANCE = 1e-5;

interface MlpFixture {
  seed: number;
  inputs: EncodedTensor;
  labels: EncodedTensor;
  initial: Record<string, EncodedTensor>;
  losses: number[];
  final: Record<string, EncodedTensor>;
}

interface TransformerFixture {
  seed: number;
  config: { vocab_size: number; block_size: number; dim: number; heads: number; layers: number };
  training: { lr: number; betas: [number, number]; weight_decay: number; warmup_steps: number; max_grad_norm: number; batch_size: number };
  steps: number;
  data: EncodedTensor;
  initial: Record<string, EncodedTensor>;
  losses: number[];
  grad_norms: number[];
  lrs: number[][];
  final: Record<string, EncodedTensor>;
}

/** Asserts the module's state equals an encoded one bit for bit; returns nothing, fails with the key. */
function assertSameState(module: Module, encoded: Record<string, EncodedTensor>): void {
  tidy(() => {
    const expected = decodeState(encoded);
    const actual = module.stateDict();
    assert.deepEqual([...actual.keys()], [...expected.keys()]);
    for (const [key, value] of expected) assert.ok(bitIdentical(actual.get(key)!, value), `initial ${key} differs from PyTorch's`);
  });
}

/** Largest elementwise difference between the module's state and an encoded one. */
function stateDiff(module: Module, encoded: Record<string, EncodedTensor>): number {
  return tidy(() => {
    const actual = module.stateDict();
    return Math.max(...[...decodeState(encoded)].map(([key, value]) => maxAbsDiff(actual.get(key)!, value)));
  });
}

test("MLP: 50 AdamW steps give PyTorch's loss at every step", (t) => {
  const fixture = readFixture<MlpFixture>("training", "mlp.json");
  const inputs = keep(decodeTensor(fixture.inputs));
  const labels = keep(decodeTensor(fixture.labels));
  manualSeed(fixture.seed);
  const model = new Sequential(new Linear(16, 32), new GELU(), new Linear(32, 32), new SiLU(), new Linear(32, 4));
  assertSameState(model, fixture.initial);
  const optimizer = new AdamW(model.parameters(), { lr: 1e-2, weightDecay: 0.01 });
  const losses: number[] = [];
  for (let step = 0; step < fixture.losses.length; step++) {
    losses.push(tidy(() => {
      const loss = crossEntropy(model.forward(inputs), labels);
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      return loss.item();
    }));
  }
  const lossDiff = maxRelDiffOf(losses, fixture.losses);
  const weightDiff = stateDiff(model, fixture.final);
  t.diagnostic(`MLP: max relative loss difference ${lossDiff.toExponential(2)}, max |final weight difference| ${weightDiff.toExponential(2)}`);
  assert.ok(lossDiff <= LOSS_TOLERANCE, `loss differs from PyTorch by up to ${lossDiff} (relative)`);
  assert.ok(losses.at(-1)! < losses[0]! / 10, "the MLP learned");
  optimizer.dispose();
  model.dispose();
  inputs.dispose();
  labels.dispose();
});

/** Everything one transformer training run holds. */
interface Run {
  model: TinyTransformer;
  optimizer: AdamW;
  scheduler: LRScheduler;
}

function createRun(fixture: TransformerFixture, seed: number): Run {
  const { vocab_size: vocabSize, block_size: blockSize, dim, heads, layers } = fixture.config;
  manualSeed(seed);
  const model = new TinyTransformer({ vocabSize, blockSize, dim, heads, layers });
  const named = model.namedParameters();
  // nanoGPT's grouping: weight decay for matrices (and embeddings), none for biases and norm scales.
  const decay = named.filter(([, p]) => p.ndim >= 2).map(([, p]) => p);
  const noDecay = named.filter(([, p]) => p.ndim < 2).map(([, p]) => p);
  const { lr, betas, weight_decay: weightDecay, warmup_steps: warmupSteps } = fixture.training;
  const optimizer = new AdamW([{ params: decay, weightDecay }, { params: noDecay, weightDecay: 0 }], { lr, betas });
  const scheduler = cosineSchedule(optimizer, { warmupSteps, totalSteps: fixture.steps });
  return { model, optimizer, scheduler };
}

function disposeRun(run: Run): void {
  run.optimizer.dispose();
  run.model.dispose();
}

/** Trains steps [from, to) exactly as the oracle does; returns the loss, gradient norm and lrs per step. */
function train(run: Run, fixture: TransformerFixture, data: Tensor, from: number, to: number): { losses: number[]; norms: number[]; lrs: number[][] } {
  const { batch_size: batchSize, max_grad_norm: maxGradNorm } = fixture.training;
  const losses: number[] = [];
  const norms: number[] = [];
  const lrs: number[][] = [];
  for (let step = from; step < to; step++) {
    tidy(() => {
      const start = (step * batchSize) % data.size(0);
      const chunk = data.slice(0, start, start + batchSize);
      const loss = run.model.loss(chunk.slice(1, 0, -1), chunk.slice(1, 1));
      run.optimizer.zeroGrad();
      loss.backward();
      norms.push(clipGradNorm_(run.model.parameters(), maxGradNorm).item());
      lrs.push(run.scheduler.getLastLr());
      run.optimizer.step();
      run.scheduler.step();
      losses.push(loss.item());
    });
  }
  return { losses, norms, lrs };
}

test("tiny transformer: 50 steps of AdamW + clipping + warmup/cosine give PyTorch's loss at every step", (t) => {
  const fixture = readFixture<TransformerFixture>("training", "transformer.json");
  const data = keep(decodeTensor(fixture.data));
  const run = createRun(fixture, fixture.seed);
  assertSameState(run.model, fixture.initial);
  const { losses, norms, lrs } = train(run, fixture, data, 0, fixture.steps);
  const lossDiff = maxRelDiffOf(losses, fixture.losses);
  const normDiff = maxRelDiffOf(norms, fixture.grad_norms);
  const lrDiff = maxRelDiffOf(lrs.flat(), fixture.lrs.flat());
  const weightDiff = stateDiff(run.model, fixture.final);
  t.diagnostic(
    `transformer: max relative loss difference ${lossDiff.toExponential(2)}, gradient norm ${normDiff.toExponential(2)}, ` +
    `lr ${lrDiff.toExponential(2)}, max |final weight difference| ${weightDiff.toExponential(2)}`,
  );
  assert.ok(lossDiff <= LOSS_TOLERANCE, `loss differs from PyTorch by up to ${lossDiff} (relative)`);
  assert.ok(normDiff <= LOSS_TOLERANCE, `gradient norm differs from PyTorch by up to ${normDiff} (relative)`);
  assert.ok(lrDiff <= 1e-12, `learning rates differ from diffusers' by up to ${lrDiff} (relative)`);
  assert.ok(losses.at(-1)! < losses[0]! * 0.7, "the transformer learned");
  disposeRun(run);
  data.dispose();
});

test("saving optimizer, schedule and weights at step 20 and resuming in fresh objects matches the uninterrupted run", (t) => {
  const fixture = readFixture<TransformerFixture>("training", "transformer.json");
  const data = keep(decodeTensor(fixture.data));
  const folder = mkdtempSync(path.join(tmpdir(), "optim-resume-"));
  try {
    const original = createRun(fixture, fixture.seed);
    const before = train(original, fixture, data, 0, 20).losses;
    saveSafetensors(path.join(folder, "model.safetensors"), original.model.stateDict());
    saveOptimizerState(path.join(folder, "optimizer.safetensors"), original.optimizer, { scheduler: original.scheduler });
    // The original run goes on uninterrupted...
    const reference = [...before, ...train(original, fixture, data, 20, fixture.steps).losses];
    disposeRun(original);

    // ...and a fresh run, built from another seed so that everything that matters must come from the files, resumes.
    const resumed = createRun(fixture, 999);
    const weights = loadSafetensors(path.join(folder, "model.safetensors"));
    resumed.model.loadStateDict(weights.tensors);
    for (const tensor of weights.tensors.values()) tensor.dispose();
    loadOptimizerState(path.join(folder, "optimizer.safetensors"), resumed.optimizer, { scheduler: resumed.scheduler });
    assert.equal(resumed.scheduler.lastEpoch, 20);
    assert.equal(resumed.optimizer.state.get(resumed.model.lmHead.weight)!["step"], 20);
    const after = train(resumed, fixture, data, 20, fixture.steps).losses;
    disposeRun(resumed);

    const resumedLosses = [...before, ...after];
    assert.deepEqual(resumedLosses, reference, "resumed training is bit-identical to uninterrupted training");
    const pytorchDiff = maxRelDiffOf(resumedLosses, fixture.losses);
    t.diagnostic(`resumed run vs PyTorch's uninterrupted run: max relative loss difference ${pytorchDiff.toExponential(2)}`);
    assert.ok(pytorchDiff <= LOSS_TOLERANCE);
  } finally {
    rmSync(folder, { recursive: true, force: true });
    data.dispose();
  }
});
