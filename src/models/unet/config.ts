/**
 * UNet2DConditionModel configuration: the fields of a diffusers `unet/config.json`, with diffusers 0.42.1's
 * defaults (every keyword of `UNet2DConditionModel.__init__`), as one zod schema (src/util/schema.ts) whose
 * errors name the file, the key and the value, and any value this port does not support. Keys keep diffusers'
 * snake_case spelling so a config round-trips through JSON.
 *
 * Supported: the Stable Diffusion 1.x/2.x family — CrossAttnDownBlock2D/DownBlock2D, UNetMidBlock2DCrossAttn
 * (or no mid block), UpBlock2D/CrossAttnUpBlock2D, positional timestep embeddings, per-block lists for heads,
 * cross-attention width, layers and transformer depth, linear or conv projections, upcast attention.
 * Not supported (one clear error each): class/addition embeddings (SDXL, upscalers), encoder hidden-state
 * projections, Fourier time embeddings, scale-shift resnets, dual cross-attention, GLIGEN attention, the
 * Simple-, Attn- and Resnet-prefixed block variants, explicit num_attention_heads (diffusers itself refuses it).
 */
import { z } from "zod";
import { activationFunction } from "../blocks/resnet.js";
import {
  addFieldIssue, finiteNumber, nonNegativeInt, parseWithSchema, positiveInt, probability, supported, unsupportedUnless, whenFieldsValid,
} from "../../util/schema.js";

export const DOWN_BLOCK_TYPES = ["CrossAttnDownBlock2D", "DownBlock2D"] as const;
export const UP_BLOCK_TYPES = ["CrossAttnUpBlock2D", "UpBlock2D"] as const;
export type UNetDownBlockType = (typeof DOWN_BLOCK_TYPES)[number];
export type UNetUpBlockType = (typeof UP_BLOCK_TYPES)[number];
export type UNetMidBlockType = "UNetMidBlock2DCrossAttn";

/** A problem with a UNet2DConditionModel config: it names the file, the key and the value. */
export class UNet2DConditionConfigError extends Error {
  override name = "UNet2DConditionConfigError";
}

const isActivation = (name: string): boolean => {
  try {
    activationFunction(name);
    return true;
  } catch {
    return false;
  }
};
const activation = z.string({ error: "an activation name" }).refine(isActivation, unsupportedUnless("silu, swish, gelu, relu"));
const positiveIntOrNull = positiveInt("a positive integer or null").nullable();
/** An int for every block, or a list with one per block (its length is checked against down_block_types). */
const perBlockInts = z.union([positiveInt(), z.array(positiveInt())], { error: "a positive integer or a list of them" });
/** A transformer depth per block: one number, or one number per layer (SDXL-style asymmetric UNets). */
const transformerLayers = z.union([positiveInt(), z.array(positiveInt()).min(1)], { error: "a positive integer or a list of them" });
export type TransformerLayers = z.output<typeof transformerLayers>;
const blockTypes = <const T extends readonly string[]>(types: T, defaults: readonly T[number][]) =>
  z.array(supported(types), { error: "a non-empty list of block type names" }).min(1).default(() => [...defaults]);
const kernel = positiveInt().refine((size) => size % 2 === 1, "an odd kernel size");

/**
 * UNet2DConditionModel.__init__'s keywords with diffusers 0.42.1's defaults, in diffusers' order (the order a
 * saved config.json lists them in). Values diffusers takes but this port does not implement are refused by
 * `supported` with what is.
 */
const fields = z.object({
  /** diffusers' bookkeeping: when present it must name this model; it is not part of the config. */
  _class_name: z.literal("UNet2DConditionModel").optional(),
  /** Latent size the model was trained at (an int, [height, width] or null); informational. */
  sample_size: z.union([positiveInt(), z.tuple([positiveInt(), positiveInt()])], { error: "a positive integer, [height, width] or null" }).nullable().default(null),
  in_channels: positiveInt().default(4),
  out_channels: positiveInt().default(4),
  /** Map the input from [0, 1] to [-1, 1] first. */
  center_input_sample: z.boolean().default(false),
  flip_sin_to_cos: z.boolean().default(true),
  freq_shift: finiteNumber().default(0),
  down_block_types: blockTypes(DOWN_BLOCK_TYPES, ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]),
  mid_block_type: supported(["UNetMidBlock2DCrossAttn", null]).default("UNetMidBlock2DCrossAttn"),
  up_block_types: blockTypes(UP_BLOCK_TYPES, ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]),
  only_cross_attention: z.union([z.boolean(), z.array(z.boolean())], { error: "true, false or a list of them" }).default(false),
  block_out_channels: z.array(positiveInt(), { error: "a list of positive integers" }).default(() => [320, 640, 1280, 1280]),
  layers_per_block: perBlockInts.default(2),
  downsample_padding: nonNegativeInt().default(1),
  mid_block_scale_factor: finiteNumber().default(1),
  dropout: probability().default(0),
  act_fn: activation.default("silu"),
  norm_num_groups: positiveInt("a positive integer (null, no group norms, is not supported by this implementation)").default(32),
  norm_eps: finiteNumber().default(1e-5),
  cross_attention_dim: perBlockInts.default(1280),
  transformer_layers_per_block: z.union([positiveInt(), z.array(transformerLayers)], { error: "a positive integer or a list with one entry per down block" }).default(1),
  /** The up blocks' transformer depths, deepest first; null: transformer_layers_per_block reversed. */
  reverse_transformer_layers_per_block: z.array(transformerLayers, { error: "null or one entry per up block" }).nullable().default(null),
  encoder_hid_dim: supported([null], "null (no encoder hidden-state projection)").default(null),
  encoder_hid_dim_type: supported([null]).default(null),
  /** With num_attention_heads null (always, here) this is the number of heads per block: diffusers' legacy naming. */
  attention_head_dim: perBlockInts.default(8),
  num_attention_heads: supported([null], "null (diffusers itself refuses it: the head count is given as attention_head_dim)").default(null),
  dual_cross_attention: supported([false]).default(false),
  use_linear_projection: z.boolean().default(false),
  class_embed_type: supported([null], "null (no class embedding)").default(null),
  addition_embed_type: supported([null], "null (no additional embedding)").default(null),
  addition_time_embed_dim: positiveIntOrNull.default(null),
  num_class_embeds: supported([null], "null (no class embedding)").default(null),
  upcast_attention: z.boolean().default(false),
  resnet_time_scale_shift: supported(["default"]).default("default"),
  /** Used only by block types this port does not have; accepted and ignored, as diffusers' blocks here do. */
  resnet_skip_time_act: z.boolean().default(false),
  resnet_out_scale_factor: finiteNumber().default(1.0),
  time_embedding_type: supported(["positional"]).default("positional"),
  /** Width of the timestep embedding; null means 4 · block_out_channels[0]. */
  time_embedding_dim: positiveIntOrNull.default(null),
  /** Activation applied to the final timestep embedding (null: none). */
  time_embedding_act_fn: activation.nullable().default(null),
  /** Activation after the timestep MLP's second layer (null: none). */
  timestep_post_act: activation.nullable().default(null),
  time_cond_proj_dim: supported([null], "null (no guidance-scale conditioning)").default(null),
  conv_in_kernel: kernel.default(3),
  conv_out_kernel: kernel.default(3),
  projection_class_embeddings_input_dim: positiveIntOrNull.default(null),
  attention_type: supported(["default"]).default("default"),
  class_embeddings_concat: supported([false]).default(false),
  mid_block_only_cross_attention: z.boolean({ error: "true, false or null" }).nullable().default(null),
  cross_attention_norm: z.string({ error: "a string or null" }).nullable().default(null),
  addition_embed_type_num_heads: positiveInt().default(64),
});

/**
 * The complete config schema: the fields, then diffusers' `_check_config` (one entry per down block in every
 * per-block list, group norms that divide every width), then `_class_name` dropped. Keys the model does not
 * take (`_diffusers_version`, `_name_or_path`, ...) are ignored, as diffusers ignores them.
 */
export const unet2DConditionConfigSchema = fields.superRefine((c, ctx) => {
  const blocks = c.down_block_types.length;
  const perBlock = `one entry per down block (${blocks})`;
  if (c.up_block_types.length !== blocks) addFieldIssue(ctx, "up_block_types", c.up_block_types, perBlock);
  if (c.block_out_channels.length !== blocks) addFieldIssue(ctx, "block_out_channels", c.block_out_channels, perBlock);
  const indivisible = c.block_out_channels.find((channels) => channels % c.norm_num_groups !== 0);
  if (indivisible !== undefined) {
    addFieldIssue(ctx, "norm_num_groups", c.norm_num_groups, `a divisor of every block_out_channels entry (${indivisible} is not divisible by it)`);
  }
  for (const key of ["only_cross_attention", "layers_per_block", "cross_attention_dim", "attention_head_dim"] as const) {
    const value = c[key];
    if (Array.isArray(value) && value.length !== blocks) addFieldIssue(ctx, key, value, perBlock);
  }
  const layers = c.transformer_layers_per_block;
  if (Array.isArray(layers) && layers.length !== blocks) {
    addFieldIssue(ctx, "transformer_layers_per_block", layers, `a positive integer or a list with one entry per down block (${blocks})`);
  }
  const reverse = c.reverse_transformer_layers_per_block;
  if (reverse !== null && reverse.length !== blocks) {
    addFieldIssue(ctx, "reverse_transformer_layers_per_block", reverse, `null or one entry per up block (${blocks})`);
  } else if (reverse === null && Array.isArray(layers) && layers.some(Array.isArray)) {
    addFieldIssue(ctx, "reverse_transformer_layers_per_block", reverse, "given when transformer_layers_per_block has per-layer lists (an asymmetrical UNet)");
  }
}, { when: whenFieldsValid }).transform(({ _class_name, ...config }) => config);

/** A resolved UNet2DConditionModel config: every keyword of diffusers' `__init__`, with diffusers' key names. */
export type UNet2DConditionConfig = z.output<typeof unet2DConditionConfigSchema>;

/**
 * The complete, validated config from a raw `config.json` object: given keys override diffusers' defaults.
 * Bookkeeping keys (`_class_name`, `_diffusers_version`, `_name_or_path`, ...) and keys the model does not
 * take are ignored, as diffusers ignores them; `_class_name`, when present, must be "UNet2DConditionModel".
 * `source` names the file in errors.
 */
export function resolveUNet2DConditionConfig(raw: Readonly<Record<string, unknown>> = {}, source = "UNet2DConditionModel config"): UNet2DConditionConfig {
  return parseWithSchema(unet2DConditionConfigSchema, raw, { source, error: UNet2DConditionConfigError });
}

/** UNet2DConditionModel.__init__'s defaults in diffusers 0.42.1. */
export const UNET_2D_CONDITION_DEFAULTS: Readonly<UNet2DConditionConfig> = Object.freeze(resolveUNet2DConditionConfig({}));

/** The per-block settings diffusers derives from a config, lists expanded to one entry per down block. */
export interface UNetBlockPlan {
  /** Attention heads per block: attention_head_dim, by diffusers' legacy rule (num_attention_heads is null). */
  numAttentionHeads: number[];
  crossAttentionDim: number[];
  layersPerBlock: number[];
  transformerLayersPerBlock: TransformerLayers[];
  /** The up blocks' transformer depths, deepest first. */
  reverseTransformerLayersPerBlock: TransformerLayers[];
  onlyCrossAttention: boolean[];
  /** 4 · block_out_channels[0] unless time_embedding_dim is given. */
  timeEmbedDim: number;
}

/** Expands a resolved config's int-or-list fields as UNet2DConditionModel.__init__ does. */
export function planUNetBlocks(config: UNet2DConditionConfig): UNetBlockPlan {
  const blocks = config.down_block_types.length;
  const perBlock = <T>(value: T | T[]): T[] => (Array.isArray(value) ? [...value] : Array<T>(blocks).fill(value));
  const transformerLayersPerBlock: TransformerLayers[] = typeof config.transformer_layers_per_block === "number"
    ? Array<TransformerLayers>(blocks).fill(config.transformer_layers_per_block)
    : [...config.transformer_layers_per_block];
  return {
    numAttentionHeads: perBlock(config.attention_head_dim),
    crossAttentionDim: perBlock(config.cross_attention_dim),
    layersPerBlock: perBlock(config.layers_per_block),
    transformerLayersPerBlock,
    reverseTransformerLayersPerBlock: config.reverse_transformer_layers_per_block ?? [...transformerLayersPerBlock].reverse(),
    onlyCrossAttention: perBlock(config.only_cross_attention),
    timeEmbedDim: config.time_embedding_dim ?? config.block_out_channels[0]! * 4,
  };
}
