/**
 * The convolutional encoder both metric networks are built on: a small diffusers-style image encoder
 * (conv_in, down blocks of ResnetBlock2D + a stride-2 Downsample2D, a final GroupNorm and SiLU), whose last
 * feature map is flattened and projected to a feature vector.
 *
 *     images (N, 3, S·k, S·k) ─ average pool k ─▶ (N, 3, S, S) ─ conv_in (stride s) ─▶ down_blocks ─▶
 *     conv_norm_out, SiLU ─▶ flatten ─▶ proj ─▶ (N, featureDim)
 *
 * Why flatten and not global average pooling: where a feature is (a mole on the left cheek, hair above the face
 * rather than a backdrop of the same colour) is part of what both networks must see, and the last map is small
 * (4 × 4), so the projection stays cheap. Why these blocks: they are the ones the UNet and VAE already use
 * (src/models/blocks), with diffusers' names, so nothing new has to be trusted.
 */
import { avgPool2d, type Tensor } from "../engine/index.js";
import { Conv2d, GroupNorm, Linear, Module, ModuleList } from "../engine/nn/index.js";
import { ResnetBlock2D } from "../models/blocks/resnet.js";
import { Downsample2D } from "../models/blocks/sampling.js";

export interface ConvEncoderConfig {
  /** Side of the square images the convolutions see; inputs k times as large are average-pooled down first. */
  sampleSize: number;
  inChannels: number;
  /** Channels of each down block; every block but the last ends by halving the resolution. */
  blockOutChannels: number[];
  /** ResnetBlock2Ds per down block. */
  layersPerBlock: number;
  /** GroupNorm groups (every block's channel count must divide by it). */
  normNumGroups: number;
  /** Stride of conv_in: 2 halves the resolution before the first block (most of the cost is at full size). */
  stemStride: number;
  /** Width of the output feature vector. */
  featureDim: number;
}

/** One down block: resnets, then (except in the last block) a stride-2 convolution. */
export class EncoderDownBlock extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;

  constructor(inChannels: number, outChannels: number, layers: number, groups: number, addDownsample: boolean) {
    super();
    this.resnets = this.registerModule("resnets", new ModuleList(Array.from({ length: layers }, (_, i) =>
      new ResnetBlock2D({ inChannels: i === 0 ? inChannels : outChannels, outChannels, tembChannels: null, groups }))));
    this.downsamplers = addDownsample
      ? this.registerModule("downsamplers", new ModuleList([new Downsample2D(outChannels, { useConv: true, padding: 1 })]))
      : null;
  }

  forward(input: Tensor): Tensor {
    let hidden = input.alias();
    for (const resnet of [...this.resnets, ...(this.downsamplers ?? [])]) {
      const next = resnet.forward(hidden);
      hidden.dispose();
      hidden = next;
    }
    return hidden;
  }
}

export class ConvEncoder extends Module {
  readonly convIn: Conv2d;
  readonly downBlocks: ModuleList<EncoderDownBlock>;
  readonly convNormOut: GroupNorm;
  readonly proj: Linear;
  /** Side of the last feature map. */
  readonly finalSize: number;

  constructor(readonly config: ConvEncoderConfig) {
    super();
    checkEncoderConfig(config);
    const { inChannels, blockOutChannels, layersPerBlock, normNumGroups, stemStride, sampleSize, featureDim } = config;
    const first = blockOutChannels[0]!;
    const last = blockOutChannels.at(-1)!;
    this.convIn = this.registerModule("conv_in", new Conv2d(inChannels, first, 3, { stride: stemStride, padding: 1 }));
    this.downBlocks = this.registerModule("down_blocks", new ModuleList(blockOutChannels.map((channels, i) =>
      new EncoderDownBlock(i === 0 ? first : blockOutChannels[i - 1]!, channels, layersPerBlock, normNumGroups, i < blockOutChannels.length - 1))));
    this.convNormOut = this.registerModule("conv_norm_out", new GroupNorm(normNumGroups, last, { eps: 1e-6 }));
    this.finalSize = sampleSize / stemStride / 2 ** (blockOutChannels.length - 1);
    this.proj = this.registerModule("proj", new Linear(last * this.finalSize * this.finalSize, featureDim));
  }

  /** (N, C, S·k, S·k) images → (N, featureDim) features. */
  forward(images: Tensor): Tensor {
    using input = this.#resize(images);
    let hidden = this.convIn.forward(input);
    for (const block of this.downBlocks) {
      const next = block.forward(hidden);
      hidden.dispose();
      hidden = next;
    }
    using normed = this.convNormOut.forward(hidden);
    hidden.dispose();
    using activated = normed.silu();
    using flat = activated.flatten(1);
    return this.proj.forward(flat);
  }

  /** Checks the input's shape and average-pools it to sampleSize (an alias when it already is). */
  #resize(images: Tensor): Tensor {
    const { sampleSize, inChannels } = this.config;
    const [, channels, height, width] = images.shape;
    if (images.ndim !== 4 || channels !== inChannels || height !== width || height! % sampleSize !== 0) {
      throw new Error(`expected images shaped (N, ${inChannels}, H, H) with H a multiple of ${sampleSize}, got [${images.shape.join(", ")}]`);
    }
    const factor = height! / sampleSize;
    return factor === 1 ? images.alias() : avgPool2d(images, factor);
  }
}

/** Throws an error naming the first field of a ConvEncoderConfig that cannot build an encoder. */
export function checkEncoderConfig(config: ConvEncoderConfig): void {
  const positive = (name: string, value: number): void => {
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
  };
  positive("sample_size", config.sampleSize);
  positive("in_channels", config.inChannels);
  positive("layers_per_block", config.layersPerBlock);
  positive("norm_num_groups", config.normNumGroups);
  positive("stem_stride", config.stemStride);
  positive("feature_dim", config.featureDim);
  if (config.blockOutChannels.length === 0) throw new Error("block_out_channels must list at least one block");
  for (const channels of config.blockOutChannels) {
    positive("block_out_channels", channels);
    if (channels % config.normNumGroups !== 0) {
      throw new Error(`block_out_channels ${channels} is not divisible by norm_num_groups ${config.normNumGroups}`);
    }
  }
  const reduction = config.stemStride * 2 ** (config.blockOutChannels.length - 1);
  if (config.sampleSize % reduction !== 0) {
    throw new Error(`sample_size ${config.sampleSize} must be divisible by ${reduction} (stem_stride × 2 per down block after the first)`);
  }
}
