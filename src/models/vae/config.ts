/**
 * AutoencoderKL configuration: the fields of a diffusers `vae/config.json`, with diffusers 0.42.1's defaults
 * and a validation that names any key or value this port does not support.
 *
 * Keys keep diffusers' snake_case spelling so that a config round-trips through JSON unchanged.
 */

export type DownEncoderBlockType = "DownEncoderBlock2D";
export type UpDecoderBlockType = "UpDecoderBlock2D";

export interface AutoencoderKLConfig {
  in_channels: number;
  out_channels: number;
  /** One per resolution level; only the plain resnet block (no attention) is implemented. */
  down_block_types: DownEncoderBlockType[];
  up_block_types: UpDecoderBlockType[];
  /** Channels of each level, from the image resolution down to the latent resolution. */
  block_out_channels: number[];
  /** Resnets per encoder block (decoder blocks have one more). */
  layers_per_block: number;
  /** The resnets' activation; "swish" is diffusers' other name for SiLU. */
  act_fn: "silu" | "swish";
  latent_channels: number;
  norm_num_groups: number;
  /** Image size the model was trained at (an int, or [height, width]); informational here. */
  sample_size: number | [number, number];
  /** Latents given to the diffusion model are (z - shift_factor) · scaling_factor. */
  scaling_factor: number;
  shift_factor: number | null;
  /** Per-channel latent statistics some models publish for pipelines; unused by the model itself. */
  latents_mean: number[] | null;
  latents_std: number[] | null;
  /** Whether pipelines should run this VAE in float32 even when the rest is float16. */
  force_upcast: boolean;
  use_quant_conv: boolean;
  use_post_quant_conv: boolean;
  /** Self-attention between the encoder's (and decoder's) mid-block resnets. */
  mid_block_add_attention: boolean;
}

/** A problem with an AutoencoderKL config: it names the key and the value. */
export class AutoencoderKLConfigError extends Error {
  override name = "AutoencoderKLConfigError";
}

/** AutoencoderKL.__init__'s defaults in diffusers 0.42.1. */
export const AUTOENCODER_KL_DEFAULTS: Readonly<AutoencoderKLConfig> = Object.freeze({
  in_channels: 3,
  out_channels: 3,
  down_block_types: ["DownEncoderBlock2D"],
  up_block_types: ["UpDecoderBlock2D"],
  block_out_channels: [64],
  layers_per_block: 1,
  act_fn: "silu",
  latent_channels: 4,
  norm_num_groups: 32,
  sample_size: 32,
  scaling_factor: 0.18215,
  shift_factor: null,
  latents_mean: null,
  latents_std: null,
  force_upcast: true,
  use_quant_conv: true,
  use_post_quant_conv: true,
  mid_block_add_attention: true,
} satisfies AutoencoderKLConfig);

const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

function fail(key: string, expected: string, value: unknown): never {
  throw new AutoencoderKLConfigError(`AutoencoderKL config: '${key}' must be ${expected}, got ${show(value)}`);
}

function unsupported(key: string, value: unknown, supported: string): never {
  throw new AutoencoderKLConfigError(
    `AutoencoderKL config: ${key}=${show(value)} is not supported by this implementation (supported: ${supported})`,
  );
}

const isPositiveInt = (value: unknown): value is number => typeof value === "number" && Number.isInteger(value) && value > 0;
const isFiniteNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);

function positiveInt(key: string, value: unknown): number {
  if (!isPositiveInt(value)) fail(key, "a positive integer", value);
  return value;
}

function bool(key: string, value: unknown): boolean {
  if (typeof value !== "boolean") fail(key, "true or false", value);
  return value;
}

function blockTypes<T extends string>(key: string, value: unknown, only: T, count: number): T[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === "string")) {
    fail(key, "a non-empty list of block type names", value);
  }
  const other = value.find((v) => v !== only);
  if (other !== undefined) unsupported(key, other, `"${only}"`);
  if (value.length !== count) {
    fail(key, `one entry per block_out_channels entry (${count})`, value);
  }
  return value as T[];
}

function statistics(key: string, value: unknown, channels: number): number[] | null {
  if (value === null) return null;
  if (!Array.isArray(value) || value.length !== channels || !value.every(isFiniteNumber)) {
    fail(key, `null or a list of ${channels} numbers (one per latent channel)`, value);
  }
  return [...value];
}

/**
 * The complete, validated config from a raw `config.json` object: given keys override diffusers' defaults.
 * Bookkeeping keys (`_class_name`, `_diffusers_version`, `_name_or_path`, `_use_default_values`) and keys
 * AutoencoderKL does not take are ignored, as diffusers ignores them; `_class_name`, when present, must be
 * "AutoencoderKL".
 */
export function resolveAutoencoderKLConfig(raw: Readonly<Record<string, unknown>> = {}): AutoencoderKLConfig {
  if (raw._class_name !== undefined && raw._class_name !== "AutoencoderKL") {
    throw new AutoencoderKLConfigError(`AutoencoderKL config: _class_name is ${show(raw._class_name)}, expected "AutoencoderKL"`);
  }
  const given = (key: keyof AutoencoderKLConfig): unknown => (Object.hasOwn(raw, key) ? raw[key] : AUTOENCODER_KL_DEFAULTS[key]);

  const blockOutChannels = given("block_out_channels");
  if (!Array.isArray(blockOutChannels) || blockOutChannels.length === 0 || !blockOutChannels.every(isPositiveInt)) {
    fail("block_out_channels", "a non-empty list of positive integers", blockOutChannels);
  }
  const levels = blockOutChannels.length;
  const normNumGroups = positiveInt("norm_num_groups", given("norm_num_groups"));
  const indivisible = blockOutChannels.find((channels) => channels % normNumGroups !== 0);
  if (indivisible !== undefined) {
    fail("norm_num_groups", `a divisor of every block_out_channels entry (${indivisible} is not divisible by it)`, normNumGroups);
  }

  const actFn = given("act_fn");
  if (actFn !== "silu" && actFn !== "swish") unsupported("act_fn", actFn, `"silu", "swish"`);

  const sampleSize = given("sample_size");
  if (!isPositiveInt(sampleSize) && !(Array.isArray(sampleSize) && sampleSize.length === 2 && sampleSize.every(isPositiveInt))) {
    fail("sample_size", "a positive integer or [height, width]", sampleSize);
  }

  const scalingFactor = given("scaling_factor");
  if (!isFiniteNumber(scalingFactor) || scalingFactor === 0) fail("scaling_factor", "a non-zero number", scalingFactor);
  const shiftFactor = given("shift_factor");
  if (shiftFactor !== null && !isFiniteNumber(shiftFactor)) fail("shift_factor", "a number or null", shiftFactor);

  const latentChannels = positiveInt("latent_channels", given("latent_channels"));
  return {
    in_channels: positiveInt("in_channels", given("in_channels")),
    out_channels: positiveInt("out_channels", given("out_channels")),
    down_block_types: blockTypes("down_block_types", given("down_block_types"), "DownEncoderBlock2D", levels),
    up_block_types: blockTypes("up_block_types", given("up_block_types"), "UpDecoderBlock2D", levels),
    block_out_channels: [...blockOutChannels],
    layers_per_block: positiveInt("layers_per_block", given("layers_per_block")),
    act_fn: actFn,
    latent_channels: latentChannels,
    norm_num_groups: normNumGroups,
    sample_size: typeof sampleSize === "number" ? sampleSize : [sampleSize[0]!, sampleSize[1]!],
    scaling_factor: scalingFactor,
    shift_factor: shiftFactor,
    latents_mean: statistics("latents_mean", given("latents_mean"), latentChannels),
    latents_std: statistics("latents_std", given("latents_std"), latentChannels),
    force_upcast: bool("force_upcast", given("force_upcast")),
    use_quant_conv: bool("use_quant_conv", given("use_quant_conv")),
    use_post_quant_conv: bool("use_post_quant_conv", given("use_post_quant_conv")),
    mid_block_add_attention: bool("mid_block_add_attention", given("mid_block_add_attention")),
  };
}
