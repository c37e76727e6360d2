/**
 * Downsample2D and Upsample2D: diffusers' resolution changes (models/downsampling.py, upsampling.py),
 * shared by the UNet and the VAE. The convolution is registered as "conv" (diffusers' name for both the
 * UNet's "op"-named downsamplers and the upsamplers), so "down_blocks.0.downsamplers.0.conv.weight" loads.
 * Not ported: the optional LayerNorm/RMSNorm before resampling and transposed-convolution upsampling
 * (no Stable Diffusion checkpoint uses them).
 */
import { avgPool2d, interpolate, pad, type Tensor } from "../../engine/index.js";
import { Conv2d, Module } from "../../engine/nn/index.js";
import { parameterOptions, type ParameterOptions } from "./options.js";

export interface Downsample2DOptions extends ParameterOptions {
  /** A stride-2 convolution (true) or a 2×2 average pool (false, the default). */
  useConv?: boolean;
  /** Defaults to channels (the average pool keeps the channel count). */
  outChannels?: number | null;
  /**
   * Convolution padding (default 1). With 0 the input is first padded by one zero row at the bottom and one
   * zero column at the right (F.pad (0, 1, 0, 1)), as the VAE's encoder does.
   */
  padding?: number;
  kernelSize?: number;
  bias?: boolean;
}

/** Halves the spatial size: a 3×3 stride-2 convolution or a 2×2 average pool. */
export class Downsample2D extends Module {
  readonly conv: Conv2d | null;
  readonly useConv: boolean;
  readonly padding: number;
  readonly outChannels: number;

  constructor(readonly channels: number, options: Downsample2DOptions = {}) {
    super();
    const { useConv = false, padding = 1, kernelSize = 3, bias = true } = options;
    this.useConv = useConv;
    this.padding = padding;
    this.outChannels = options.outChannels ?? channels;
    if (useConv) {
      this.conv = this.registerModule("conv", new Conv2d(channels, this.outChannels, kernelSize, { stride: 2, padding, bias, ...parameterOptions(options) }));
    } else {
      if (this.outChannels !== channels) {
        throw new Error(`Downsample2D: average pooling keeps the channel count, but outChannels ${this.outChannels} ≠ channels ${channels}`);
      }
      this.conv = null;
    }
  }

  /** (B, C, H, W) → (B, C_out, H/2, W/2). */
  forward(hiddenStates: Tensor): Tensor {
    checkChannels("Downsample2D", hiddenStates, this.channels);
    if (this.conv === null) return avgPool2d(hiddenStates, 2, 2);
    if (this.padding === 0) {
      using padded = pad(hiddenStates, [0, 1, 0, 1], "constant", 0);
      return this.conv.forward(padded);
    }
    return this.conv.forward(hiddenStates);
  }
}

export interface Upsample2DOptions extends ParameterOptions {
  /** Follow the nearest-neighbour ×2 resize with a convolution (default false). */
  useConv?: boolean;
  outChannels?: number | null;
  kernelSize?: number;
  padding?: number;
  bias?: boolean;
  /** Resize at all (default true); false keeps only the convolution. */
  interpolate?: boolean;
}

/** Doubles the spatial size (or resizes to an explicit output size) by nearest neighbour, then convolves. */
export class Upsample2D extends Module {
  readonly conv: Conv2d | null;
  readonly outChannels: number;
  readonly interpolate: boolean;

  constructor(readonly channels: number, options: Upsample2DOptions = {}) {
    super();
    const { useConv = false, kernelSize = 3, padding = 1, bias = true } = options;
    this.outChannels = options.outChannels ?? channels;
    this.interpolate = options.interpolate ?? true;
    this.conv = useConv ? this.registerModule("conv", new Conv2d(channels, this.outChannels, kernelSize, { padding, bias, ...parameterOptions(options) })) : null;
  }

  /**
   * (B, C, H, W) → (B, C_out, 2H, 2W), or (B, C_out, outputSize[0], outputSize[1]) when outputSize is given
   * (the UNet passes the skip connection's size so that odd sizes round-trip).
   */
  forward(hiddenStates: Tensor, outputSize: [number, number] | null = null): Tensor {
    checkChannels("Upsample2D", hiddenStates, this.channels);
    let resized = hiddenStates;
    if (this.interpolate) {
      resized = outputSize === null
        ? interpolate(hiddenStates, { scaleFactor: 2, mode: "nearest" })
        : interpolate(hiddenStates, { size: outputSize, mode: "nearest" });
    }
    if (this.conv === null) return resized === hiddenStates ? hiddenStates.alias() : resized;
    const output = this.conv.forward(resized);
    if (resized !== hiddenStates) resized.dispose();
    return output;
  }
}

function checkChannels(name: string, x: Tensor, channels: number): void {
  if (x.ndim !== 4 || x.size(1) !== channels) {
    throw new Error(`${name}: expected a (B, ${channels}, H, W) input, got shape [${x.shape.join(", ")}]`);
  }
}
