/**
 * Timestep embeddings: diffusers' get_timestep_embedding, Timesteps and TimestepEmbedding
 * (models/embeddings.py), in the same order of float32 operations (test/models/blocks.test.ts compares them
 * with diffusers' on the oracle's fixtures).
 *
 *     Timesteps:          t (N,) → [sin(t·f), cos(t·f)] (N, num_channels),  f_i = exp(-ln(max_period)·i / (half - shift))
 *     TimestepEmbedding:  linear_2(act(linear_1(x)))
 */
import { arange, cat, pad, type Tensor } from "../../engine/index.js";
import { Linear, Module } from "../../engine/nn/index.js";
import { parameterOptions, type ParameterOptions } from "./options.js";
import { activationFunction } from "./resnet.js";

export interface TimestepEmbeddingSettings {
  /** Order [cos, sin] instead of [sin, cos] (default false). */
  flipSinToCos?: boolean;
  /** The frequency exponent is divided by (half − downscaleFreqShift) (default 1). */
  downscaleFreqShift?: number;
  /** Multiplies the arguments of sin and cos (default 1). */
  scale?: number;
  /** The longest period (default 10000). */
  maxPeriod?: number;
}

/**
 * Sinusoidal embeddings of 1-D timesteps (N,) → (N, embeddingDim) float32, as diffusers'
 * get_timestep_embedding (DDPM's positional encoding). An odd embeddingDim gets one zero column at the end.
 */
export function getTimestepEmbedding(timesteps: Tensor, embeddingDim: number, settings: TimestepEmbeddingSettings = {}): Tensor {
  const { flipSinToCos = false, downscaleFreqShift = 1, scale = 1, maxPeriod = 10000 } = settings;
  if (timesteps.ndim !== 1) throw new Error(`getTimestepEmbedding: timesteps must be 1-D, got shape [${timesteps.shape.join(", ")}]`);
  const halfDim = Math.floor(embeddingDim / 2);
  using indices = arange(0, halfDim, 1, { dtype: "float32", device: timesteps.device });
  using scaledIndices = indices.mul(-Math.log(maxPeriod));
  using exponent = scaledIndices.div(halfDim - downscaleFreqShift);
  using frequencies = exponent.exp();
  using column = timesteps.unsqueeze(1);
  using floatColumn = column.float();
  using row = frequencies.unsqueeze(0);
  using products = floatColumn.mul(row);
  using args = products.mul(scale);
  using sines = args.sin();
  using cosines = args.cos();
  let embedding = cat(flipSinToCos ? [cosines, sines] : [sines, cosines], -1);
  if (embeddingDim % 2 === 1) {
    const padded = pad(embedding, [0, 1, 0, 0]);
    embedding.dispose();
    embedding = padded;
  }
  return embedding;
}

export interface TimestepsOptions {
  numChannels: number;
  flipSinToCos: boolean;
  downscaleFreqShift: number;
  scale?: number;
}

/** The parameter-free sinusoidal projection of timesteps (diffusers' Timesteps); always float32. */
export class Timesteps extends Module {
  readonly numChannels: number;
  readonly settings: Required<Omit<TimestepEmbeddingSettings, "maxPeriod">>;

  constructor(options: TimestepsOptions) {
    super();
    this.numChannels = options.numChannels;
    this.settings = { flipSinToCos: options.flipSinToCos, downscaleFreqShift: options.downscaleFreqShift, scale: options.scale ?? 1 };
  }

  /** (N,) timesteps (any numeric dtype) → (N, numChannels) float32. */
  forward(timesteps: Tensor): Tensor {
    return getTimestepEmbedding(timesteps, this.numChannels, this.settings);
  }
}

export interface TimestepEmbeddingOptions extends ParameterOptions {
  inChannels: number;
  timeEmbedDim: number;
  /** Activation between the two layers (default "silu"). */
  actFn?: string;
  /** Output width; defaults to timeEmbedDim. */
  outDim?: number | null;
  /** Activation after linear_2 (default none). */
  postActFn?: string | null;
  /** Not supported (diffusers' cond_proj for LCM-style guidance embeddings); must be null. */
  condProjDim?: number | null;
  /** Bias on both layers (default true). */
  sampleProjBias?: boolean;
}

/** The MLP on the sinusoidal timestep features: linear_1 → act → linear_2 (diffusers' TimestepEmbedding). */
export class TimestepEmbedding extends Module {
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly #act: (x: Tensor) => Tensor;
  readonly #postAct: ((x: Tensor) => Tensor) | null;

  constructor(options: TimestepEmbeddingOptions) {
    super();
    const { inChannels, timeEmbedDim, actFn = "silu", postActFn = null, condProjDim = null, sampleProjBias = true } = options;
    if (condProjDim !== null) throw new Error(`TimestepEmbedding: cond_proj_dim ${condProjDim} is not supported (only null)`);
    this.linear1 = this.registerModule("linear_1", new Linear(inChannels, timeEmbedDim, { bias: sampleProjBias, ...parameterOptions(options) }));
    this.#act = activationFunction(actFn);
    this.linear2 = this.registerModule("linear_2", new Linear(timeEmbedDim, options.outDim ?? timeEmbedDim, { bias: sampleProjBias, ...parameterOptions(options) }));
    this.#postAct = postActFn === null ? null : activationFunction(postActFn);
  }

  /** (N, inChannels) → (N, outDim). */
  forward(sample: Tensor): Tensor {
    using hidden = this.linear1.forward(sample);
    using activated = this.#act(hidden);
    const out = this.linear2.forward(activated);
    if (this.#postAct === null) return out;
    using raw = out;
    return this.#postAct(raw);
  }
}
