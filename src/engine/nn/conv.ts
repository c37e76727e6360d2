/** Conv2d: 2-D convolution (torch.nn.Conv2d), with PyTorch's parameter names, layout and initialisation. */
import type { TensorOptions } from "../creation.js";
import { conv2d } from "../functional.js";
import type { Tensor } from "../tensor.js";
import { defaultLayerInit_ } from "./init.js";
import { Module } from "./module.js";
import { Parameter } from "./parameter.js";

export type Pair = number | [number, number];

export interface Conv2dOptions extends Omit<TensorOptions, "requiresGrad"> {
  stride?: Pair;
  /** Zero padding per side, or "same" / "valid" as in PyTorch. */
  padding?: Pair | "same" | "valid";
  dilation?: Pair;
  /** Channels are split into this many independent groups (in and out channels must divide by it). */
  groups?: number;
  bias?: boolean;
}

const pair = (value: Pair): [number, number] => (typeof value === "number" ? [value, value] : value);

export class Conv2d extends Module {
  /** (outChannels, inChannels / groups, kernelHeight, kernelWidth). */
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | "same" | "valid";
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, options: Conv2dOptions = {}) {
    super();
    const { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true, ...tensorOptions } = options;
    if (inChannels % groups !== 0) throw new Error(`Conv2d: inChannels (${inChannels}) must be divisible by groups (${groups})`);
    if (outChannels % groups !== 0) throw new Error(`Conv2d: outChannels (${outChannels}) must be divisible by groups (${groups})`);
    if (padding === "same" && pair(stride).some((s) => s !== 1)) throw new Error("Conv2d: padding 'same' needs stride 1");
    this.kernelSize = pair(kernelSize);
    this.stride = pair(stride);
    this.padding = typeof padding === "string" ? padding : pair(padding);
    this.dilation = pair(dilation);
    this.groups = groups;
    this.weight = this.registerParameter("weight", Parameter.empty([outChannels, inChannels / groups, ...this.kernelSize], tensorOptions));
    this.bias = bias ? this.registerParameter("bias", Parameter.empty([outChannels], tensorOptions)) : null;
    this.resetParameters();
  }

  /** PyTorch's default, as for Linear: kaiming_uniform_(a=sqrt(5)) weight, then U(±1/sqrt(fan_in)) bias. */
  resetParameters(): void {
    defaultLayerInit_(this.weight, this.bias);
  }

  forward(input: Tensor): Tensor {
    return conv2d(input, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }
}
