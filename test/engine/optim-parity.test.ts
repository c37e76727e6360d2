// Optimisers, gradient clipping and schedules against PyTorch and diffusers (test/oracle/fixtures_training.py):
// 10 steps of Adam/AdamW/SGD on fixed parameters and gradients with two parameter groups, checked after every
// step (tolerance 1e-7 relative; the op sequence is PyTorch's, so in practice the bits are identical).
import assert from "node:assert/strict";
import { test } from "node:test";
import { keep, tidy, zeros, zerosLike, type Tensor } from "../../src/engine/index.js";
import { clipGradNorm_ } from "../../src/engine/nn/index.js";
import {
  Adam, AdamW, getScheduler, SGD, type AdamHyperParameters, type SchedulerName, type SGDHyperParameters,
} from "../../src/engine/optim/index.js";
import { bitIdentical, decodeTensor, maxRelDiff, maxRelDiffOf, readFixture, type EncodedTensor } from "./nn-fixtures.js";

/** Relative bound on parameter differences after each optimiser step. */
const OPTIMIZER_TOLERANCE = 1e-7;

interface OptimFixture {
  initial: EncodedTensor[];
  grads: EncodedTensor[][];
  no_grad_step: number;
  configs: Record<string, {
    optimizer: "AdamW" | "Adam" | "SGD";
    first: Record<string, unknown>;
    second: Record<string, unknown>;
    history: EncodedTensor[][];
    state: Record<string, EncodedTensor | number>;
  }>;
}

/** PyTorch's snake_case hyper-parameter names to ours. */
function hyperParameters(python: Record<string, unknown>): Partial<AdamHyperParameters & SGDHyperParameters> {
  const names: Record<string, string> = { weight_decay: "weightDecay" };
  return Object.fromEntries(Object.entries(python).map(([key, value]) => [names[key] ?? key, value]));
}

test("Adam, AdamW and SGD match torch.optim step by step with two parameter groups", (t) => {
  const fixture = readFixture<OptimFixture>("training", "optim.json");
  for (const [name, config] of Object.entries(fixture.configs)) {
    tidy(() => {
      const params = fixture.initial.map((encoded) => keep(decodeTensor(encoded).requiresGrad_(true)));
      const groups = [{ params: params.slice(0, 2) }, { params: params.slice(2), ...hyperParameters(config.second) }];
      const first = hyperParameters(config.first);
      const optimizer = config.optimizer === "SGD" ? new SGD(groups, first) : config.optimizer === "Adam" ? new Adam(groups, first) : new AdamW(groups, first);
      let worst = 0;
      let identical = true;
      fixture.grads.forEach((stepGrads, step) => {
        params.forEach((param, i) => {
          param.grad = i === 1 && step === fixture.no_grad_step ? null : decodeTensor(stepGrads[i]!);
        });
        optimizer.step();
        params.forEach((param, i) => {
          const expected = decodeTensor(config.history[step]![i]!);
          worst = Math.max(worst, maxRelDiff(param, expected, 1e-6));
          identical &&= bitIdentical(param, expected);
        });
      });
      t.diagnostic(`${name}: max relative difference over 10 steps ${worst.toExponential(2)}${identical ? " (bit-identical)" : ""}`);
      assert.ok(worst <= OPTIMIZER_TOLERANCE, `${name}: parameters differ from torch.optim by up to ${worst} (relative)`);

      const { tensors, meta } = optimizer.stateDict();
      for (const [key, value] of Object.entries(config.state)) {
        const [index, stateName] = key.split(".") as [string, string];
        if (typeof value === "number") {
          assert.equal(meta.state[index]![stateName], value, `${name}: ${key}`);
        } else {
          const actual = tensors.get(`state.${index}.${stateName}`);
          assert.ok(actual, `${name}: missing state tensor ${key}`);
          assert.ok(maxRelDiff(actual, decodeTensor(value), 1e-6) <= OPTIMIZER_TOLERANCE, `${name}: state ${key}`);
        }
      }
      assert.equal(tensors.size, Object.values(config.state).filter((v) => typeof v !== "number").length, `${name}: state tensor count`);
      optimizer.dispose();
      for (const param of params) param.dispose();
    });
  }
});

interface ClipFixture {
  grads: EncodedTensor[];
  cases: { norm_type: number | "inf"; max_norm: number; total_norm: EncodedTensor; clipped: EncodedTensor[] }[];
}

test("clipGradNorm_ matches torch.nn.utils.clip_grad_norm_ (foreach=False) for p = 1, 2, 3, inf", () => {
  const fixture = readFixture<ClipFixture>("training", "clip.json");
  for (const testCase of fixture.cases) {
    tidy(() => {
      const params: Tensor[] = fixture.grads.map((encoded) => {
        const param = zerosLike(decodeTensor(encoded)).requiresGrad_(true);
        param.grad = decodeTensor(encoded);
        return param;
      });
      const normType = testCase.norm_type === "inf" ? Infinity : testCase.norm_type;
      const total = clipGradNorm_(params, testCase.max_norm, normType);
      const label = `p=${testCase.norm_type}, maxNorm=${testCase.max_norm}`;
      assert.ok(maxRelDiff(total, decodeTensor(testCase.total_norm)) <= 1e-6, `${label}: total norm`);
      params.forEach((param, i) => {
        assert.ok(maxRelDiff(param.grad!, decodeTensor(testCase.clipped[i]!), 1e-6) <= 1e-6, `${label}: clipped gradient ${i}`);
      });
    });
  }
  tidy(() => {
    const param = zerosLike(decodeTensor(fixture.grads[0]!)).requiresGrad_(true);
    assert.equal(clipGradNorm_([param], 1).item(), 0, "no gradients: norm 0");
  });
});

interface ScheduleCase {
  name: SchedulerName;
  warmup: number | null;
  total: number | null;
  lrs: number[][];
}

test("schedules give diffusers' get_scheduler learning rates step by step, for each group", () => tidy(() => {
  const cases = readFixture<ScheduleCase[]>("training", "schedules.json");
  for (const testCase of cases) {
    const a = zeros([1], { requiresGrad: true });
    const b = zeros([1], { requiresGrad: true });
    const optimizer = new SGD([{ params: [a], lr: 0.1 }, { params: [b], lr: 0.03 }]);
    const scheduler = getScheduler(testCase.name, optimizer, { warmupSteps: testCase.warmup ?? undefined, totalSteps: testCase.total ?? undefined });
    const lrs = [scheduler.getLastLr()];
    for (let step = 1; step < testCase.lrs.length; step++) {
      scheduler.step();
      lrs.push(scheduler.getLastLr());
    }
    const label = `${testCase.name} (warmup ${testCase.warmup}, total ${testCase.total})`;
    assert.ok(maxRelDiffOf(lrs.flat(), testCase.lrs.flat()) <= 1e-12, `${label}: ${JSON.stringify(lrs)} vs ${JSON.stringify(testCase.lrs)}`);
    assert.deepEqual(optimizer.paramGroups.map((g) => g.lr), lrs.at(-1));
    const saved = scheduler.stateDict();
    const resumed = getScheduler(testCase.name, optimizer, { warmupSteps: testCase.warmup ?? undefined, totalSteps: testCase.total ?? undefined });
    resumed.loadStateDict(saved);
    assert.deepEqual(resumed.getLastLr(), lrs.at(-1), `${label}: state dict round trip`);
  }
  assert.throws(() => getScheduler("cosine", new SGD([zeros([1], { requiresGrad: true })]), { warmupSteps: 2 }), /needs totalSteps/);
}));
