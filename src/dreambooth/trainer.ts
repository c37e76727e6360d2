/**
 * DreamBooth training of LiDB (or LoRA) adapters for one identity or many at once (HyperDreamBooth §4.1-4.2:
 * the per-identity LiDB weights the hypernetwork learns to predict), on the one training loop
 * (src/training/loop.ts).
 *
 * Each identity is a job of the loop (identity.ts), up to `identitiesPerBatch` in flight. Every step, each
 * one draws its own samples (its photos, plus class images with prior preservation) from its own per-step
 * generator; the samples are concatenated into one batch, each carrying its identity's factors; one UNet (and
 * text encoder) forward and backward computes every identity's loss and gradient at once (the loss is the sum
 * of the per-identity mean losses, so no identity's gradient depends on the others); then the loop clips and
 * steps each identity's own AdamW. An identity that reaches `maxTrainSteps` writes its adapter file and its
 * manifest entry, and the next identity takes its place. Fixed seed ⇒ the same bits on the CPU, run after run.
 *
 * Output folder: manifest.json (run settings and finished identities, atomic), <id>.<adapter file> per
 * identity, train-log.jsonl (every identity's every step), checkpoints/<id>/checkpoint-<n>/ for identities
 * in flight (every `checkpointingSteps`), and validation/<id>/step-<n>-<k>.png every `validationSteps`.
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { autocast, cat, Generator, keep, noGrad, tensor, tidy, type Tensor } from "../engine/index.js";
import { GradScaler } from "../engine/optim/index.js";
import type { DDPMScheduler } from "../models/schedulers/index.js";
import { savePng } from "../pipeline/images.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { differingSettings, diffusionLoss, diffusionTarget, EARLIER_LAYOUT_COMMIT, stepJobs, train } from "../training/index.js";
import { streamId } from "../util/hash.js";
import { recordedPath, repositoryRoot } from "../util/provenance.js";
import type { ProgressReporter } from "../util/progress.js";
import { attachAdapters, type TrainingAdapters } from "./adapters.js";
import { promptWithIdentifier, resolveConfig, runFingerprint, upgradeFingerprint, type IdentitySpec, type TrainingConfig, type TrainingConfigInput } from "./config.js";
import { encodePosterior, loadPixels, prepareClassImages } from "./data.js";
import { IdentityRun, type IdentitySamples, type SharedData } from "./identity.js";
import { MANIFEST_FORMAT, readManifest, writeManifest, type ManifestEntry, type RunManifest } from "./manifest.js";

/**
 * What the diffusion term's target comes from instead of the drawn noise (DreamBoothTrainer.batchLosses): per sample
 * a factor set of the same adapters, or per sample a prompt for the model without adapters.
 */
export type Teachers = readonly Map<string, Tensor>[] | { prompts: readonly string[] };

export interface TrainingHooks {
  /**
   * Told the steps done over all pending identities (their steps resumed from checkpoints counted as done
   * before this run) and the loss, as the run starts and after every batch step; the CLI draws a bar from it.
   */
  progress?: ProgressReporter;
  onIdentityDone?: (entry: ManifestEntry) => void;
  /** Stop after this many batch steps, leaving the output folder as a kill at that point would (tests). */
  stopAfterSteps?: number;
  log?: (line: string) => void;
}

export interface TrainingResult {
  config: TrainingConfig;
  manifest: RunManifest;
  /** True when `stopAfterSteps` ended the run early. */
  stopped: boolean;
}

/** The per-step random stream of every DreamBooth identity (src/training/job.ts). */
export const DREAMBOOTH_STREAM = "dreambooth";

/** Trains every identity of the config that the output folder does not already hold. */
export async function trainDreamBooth(input: TrainingConfigInput, hooks: TrainingHooks = {}): Promise<TrainingResult> {
  const config = resolveConfig(input);
  const trainer = await DreamBoothTrainer.open(config, hooks);
  try {
    const pending = config.identities.filter((identity) => !trainer.manifest.identities.some((done) => done.id === identity.id));
    async function* identities(): AsyncGenerator<IdentityRun> {
      for (const spec of pending) yield await trainer.startIdentity(spec);
    }
    const { stopped } = await train({
      label: `train-${config.adapter}`, stream: DREAMBOOTH_STREAM, jobs: identities(), totalSteps: pending.length * config.maxTrainSteps,
      jobsPerStep: config.identitiesPerBatch, checkpointEvery: config.checkpointingSteps, resume: config.resumeFromCheckpoint,
      logFile: path.join(config.outputDir, "train-log.jsonl"), scaler: trainer.scaler,
      step: (runs) => trainer.stepLosses(runs),
      afterStep: async (run) => {
        if (config.validationSteps > 0 && (run.step % config.validationSteps === 0 || run.done)) await trainer.validate(run);
      },
      finish: (run) => {
        const entry = trainer.finish(run);
        hooks.onIdentityDone?.(entry);
      },
      hooks: { ...(hooks.progress ? { progress: hooks.progress } : {}), ...(hooks.log ? { log: hooks.log } : {}), ...(hooks.stopAfterSteps === undefined ? {} : { stopAfterSteps: hooks.stopAfterSteps }) },
    });
    return { config, manifest: trainer.manifest, stopped };
  } finally {
    trainer.dispose();
  }
}

/** The pieces of a training run and its steps; `trainDreamBooth` is the loop that drives it. */
export class DreamBoothTrainer {
  readonly #active = new Set<IdentityRun>();
  /** fp16 loss scaling, shared by the identities of a batch (null unless mixedPrecision is fp16). */
  readonly scaler: GradScaler | null;

  private constructor(
    readonly config: TrainingConfig,
    /** Square training (and validation) resolution in pixels. */
    readonly resolution: number,
    readonly pipeline: StableDiffusionPipeline,
    readonly adapters: TrainingAdapters,
    readonly noiseScheduler: DDPMScheduler,
    readonly shared: SharedData,
    /** (2, L) token ids of the instance prompt and the class prompt. */
    readonly promptIds: Tensor,
    /** (2, L, D) their embeddings when the text encoder is frozen, else null. */
    readonly frozenText: Tensor | null,
    readonly manifest: RunManifest,
    readonly hooks: TrainingHooks,
  ) {
    this.scaler = config.mixedPrecision === "fp16" ? new GradScaler() : null;
  }

  /**
   * Loads the pipeline, injects the adapters, prepares class images and the manifest (resuming if asked).
   * With `manifest: false` nothing is written to the output folder: the models, adapters and losses serve
   * another trainer (the hypernetwork's), which keeps its own records.
   */
  static async open(config: TrainingConfig, hooks: TrainingHooks = {}, options: { manifest?: boolean } = {}): Promise<DreamBoothTrainer> {
    const keepsManifest = options.manifest !== false;
    const manifest = keepsManifest ? openManifest(config) : { format: MANIFEST_FORMAT, settings: runFingerprint(config), identities: [] };
    const pipeline = await StableDiffusionPipeline.fromPretrained(config.pretrainedModel, { device: config.device });
    const parts: { adapters?: TrainingAdapters; shared?: SharedData; ids?: Tensor; text?: Tensor | null; scheduler?: DDPMScheduler } = {};
    try {
      for (const model of [pipeline.unet, pipeline.textEncoder, pipeline.vae]) model.requiresGrad_(false);
      if (config.gradientCheckpointing) pipeline.unet.enableGradientCheckpointing();
      pipeline.unet.train();
      pipeline.textEncoder.train(config.trainTextEncoder);
      const resolution = config.resolution ?? (pipeline.unet.sampleSize?.[0] ?? 64) * pipeline.vaeScaleFactor;
      parts.scheduler = pipeline.makeScheduler("DDPMScheduler") as DDPMScheduler;
      const augmentation = config.randomFlip > 0 || config.randomCropScale !== null ? { flip: config.randomFlip, cropScale: config.randomCropScale } : null;
      let classPosterior: Tensor | null = null;
      let classPixels: Tensor | null = null;
      let classCount = 0;
      if (config.withPriorPreservation) {
        const dir = config.classDataDir ?? path.join(config.outputDir, "class-images");
        const files = await prepareClassImages(pipeline, dir, config.classPrompt, config.numClassImages, resolution, config.seed,
          (done, total) => hooks.log?.(`class image ${done}/${total}`));
        const pixels = await loadPixels(files, resolution);
        classCount = files.length;
        if (augmentation) classPixels = keep(pixels);
        else {
          classPosterior = keep(encodePosterior(pipeline.vae, pixels));
          pixels.dispose();
        }
      }
      parts.shared = {
        vae: pipeline.vae, scalingFactor: pipeline.vae.scalingFactor, numTrainTimesteps: parts.scheduler.config.num_train_timesteps,
        batchSize: config.trainBatchSize, augmentation, classPosterior, classPixels, classCount,
      };
      const prompts = [promptWithIdentifier(config.instancePrompt, config.identifier), config.classPrompt];
      const { inputIds } = pipeline.tokenizer.call(prompts, { padding: "max_length", maxLength: pipeline.tokenizer.modelMaxLength, truncation: true });
      parts.ids = keep(tidy(() => tensor(BigInt64Array.from(inputIds.flat(), (v) => BigInt(v)), { shape: [2, inputIds[0]!.length] }).to(config.device)));
      parts.text = config.trainTextEncoder ? null : keep(noGrad(() => pipeline.textEncoder.encode(parts.ids!)));
      parts.adapters = attachAdapters(pipeline, config, parts.scheduler.config.prediction_type);
      if (keepsManifest && manifest.identities.length === 0) writeManifest(config.outputDir, manifest);
      return new DreamBoothTrainer(config, resolution, pipeline, parts.adapters, parts.scheduler, parts.shared, parts.ids, parts.text, manifest, hooks);
    } catch (error) {
      parts.adapters?.dispose();
      for (const t of [parts.ids, parts.text, parts.shared?.classPosterior, parts.shared?.classPixels]) t?.dispose();
      parts.scheduler?.dispose();
      pipeline.dispose();
      throw error;
    }
  }

  /** A new identity run from the initial factors (the loop resumes it from its checkpoint, if any). */
  async startIdentity(spec: IdentitySpec): Promise<IdentityRun> {
    const earlier = path.join(this.config.outputDir, "checkpoints", `${spec.id}.safetensors`);
    if (existsSync(earlier)) {
      throw new Error(`${earlier} is a checkpoint in the layout of an earlier version, whose steps drew other random numbers: ` +
        `delete it to train ${spec.id} from the start, or finish the run with hdb at commit ${EARLIER_LAYOUT_COMMIT}`);
    }
    const pixels = await loadPixels(spec.images, this.resolution);
    const initial = this.adapters.initialFactors();
    try {
      const run = IdentityRun.create(spec, this.config, initial, pixels, this.shared);
      this.#active.add(run);
      return run;
    } finally {
      pixels.dispose();
      for (const t of initial.values()) t.dispose();
    }
  }

  /**
   * Forward and backward of one optimiser step for every identity in `runs` (gradient accumulation included),
   * each drawing from its generator: the loop's step. Returns each identity's loss (the mean of its micro-steps).
   */
  stepLosses(runs: readonly IdentityRun[]): number[] {
    const accumulation = this.config.gradientAccumulationSteps;
    const sums = runs.map(() => 0);
    for (let micro = 0; micro < accumulation; micro++) {
      const samples = runs.map((run) => run.draw(this.shared, this.config.withPriorPreservation));
      this.batchLosses(runs.map((run) => run.factors), samples, true).forEach((loss, i) => (sums[i]! += loss));
    }
    return sums.map((sum) => sum / accumulation);
  }

  /** One whole optimiser step for `runs` outside the loop (tests, callers with their own schedule). */
  trainStep(runs: readonly IdentityRun[]): number[] {
    return stepJobs(runs, streamId(DREAMBOOTH_STREAM), (jobs) => this.stepLosses(jobs), this.scaler);
  }

  /**
   * The DreamBooth loss of `factors` on an identity's photos, averaged over `draws` samples drawn from a
   * generator seeded with `seed` (not the identity's): the same draws for any factors, so an untrained and a
   * trained model can be compared on equal terms. Runs without autograd, in chunks of `chunk` draws.
   */
  evaluate(run: IdentityRun, factors: Map<string, Tensor>, options: { draws?: number; seed?: number; chunk?: number } = {}): number {
    const { draws = 64, seed = 1234, chunk = 16 } = options;
    const generator = new Generator("cpu", seed);
    let total = 0;
    for (let start = 0; start < draws; start += chunk) {
      const count = Math.min(chunk, draws - start);
      const samples = Array.from({ length: count }, () => run.draw(this.shared, this.config.withPriorPreservation, generator));
      total += noGrad(() => this.batchLosses(samples.map(() => factors), samples, false)).reduce((a, b) => a + b, 0);
    }
    return total / draws;
  }

  /**
   * Per-identity losses of one batch: identity i's `samples[i]` with its `factors[i]`; with `train`, also
   * the backward pass of the sum of the identities' losses (divided by the accumulation steps), leaving each
   * identity's gradient in its factors' `.grad`. The samples' tensors are consumed (freed). `gradientScale`
   * multiplies what is differentiated, not the returned losses (the world size, when the batch summed over is one
   * rank's shard and the ranks average their gradients: hypernetwork/train.ts). With `teachers` (one factor set
   * per sample), the target is not the drawn noise but what the model predicts for the same noisy latents with
   * the teacher's factors (no gradient): distillation from pre-optimised weights (hypernetwork/train.ts). With
   * `teachers` as `{ prompts }` (one prompt per sample), the teacher is the model without adapters conditioned on
   * that prompt instead of the instance prompt: distillation from a description of the person.
   */
  batchLosses(factors: readonly Map<string, Tensor>[], samples: IdentitySamples[], train: boolean, gradientScale = 1, teachers?: Teachers): number[] {
    const { config } = this;
    return tidy(() => {
      const onDevice = (parts: Tensor[]): Tensor => cat(parts).to(config.device);
      const latents = onDevice(samples.map((s) => s.latents));
      const noise = onDevice(samples.map((s) => s.noise));
      const timesteps = onDevice(samples.map((s) => s.timesteps));
      for (const s of samples) for (const t of [s.latents, s.noise, s.timesteps]) t.dispose();
      const sampleIdentity = int64(samples.flatMap((s, i) => s.promptRows.map(() => i)), config.device);
      const promptRows = int64(samples.flatMap((s) => s.promptRows), config.device);
      const noisy = this.noiseScheduler.addNoise(latents, noise, timesteps);
      const encodeText = (): Tensor => (this.frozenText ? this.frozenText.indexSelect(0, promptRows) : this.pipeline.textEncoder.encode(this.promptIds.indexSelect(0, promptRows)));
      const forwardBackward = (): Tensor => {
        let target: Tensor;
        if (teachers && "prompts" in teachers) {
          if (teachers.prompts.length !== factors.length) throw new Error(`batchLosses: ${teachers.prompts.length} teacher prompts for ${factors.length} samples`);
          // Every prompt row of sample i (its instance rows; prior-preservation rows keep the class prompt) gets prompt i.
          const rows = samples.flatMap((s, i) => s.promptRows.map((row) => (row === 0 ? teachers.prompts[i]! : null)));
          if (rows.some((r) => r === null)) throw new Error("batchLosses: a prompt teacher with prior preservation is not supported");
          target = noGrad(() => this.pipeline.unet.forward(noisy, timesteps, this.pipeline.encodePrompt(rows as string[])));
        } else if (teachers) {
          if (teachers.length !== factors.length) throw new Error(`batchLosses: ${teachers.length} teachers for ${factors.length} samples`);
          this.adapters.bind(teachers, sampleIdentity);
          try {
            target = noGrad(() => this.pipeline.unet.forward(noisy, timesteps, encodeText()));
          } finally {
            this.adapters.unbind();
          }
        } else {
          target = diffusionTarget(this.noiseScheduler, latents, noise, timesteps);
        }
        this.adapters.bind(factors, sampleIdentity);
        const prediction = this.pipeline.unet.forward(noisy, timesteps, encodeText());
        const perIdentity = diffusionLoss(prediction, target, timesteps, {
          scheduler: this.noiseScheduler, groups: factors.length,
          weighting: config.snrGamma === null ? { kind: "none" } : { kind: "min-snr", gamma: config.snrGamma },
          prior: config.withPriorPreservation ? { weight: config.priorLossWeight } : null,
        });
        if (train) {
          const summed = perIdentity.total.sum().div(config.gradientAccumulationSteps);
          const loss = gradientScale === 1 ? summed : summed.mul(gradientScale);
          this.pipeline.unet.backward(this.scaler ? this.scaler.scale(loss) : loss);
          this.adapters.collectGradients(factors);
        }
        return perIdentity.total.detach();
      };
      try {
        const values = config.mixedPrecision === "no" ? forwardBackward()
          : autocast(config.device.startsWith("cuda") ? "cuda" : "cpu", config.mixedPrecision === "fp16" ? "float16" : "bfloat16", forwardBackward);
        return Array.from(values.float().data() as Float32Array);
      } finally {
        this.adapters.unbind();
      }
    });
  }

  /** Validation images of an identity's current factors (guided generation of `validationPrompt`). */
  async validate(run: IdentityRun): Promise<void> {
    const { config } = this;
    const dir = path.join(config.outputDir, "validation", run.spec.id);
    mkdirSync(dir, { recursive: true });
    this.adapters.setFactors(run.factors);
    try {
      const result = this.pipeline.generate({
        prompt: promptWithIdentifier(config.validationPrompt, config.identifier), steps: config.validationInferenceSteps,
        guidanceScale: config.validationGuidanceScale, imagesPerPrompt: config.numValidationImages, seed: config.seed,
        height: this.resolution, width: this.resolution,
      });
      for (const [k, image] of result.rgb.entries()) await savePng(path.join(dir, `step-${String(run.step).padStart(6, "0")}-${k}.png`), image);
      result.images.dispose();
      result.latents.dispose();
    } finally {
      this.adapters.unbind();
    }
  }

  /** Writes a finished identity's adapter file and manifest entry, removes its checkpoint, frees it. */
  finish(run: IdentityRun): ManifestEntry {
    const { config } = this;
    // The loop checks each step's loss and the weights it leaves for NaN/Inf, but the last update can leave
    // finite weights that no longer give a finite loss (a learning rate of 1e30 for one step: factors of ~1e30,
    // whose product overflows). One loss of the final weights, on a fixed draw, before anything is written.
    const last = this.evaluate(run, run.factors, { draws: 1, chunk: 1 });
    if (!Number.isFinite(last)) {
      throw new Error(`${run.spec.id}: the weights after step ${run.step} give a ${Number.isNaN(last) ? "NaN" : "infinite"} loss (the learning rate ` +
        `${config.learningRate} diverged them); no adapter file was written: train again with a lower learning rate`);
    }
    const file = this.adapters.fileName(run.spec.id);
    this.adapters.save(path.join(config.outputDir, file), run.factors, {
      identifier: config.identifier,
      training: {
        identity: run.spec.id, prompt: promptWithIdentifier(config.instancePrompt, config.identifier), steps: run.step,
        learningRate: config.learningRate, seed: run.seed, finalLoss: run.recentLoss(), priorPreservation: config.withPriorPreservation,
        textEncoder: config.trainTextEncoder, resolution: this.resolution,
      },
    });
    const entry: ManifestEntry = {
      id: run.spec.id, images: run.spec.images, file, finalLoss: run.recentLoss(), steps: run.step, seed: run.seed, seconds: run.seconds,
    };
    this.manifest.identities.push(entry);
    writeManifest(config.outputDir, this.manifest);
    this.#active.delete(run);
    run.dispose();
    return entry;
  }

  /** Frees a run that will not finish here (one trained by another caller's loop: src/personalize/). */
  release(run: IdentityRun): void {
    this.#active.delete(run);
    run.dispose();
  }

  dispose(): void {
    for (const run of this.#active) run.dispose();
    this.#active.clear();
    this.adapters.dispose();
    for (const t of [this.promptIds, this.frozenText, this.shared.classPosterior, this.shared.classPixels]) t?.dispose();
    this.noiseScheduler.dispose();
    this.pipeline.dispose();
  }
}

/** Small integers as an int64 tensor on `device`. */
function int64(values: readonly number[], device: string): Tensor {
  return tidy(() => tensor(BigInt64Array.from(values, (v) => BigInt(v)), { dtype: "int64" }).to(device));
}

/**
 * Whether `saved`, a model folder recorded by a run in another checkout, is `current`'s folder of this checkout: both
 * absolute, and the saved path ends with the current one's path inside its repository (models/miniworld/base).
 */
export function sameModelElsewhere(saved: string, current: string): boolean {
  if (saved === current || !path.isAbsolute(saved) || !existsSync(current)) return false;
  const inside = recordedPath(current, repositoryRoot(current));
  return !path.isAbsolute(inside) && saved.split(path.sep).join("/").endsWith(`/${inside}`);
}

/**
 * The output folder's manifest: the existing one when resuming (with the same settings), else a new one
 * (written once the models are loaded, so a run that fails to start leaves nothing to resume).
 */
function openManifest(config: TrainingConfig): RunManifest {
  const settings = runFingerprint(config);
  const existing = readManifest(config.outputDir);
  if (existing) {
    if (!config.resumeFromCheckpoint) {
      throw new Error(`${config.outputDir} already holds a training run: resume it (--resume-from-checkpoint) or choose another output folder`);
    }
    const saved = upgradeFingerprint(existing.settings);
    // A checkout moved to another folder records the same model under another absolute path: the same model.
    if (typeof saved["pretrainedModel"] === "string" && sameModelElsewhere(saved["pretrainedModel"], config.pretrainedModel)) saved["pretrainedModel"] = settings["pretrainedModel"];
    const differing = differingSettings(saved, settings);
    if (differing.length > 0) throw new Error(`cannot resume ${config.outputDir}: settings differ from the saved run: ${differing.join(", ")}`);
    return existing;
  }
  return { format: MANIFEST_FORMAT, settings, identities: [] };
}
