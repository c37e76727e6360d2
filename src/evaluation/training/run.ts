/**
 * What training either metric network takes, around its own loss: render (or load) the training set, seed and
 * build the modules, AdamW with a warmup + cosine schedule, the one resumable loop (src/training/loop.ts) on
 * `threads` libtorch threads, then the final network saved atomically to `outDir` and the checkpoints removed.
 * Checkpoints: `<workDir>/checkpoints/checkpoint-<step>/`; log: `<workDir>/<label>.log.jsonl`.
 */
import path from "node:path";
import { checkEncoderConfig, type ConvEncoderConfig } from "../backbone.js";
import { getNumThreads, manualSeed, rand, randint, setNumThreads, tidy, where, type Tensor } from "../../engine/index.js";
import type { Module } from "../../engine/nn/index.js";
import { AdamW, cosineSchedule } from "../../engine/optim/index.js";
import type { RenderRequest } from "../../miniworld/render.js";
import type { WeightsDType } from "../network-files.js";
import { imageBatch } from "../../pipeline/images.js";
import { renderImageSet } from "./data.js";
import { train, TrainingJob, type LoopHooks } from "../../training/index.js";

/** The settings every metric network's training has. */
export interface CommonTrainingSettings {
  steps: number;
  batchSize: number;
  learningRate: number;
  weightDecay: number;
  /** Linear warmup steps before the cosine decay to 0 at `steps`. */
  warmupSteps: number;
  checkpointEvery: number;
  /** libtorch intra-op threads during training (restored afterwards). */
  threads: number;
  seed: number;
  /** Precision of the saved network's weights. */
  dtype: WeightsDType;
  network: ConvEncoderConfig;
}

/** Where a training run writes, and what its caller watches. */
export interface TrainingLocations extends LoopHooks {
  /** Where the final network is saved (config.json + model.safetensors). */
  outDir: string;
  /** Checkpoints and the cached training images go here. */
  workDir: string;
  /** Keep the rendered training set in the work folder, so resumes skip rendering (default true). */
  cacheImages?: boolean;
}

export interface MetricTrainingResult {
  /** False when `stopAfterSteps` stopped the run before the end (nothing is saved to outDir then). */
  finished: boolean;
  step: number;
  /** Loss of every step from step 1 (including steps before a resume). */
  losses: number[];
  /** Seconds of training steps over every run (resumes included), and of rendering (or loading) the training set. */
  trainingSeconds: number;
  renderSeconds: number;
  /** The settings that decide the result (what a resume must match). */
  settings: Record<string, unknown>;
}

export interface SavableNetwork extends Module {
  save(dir: string, options: { dtype?: WeightsDType; training?: Record<string, unknown> }): void;
}

export interface MetricTrainingSpec<N extends SavableNetwork> {
  /** "identity-network": names the progress bar, logs, the random stream and the image cache. */
  label: string;
  settings: CommonTrainingSettings & Record<string, unknown>;
  locations: TrainingLocations;
  requests: readonly RenderRequest[];
  /** Builds the network to train and any training-only modules (a head), after the default generator is seeded. */
  build: () => { network: N; helpers?: Record<string, Module> };
  /** The loss of a batch: images (B, 3, H, W) in [-1, 1] and their rows of the training set (int64). */
  loss: (network: N, images: Tensor, rows: Tensor) => Tensor;
  /**
   * Probability that a training image is mirrored left–right (default 0): more data for free where the labels do
   * not care (styles, hair colour), but not for identity, whose moles and partings have a side.
   */
  flipProbability?: number;
}

/** Checks the common settings before anything slow happens (an error names the setting). */
export function checkCommonSettings(settings: CommonTrainingSettings): void {
  for (const key of ["steps", "batchSize", "checkpointEvery", "threads"] as const) {
    const value = settings[key];
    if (!Number.isInteger(value) || value < 1) throw new Error(`${key} must be a positive integer, got ${value}`);
  }
  for (const key of ["learningRate", "weightDecay"] as const) {
    if (!(settings[key] >= 0)) throw new Error(`${key} must be ≥ 0, got ${settings[key]}`);
  }
  if (!Number.isInteger(settings.warmupSteps) || settings.warmupSteps < 0) throw new Error(`warmupSteps must be an integer ≥ 0, got ${settings.warmupSteps}`);
  if (!Number.isSafeInteger(settings.seed) || settings.seed < 0) throw new Error(`seed must be an integer ≥ 0, got ${settings.seed}`);
  if (settings.dtype !== "float16" && settings.dtype !== "float32") throw new Error(`dtype must be "float16" or "float32", got ${String(settings.dtype)}`);
  checkEncoderConfig(settings.network);
}

/** Trains (or resumes) a metric network as `spec` says and saves it. */
export async function trainMetricNetwork<N extends SavableNetwork>(spec: MetricTrainingSpec<N>): Promise<MetricTrainingResult> {
  const { label, settings, locations } = spec;
  checkCommonSettings(settings);
  const flipProbability = spec.flipProbability ?? 0;
  if (!(flipProbability >= 0 && flipProbability <= 1)) throw new Error(`flipProbability must be in [0, 1], got ${flipProbability}`);
  // Threads and checkpoint spacing do not change what a step computes, so a resume may change them.
  const { threads: _threads, checkpointEvery: _checkpointEvery, ...runSettings } = settings;
  const renderStarted = performance.now();
  const cacheFile = locations.cacheImages === false ? undefined : path.join(locations.workDir, `${label}-images.safetensors`);
  const images = await renderImageSet(spec.requests, { cacheFile, log: locations.log });
  const renderSeconds = (performance.now() - renderStarted) / 1000;
  const previousThreads = getNumThreads();
  const owned: { dispose(): void }[] = [images];
  try {
    setNumThreads(settings.threads);
    manualSeed(settings.seed);
    const { network, helpers = {} } = spec.build();
    owned.push(network, ...Object.values(helpers));
    const parameters = [network, ...Object.values(helpers)].flatMap((module) => module.parameters());
    const optimizer = new AdamW(parameters, { lr: settings.learningRate, weightDecay: settings.weightDecay });
    owned.push(optimizer);
    const scheduler = cosineSchedule(optimizer, { warmupSteps: settings.warmupSteps, totalSteps: settings.steps });
    network.train();
    const count = spec.requests.length;
    const modules: Record<string, Module> = { network, ...helpers };
    const job = new TrainingJob({
      name: label, dir: path.join(locations.workDir, "checkpoints"), steps: settings.steps, seed: settings.seed, settings: runSettings,
      tensors: () => new Map(Object.entries(modules).flatMap(([name, module]) => [...module.stateDict()].map(([key, value]) => [`${name}.${key}`, value] as const))),
      load: (tensors) => {
        for (const [name, module] of Object.entries(modules)) {
          module.loadStateDict(new Map([...tensors].filter(([key]) => key.startsWith(`${name}.`)).map(([key, value]) => [key.slice(name.length + 1), value])));
        }
      },
      parameters, optimizer, scheduler,
    });
    const result = await train({
      label, jobs: [job], checkpointEvery: settings.checkpointEvery, logFile: path.join(locations.workDir, `${label}.log.jsonl`), hooks: locations,
      step: () => [tidy(() => {
        const { generator } = job;
        const rows = randint(0, count, [settings.batchSize], { generator });
        let batch = imageBatch(images, rows);
        if (flipProbability > 0) {
          const flip = rand([settings.batchSize], { generator }).lt(flipProbability).view(settings.batchSize, 1, 1, 1);
          batch = where(flip, batch.flip(3), batch);
        }
        const loss = spec.loss(network, batch, rows);
        loss.backward();
        return loss.item();
      })],
      finish: () => {
        const { network: _architecture, ...training } = runSettings;
        network.eval().save(locations.outDir, { dtype: settings.dtype, training: { ...training, finalLoss: job.recentLoss(50), trainingSeconds: job.seconds, renderSeconds } });
        locations.log?.(`${label}: saved to ${locations.outDir}`);
      },
    });
    const summary = { step: job.step, losses: job.losses, trainingSeconds: job.seconds, renderSeconds, settings: runSettings };
    return { finished: !result.stopped, ...summary };
  } finally {
    setNumThreads(previousThreads);
    for (const item of owned) item.dispose();
  }
}
