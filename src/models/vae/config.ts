/**
 * AutoencoderKL configuration: the fields of a diffusers `vae/config.json`, with diffusers 0.42.1's defaults,
 * as one zod schema (src/util/schema.ts) whose errors name the file, the key and the value, and any value this
 * port does not support.
 *
 * Keys keep diffusers' snake_case spelling so that a config round-trips through JSON unchanged.
 */
import { z } from "zod";
import { addFieldIssue, finiteNumber, parseWithSchema, positiveInt, supported, whenFieldsValid } from "../../util/schema.js";

export type DownEncoderBlockType = "DownEncoderBlock2D";
export type UpDecoderBlockType = "UpDecoderBlock2D";

/** A problem with an AutoencoderKL config: it names the file, the key and the value. */
export class AutoencoderKLConfigError extends Error {
  override name = "AutoencoderKLConfigError";
}

/** One block type per level; only the plain resnet blocks (no attention) are implemented. */
const blockTypes = <const T extends string>(type: T) =>
  z.array(supported([type]), { error: "a non-empty list of block type names" }).min(1).default(() => [type]);
/** Per-channel latent statistics some models publish for pipelines; unused by the model itself. */
const latentStatistics = z.array(finiteNumber(), { error: "null or a list of numbers (one per latent channel)" }).nullable().default(null);

/** AutoencoderKL.__init__'s keywords with diffusers 0.42.1's defaults, in diffusers' order. */
const fields = z.object({
  /** diffusers' bookkeeping: when present it must name this model; it is not part of the config. */
  _class_name: z.literal("AutoencoderKL").optional(),
  in_channels: positiveInt().default(3),
  out_channels: positiveInt().default(3),
  down_block_types: blockTypes("DownEncoderBlock2D"),
  up_block_types: blockTypes("UpDecoderBlock2D"),
  /** Channels of each level, from the image resolution down to the latent resolution. */
  block_out_channels: z.array(positiveInt(), { error: "a non-empty list of positive integers" }).min(1).default(() => [64]),
  /** Resnets per encoder block (decoder blocks have one more). */
  layers_per_block: positiveInt().default(1),
  /** The resnets' activation; "swish" is diffusers' other name for SiLU. */
  act_fn: supported(["silu", "swish"]).default("silu"),
  latent_channels: positiveInt().default(4),
  norm_num_groups: positiveInt().default(32),
  /** Image size the model was trained at (an int, or [height, width]); informational here. */
  sample_size: z.union([positiveInt(), z.tuple([positiveInt(), positiveInt()])], { error: "a positive integer or [height, width]" }).default(32),
  /** Latents given to the diffusion model are (z - shift_factor) · scaling_factor. */
  scaling_factor: finiteNumber("a non-zero number").refine((factor) => factor !== 0).default(0.18215),
  shift_factor: finiteNumber("a number or null").nullable().default(null),
  latents_mean: latentStatistics,
  latents_std: latentStatistics,
  /** Whether pipelines should run this VAE in float32 even when the rest is float16. */
  force_upcast: z.boolean().default(true),
  use_quant_conv: z.boolean().default(true),
  use_post_quant_conv: z.boolean().default(true),
  /** Self-attention between the encoder's (and decoder's) mid-block resnets. */
  mid_block_add_attention: z.boolean().default(true),
});

/**
 * The complete config schema: the fields, then the checks between them (one block type per level, group norms
 * that divide every width, one statistic per latent channel), then `_class_name` dropped. Keys AutoencoderKL
 * does not take (`_diffusers_version`, `_name_or_path`, ...) are ignored, as diffusers ignores them.
 */
export const autoencoderKLConfigSchema = fields.superRefine((c, ctx) => {
  const levels = c.block_out_channels.length;
  for (const key of ["down_block_types", "up_block_types"] as const) {
    if (c[key].length !== levels) addFieldIssue(ctx, key, c[key], `one entry per block_out_channels entry (${levels})`);
  }
  const indivisible = c.block_out_channels.find((channels) => channels % c.norm_num_groups !== 0);
  if (indivisible !== undefined) {
    addFieldIssue(ctx, "norm_num_groups", c.norm_num_groups, `a divisor of every block_out_channels entry (${indivisible} is not divisible by it)`);
  }
  for (const key of ["latents_mean", "latents_std"] as const) {
    const statistics = c[key];
    if (statistics !== null && statistics.length !== c.latent_channels) {
      addFieldIssue(ctx, key, statistics, `null or a list of ${c.latent_channels} numbers (one per latent channel)`);
    }
  }
}, { when: whenFieldsValid }).transform(({ _class_name, ...config }) => config);

/** A resolved AutoencoderKL config: every keyword of diffusers' `__init__`, with diffusers' key names. */
export type AutoencoderKLConfig = z.output<typeof autoencoderKLConfigSchema>;

/**
 * The complete, validated config from a raw `config.json` object: given keys override diffusers' defaults.
 * Bookkeeping keys (`_class_name`, `_diffusers_version`, `_name_or_path`, `_use_default_values`) and keys
 * AutoencoderKL does not take are ignored, as diffusers ignores them; `_class_name`, when present, must be
 * "AutoencoderKL". `source` names the file in errors.
 */
export function resolveAutoencoderKLConfig(raw: Readonly<Record<string, unknown>> = {}, source = "AutoencoderKL config"): AutoencoderKLConfig {
  return parseWithSchema(autoencoderKLConfigSchema, raw, { source, error: AutoencoderKLConfigError });
}

/** AutoencoderKL.__init__'s defaults in diffusers 0.42.1. */
export const AUTOENCODER_KL_DEFAULTS: Readonly<AutoencoderKLConfig> = Object.freeze(resolveAutoencoderKLConfig({}));
