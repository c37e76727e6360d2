/**
 * One identity being trained: a training job (src/training/job.ts) whose trained tensors are the identity's own
 * adapter factors (autograd leaves), with its own AdamW and learning-rate schedule and its own per-step random
 * stream, plus its photos' VAE posteriors.
 *
 * Everything random about an identity's step (which photo, augmentation, the posterior sample, noise,
 * timesteps) is drawn from its generator, seeded by the loop from (the identity's seed, its step), in a fixed
 * order. Together with its own optimiser this makes its result independent of which other identities share
 * its batches: trained alone or in a batch of 16, it sees the same numbers (up to the last-bit effects of
 * batched kernels). Its checkpoints are the loop's: `<outputDir>/checkpoints/<id>/checkpoint-<step>/`.
 */
import path from "node:path";
import { cat, keep, noGrad, rand, randint, randn, tidy, type Generator, type Tensor } from "../engine/index.js";
import { AdamW, getScheduler } from "../engine/optim/index.js";
import { TrainingJob } from "../training/index.js";
import { DiagonalGaussianDistribution } from "../models/vae/gaussian.js";
import type { AutoencoderKL } from "../models/vae/index.js";
import { identitySeed, runFingerprint, type IdentitySpec, type TrainingConfig } from "./config.js";
import { AUGMENT_DRAWS, augment, encodePosterior, type AugmentOptions } from "./data.js";

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

/**
 * An identity's photos as training draws them: their VAE posteriors (computed once), or their pixels when
 * augmentation changes them every step. Used by DreamBooth's identities and by the hypernetwork's training.
 */
export class IdentityPhotos {
  /** The photos' posteriors (no augmentation) or pixels (augmentation). */
  readonly #instancePosterior: Tensor | null;
  readonly #instancePixels: Tensor | null;
  readonly #imageCount: number;

  /** `pixels` (N, 3, H, W) in [-1, 1]; the caller keeps them. */
  constructor(pixels: Tensor, shared: SharedData) {
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
   * Draws the identity's samples for one micro-step from `generator`, in a fixed order: photo indices, class
   * indices, augmentation uniforms, posterior sample, noise, timesteps (uniform in [0, T)).
   */
  draw(shared: SharedData, withPriorPreservation: boolean, generator: Generator): IdentitySamples {
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

  dispose(): void {
    this.#instancePosterior?.dispose();
    this.#instancePixels?.dispose();
  }
}

export class IdentityRun extends TrainingJob {
  /** The identity's photos, ready to draw samples from. */
  readonly photos: IdentityPhotos;

  private constructor(
    readonly spec: IdentitySpec,
    /** The trainable factors by name (leaves that require grad), in the adapters' order. */
    readonly factors: Map<string, Tensor>,
    readonly optimizer: AdamW,
    config: TrainingConfig,
    pixels: Tensor,
    shared: SharedData,
  ) {
    super({
      name: spec.id, dir: path.join(config.outputDir, "checkpoints", spec.id), steps: config.maxTrainSteps, seed: identitySeed(config.seed, spec),
      settings: runFingerprint(config),
      tensors: () => new Map([...factors].map(([name, value]) => [`factors.${name}`, value])),
      load: (tensors) => {
        for (const [name, leaf] of factors) {
          const saved = tensors.get(`factors.${name}`);
          if (!saved) throw new Error(`the checkpoint of ${spec.id} has no factor '${name}'`);
          leaf.copy_(saved);
        }
      },
      parameters: [...factors.values()], optimizer,
      scheduler: getScheduler(config.lrScheduler, optimizer, { warmupSteps: config.lrWarmupSteps, totalSteps: config.maxTrainSteps }),
      maxGradNorm: config.maxGradNorm,
    });
    this.photos = new IdentityPhotos(pixels, shared);
  }

  /** A new identity run with its own copy of the initial factors (which the caller keeps). */
  static create(spec: IdentitySpec, config: TrainingConfig, initialFactors: Map<string, Tensor>, pixels: Tensor, shared: SharedData): IdentityRun {
    const factors = new Map([...initialFactors].map(([name, value]) => [name, keep(noGrad(() => tidy(() => value.detach().clone()))).requiresGrad_(true)]));
    const optimizer = new AdamW([...factors.values()], {
      lr: config.learningRate, betas: [config.adamBeta1, config.adamBeta2], weightDecay: config.adamWeightDecay, eps: config.adamEpsilon,
    });
    return new IdentityRun(spec, factors, optimizer, config, pixels, shared);
  }

  get seed(): number {
    return this.options.seed;
  }

  /** This identity's samples for one micro-step, from its generator (or `generator`): see IdentityPhotos.draw. */
  draw(shared: SharedData, withPriorPreservation: boolean, generator: Generator = this.generator): IdentitySamples {
    return this.photos.draw(shared, withPriorPreservation, generator);
  }

  /** Frees the factors, optimiser state and cached images. */
  dispose(): void {
    for (const factor of this.factors.values()) factor.dispose();
    this.optimizer.dispose();
    this.photos.dispose();
  }
}
