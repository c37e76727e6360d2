/**
 * AutoencoderKL: Stable Diffusion's VAE (diffusers' models/autoencoders/autoencoder_kl.py), built from a
 * diffusers `vae/config.json` with parameter names identical to diffusers' checkpoints
 * ("encoder.mid_block.attentions.0.to_q.weight", "quant_conv.weight", ...).
 *
 *     encode(x):  posterior = DiagonalGaussianDistribution(quant_conv(encoder(x)))
 *     decode(z):  decoder(post_quant_conv(z))
 *     forward(x): decode(posterior.sample(generator) or posterior.mode())
 *
 * Pipelines move between the VAE's latent space and the diffusion model's with `scalingFactor` and
 * `shiftFactor`: latents = (z - shift_factor) · scaling_factor (no shift for Stable Diffusion 1.x/2.x).
 *
 * Not ported: tiled encoding/decoding, gradient checkpointing, fused QKV projections.
 */
import { join } from "node:path";
import { cat, readSafetensorsHeader, tidy, type Device, type DType, type Generator, type Tensor } from "../../engine/index.js";
import { Conv2d, Module } from "../../engine/nn/index.js";
import {
  findWeightFiles, loadPretrainedStateDict, ModelLoadingError, loadPretrainedWeights, readComponentConfig, type LoadedWeights,
} from "../loading/index.js";
import { resolveAutoencoderKLConfig, type AutoencoderKLConfig } from "./config.js";
import { Decoder } from "./decoder.js";
import { Encoder } from "./encoder.js";
import { DiagonalGaussianDistribution } from "./gaussian.js";

export interface AutoencoderKLForwardOptions {
  /** Decode a sample of the posterior (true) or its mode, the mean (false, the default). */
  samplePosterior?: boolean;
  /** The noise source for samplePosterior (one generator per batch item for a list). */
  generator?: Generator | readonly Generator[];
}

export interface AutoencoderKLFromPretrainedOptions {
  /** Parameters' dtype (default float32; float16 weights are converted). */
  dtype?: DType;
  device?: Device;
  /** Load `diffusion_pytorch_model.<variant>.safetensors` (e.g. "fp16"). */
  variant?: string;
}

/**
 * Mid-block attention parameter names of checkpoints saved before diffusers 0.14 (Stable Diffusion 1.5's VAE
 * among them) and today's names; diffusers renames them on load (`_convert_deprecated_attention_blocks`).
 */
const DEPRECATED_ATTENTION_NAMES: readonly [string, string][] = [
  ["query", "to_q"], ["key", "to_k"], ["value", "to_v"], ["proj_attn", "to_out.0"],
];
const DEPRECATED_ATTENTION_KEY = /^((?:encoder|decoder)\.mid_block\.attentions\.\d+)\.(query|key|value|proj_attn)\.(weight|bias)$/;

/** A checkpoint key with the deprecated mid-block attention names replaced by today's (others unchanged). */
export function renameDeprecatedAttentionKey(key: string): string {
  const match = DEPRECATED_ATTENTION_KEY.exec(key);
  if (match === null) return key;
  const renamed = DEPRECATED_ATTENTION_NAMES.find(([old]) => old === match[2])![1];
  return `${match[1]}.${renamed}.${match[3]}`;
}

export class AutoencoderKL extends Module {
  readonly config: AutoencoderKLConfig;
  readonly encoder: Encoder;
  readonly decoder: Decoder;
  readonly quantConv: Conv2d | null;
  readonly postQuantConv: Conv2d | null;
  #useSlicing = false;

  /** A randomly initialised model from a (raw or resolved) config; see `fromPretrained` for weights. */
  constructor(config: Readonly<Record<string, unknown>> | AutoencoderKLConfig = {}) {
    super();
    this.config = resolveAutoencoderKLConfig(config as Readonly<Record<string, unknown>>);
    const c = this.config;
    this.encoder = this.registerModule("encoder", new Encoder({
      inChannels: c.in_channels, outChannels: c.latent_channels, blockOutChannels: c.block_out_channels,
      layersPerBlock: c.layers_per_block, actFn: c.act_fn, normNumGroups: c.norm_num_groups, doubleZ: true,
      midBlockAddAttention: c.mid_block_add_attention,
    }));
    this.decoder = this.registerModule("decoder", new Decoder({
      inChannels: c.latent_channels, outChannels: c.out_channels, blockOutChannels: c.block_out_channels,
      layersPerBlock: c.layers_per_block, normNumGroups: c.norm_num_groups, actFn: c.act_fn,
      midBlockAddAttention: c.mid_block_add_attention,
    }));
    const latent = c.latent_channels;
    this.quantConv = c.use_quant_conv ? this.registerModule("quant_conv", new Conv2d(2 * latent, 2 * latent, 1)) : null;
    this.postQuantConv = c.use_post_quant_conv ? this.registerModule("post_quant_conv", new Conv2d(latent, latent, 1)) : null;
  }

  /**
   * Builds the model from `dir/config.json` and loads its safetensors weights (one file, a variant or shards),
   * in eval mode, as diffusers' `AutoencoderKL.from_pretrained(dir)`. Checkpoints with the mid-block
   * attention names of diffusers < 0.14 (query, key, value, proj_attn) are renamed on load, as diffusers does.
   */
  static fromPretrained(dir: string, options: AutoencoderKLFromPretrainedOptions = {}): AutoencoderKL {
    const model = new AutoencoderKL(resolveAutoencoderKLConfig(readComponentConfig(dir), join(dir, "config.json")));
    try {
      model.loadPretrained(dir, options);
    } catch (error) {
      model.dispose();
      throw error;
    }
    return model.eval();
  }

  /** Loads a component folder's weights into this model (see `fromPretrained`). */
  loadPretrained(dir: string, options: AutoencoderKLFromPretrainedOptions = {}): LoadedWeights {
    const { files, index } = findWeightFiles(dir, options.variant);
    const hasDeprecatedNames = files.some((file) => [...readSafetensorsHeader(file).entries.keys()].some((key) => DEPRECATED_ATTENTION_KEY.test(key)));
    if (!hasDeprecatedNames) return loadPretrainedWeights(this, dir, options);
    // The pre-0.14 layout: read every tensor, rename, then load with the module's own checks (which name
    // missing, unexpected and mis-shaped keys, as loadPretrainedWeights does).
    if (options.dtype !== undefined || options.device !== undefined) {
      this.to({ ...(options.dtype === undefined ? {} : { dtype: options.dtype }), ...(options.device === undefined ? {} : { device: options.device }) });
    }
    const stateDict = loadPretrainedStateDict(dir, { ...(options.variant === undefined ? {} : { variant: options.variant }) });
    try {
      const renamed = new Map([...stateDict].map(([key, tensor]) => [renameDeprecatedAttentionKey(key), tensor]));
      this.loadStateDict(renamed);
    } catch (error) {
      throw new ModelLoadingError(`cannot load ${files.join(", ")} (after renaming deprecated attention names): ${(error as Error).message}`);
    } finally {
      for (const tensor of stateDict.values()) tensor.dispose();
    }
    return { files, ...(index === undefined ? {} : { index }), missing: [], unexpected: [] };
  }

  /** Latents given to the diffusion model are (z - shiftFactor) · scalingFactor (config.scaling_factor). */
  get scalingFactor(): number {
    return this.config.scaling_factor;
  }

  /** config.shift_factor: null (no shift) for Stable Diffusion 1.x/2.x. */
  get shiftFactor(): number | null {
    return this.config.shift_factor;
  }

  /** Encode and decode one batch item at a time (less memory for large batches; same results). */
  enableSlicing(): this {
    this.#useSlicing = true;
    return this;
  }

  disableSlicing(): this {
    this.#useSlicing = false;
    return this;
  }

  get useSlicing(): boolean {
    return this.#useSlicing;
  }

  /**
   * Images (B, in_channels, H, W), usually in [-1, 1] → the posterior over latents of shape
   * (B, latent_channels, ⌊H / f⌋, ⌊W / f⌋), f = 2^(levels-1). The distribution owns its tensors: take what
   * you need (e.g. `sample()`) and dispose it, or create it inside a tidy scope.
   */
  encode(x: Tensor): DiagonalGaussianDistribution {
    checkInput("encode", x, this.config.in_channels, "in_channels");
    // (tidy also frees any temporary a block forgets to)
    const moments = tidy(() => this.#sliced(x, (slice) => this.#encodeMoments(slice)));
    return new DiagonalGaussianDistribution(moments);
  }

  /** Latents (B, latent_channels, h, w) → images (B, out_channels, h · f, w · f). */
  decode(z: Tensor): Tensor {
    checkInput("decode", z, this.config.latent_channels, "latent_channels");
    return tidy(() => this.#sliced(z, (slice) => this.#decodeLatents(slice)));
  }

  /** Reconstructs images: decode(posterior sample or mode). */
  forward(sample: Tensor, options: AutoencoderKLForwardOptions = {}): Tensor {
    return tidy(() => {
      const posterior = this.encode(sample);
      const z = options.samplePosterior ? posterior.sample({ ...(options.generator === undefined ? {} : { generator: options.generator }) }) : posterior.mode();
      return this.decode(z);
    });
  }

  #encodeMoments(x: Tensor): Tensor {
    const encoded = this.encoder.forward(x);
    if (this.quantConv === null) return encoded;
    using toQuantize = encoded;
    return this.quantConv.forward(toQuantize);
  }

  #decodeLatents(z: Tensor): Tensor {
    if (this.postQuantConv === null) return this.decoder.forward(z);
    using projected = this.postQuantConv.forward(z);
    return this.decoder.forward(projected);
  }

  /** fn on the whole batch, or (with slicing and B > 1) on each item in turn, concatenated. */
  #sliced(x: Tensor, fn: (slice: Tensor) => Tensor): Tensor {
    if (!this.#useSlicing || x.size(0) <= 1) return fn(x);
    return cat(x.split(1).map((slice) => fn(slice)));
  }
}

function checkInput(method: string, x: Tensor, channels: number, key: string): void {
  if (x.ndim !== 4 || x.size(1) !== channels) {
    throw new Error(`AutoencoderKL.${method}: expected a (B, ${channels}, H, W) tensor (${key} = ${channels}), got shape [${x.shape.join(", ")}]`);
  }
}
