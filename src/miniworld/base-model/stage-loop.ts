/**
 * The loop every base-model training stage runs (nanoGPT-style, written out once): resume from the newest
 * checkpoint, then per step a forward/backward (the stage's `trainStep`), gradient clipping, an AdamW step,
 * the learning-rate schedule and the EMA; loss records every `recordEvery` steps, progress reports (the CLI
 * draws a bar with ETA from them), and a checkpoint every `checkpointEvery` steps and at the end.
 */
import { clipGradNorm_ } from "../../engine/nn/index.js";
import type { ExponentialMovingAverage, LRScheduler, Optimizer, BaseHyperParameters } from "../../engine/optim/index.js";
import type { Tensor } from "../../engine/index.js";
import type { ProgressReporter } from "../../util/progress.js";
import { latestStageCheckpoint, restoreOptimizer, saveStageCheckpoint, withPrefix, type StageState } from "./checkpoint.js";

export interface StageLoop {
  /** Label of the progress reports and log lines ("vae", "diffusion"). */
  name: string;
  stageDir: string;
  steps: number;
  checkpointEvery: number;
  parameters: Tensor[];
  optimizer: Optimizer<BaseHyperParameters>;
  scheduler: LRScheduler;
  maxGradNorm: number;
  ema?: ExponentialMovingAverage;
  /** The trained tensors by name, as the checkpoint stores them (modules' state dicts under a prefix). */
  namedTensors(): Map<string, Tensor>;
  /** Loads a checkpoint's tensors (the `namedTensors` names) back into the modules. */
  restore(tensors: Map<string, Tensor>): void;
  /** Forward and backward of step `step` (its randomness seeded by the step); returns the loss. */
  trainStep(step: number): number;
  /** Told the step and loss as the loop starts and after every step. */
  progress?: ProgressReporter;
  log?: (line: string) => void;
  /** Stop (as a kill would) after this many steps of this call: tests of resuming. */
  stopAfterSteps?: number;
  recordEvery?: number;
}

export interface StageResult {
  state: StageState;
  /** False when stopped early by `stopAfterSteps`. */
  finished: boolean;
}

export async function runStageLoop(loop: StageLoop): Promise<StageResult> {
  const log = loop.log ?? (() => {});
  let state: StageState = { step: 0, losses: [], seconds: 0 };
  const checkpoint = latestStageCheckpoint(loop.stageDir);
  if (checkpoint) {
    try {
      loop.restore(checkpoint.tensors);
      restoreOptimizer(checkpoint, loop.optimizer, loop.scheduler);
      if (loop.ema) loop.ema.load([...withPrefix(checkpoint.tensors, "ema").entries()].sort((a, b) => Number(a[0]) - Number(b[0])).map(([, t]) => t), checkpoint.state.emaUpdates ?? 0);
    } finally {
      for (const tensor of checkpoint.tensors.values()) tensor.dispose();
    }
    state = checkpoint.state;
    log(`${loop.name}: resuming from ${checkpoint.dir} (step ${state.step} of ${loop.steps})`);
  }
  const start = state.step;
  loop.progress?.({ label: loop.name, done: start, total: loop.steps, start });
  const recordEvery = loop.recordEvery ?? 50;
  let sum = state.pendingLossSum ?? 0;
  let count = state.pendingLossCount ?? 0;
  delete state.pendingLossSum;
  delete state.pendingLossCount;
  let taken = 0;
  let started = performance.now();
  const save = (): void => {
    state.seconds += (performance.now() - started) / 1000;
    started = performance.now();
    const tensors = loop.namedTensors();
    loop.ema?.shadow.forEach((t, i) => tensors.set(`ema.${i}`, t));
    saveStageCheckpoint(loop.stageDir, { ...state, pendingLossSum: sum, pendingLossCount: count, ...(loop.ema ? { emaUpdates: loop.ema.updates } : {}) },
      tensors, loop.optimizer, loop.scheduler);
  };
  while (state.step < loop.steps) {
    if (loop.stopAfterSteps !== undefined && taken >= loop.stopAfterSteps) return { state, finished: false };
    const loss = loop.trainStep(state.step);
    if (!Number.isFinite(loss)) throw new Error(`${loop.name}: the loss is ${loss} at step ${state.step}; resume from the last checkpoint with a lower learning rate`);
    clipGradNorm_(loop.parameters, loop.maxGradNorm).dispose();
    loop.optimizer.step();
    loop.optimizer.zeroGrad();
    loop.scheduler.step();
    loop.ema?.update();
    state.step += 1;
    taken += 1;
    sum += loss;
    count += 1;
    if (state.step % recordEvery === 0 || state.step === loop.steps) {
      state.losses.push({ step: state.step, loss: sum / count });
      sum = 0;
      count = 0;
    }
    loop.progress?.({ label: loop.name, done: state.step, total: loop.steps, start, loss: state.losses.at(-1)?.loss ?? loss });
    if (state.step % loop.checkpointEvery === 0 || state.step === loop.steps) save();
    if (state.step % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  return { state, finished: true };
}
