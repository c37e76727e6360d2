/**
 * A base-model training stage on the one training loop (src/training/loop.ts): its modules' weights under a
 * prefix ("vae.", "unet.", "text_encoder."), AdamW with its schedule, an optional EMA, gradient clipping, and
 * one step function drawing from the job's per-step generator. Checkpoints go to `<stageDir>/checkpoint-<n>/`
 * (src/training/checkpoint.ts) and the last one is kept: the next phase starts from its weights and EMA, and a
 * constant-rate phase asked for more steps continues it. The loss history is recorded as 50-step means.
 */
import path from "node:path";
import type { Generator, Tensor } from "../../engine/index.js";
import type { Module } from "../../engine/nn/index.js";
import type { BaseHyperParameters, ExponentialMovingAverage, LRScheduler, Optimizer } from "../../engine/optim/index.js";
import { lossRecords, readCheckpointTensors, train, TrainingJob } from "../../training/index.js";
import type { ProgressReporter } from "../../util/progress.js";

export interface LossRecord {
  step: number;
  /** Mean training loss over the steps since the previous record. */
  loss: number;
}

/** A stage's history as its result.json and build.json record it. */
export interface StageState {
  step: number;
  losses: LossRecord[];
  /** Seconds spent training, over all runs. */
  seconds: number;
}

export interface StageSpec {
  /** The stage ("vae", "diffusion-2"): names its progress bar, log and random stream. */
  name: string;
  stageDir: string;
  steps: number;
  checkpointEvery: number;
  seed: number;
  /** What decides the stage's result; a checkpoint resumes only under equal settings. */
  settings: Record<string, unknown>;
  /** The trained modules by checkpoint prefix. */
  modules: Record<string, Module>;
  parameters: Tensor[];
  optimizer: Optimizer<BaseHyperParameters>;
  scheduler: LRScheduler;
  ema?: ExponentialMovingAverage;
  maxGradNorm: number;
  /** Forward and backward of one step, drawing from `generator`; returns the loss. */
  step: (generator: Generator) => number;
  progress?: ProgressReporter;
  log?: (line: string) => void;
  stopAfterSteps?: number;
}

const RECORD_EVERY = 50;

/** Runs (or resumes) a stage to its steps; `finished` is false when `stopAfterSteps` stopped it. */
export async function runStage(spec: StageSpec): Promise<{ state: StageState; finished: boolean }> {
  const job = new TrainingJob({
    name: spec.name, dir: spec.stageDir, steps: spec.steps, seed: spec.seed, settings: spec.settings,
    tensors: () => prefixed(spec.modules), load: (tensors) => loadPrefixed(spec.modules, tensors),
    parameters: spec.parameters, optimizer: spec.optimizer, scheduler: spec.scheduler, maxGradNorm: spec.maxGradNorm,
    ...(spec.ema ? { ema: spec.ema } : {}),
  });
  const { stopped } = await train({
    label: spec.name, jobs: [job], checkpointEvery: spec.checkpointEvery, keepFinalCheckpoint: true,
    logFile: path.join(spec.stageDir, "log.jsonl"),
    step: () => [spec.step(job.generator)],
    hooks: {
      ...(spec.progress ? { progress: spec.progress } : {}), ...(spec.log ? { log: spec.log } : {}),
      ...(spec.stopAfterSteps === undefined ? {} : { stopAfterSteps: spec.stopAfterSteps }),
    },
  });
  return { state: { step: job.step, losses: lossRecords(job.losses, RECORD_EVERY), seconds: job.seconds }, finished: !stopped };
}

/**
 * Loads the weights (and EMA) of another stage's last checkpoint into `modules`: where a continuing phase
 * starts. Returns the step it was at; throws when that stage has no checkpoint.
 */
export function startFrom(stageDir: string, modules: Record<string, Module>, ema: ExponentialMovingAverage | null, who: string): number {
  const start = readCheckpointTensors(stageDir);
  if (!start) throw new Error(`${who} continues from ${stageDir}, which holds no checkpoint: run that stage first`);
  try {
    loadPrefixed(modules, start.tensors);
    if (ema) {
      const shadow = ema.shadow.map((_, i) => start.tensors.get(`ema.${i}`));
      if (shadow.some((t) => t === undefined)) throw new Error(`${start.folder} holds no EMA weights for ${who} to start from`);
      ema.load(shadow as Tensor[], start.emaUpdates);
    }
  } finally {
    for (const t of start.tensors.values()) t.dispose();
  }
  return start.step;
}

function prefixed(modules: Record<string, Module>): Map<string, Tensor> {
  return new Map(Object.entries(modules).flatMap(([prefix, module]) => [...module.stateDict()].map(([key, t]) => [`${prefix}.${key}`, t] as const)));
}

function loadPrefixed(modules: Record<string, Module>, tensors: Map<string, Tensor>): void {
  for (const [prefix, module] of Object.entries(modules)) {
    module.loadStateDict(new Map([...tensors].filter(([key]) => key.startsWith(`${prefix}.`)).map(([key, t]) => [key.slice(prefix.length + 1), t])));
  }
}
