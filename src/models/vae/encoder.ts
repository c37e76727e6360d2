/**
 * The VAE encoder (diffusers' models/autoencoders/vae.py `Encoder`) and its DownEncoderBlock2D
 * (models/unets/unet_2d_blocks.py): image → 2·latent_channels moment maps at 1/2^(levels-1) resolution.
 *
 *     conv_in → down_blocks (resnets, then a stride-2 conv except in the last) → mid_block (resnet,
 *     attention, resnet) → conv_norm_out → SiLU → conv_out
 *
 * The downsampling convolutions have padding 0 after a one-pixel zero pad on the bottom and right (as the
 * original LDM code), so each level halves sizes rounding down: 13 → 6. Registered names are diffusers'
 * ("encoder.down_blocks.0.resnets.0.norm1.weight", "encoder.down_blocks.0.downsamplers.0.conv.weight").
 */
import type { Tensor } from "../../engine/index.js";
import { Conv2d, GroupNorm, Module, ModuleList } from "../../engine/nn/index.js";
import { ResnetBlock2D } from "../blocks/resnet.js";
import { Downsample2D } from "../blocks/sampling.js";
import { inSequence, type Step } from "./in-sequence.js";
import { UNetMidBlock2D } from "./mid-block.js";

export interface DownEncoderBlock2DOptions {
  inChannels: number;
  outChannels: number;
  numLayers?: number;
  dropout?: number;
  resnetEps?: number;
  resnetActFn?: string;
  resnetGroups?: number;
  outputScaleFactor?: number;
  /** End with a stride-2 convolution (default true). */
  addDownsample?: boolean;
  /** The downsampler's padding (default 1; the VAE's encoder uses 0, with the asymmetric pad). */
  downsamplePadding?: number;
}

/** numLayers resnets without timestep embedding, then an optional stride-2 convolution. */
export class DownEncoderBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;

  constructor(options: DownEncoderBlock2DOptions) {
    super();
    const {
      inChannels, outChannels, numLayers = 1, dropout = 0, resnetEps = 1e-6, resnetActFn = "swish", resnetGroups = 32,
      outputScaleFactor = 1, addDownsample = true, downsamplePadding = 1,
    } = options;
    this.resnets = this.registerModule("resnets", new ModuleList(Array.from({ length: numLayers }, (_, i) => new ResnetBlock2D({
      inChannels: i === 0 ? inChannels : outChannels, outChannels, tembChannels: null, eps: resnetEps, groups: resnetGroups,
      dropout, nonLinearity: resnetActFn, outputScaleFactor,
    }))));
    this.downsamplers = addDownsample
      ? this.registerModule("downsamplers", new ModuleList([
        new Downsample2D(outChannels, { useConv: true, outChannels, padding: downsamplePadding }),
      ]))
      : null;
  }

  forward(hiddenStates: Tensor): Tensor {
    return inSequence(hiddenStates, [
      ...[...this.resnets].map((resnet): Step => (x) => resnet.forward(x, null)),
      ...[...(this.downsamplers ?? [])].map((downsampler): Step => (x) => downsampler.forward(x)),
    ]);
  }
}

export interface EncoderOptions {
  inChannels: number;
  /** Latent channels; the output has twice as many with doubleZ (mean and log-variance). */
  outChannels: number;
  /** One DownEncoderBlock2D per entry of blockOutChannels. */
  blockOutChannels: readonly number[];
  layersPerBlock: number;
  normNumGroups: number;
  /** diffusers' activation name for the resnets. */
  actFn: string;
  /** Output 2·outChannels channels (default true). */
  doubleZ?: boolean;
  midBlockAddAttention?: boolean;
}

export class Encoder extends Module {
  readonly convIn: Conv2d;
  readonly downBlocks: ModuleList<DownEncoderBlock2D>;
  readonly midBlock: UNetMidBlock2D;
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;

  constructor(options: EncoderOptions) {
    super();
    const { inChannels, outChannels, blockOutChannels, layersPerBlock, normNumGroups, actFn, doubleZ = true, midBlockAddAttention = true } = options;
    const lastChannels = blockOutChannels[blockOutChannels.length - 1]!;
    this.convIn = this.registerModule("conv_in", new Conv2d(inChannels, blockOutChannels[0]!, 3, { stride: 1, padding: 1 }));
    this.downBlocks = this.registerModule("down_blocks", new ModuleList(blockOutChannels.map((channels, i) => new DownEncoderBlock2D({
      numLayers: layersPerBlock, inChannels: i === 0 ? blockOutChannels[0]! : blockOutChannels[i - 1]!, outChannels: channels,
      addDownsample: i !== blockOutChannels.length - 1, resnetEps: 1e-6, downsamplePadding: 0, resnetActFn: actFn,
      resnetGroups: normNumGroups,
    }))));
    this.midBlock = this.registerModule("mid_block", new UNetMidBlock2D({
      inChannels: lastChannels, tembChannels: null, resnetEps: 1e-6, resnetActFn: actFn, outputScaleFactor: 1,
      resnetTimeScaleShift: "default", attentionHeadDim: lastChannels, resnetGroups: normNumGroups, addAttention: midBlockAddAttention,
    }));
    this.convNormOut = this.registerModule("conv_norm_out", new GroupNorm(normNumGroups, lastChannels, { eps: 1e-6 }));
    this.convOut = this.registerModule("conv_out", new Conv2d(lastChannels, doubleZ ? 2 * outChannels : outChannels, 3, { padding: 1 }));
  }

  /** (B, in_channels, H, W) → (B, 2·latent_channels, H / 2^(levels-1), W / 2^(levels-1)), halving with rounding down per level. */
  forward(sample: Tensor): Tensor {
    return inSequence(sample, [
      (x) => this.convIn.forward(x),
      ...[...this.downBlocks].map((downBlock): Step => (x) => downBlock.forward(x)),
      (x) => this.midBlock.forward(x),
      (x) => this.convNormOut.forward(x),
      (x) => x.silu(),
      (x) => this.convOut.forward(x),
    ]);
  }
}
