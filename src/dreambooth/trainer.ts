/**
 * DreamBooth training of LiDB (or LoRA) adapters for one identity or many at once (HyperDreamBooth §4.1-4.2:
 * the per-identity LiDB weights the hypernetwork learns to predict).
 *
 * The loop (`trainDreamBooth`) keeps up to `identitiesPerBatch` identities in flight. Every step, each one
 * draws its own samples (its photos, plus class images with prior preservation) from its own generator; the
 * samples are concatenated into one batch, each carrying its identity's factors; one UNet (and text encoder)
 * forward and backward computes every identity's loss and gradient at once (the loss is the sum of the
 * per-identity mean losses, so no identity's gradient depends on the others); then each identity clips and
 * steps its own AdamW. An identity that reaches `maxTrainSteps` writes its adapter file and its manifest
 * entry, and the next identity takes its place. Fixed seed ⇒ the same bits on the CPU, run after run.
 *
 * Output folder: manifest.json (run settings and finished identities, atomic), <id>.<adapter file> per
 * identity, checkpoints/<id>.safetensors for identities in flight (every `checkpointingSteps`), and
 * validation/<id>/step-<n>-<k>.png every `validationSteps`.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { autocast, cat, Generator, keep, noGrad, tensor, tidy, type Tensor } from "../engine/index.js";
import { GradScaler } from "../engine/optim/index.js";
import type { DDPMScheduler } from "../models/schedulers/index.js";
import { savePng } from "../pipeline/images.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import type { ProgressReporter } from "../util/progress.js";
import { attachAdapters, type TrainingAdapters } from "./adapters.js";
import { promptWithIdentifier, resolveConfig, runFingerprint, upgradeFingerprint, type IdentitySpec, type TrainingConfig, type TrainingConfigInput } from "./config.js";
import { encodePosterior, loadPixels, prepareClassImages } from "./data.js";
import { IdentityRun, type IdentitySamples, type SharedData } from "./identity.js";
import { differingSettings, MANIFEST_FORMAT, readManifest, writeManifest, type ManifestEntry, type RunManifest } from "./manifest.js";
import { dreamboothLosses, trainingTarget } from "./objective.js";

export interface TrainingHooks {
  /**
   * Told the steps done over all pending identities (their steps resumed from checkpoints counted as done
   * before this run) and the loss, as the run starts and after every batch step; the CLI draws a bar from it.
   */
  progress?: ProgressReporter;
  /** Called after every batch step with each in-flight identity's step and loss. */
  onStep?: (report: StepReport) => void;
  onIdentityDone?: (entry: ManifestEntry) => void;
  /** Stop after this many batch steps, leaving the output folder as a kill at that point would (tests). */
  stopAfterSteps?: number;
  log?: (line: string) => void;
}

export interface StepReport {
  /** Batch steps taken by this call. */
  batchStep: number;
  identities: { id: string; step: number; loss: number }[];
  seconds: number;
}

export interface TrainingResult {
  config: TrainingConfig;
  manifest: RunManifest;
  /** True when `stopAfterSteps` ended the run early. */
  stopped: boolean;
}

/** Trains every identity of the config that the output folder does not already hold. */
export async function trainDreamBooth(input: TrainingConfigInput, hooks: TrainingHooks = {}): Promise<TrainingResult> {
  const config = resolveConfig(input);
  const trainer = await DreamBoothTrainer.open(config, hooks);
  try {
    const pending = config.identities.filter((identity) => !trainer.manifest.identities.some((done) => done.id === identity.id));
    const label = `train-${config.adapter}`;
    const total = pending.length * config.maxTrainSteps;
    let done = 0;
    let resumed = 0;
    hooks.progress?.({ label, done, total, start: resumed });
    const slots: IdentityRun[] = [];
    let batchStep = 0;
    while (pending.length > 0 || slots.length > 0) {
      if (hooks.stopAfterSteps !== undefined && batchStep >= hooks.stopAfterSteps) return { config, manifest: trainer.manifest, stopped: true };
      while (slots.length < config.identitiesPerBatch && pending.length > 0) {
        const run = await trainer.startIdentity(pending.shift()!);
        done += run.step;
        resumed += run.step;
        hooks.progress?.({ label, done, total, start: resumed });
        slots.push(run);
      }
      const started = performance.now();
      trainer.trainStep(slots);
      batchStep += 1;
      const report = slots.map((run) => ({ id: run.spec.id, step: run.step, loss: run.losses.at(-1)! }));
      for (const run of [...slots]) {
        const finished = run.step >= config.maxTrainSteps;
        if (config.validationSteps > 0 && (run.step % config.validationSteps === 0 || finished)) await trainer.validate(run);
        if (finished) {
          const entry = trainer.finish(run);
          hooks.onIdentityDone?.(entry);
          slots.splice(slots.indexOf(run), 1);
        } else if (config.checkpointingSteps > 0 && run.step % config.checkpointingSteps === 0) {
          trainer.checkpoint(run);
        }
      }
      hooks.onStep?.({ batchStep, identities: report, seconds: (performance.now() - started) / 1000 });
      done += report.length;
      hooks.progress?.({ label, done, total, start: resumed, ...(report.length === 1 ? { loss: report[0]!.loss } : { note: `${report.length} identities` }) });
    }
    return { config, manifest: trainer.manifest, stopped: false };
  } finally {
    trainer.dispose();
  }
}

/** The pieces of a training run and its steps; `trainDreamBooth` is the loop that drives it. */
export class DreamBoothTrainer {
  readonly #active = new Set<IdentityRun>();
  readonly #scaler: GradScaler | null;

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
    this.#scaler = config.mixedPrecision === "fp16" ? new GradScaler() : null;
  }

  /** Loads the pipeline, injects the adapters, prepares class images and the manifest (resuming if asked). */
  static async open(config: TrainingConfig, hooks: TrainingHooks = {}): Promise<DreamBoothTrainer> {
    const manifest = openManifest(config);
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
      if (manifest.identities.length === 0) writeManifest(config.outputDir, manifest);
      return new DreamBoothTrainer(config, resolution, pipeline, parts.adapters, parts.scheduler, parts.shared, parts.ids, parts.text, manifest, hooks);
    } catch (error) {
      parts.adapters?.dispose();
      for (const t of [parts.ids, parts.text, parts.shared?.classPosterior, parts.shared?.classPixels]) t?.dispose();
      parts.scheduler?.dispose();
      pipeline.dispose();
      throw error;
    }
  }

  /** A new identity run from the initial factors, or from its checkpoint when resuming. */
  async startIdentity(spec: IdentitySpec): Promise<IdentityRun> {
    const pixels = await loadPixels(spec.images, this.resolution);
    const initial = this.adapters.initialFactors();
    let run: IdentityRun;
    try {
      run = new IdentityRun(spec, this.config, initial, pixels, this.shared);
    } finally {
      pixels.dispose();
      for (const t of initial.values()) t.dispose();
    }
    const checkpoint = this.#checkpointFile(spec.id);
    if (this.config.resumeFromCheckpoint && existsSync(checkpoint)) {
      try {
        run.restoreCheckpoint(checkpoint);
      } catch (error) {
        run.dispose();
        throw error;
      }
      this.hooks.log?.(`${spec.id}: resumed from step ${run.step}`);
    }
    this.#active.add(run);
    return run;
  }

  /** One optimiser step for every identity in `runs` (gradient accumulation included). */
  trainStep(runs: readonly IdentityRun[]): void {
    const accumulation = this.config.gradientAccumulationSteps;
    for (let micro = 0; micro < accumulation; micro++) {
      const samples = runs.map((run) => run.draw(this.shared, this.config.withPriorPreservation));
      const losses = this.batchLosses(runs.map((run) => run.factors), samples, true);
      runs.forEach((run, i) => run.pending.push(losses[i]!));
    }
    for (const run of runs) run.update(this.config.maxGradNorm, this.#scaler);
    this.#scaler?.update();
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
   * identity's gradient in its factors' `.grad`. The samples' tensors are consumed (freed).
   */
  batchLosses(factors: readonly Map<string, Tensor>[], samples: IdentitySamples[], train: boolean): number[] {
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
      const target = trainingTarget(this.noiseScheduler, latents, noise, timesteps);
      const forwardBackward = (): Tensor => {
        this.adapters.bind(factors, sampleIdentity);
        const text = this.frozenText ? this.frozenText.indexSelect(0, promptRows) : this.pipeline.textEncoder.encode(this.promptIds.indexSelect(0, promptRows));
        const prediction = this.pipeline.unet.forward(noisy, timesteps, text);
        const perIdentity = dreamboothLosses(prediction, target, timesteps, {
          scheduler: this.noiseScheduler, identities: factors.length, instancesPerIdentity: config.trainBatchSize,
          withPriorPreservation: config.withPriorPreservation, priorLossWeight: config.priorLossWeight, snrGamma: config.snrGamma,
        });
        if (train) {
          const loss = perIdentity.total.sum().div(config.gradientAccumulationSteps);
          this.pipeline.unet.backward(this.#scaler ? this.#scaler.scale(loss) : loss);
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

  /** Saves an in-flight identity's training state (atomically). */
  checkpoint(run: IdentityRun): void {
    mkdirSync(path.join(this.config.outputDir, "checkpoints"), { recursive: true });
    run.saveCheckpoint(this.#checkpointFile(run.spec.id));
  }

  /** Writes a finished identity's adapter file and manifest entry, removes its checkpoint, frees it. */
  finish(run: IdentityRun): ManifestEntry {
    const { config } = this;
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
      id: run.spec.id, images: run.spec.images, file, finalLoss: run.recentLoss(), steps: run.step, seed: run.seed,
      seconds: (Date.now() - run.startedAt) / 1000,
    };
    this.manifest.identities.push(entry);
    writeManifest(config.outputDir, this.manifest);
    rmSync(this.#checkpointFile(run.spec.id), { force: true });
    this.#active.delete(run);
    run.dispose();
    return entry;
  }

  #checkpointFile(id: string): string {
    return path.join(this.config.outputDir, "checkpoints", `${id}.safetensors`);
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
    const differing = differingSettings(upgradeFingerprint(existing.settings), settings);
    if (differing.length > 0) throw new Error(`cannot resume ${config.outputDir}: settings differ from the saved run: ${differing.join(", ")}`);
    return existing;
  }
  return { format: MANIFEST_FORMAT, settings, identities: [] };
}
