/** Normalisation layers: GroupNorm and LayerNorm (torch.nn), scale initialised to ones and shift to zeros. */
import type { TensorOptions } from "../creation.js";
import { groupNorm, layerNorm } from "../functional.js";
import type { Tensor } from "../tensor.js";
import { ones_, zeros_ } from "./init.js";
import { Module } from "./module.js";
import { Parameter } from "./parameter.js";

export interface GroupNormOptions extends Omit<TensorOptions, "requiresGrad"> {
  eps?: number;
  /** Learn a per-channel scale and shift (default true). */
  affine?: boolean;
}

/** Normalises (N, C, ...) inputs over groups of channels; per-channel `weight` and `bias`. */
export class GroupNorm extends Module {
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly eps: number;

  constructor(readonly numGroups: number, readonly numChannels: number, options: GroupNormOptions = {}) {
    super();
    const { eps = 1e-5, affine = true, ...tensorOptions } = options;
    if (numChannels % numGroups !== 0) throw new Error(`GroupNorm: numChannels (${numChannels}) must be divisible by numGroups (${numGroups})`);
    this.eps = eps;
    this.weight = affine ? this.registerParameter("weight", Parameter.empty([numChannels], tensorOptions)) : null;
    this.bias = affine ? this.registerParameter("bias", Parameter.empty([numChannels], tensorOptions)) : null;
    this.resetParameters();
  }

  resetParameters(): void {
    if (this.weight) ones_(this.weight);
    if (this.bias) zeros_(this.bias);
  }

  forward(input: Tensor): Tensor {
    return groupNorm(input, this.numGroups, this.weight, this.bias, this.eps);
  }
}

export interface LayerNormOptions extends Omit<TensorOptions, "requiresGrad"> {
  eps?: number;
  /** Learn an elementwise scale (and shift, unless `bias` is false); default true. */
  elementwiseAffine?: boolean;
  bias?: boolean;
}

/** Normalises over the trailing `normalizedShape` dims; elementwise `weight` and `bias`. */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly eps: number;

  constructor(normalizedShape: number | number[], options: LayerNormOptions = {}) {
    super();
    const { eps = 1e-5, elementwiseAffine = true, bias = true, ...tensorOptions } = options;
    this.normalizedShape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
    this.eps = eps;
    this.weight = elementwiseAffine ? this.registerParameter("weight", Parameter.empty(this.normalizedShape, tensorOptions)) : null;
    this.bias = elementwiseAffine && bias ? this.registerParameter("bias", Parameter.empty(this.normalizedShape, tensorOptions)) : null;
    this.resetParameters();
  }

  resetParameters(): void {
    if (this.weight) ones_(this.weight);
    if (this.bias) zeros_(this.bias);
  }

  forward(input: Tensor): Tensor {
    return layerNorm(input, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}
