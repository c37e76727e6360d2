/**
 * One identity being trained: its own adapter factors (autograd leaves), its own AdamW and learning-rate
 * schedule, its own random stream, its step count and losses, its photos' VAE posteriors, and its checkpoint.
 *
 * Everything random about an identity's training (which photo, augmentation, the posterior sample, noise,
 * timesteps) is drawn from its own generator, seeded from the identity, in a fixed order. Together with its
 * own optimiser this makes its result independent of which other identities share its batches: trained alone
 * or in a batch of 16, it sees the same numbers (up to the last-bit effects of batched kernels).
 *
 * Checkpoint: one safetensors file (written atomically) with the factors ("factors.<name>"), the optimiser's
 * state tensors ("optimizer.state.<i>.<name>") and the generator state ("generator"); the metadata holds the
 * step, the losses so far, the optimiser's JSON part and the schedule's state. Restoring it and continuing
 * gives the same numbers as never stopping.
 */
import {
  cat, Generator, keep, loadSafetensors, noGrad, rand, randint, randn, saveSafetensors, tidy, type Tensor,
} from "../engine/index.js";
import { clipGradNorm_ } from "../engine/nn/index.js";
import { AdamW, getScheduler, type GradScaler, type LRScheduler, type LRSchedulerState, type OptimizerStateDict } from "../engine/optim/index.js";
import { DiagonalGaussianDistribution } from "../models/vae/gaussian.js";
import type { AutoencoderKL } from "../models/vae/index.js";
import { identitySeed, type IdentitySpec, type TrainingConfig } from "./config.js";
import { AUGMENT_DRAWS, augment, encodePosterior, type AugmentOptions } from "./data.js";

const CHECKPOINT_FORMAT = "hdb-identity-training-state/1";

/** What every identity shares: the VAE, the class images, augmentation and the number of training timesteps. */
export interface SharedData {
  vae: AutoencoderKL;
  scalingFactor: number;
  numTrainTimesteps: number;
  /** Instance photos per micro-step (B). */
  batchSize: number;
  augmentation: AugmentOptions | null;
  /** Class images as posteriors (no augmentation) or pixels (augmentation); null without prior preservation. */
  classPosterior: Tensor | null;
  classPixels: Tensor | null;
  classCount: number;
}

/** An identity's part of a batch: B instance samples, then B class samples with prior preservation. */
export interface IdentitySamples {
  latents: Tensor;
  noise: Tensor;
  timesteps: Tensor;
  /** Per sample: 0 = instance prompt, 1 = class prompt. */
  promptRows: number[];
}

export class IdentityRun {
  readonly seed: number;
  readonly generator: Generator;
  /** The trainable factors by name (leaves that require grad), in the adapters' order. */
  readonly factors: Map<string, Tensor>;
  readonly optimizer: AdamW;
  readonly schedule: LRScheduler;
  /** Optimiser steps taken. */
  step = 0;
  /** The loss of every optimiser step (mean over its accumulation micro-steps). */
  readonly losses: number[] = [];
  /** Loss of the micro-steps of the current optimiser step. */
  readonly pending: number[] = [];
  readonly startedAt = Date.now();
  /** The photos' posteriors (no augmentation) or pixels (augmentation). */
  readonly #instancePosterior: Tensor | null;
  readonly #instancePixels: Tensor | null;
  readonly #imageCount: number;

  constructor(readonly spec: IdentitySpec, config: TrainingConfig, initialFactors: Map<string, Tensor>, pixels: Tensor, shared: SharedData) {
    this.seed = identitySeed(config.seed, spec);
    this.generator = new Generator("cpu", this.seed);
    this.factors = new Map([...initialFactors].map(([name, value]) => [name, keep(noGrad(() => tidy(() => value.detach().clone()))).requiresGrad_(true)]));
    this.optimizer = new AdamW([...this.factors.values()], {
      lr: config.learningRate, betas: [config.adamBeta1, config.adamBeta2], weightDecay: config.adamWeightDecay, eps: config.adamEpsilon,
    });
    this.schedule = getScheduler(config.lrScheduler, this.optimizer, { warmupSteps: config.lrWarmupSteps, totalSteps: config.maxTrainSteps });
    this.#imageCount = pixels.size(0);
    if (shared.augmentation) {
      this.#instancePixels = keep(pixels.clone());
      this.#instancePosterior = null;
    } else {
      this.#instancePosterior = keep(encodePosterior(shared.vae, pixels));
      this.#instancePixels = null;
    }
  }

  /**
   * Draws this identity's samples for one micro-step from its generator, in a fixed order: photo indices,
   * class indices, augmentation uniforms, posterior sample, noise, timesteps (uniform in [0, T)). Another
   * generator may be given for draws outside training (a fixed evaluation set).
   */
  draw(shared: SharedData, withPriorPreservation: boolean, generator: Generator = this.generator): IdentitySamples {
    return noGrad(() => tidy(() => {
      const g = generator;
      const b = shared.batchSize;
      const instanceIndex = randint(0, this.#imageCount, [b], { generator: g });
      const classIndex = withPriorPreservation ? randint(0, shared.classCount, [b], { generator: g }) : null;
      let posterior: Tensor;
      if (shared.augmentation) {
        const parts = [this.#instancePixels!.indexSelect(0, instanceIndex)];
        if (classIndex) parts.push(shared.classPixels!.indexSelect(0, classIndex));
        const pixels = cat(parts);
        const draws = rand([pixels.size(0), AUGMENT_DRAWS], { generator: g });
        posterior = encodePosterior(shared.vae, augment(pixels, draws, shared.augmentation));
      } else {
        const parts = [this.#instancePosterior!.indexSelect(0, instanceIndex)];
        if (classIndex) parts.push(shared.classPosterior!.indexSelect(0, classIndex));
        posterior = cat(parts);
      }
      const distribution = new DiagonalGaussianDistribution(posterior);
      const latents = distribution.sample({ generator: g }).mul(shared.scalingFactor);
      const noise = randn(latents.shape, { generator: g });
      const timesteps = randint(0, shared.numTrainTimesteps, [latents.size(0)], { generator: g });
      const promptRows = [...new Array<number>(b).fill(0), ...(classIndex ? new Array<number>(b).fill(1) : [])];
      return { latents, noise, timesteps, promptRows };
    }));
  }

  /**
   * Clips this identity's gradient norm, steps its optimiser and schedule, and records the step's loss. With
   * an fp16 loss scaler the gradients are unscaled first and the step is skipped on inf/NaN (the scaler is
   * shared by the batch, so fp16 training is not batch-independent; bf16 needs no scaler and is).
   */
  update(maxGradNorm: number, scaler: GradScaler | null = null): void {
    scaler?.unscale_(this.optimizer);
    if (maxGradNorm > 0) clipGradNorm_(this.factors.values(), maxGradNorm).dispose();
    if (scaler) scaler.step(this.optimizer);
    else this.optimizer.step();
    this.schedule.step();
    this.optimizer.zeroGrad();
    this.step += 1;
    this.losses.push(this.pending.reduce((a, b) => a + b, 0) / Math.max(this.pending.length, 1));
    this.pending.length = 0;
  }

  /** The mean loss of the last `window` steps (the "final loss" of the manifest: one step's loss is noisy). */
  recentLoss(window = 10): number {
    const tail = this.losses.slice(-window);
    return tail.reduce((a, b) => a + b, 0) / Math.max(tail.length, 1);
  }

  saveCheckpoint(file: string): void {
    tidy(() => {
      const { tensors, meta } = this.optimizer.stateDict();
      const all = new Map<string, Tensor>();
      for (const [name, value] of this.factors) all.set(`factors.${name}`, value);
      for (const [name, value] of tensors) all.set(`optimizer.${name}`, value);
      all.set("generator", this.generator.getState());
      saveSafetensors(file, all, {
        format: CHECKPOINT_FORMAT, id: this.spec.id, seed: String(this.seed), step: String(this.step),
        losses: JSON.stringify(this.losses), optimizer: JSON.stringify(meta), schedule: JSON.stringify(this.schedule.stateDict()),
      });
    });
  }

  /** Restores a checkpoint written by `saveCheckpoint` for this identity (same seed, same factor names). */
  restoreCheckpoint(file: string): void {
    const { tensors, metadata } = loadSafetensors(file);
    try {
      if (metadata["format"] !== CHECKPOINT_FORMAT) throw new Error(`${file} is not an identity training checkpoint (format ${String(metadata["format"])})`);
      if (metadata["id"] !== this.spec.id || metadata["seed"] !== String(this.seed)) {
        throw new Error(`${file} belongs to identity '${metadata["id"]}' with seed ${metadata["seed"]}, not '${this.spec.id}' with seed ${this.seed}`);
      }
      noGrad(() => {
        for (const [name, leaf] of this.factors) {
          const saved = tensors.get(`factors.${name}`);
          if (!saved) throw new Error(`${file} has no factor '${name}'`);
          leaf.copy_(saved);
        }
      });
      const optimizerTensors = new Map([...tensors].filter(([key]) => key.startsWith("optimizer.")).map(([key, value]) => [key.slice("optimizer.".length), value]));
      this.optimizer.loadStateDict({ tensors: optimizerTensors, meta: JSON.parse(metadata["optimizer"]!) as OptimizerStateDict["meta"] });
      this.schedule.loadStateDict(JSON.parse(metadata["schedule"]!) as LRSchedulerState);
      this.generator.setState(tensors.get("generator")!);
      this.step = Number(metadata["step"]);
      this.losses.splice(0, this.losses.length, ...(JSON.parse(metadata["losses"]!) as number[]));
    } finally {
      for (const tensor of tensors.values()) tensor.dispose();
    }
  }

  /** Frees the factors, optimiser state and cached images. */
  dispose(): void {
    for (const factor of this.factors.values()) factor.dispose();
    this.optimizer.dispose();
    this.#instancePosterior?.dispose();
    this.#instancePixels?.dispose();
  }
}
