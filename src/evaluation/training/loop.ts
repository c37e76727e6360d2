/**
 * The resumable training loop both metric networks use.
 *
 * Every step draws its randomness (the batch) from one Generator re-seeded from (run seed, step number), so a
 * step does the same thing whether the run got there in one go or was killed and resumed: a resumed run ends
 * with the same weights, bit for bit, as an uninterrupted one (same machine, same thread count).
 *
 * Every `checkpointEvery` steps the loop writes `<workDir>/checkpoints/step-<n>/`: model.safetensors (every
 * module's float32 state, "<module>.<key>"), optimizer.safetensors (AdamW moments and the learning-rate schedule,
 * via saveOptimizerState) and state.json (step, losses so far, the run's settings). The folder is written under a
 * temporary name and renamed when complete (src/util/atomic.ts), so a kill mid-write leaves the previous
 * checkpoint as the latest.
 * On start, the latest checkpoint is resumed if its settings equal this run's (else an error says which differ).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { Generator, loadSafetensors, noGrad, saveSafetensors, type Tensor } from "../../engine/index.js";
import type { Module } from "../../engine/nn/index.js";
import { loadOptimizerState, saveOptimizerState, type AdamW, type LRScheduler } from "../../engine/optim/index.js";
import { hash32, streamId } from "../../miniworld/random.js";
import { writeDirectoryAtomic, writeFileAtomic } from "../../util/atomic.js";
import type { ProgressReporter } from "../../util/progress.js";

/** What the caller of a training function can watch and control. */
export interface TrainingHooks {
  /** Told the step and smoothed loss as the loop starts and after every step (the CLI draws a bar from it). */
  progress?: ProgressReporter;
  /** Called after every step. */
  onProgress?: (report: StepReport) => void;
  /** Informational lines (rendering, resuming, checkpoints). */
  log?: (line: string) => void;
  /** Stop after this many steps of this call, leaving the work folder as a kill at that point would (tests). */
  stopAfterSteps?: number;
}

export interface StepReport {
  /** Steps done so far (1-based: the step just taken). */
  step: number;
  steps: number;
  loss: number;
  /** Mean loss of the last (up to) 50 steps. */
  smoothedLoss: number;
  learningRate: number;
  /** Wall-clock seconds of this step. */
  seconds: number;
}

export interface LoopOptions {
  /** Names the progress bar and the per-step random stream. */
  label: string;
  workDir: string;
  steps: number;
  checkpointEvery: number;
  seed: number;
  /** Everything that decides the run's result; a checkpoint resumes only under equal settings. */
  settings: Record<string, unknown>;
  /** Modules whose state is checkpointed, by name. */
  modules: Record<string, Module>;
  optimizer: AdamW;
  scheduler: LRScheduler;
  /** One optimiser step (batch from `generator`); returns the loss. */
  step: (generator: Generator, step: number) => number;
  hooks: TrainingHooks;
}

export interface LoopResult {
  /** Steps done in total (equal to `steps` unless stopped). */
  step: number;
  /** True when `stopAfterSteps` ended the call early. */
  stopped: boolean;
  /** The loss of every step taken, from step 1 (including those before a resume). */
  losses: number[];
  /** Seconds spent stepping in this call. */
  seconds: number;
  resumedFrom: number;
}

const CHECKPOINT_FORMAT = "metric-network-checkpoint/1";

/** Runs (or resumes) the loop to `steps`. */
export function runTrainingLoop(options: LoopOptions): LoopResult {
  const { label, workDir, steps, checkpointEvery, seed, hooks } = options;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  if (!Number.isInteger(checkpointEvery) || checkpointEvery < 1) throw new Error(`checkpointEvery must be a positive integer, got ${checkpointEvery}`);
  const checkpoints = path.join(workDir, "checkpoints");
  mkdirSync(checkpoints, { recursive: true });
  const losses: number[] = [];
  const resumedFrom = resumeLatest(checkpoints, options, losses);
  if (resumedFrom > 0) hooks.log?.(`${label}: resumed from step ${resumedFrom}`);
  hooks.progress?.({ label, done: resumedFrom, total: steps, start: resumedFrom });
  const generator = new Generator("cpu");
  const stream = streamId(label);
  const started = performance.now();
  let step = resumedFrom;
  let taken = 0;
  while (step < steps) {
    if (hooks.stopAfterSteps !== undefined && taken >= hooks.stopAfterSteps) {
      return { step, stopped: true, losses, seconds: (performance.now() - started) / 1000, resumedFrom };
    }
    const stepStarted = performance.now();
    generator.manualSeed(hash32(stream, seed, step));
    const loss = options.step(generator, step);
    if (!Number.isFinite(loss)) throw new Error(`${label}: the loss became ${loss} at step ${step + 1}`);
    losses.push(loss);
    step += 1;
    taken += 1;
    const recent = losses.slice(-50);
    const smoothedLoss = recent.reduce((a, b) => a + b, 0) / recent.length;
    hooks.onProgress?.({
      step, steps, loss, smoothedLoss, learningRate: options.optimizer.paramGroups[0]!.lr, seconds: (performance.now() - stepStarted) / 1000,
    });
    hooks.progress?.({ label, done: step, total: steps, start: resumedFrom, loss: smoothedLoss });
    if (step % checkpointEvery === 0 && step < steps) saveCheckpoint(checkpoints, step, options, losses);
  }
  return { step, stopped: false, losses, seconds: (performance.now() - started) / 1000, resumedFrom };
}

/** Removes the work folder's checkpoints (after the final network is saved). */
export function removeCheckpoints(workDir: string): void {
  rmSync(path.join(workDir, "checkpoints"), { recursive: true, force: true });
}

const stepFolder = (step: number): string => `step-${String(step).padStart(7, "0")}`;

function saveCheckpoint(checkpoints: string, step: number, options: LoopOptions, losses: number[]): void {
  const tensors = new Map<string, Tensor>();
  for (const [name, module] of Object.entries(options.modules)) {
    for (const [key, value] of module.stateDict()) tensors.set(`${name}.${key}`, value);
  }
  writeDirectoryAtomic(path.join(checkpoints, stepFolder(step)), (temporary) => {
    saveSafetensors(path.join(temporary, "model.safetensors"), tensors, { format: CHECKPOINT_FORMAT });
    saveOptimizerState(path.join(temporary, "optimizer.safetensors"), options.optimizer, { scheduler: options.scheduler });
    writeFileAtomic(path.join(temporary, "state.json"), JSON.stringify({ format: CHECKPOINT_FORMAT, step, settings: options.settings, losses }));
  });
  for (const entry of readdirSync(checkpoints)) {
    // Older checkpoints, and any step-<n>.tmp/ a kill left half-written.
    if (/^step-\d+(\.tmp)?$/.test(entry) && entry !== stepFolder(step)) rmSync(path.join(checkpoints, entry), { recursive: true, force: true });
  }
  options.hooks.log?.(`${options.label}: checkpoint at step ${step}`);
}

/** Restores the latest complete checkpoint, if any; returns its step (0 when starting fresh). */
function resumeLatest(checkpoints: string, options: LoopOptions, losses: number[]): number {
  const latest = readdirSync(checkpoints).filter((entry) => /^step-\d+$/.test(entry)).sort().at(-1);
  if (latest === undefined) return 0;
  const folder = path.join(checkpoints, latest);
  const stateFile = path.join(folder, "state.json");
  if (!existsSync(stateFile)) throw new Error(`${folder} is not a complete checkpoint (no state.json): remove it to start over`);
  const state = JSON.parse(readFileSync(stateFile, "utf8")) as { format?: string; step: number; settings: Record<string, unknown>; losses: number[] };
  if (state.format !== CHECKPOINT_FORMAT) throw new Error(`${stateFile} is not a metric network checkpoint (format ${String(state.format)})`);
  const differing = differingKeys(state.settings, options.settings);
  if (differing.length > 0) {
    throw new Error(`cannot resume from ${folder}: its settings differ from this run's in ${differing.join(", ")} (use another work folder, or delete it)`);
  }
  if (state.step > options.steps) throw new Error(`${folder} is at step ${state.step}, beyond this run's ${options.steps} steps`);
  const { tensors } = loadSafetensors(path.join(folder, "model.safetensors"));
  try {
    noGrad(() => {
      for (const [name, module] of Object.entries(options.modules)) {
        const own = new Map([...tensors].filter(([key]) => key.startsWith(`${name}.`)).map(([key, value]) => [key.slice(name.length + 1), value]));
        module.loadStateDict(own);
      }
    });
  } finally {
    for (const tensor of tensors.values()) tensor.dispose();
  }
  loadOptimizerState(path.join(folder, "optimizer.safetensors"), options.optimizer, { scheduler: options.scheduler });
  losses.push(...state.losses);
  return state.step;
}

/** Top-level keys whose JSON differs between two settings objects. */
function differingKeys(saved: Record<string, unknown>, current: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(saved), ...Object.keys(current)]);
  return [...keys].filter((key) => JSON.stringify(saved[key]) !== JSON.stringify(current[key]))
    .map((key) => `${key} (saved ${JSON.stringify(saved[key])}, now ${JSON.stringify(current[key])})`);
}
