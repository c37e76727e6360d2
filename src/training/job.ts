/**
 * One training job: the thing one resumable optimisation trains, with everything its checkpoint must hold.
 *
 * A job is a set of trained tensors (a model's weights, or one identity's LiDB factors), its optimiser and
 * learning-rate schedule, an optional EMA of its parameters, its step count and loss history, and its own
 * random stream. The loop (loop.ts) drives jobs: it seeds `generator` for each step, calls the trainer's
 * forward/backward, then `update` (clip, optimiser step, schedule, EMA) and checkpoints (checkpoint.ts).
 *
 * Per-step seeding (the one scheme every trainer uses): before step s the job's generator is re-seeded with
 * hash32(stream, seed, s), `stream` naming the loop ("vae", "identity-network", "dreambooth"). A step then draws
 * the same batch, noise and timesteps whether the run got there in one go or was killed and resumed, and a job
 * draws the same numbers whichever other jobs share its batches.
 */
import { Generator, nonFiniteNames, type Tensor } from "../engine/index.js";
import { clipGradNorm_ } from "../engine/nn/index.js";
import type { BaseHyperParameters, ExponentialMovingAverage, GradScaler, LRScheduler, Optimizer } from "../engine/optim/index.js";
import { hash32 } from "../util/hash.js";

export interface JobOptions {
  /** The job's name in logs, progress and errors ("vae", an identity's id). */
  name: string;
  /** Its checkpoint folder: `<dir>/checkpoint-<step>/` (checkpoint.ts). */
  dir: string;
  /** Optimiser steps to take in all. */
  steps: number;
  /** Seed of its per-step random stream. */
  seed: number;
  /** Everything that decides the job's result; a checkpoint resumes only under equal settings. */
  settings: Record<string, unknown>;
  /** The trained state by name, as a checkpoint stores it (module state dicts under a prefix, adapter factors). */
  tensors: () => Map<string, Tensor>;
  /** Copies a checkpoint's tensors (the names `tensors` gives) back into the trained state. */
  load: (tensors: Map<string, Tensor>) => void;
  /** The parameters the optimiser steps (clipped together). */
  parameters: readonly Tensor[];
  optimizer: Optimizer<BaseHyperParameters>;
  scheduler?: LRScheduler;
  ema?: ExponentialMovingAverage;
  /** Clip the parameters' global gradient norm to this (0 or absent: no clipping). */
  maxGradNorm?: number;
}

/** A step made a loss, gradient or weight NaN or infinite: training cannot go on (loop.ts says what is kept). */
export class NonFiniteStepError extends Error {
  override name = "NonFiniteStepError";
}

export class TrainingJob {
  /** Optimiser steps taken (including those before a resume). */
  step = 0;
  /** The loss of every step from step 1, including those before a resume. */
  readonly losses: number[] = [];
  /** Seconds spent in this job's steps, over all runs. */
  seconds = 0;
  /** The generator the step draws from, re-seeded by the loop before each step (`seedStep`). */
  readonly generator = new Generator("cpu");

  constructor(readonly options: JobOptions) {
    if (!Number.isInteger(options.steps) || options.steps < 0) throw new Error(`${options.name}: steps must be an integer ≥ 0, got ${options.steps}`);
    if (!Number.isSafeInteger(options.seed) || options.seed < 0) throw new Error(`${options.name}: seed must be an integer ≥ 0, got ${options.seed}`);
  }

  get name(): string {
    return this.options.name;
  }
  get dir(): string {
    return this.options.dir;
  }
  get steps(): number {
    return this.options.steps;
  }
  get done(): boolean {
    return this.step >= this.options.steps;
  }
  /** The learning rate the next optimiser step uses. */
  get learningRate(): number {
    return this.options.optimizer.paramGroups[0]!.lr;
  }

  /** Seeds the generator for the coming step from (stream, seed, step): see the file comment. */
  seedStep(stream: number): Generator {
    return this.generator.manualSeed(hash32(stream, this.options.seed, this.step));
  }

  /**
   * After the backward pass: clip, step the optimiser (through the fp16 loss scaler when given, which unscales
   * first and skips the step on inf/NaN gradients), zero the gradients, advance the schedule and the EMA, and
   * record the step's loss.
   */
  update(loss: number, scaler: GradScaler | null = null): void {
    const { optimizer, scheduler, ema, maxGradNorm = 0, parameters } = this.options;
    scaler?.unscale_(optimizer);
    // Without a loss scaler (which skips such steps itself) an inf/NaN gradient would make every factor NaN in
    // this step, whose loss was still finite; and a huge learning rate can overflow the weights from finite
    // gradients. Either is refused before anything of this step is kept (one reduction per tensor, one sync).
    if (!scaler) this.refuseNonFinite("gradient", parameters.map((p) => p.grad).filter((g): g is Tensor => g !== null));
    if (maxGradNorm > 0) clipGradNorm_(parameters, maxGradNorm).dispose();
    if (scaler) scaler.step(optimizer);
    else optimizer.step();
    this.refuseNonFinite("weight", parameters);
    optimizer.zeroGrad();
    scheduler?.step();
    ema?.update();
    this.step += 1;
    this.losses.push(loss);
  }

  /**
   * Throws when any of `tensors` (the parameters' gradients or the parameters) holds NaN or ±Inf, naming the job,
   * the step and which parameter. The loop checkpoints only after this check, so no checkpoint holds such weights;
   * `gradient` tensors are freed here.
   */
  private refuseNonFinite(what: "gradient" | "weight", tensors: readonly Tensor[]): void {
    let bad: string[];
    try {
      bad = nonFiniteNames(tensors.map((t, i) => [String(i), t] as const));
    } finally {
      if (what === "gradient") for (const t of tensors) t.dispose();
    }
    if (bad.length === 0) return;
    const first = Number(bad[0]);
    const which = `${what === "gradient" ? "the gradient of " : ""}parameter ${first + 1} of ${tensors.length} [${this.options.parameters[first]!.shape.join(", ")}]` +
      (bad.length > 1 ? ` (and ${bad.length - 1} more)` : "");
    const cause = what === "gradient" ? "exploding gradients" : "the learning rate is too high for these weights";
    throw new NonFiniteStepError(`${this.name}: ${which} became NaN or infinite at step ${this.step + 1} (${cause}), though the loss was finite`);
  }

  /** The mean loss of the last `window` steps (one step's loss is noisy). */
  recentLoss(window = 10): number {
    const tail = this.losses.slice(-window);
    return tail.length === 0 ? NaN : tail.reduce((a, b) => a + b, 0) / tail.length;
  }
}

/** Mean losses over consecutive windows of `every` steps (the last window may be shorter): a compact history. */
export function lossRecords(losses: readonly number[], every: number): { step: number; loss: number }[] {
  const records: { step: number; loss: number }[] = [];
  for (let start = 0; start < losses.length; start += every) {
    const window = losses.slice(start, start + every);
    records.push({ step: start + window.length, loss: window.reduce((a, b) => a + b, 0) / window.length });
  }
  return records;
}
