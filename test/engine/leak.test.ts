// Training for 2,000 steps must not leak: live tensors exactly flat, process RSS flat within a bound.
import assert from "node:assert/strict";
import { test } from "node:test";
import { keep, manualSeed, memory, randint, setNumThreads, tidy } from "../../src/engine/index.js";
import { clipGradNorm_ } from "../../src/engine/nn/index.js";
import { AdamW, cosineSchedule } from "../../src/engine/optim/index.js";
import { TinyTransformer } from "./tiny-transformer.js";

const STEPS = 2000;
/** RSS may grow by at most this much between step 200 and step 2,000 (allocator noise, JIT code). */
const RSS_BOUND_MB = 32;

test(`${STEPS} training steps: live tensors stay exactly flat and RSS grows < ${RSS_BOUND_MB} MB`, { timeout: 600_000 }, () => {
  setNumThreads(1);
  manualSeed(0);
  const model = new TinyTransformer({ vocabSize: 32, blockSize: 16, dim: 32, heads: 4, layers: 2 });
  const data = keep(randint(0, 32, [8, 17]));
  const tokens = keep(data.slice(1, 0, -1));
  const targets = keep(data.slice(1, 1));
  const optimizer = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.1 });
  const schedule = cosineSchedule(optimizer, { warmupSteps: 100, totalSteps: STEPS });
  let baseline = { tensors: 0, rssMB: 0 };
  let firstLoss = NaN;
  let lastLoss = NaN;
  for (let step = 1; step <= STEPS; step++) {
    const loss = tidy(() => {
      const l = model.loss(tokens, targets);
      l.backward();
      clipGradNorm_(model.parameters(), 1.0);
      return l.item();
    });
    optimizer.step();
    optimizer.zeroGrad();
    schedule.step();
    if (step === 1) firstLoss = loss;
    lastLoss = loss;
    if (step === 200) {
      global.gc?.();
      baseline = { tensors: memory().tensors, rssMB: process.memoryUsage.rss() / 2 ** 20 };
    }
  }
  global.gc?.();
  const end = { tensors: memory().tensors, rssMB: process.memoryUsage.rss() / 2 ** 20 };
  assert.ok(lastLoss < firstLoss * 0.5, `the model should learn the fixed batch: ${firstLoss} -> ${lastLoss}`);
  assert.equal(end.tensors, baseline.tensors, "live tensors changed between step 200 and the end");
  const growth = end.rssMB - baseline.rssMB;
  assert.ok(growth < RSS_BOUND_MB, `RSS grew by ${growth.toFixed(1)} MB (bound ${RSS_BOUND_MB} MB)`);
  console.log(`leak test: tensors ${baseline.tensors} -> ${end.tensors}, RSS ${baseline.rssMB.toFixed(1)} -> ${end.rssMB.toFixed(1)} MB, loss ${firstLoss.toFixed(3)} -> ${lastLoss.toFixed(3)}`);
});
