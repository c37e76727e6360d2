/**
 * UNet2DConditionModel configuration: the fields of a diffusers `unet/config.json`, with diffusers 0.42.1's
 * defaults (every keyword of `UNet2DConditionModel.__init__`) and a validation that names any key or value
 * this port does not support. Keys keep diffusers' snake_case spelling so a config round-trips through JSON.
 *
 * Supported: the Stable Diffusion 1.x/2.x family — CrossAttnDownBlock2D/DownBlock2D, UNetMidBlock2DCrossAttn
 * (or no mid block), UpBlock2D/CrossAttnUpBlock2D, positional timestep embeddings, per-block lists for heads,
 * cross-attention width, layers and transformer depth, linear or conv projections, upcast attention.
 * Not supported (one clear error each): class/addition embeddings (SDXL, upscalers), encoder hidden-state
 * projections, Fourier time embeddings, scale-shift resnets, dual cross-attention, GLIGEN attention, the
 * Simple-, Attn- and Resnet-prefixed block variants, explicit num_attention_heads (diffusers itself refuses it).
 */
import { activationFunction } from "../blocks/resnet.js";

export const DOWN_BLOCK_TYPES = ["CrossAttnDownBlock2D", "DownBlock2D"] as const;
export const UP_BLOCK_TYPES = ["CrossAttnUpBlock2D", "UpBlock2D"] as const;
export type UNetDownBlockType = (typeof DOWN_BLOCK_TYPES)[number];
export type UNetUpBlockType = (typeof UP_BLOCK_TYPES)[number];
export type UNetMidBlockType = "UNetMidBlock2DCrossAttn";

/** A transformer depth per block: one number, or one number per layer (SDXL-style asymmetric UNets). */
export type TransformerLayers = number | number[];

export interface UNet2DConditionConfig {
  /** Latent size the model was trained at (an int, [height, width] or null); informational. */
  sample_size: number | [number, number] | null;
  in_channels: number;
  out_channels: number;
  /** Map the input from [0, 1] to [-1, 1] first. */
  center_input_sample: boolean;
  flip_sin_to_cos: boolean;
  freq_shift: number;
  down_block_types: UNetDownBlockType[];
  mid_block_type: UNetMidBlockType | null;
  up_block_types: UNetUpBlockType[];
  only_cross_attention: boolean | boolean[];
  block_out_channels: number[];
  layers_per_block: number | number[];
  downsample_padding: number;
  mid_block_scale_factor: number;
  dropout: number;
  act_fn: string;
  norm_num_groups: number;
  norm_eps: number;
  cross_attention_dim: number | number[];
  transformer_layers_per_block: TransformerLayers | TransformerLayers[];
  reverse_transformer_layers_per_block: TransformerLayers[] | null;
  encoder_hid_dim: null;
  encoder_hid_dim_type: null;
  /** With num_attention_heads null (always, here) this is the number of heads per block: diffusers' legacy naming. */
  attention_head_dim: number | number[];
  num_attention_heads: null;
  dual_cross_attention: false;
  use_linear_projection: boolean;
  class_embed_type: null;
  addition_embed_type: null;
  addition_time_embed_dim: number | null;
  num_class_embeds: null;
  upcast_attention: boolean;
  resnet_time_scale_shift: "default";
  /** Used only by block types this port does not have; accepted and ignored, as diffusers' blocks here do. */
  resnet_skip_time_act: boolean;
  resnet_out_scale_factor: number;
  time_embedding_type: "positional";
  /** Width of the timestep embedding; null means 4 · block_out_channels[0]. */
  time_embedding_dim: number | null;
  /** Activation applied to the final timestep embedding (null: none). */
  time_embedding_act_fn: string | null;
  /** Activation after the timestep MLP's second layer (null: none). */
  timestep_post_act: string | null;
  time_cond_proj_dim: null;
  conv_in_kernel: number;
  conv_out_kernel: number;
  projection_class_embeddings_input_dim: number | null;
  attention_type: "default";
  class_embeddings_concat: false;
  mid_block_only_cross_attention: boolean | null;
  cross_attention_norm: string | null;
  addition_embed_type_num_heads: number;
}

/** A problem with a UNet2DConditionModel config: it names the key and the value. */
export class UNet2DConditionConfigError extends Error {
  override name = "UNet2DConditionConfigError";
}

/** UNet2DConditionModel.__init__'s defaults in diffusers 0.42.1. */
export const UNET_2D_CONDITION_DEFAULTS: Readonly<UNet2DConditionConfig> = Object.freeze({
  sample_size: null,
  in_channels: 4,
  out_channels: 4,
  center_input_sample: false,
  flip_sin_to_cos: true,
  freq_shift: 0,
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  mid_block_type: "UNetMidBlock2DCrossAttn",
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  only_cross_attention: false,
  block_out_channels: [320, 640, 1280, 1280],
  layers_per_block: 2,
  downsample_padding: 1,
  mid_block_scale_factor: 1,
  dropout: 0,
  act_fn: "silu",
  norm_num_groups: 32,
  norm_eps: 1e-5,
  cross_attention_dim: 1280,
  transformer_layers_per_block: 1,
  reverse_transformer_layers_per_block: null,
  encoder_hid_dim: null,
  encoder_hid_dim_type: null,
  attention_head_dim: 8,
  num_attention_heads: null,
  dual_cross_attention: false,
  use_linear_projection: false,
  class_embed_type: null,
  addition_embed_type: null,
  addition_time_embed_dim: null,
  num_class_embeds: null,
  upcast_attention: false,
  resnet_time_scale_shift: "default",
  resnet_skip_time_act: false,
  resnet_out_scale_factor: 1.0,
  time_embedding_type: "positional",
  time_embedding_dim: null,
  time_embedding_act_fn: null,
  timestep_post_act: null,
  time_cond_proj_dim: null,
  conv_in_kernel: 3,
  conv_out_kernel: 3,
  projection_class_embeddings_input_dim: null,
  attention_type: "default",
  class_embeddings_concat: false,
  mid_block_only_cross_attention: null,
  cross_attention_norm: null,
  addition_embed_type_num_heads: 64,
} satisfies UNet2DConditionConfig);

const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

function fail(key: string, expected: string, value: unknown): never {
  throw new UNet2DConditionConfigError(`UNet2DConditionModel config: '${key}' must be ${expected}, got ${show(value)}`);
}

function unsupported(key: string, value: unknown, supported: string): never {
  throw new UNet2DConditionConfigError(
    `UNet2DConditionModel config: ${key}=${show(value)} is not supported by this implementation (supported: ${supported})`,
  );
}

const isPositiveInt = (value: unknown): value is number => typeof value === "number" && Number.isInteger(value) && value > 0;
const isFiniteNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);

function positiveInt(key: string, value: unknown): number {
  if (!isPositiveInt(value)) fail(key, "a positive integer", value);
  return value;
}
function finite(key: string, value: unknown): number {
  if (!isFiniteNumber(value)) fail(key, "a number", value);
  return value;
}
function bool(key: string, value: unknown): boolean {
  if (typeof value !== "boolean") fail(key, "true or false", value);
  return value;
}
function only<T>(key: string, value: unknown, allowed: T, supported = show(allowed)): T {
  if (value !== allowed) unsupported(key, value, supported);
  return allowed;
}
function intOrNull(key: string, value: unknown): number | null {
  if (value !== null && !isPositiveInt(value)) fail(key, "a positive integer or null", value);
  return value;
}
function activationOrNull(key: string, value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== "string") fail(key, "an activation name or null", value);
  try {
    activationFunction(value);
  } catch {
    unsupported(key, value, "silu, swish, gelu, relu");
  }
  return value;
}

/** An int, or a list with one positive int per block. */
function perBlockInts(key: string, value: unknown, blocks: number): number | number[] {
  if (isPositiveInt(value)) return value;
  if (!Array.isArray(value) || !value.every(isPositiveInt)) fail(key, "a positive integer or a list of them", value);
  if (value.length !== blocks) fail(key, `one entry per down block (${blocks})`, value);
  return [...value];
}

function transformerLayers(key: string, value: unknown): TransformerLayers {
  if (isPositiveInt(value)) return value;
  if (Array.isArray(value) && value.length > 0 && value.every(isPositiveInt)) return [...value];
  return fail(key, "a positive integer or a list of them", value);
}

function blockTypes<T extends string>(key: string, value: unknown, allowed: readonly T[], count: number | null): T[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === "string")) {
    fail(key, "a non-empty list of block type names", value);
  }
  const other = value.find((v) => !allowed.includes(v as T));
  if (other !== undefined) unsupported(key, other, allowed.map((a) => `"${a}"`).join(", "));
  if (count !== null && value.length !== count) fail(key, `one entry per down block (${count})`, value);
  return value as T[];
}

/**
 * The complete, validated config from a raw `config.json` object: given keys override diffusers' defaults.
 * Bookkeeping keys (`_class_name`, `_diffusers_version`, `_name_or_path`, ...) and keys the model does not
 * take are ignored, as diffusers ignores them; `_class_name`, when present, must be "UNet2DConditionModel".
 */
export function resolveUNet2DConditionConfig(raw: Readonly<Record<string, unknown>> = {}): UNet2DConditionConfig {
  if (raw._class_name !== undefined && raw._class_name !== "UNet2DConditionModel") {
    throw new UNet2DConditionConfigError(`UNet2DConditionModel config: _class_name is ${show(raw._class_name)}, expected "UNet2DConditionModel"`);
  }
  const given = (key: keyof UNet2DConditionConfig): unknown => (Object.hasOwn(raw, key) ? raw[key] : UNET_2D_CONDITION_DEFAULTS[key]);

  // Structure: block types, channels and per-block lists (diffusers' _check_config).
  const downBlockTypes = blockTypes("down_block_types", given("down_block_types"), DOWN_BLOCK_TYPES, null);
  const blocks = downBlockTypes.length;
  const upBlockTypes = blockTypes("up_block_types", given("up_block_types"), UP_BLOCK_TYPES, blocks);
  const midBlockType = given("mid_block_type");
  if (midBlockType !== null && midBlockType !== "UNetMidBlock2DCrossAttn") unsupported("mid_block_type", midBlockType, `"UNetMidBlock2DCrossAttn", null`);
  const blockOutChannels = given("block_out_channels");
  if (!Array.isArray(blockOutChannels) || !blockOutChannels.every(isPositiveInt)) fail("block_out_channels", "a list of positive integers", blockOutChannels);
  if (blockOutChannels.length !== blocks) fail("block_out_channels", `one entry per down block (${blocks})`, blockOutChannels);

  const normNumGroups = given("norm_num_groups");
  if (normNumGroups === null) unsupported("norm_num_groups", null, "a positive integer (the blocks here need group norms)");
  positiveInt("norm_num_groups", normNumGroups);
  const indivisible = blockOutChannels.find((channels) => channels % (normNumGroups as number) !== 0);
  if (indivisible !== undefined) fail("norm_num_groups", `a divisor of every block_out_channels entry (${indivisible} is not divisible by it)`, normNumGroups);

  const onlyCrossAttention = given("only_cross_attention");
  if (typeof onlyCrossAttention !== "boolean") {
    if (!Array.isArray(onlyCrossAttention) || !onlyCrossAttention.every((v) => typeof v === "boolean")) {
      fail("only_cross_attention", "true, false or a list of them", onlyCrossAttention);
    }
    if (onlyCrossAttention.length !== blocks) fail("only_cross_attention", `one entry per down block (${blocks})`, onlyCrossAttention);
  }

  if (given("num_attention_heads") !== null) {
    unsupported("num_attention_heads", given("num_attention_heads"), "null (diffusers itself refuses it: the head count is given as attention_head_dim)");
  }
  const transformerLayersPerBlock = given("transformer_layers_per_block");
  const layersPerBlockValue: TransformerLayers | TransformerLayers[] = isPositiveInt(transformerLayersPerBlock)
    ? transformerLayersPerBlock
    : (() => {
      if (!Array.isArray(transformerLayersPerBlock) || transformerLayersPerBlock.length !== blocks) {
        fail("transformer_layers_per_block", `a positive integer or a list with one entry per down block (${blocks})`, transformerLayersPerBlock);
      }
      return transformerLayersPerBlock.map((v) => transformerLayers("transformer_layers_per_block", v));
    })();
  const reverse = given("reverse_transformer_layers_per_block");
  let reverseLayers: TransformerLayers[] | null = null;
  if (reverse !== null) {
    if (!Array.isArray(reverse) || reverse.length !== blocks) fail("reverse_transformer_layers_per_block", `null or one entry per up block (${blocks})`, reverse);
    reverseLayers = reverse.map((v) => transformerLayers("reverse_transformer_layers_per_block", v));
  } else if (Array.isArray(layersPerBlockValue) && layersPerBlockValue.some(Array.isArray)) {
    fail("reverse_transformer_layers_per_block", "given when transformer_layers_per_block has per-layer lists (an asymmetrical UNet)", reverse);
  }

  const actFn = given("act_fn");
  if (typeof actFn !== "string") fail("act_fn", "an activation name", actFn);
  activationOrNull("act_fn", actFn);

  const sampleSize = given("sample_size");
  if (sampleSize !== null && !isPositiveInt(sampleSize) && !(Array.isArray(sampleSize) && sampleSize.length === 2 && sampleSize.every(isPositiveInt))) {
    fail("sample_size", "a positive integer, [height, width] or null", sampleSize);
  }
  const kernel = (key: "conv_in_kernel" | "conv_out_kernel"): number => {
    const value = positiveInt(key, given(key));
    if (value % 2 !== 1) fail(key, "an odd kernel size", value);
    return value;
  };
  const crossAttentionDim = perBlockInts("cross_attention_dim", given("cross_attention_dim"), blocks);
  const midOnlyCross = given("mid_block_only_cross_attention");
  if (midOnlyCross !== null && typeof midOnlyCross !== "boolean") fail("mid_block_only_cross_attention", "true, false or null", midOnlyCross);
  const crossAttentionNorm = given("cross_attention_norm");
  if (crossAttentionNorm !== null && typeof crossAttentionNorm !== "string") fail("cross_attention_norm", "a string or null", crossAttentionNorm);

  return {
    sample_size: sampleSize === null ? null : typeof sampleSize === "number" ? sampleSize : [sampleSize[0]!, sampleSize[1]!],
    in_channels: positiveInt("in_channels", given("in_channels")),
    out_channels: positiveInt("out_channels", given("out_channels")),
    center_input_sample: bool("center_input_sample", given("center_input_sample")),
    flip_sin_to_cos: bool("flip_sin_to_cos", given("flip_sin_to_cos")),
    freq_shift: finite("freq_shift", given("freq_shift")),
    down_block_types: [...downBlockTypes],
    mid_block_type: midBlockType,
    up_block_types: [...upBlockTypes],
    only_cross_attention: typeof onlyCrossAttention === "boolean" ? onlyCrossAttention : [...onlyCrossAttention],
    block_out_channels: [...blockOutChannels],
    layers_per_block: perBlockInts("layers_per_block", given("layers_per_block"), blocks),
    downsample_padding: (() => {
      const value = given("downsample_padding");
      if (!isFiniteNumber(value) || !Number.isInteger(value) || value < 0) fail("downsample_padding", "a non-negative integer", value);
      return value;
    })(),
    mid_block_scale_factor: finite("mid_block_scale_factor", given("mid_block_scale_factor")),
    dropout: (() => {
      const value = finite("dropout", given("dropout"));
      if (value < 0 || value > 1) fail("dropout", "a probability in [0, 1]", value);
      return value;
    })(),
    act_fn: actFn,
    norm_num_groups: normNumGroups as number,
    norm_eps: finite("norm_eps", given("norm_eps")),
    cross_attention_dim: crossAttentionDim,
    transformer_layers_per_block: layersPerBlockValue,
    reverse_transformer_layers_per_block: reverseLayers,
    encoder_hid_dim: only("encoder_hid_dim", given("encoder_hid_dim"), null, "null (no encoder hidden-state projection)"),
    encoder_hid_dim_type: only("encoder_hid_dim_type", given("encoder_hid_dim_type"), null),
    attention_head_dim: perBlockInts("attention_head_dim", given("attention_head_dim"), blocks),
    num_attention_heads: null,
    dual_cross_attention: only("dual_cross_attention", given("dual_cross_attention"), false),
    use_linear_projection: bool("use_linear_projection", given("use_linear_projection")),
    class_embed_type: only("class_embed_type", given("class_embed_type"), null, "null (no class embedding)"),
    addition_embed_type: only("addition_embed_type", given("addition_embed_type"), null, "null (no additional embedding)"),
    addition_time_embed_dim: intOrNull("addition_time_embed_dim", given("addition_time_embed_dim")),
    num_class_embeds: only("num_class_embeds", given("num_class_embeds"), null, "null (no class embedding)"),
    upcast_attention: bool("upcast_attention", given("upcast_attention")),
    resnet_time_scale_shift: only("resnet_time_scale_shift", given("resnet_time_scale_shift"), "default"),
    resnet_skip_time_act: bool("resnet_skip_time_act", given("resnet_skip_time_act")),
    resnet_out_scale_factor: finite("resnet_out_scale_factor", given("resnet_out_scale_factor")),
    time_embedding_type: only("time_embedding_type", given("time_embedding_type"), "positional"),
    time_embedding_dim: intOrNull("time_embedding_dim", given("time_embedding_dim")),
    time_embedding_act_fn: activationOrNull("time_embedding_act_fn", given("time_embedding_act_fn")),
    timestep_post_act: activationOrNull("timestep_post_act", given("timestep_post_act")),
    time_cond_proj_dim: only("time_cond_proj_dim", given("time_cond_proj_dim"), null, "null (no guidance-scale conditioning)"),
    conv_in_kernel: kernel("conv_in_kernel"),
    conv_out_kernel: kernel("conv_out_kernel"),
    projection_class_embeddings_input_dim: intOrNull("projection_class_embeddings_input_dim", given("projection_class_embeddings_input_dim")),
    attention_type: only("attention_type", given("attention_type"), "default"),
    class_embeddings_concat: only("class_embeddings_concat", given("class_embeddings_concat"), false),
    mid_block_only_cross_attention: midOnlyCross,
    cross_attention_norm: crossAttentionNorm,
    addition_embed_type_num_heads: positiveInt("addition_embed_type_num_heads", given("addition_embed_type_num_heads")),
  };
}

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
