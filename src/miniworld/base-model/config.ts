/**
 * The mini-world base model: Stable Diffusion's architecture (AutoencoderKL + CLIP text encoder +
 * UNet2DConditionModel, DDPM noise schedule) at a width chosen for two CPU cores (the recipe takes about 4.5 h
 * there; build.json records every stage's time).
 *
 * Sizes: 64 × 64 RGB images, a VAE with three levels (two downsamplings) giving 4 × 16 × 16 latents, a UNet
 * with three levels (16 → 8 → 4) whose every level cross-attends to the text, and a 3-layer CLIP text encoder
 * over the world's own vocabulary (src/miniworld/vocabulary.ts). The block types, the noise schedule
 * (scaled-linear betas 0.00085 → 0.012 over 1,000 steps) and the folder layout are SD1.5's, so everything
 * that runs on SD1.5 (pipeline, LiDB, LoRA export, diffusers itself) runs on this model unchanged.
 */
import { z } from "zod";
import { nonNegativeInt, parseWithSchema, positiveInt, probability } from "../../util/schema.js";

/** diffusers' AutoencoderKL config (config.json keys). `scaling_factor` is measured after training. */
export const MINIWORLD_VAE_CONFIG = {
  in_channels: 3,
  out_channels: 3,
  down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  block_out_channels: [32, 64, 64],
  layers_per_block: 1,
  act_fn: "silu",
  latent_channels: 4,
  norm_num_groups: 16,
  sample_size: 64,
  scaling_factor: 1.0,
} as const;

/** diffusers' UNet2DConditionModel config at 16 × 16 latents; `attention_head_dim` is SD1's head count. */
export const MINIWORLD_UNET_CONFIG = {
  sample_size: 16,
  in_channels: 4,
  out_channels: 4,
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  block_out_channels: [32, 64, 128],
  layers_per_block: 1,
  attention_head_dim: [4, 8, 8],
  cross_attention_dim: 128,
  norm_num_groups: 32,
} as const;

/** transformers' CLIPTextConfig (vocabulary size and special-token ids are filled from the written vocabulary). */
export const MINIWORLD_TEXT_ENCODER_CONFIG = {
  hidden_size: 128,
  intermediate_size: 512,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  max_position_embeddings: 77,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
  projection_dim: 128,
} as const;

/** SD1.5's training noise schedule, as diffusers' DDPMScheduler config. */
export const MINIWORLD_NOISE_SCHEDULE = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  prediction_type: "epsilon",
  clip_sample: false,
  set_alpha_to_one: false,
  steps_offset: 1,
  timestep_spacing: "leading",
} as const;

/** Which training images a stage draws: as the data falls, or every hair colour equally often (dataset.ts). */
const imageSampling = z.enum(["uniform", "hair-colour-balanced"], { error: "\"uniform\" or \"hair-colour-balanced\"" });
export type ImageSampling = z.output<typeof imageSampling>;

const learningRate = (fallback: number) => z.number({ error: "a learning rate > 0" }).positive().default(fallback);
const warmupSteps = (fallback: number) => nonNegativeInt().default(fallback);
/** A later diffusion phase: constant rate after a short warmup, min-SNR-γ (Hang et al. 2023) or its truncated form. */
const diffusionPhase = (steps: number) => z.object({
  steps: positiveInt().default(steps),
  learningRate: learningRate(3e-4),
  warmupSteps: warmupSteps(50),
  snrGamma: z.number({ error: "a number > 0" }).positive().default(5),
}).prefault({});

/**
 * The training recipe: every number that decides the result, in one object (recorded in build.json, and
 * compared as JSON on resume: the keys keep this order). Its defaults are the bundled model's.
 */
const baseModelRecipeSchema = z.object({
  seed: nonNegativeInt().default(0),
  /** Rendered training images (pretraining identities), each with a caption and a short "a face, <style>" caption. */
  datasetSize: positiveInt().default(24_000),
  /**
   * `decoderSteps`: the decoder's fine-tuning with the encoder frozen (train-decoder.ts), same batch and rate;
   * `decoderSampling`: which images it sees (all hair colours equally often, or as the data falls).
   */
  vae: z.object({
    steps: positiveInt().default(1_000),
    batchSize: positiveInt().default(16),
    learningRate: learningRate(5e-4),
    warmupSteps: warmupSteps(50),
    /** The KL term's weight beside L1 + L2 (SD's VAE keeps it tiny: the latents stay close to deterministic). */
    klWeight: z.number({ error: "a number ≥ 0" }).nonnegative().default(1e-6),
    decoderSteps: positiveInt().default(2_400),
    decoderSampling: imageSampling.default("hair-colour-balanced"),
  }).prefault({}),
  diffusion: z.object({
    steps: positiveInt().default(2_500),
    batchSize: positiveInt().default(32),
    learningRate: learningRate(5e-4),
    warmupSteps: warmupSteps(150),
    /** Fraction of captions replaced by "" (classifier-free guidance, Ho & Salimans 2022). */
    emptyCaptionRate: probability().default(0.1),
    /** Fraction of captions replaced by the short form "a face <style phrases>" (the prompts users write). */
    shortCaptionRate: probability().default(0.1),
    emaDecay: probability().default(0.999),
    maxGradNorm: z.number({ error: "a number ≥ 0" }).nonnegative().default(1.0),
  }).prefault({}),
  /** Phase 2 of the diffusion training (train-diffusion.ts): constant rate, min-SNR-γ, posterior means. */
  continuation: diffusionPhase(3_000),
  /**
   * Phase 3 (train-diffusion.ts): as phase 2, but the high-noise steps, where the caption decides hair colour
   * and scene, weigh as much as the rest (truncated-SNR weights capped at γ).
   */
  conditioning: diffusionPhase(12_000),
  /**
   * Phase 4 (train-diffusion.ts): as phase 3, but every hair colour is drawn equally often, so the rare colours
   * (pink, green, purple, blue, white: 3 % of the images each) are learned as well as the common ones.
   */
  colourBalance: diffusionPhase(3_000),
  checkpointEvery: positiveInt().default(250),
});

export type BaseModelRecipe = z.output<typeof baseModelRecipeSchema>;

/** A recipe with some numbers changed (tests train for a few steps on a few hundred images); the rest default. */
export function baseModelRecipe(overrides: z.input<typeof baseModelRecipeSchema> = {}): BaseModelRecipe {
  return parseWithSchema(baseModelRecipeSchema, overrides, { source: "base model recipe", error: Error });
}

export const DEFAULT_BASE_MODEL_RECIPE: Readonly<BaseModelRecipe> = Object.freeze(baseModelRecipe());
