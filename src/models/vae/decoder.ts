/**
 * The VAE decoder (diffusers' models/autoencoders/vae.py `Decoder`) and its UpDecoderBlock2D
 * (models/unets/unet_2d_blocks.py): latents → image at 2^(levels-1) times the resolution.
 *
 *     conv_in → mid_block (resnet, attention, resnet) → up_blocks (layers_per_block + 1 resnets, then a
 *     nearest ×2 resize and a 3×3 conv except in the last) → conv_norm_out → SiLU → conv_out
 *
 * Only the "group" norm (plain GroupNorm) decoder of AutoencoderKL is ported, not the "spatial" norm of
 * MoVQ-style decoders. Registered names are diffusers' ("decoder.up_blocks.0.upsamplers.0.conv.weight"),
 * and in diffusers' order: up_blocks is registered before mid_block (diffusers creates the empty list first).
 */
import type { Tensor } from "../../engine/index.js";
import { Conv2d, GroupNorm, Module, ModuleList } from "../../engine/nn/index.js";
import { ResnetBlock2D } from "../blocks/resnet.js";
import { Upsample2D } from "../blocks/sampling.js";
import { inSequence, type Step } from "./in-sequence.js";
import { UNetMidBlock2D } from "./mid-block.js";

export interface UpDecoderBlock2DOptions {
  inChannels: number;
  outChannels: number;
  numLayers?: number;
  dropout?: number;
  resnetEps?: number;
  resnetActFn?: string;
  resnetGroups?: number;
  outputScaleFactor?: number;
  /** End with a nearest ×2 resize and a convolution (default true). */
  addUpsample?: boolean;
  /** Width of a timestep embedding for the resnets; null (the VAE) for none. */
  tembChannels?: number | null;
}

/** numLayers resnets, then an optional nearest-neighbour ×2 upsampling with a 3×3 convolution. */
export class UpDecoderBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | null;

  constructor(options: UpDecoderBlock2DOptions) {
    super();
    const {
      inChannels, outChannels, numLayers = 1, dropout = 0, resnetEps = 1e-6, resnetActFn = "swish", resnetGroups = 32,
      outputScaleFactor = 1, addUpsample = true, tembChannels = null,
    } = options;
    this.resnets = this.registerModule("resnets", new ModuleList(Array.from({ length: numLayers }, (_, i) => new ResnetBlock2D({
      inChannels: i === 0 ? inChannels : outChannels, outChannels, tembChannels, eps: resnetEps, groups: resnetGroups,
      dropout, nonLinearity: resnetActFn, outputScaleFactor,
    }))));
    this.upsamplers = addUpsample
      ? this.registerModule("upsamplers", new ModuleList([new Upsample2D(outChannels, { useConv: true, outChannels })]))
      : null;
  }

  forward(hiddenStates: Tensor, temb: Tensor | null = null): Tensor {
    return inSequence(hiddenStates, [
      ...[...this.resnets].map((resnet): Step => (x) => resnet.forward(x, temb)),
      ...[...(this.upsamplers ?? [])].map((upsampler): Step => (x) => upsampler.forward(x)),
    ]);
  }
}

export interface DecoderOptions {
  /** Latent channels. */
  inChannels: number;
  outChannels: number;
  /** Channels per level from the image resolution down (the same list as the encoder's); used reversed. */
  blockOutChannels: readonly number[];
  /** Each up block has layersPerBlock + 1 resnets. */
  layersPerBlock: number;
  normNumGroups: number;
  /** diffusers' activation name for the resnets. */
  actFn: string;
  midBlockAddAttention?: boolean;
}

export class Decoder extends Module {
  readonly convIn: Conv2d;
  readonly upBlocks: ModuleList<UpDecoderBlock2D>;
  readonly midBlock: UNetMidBlock2D;
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;

  constructor(options: DecoderOptions) {
    super();
    const { inChannels, outChannels, blockOutChannels, layersPerBlock, normNumGroups, actFn, midBlockAddAttention = true } = options;
    const reversed = [...blockOutChannels].reverse();
    const lastChannels = reversed[0]!;
    // Built in diffusers' order (conv_in, mid_block, up blocks), registered in its order (up_blocks first).
    const convIn = new Conv2d(inChannels, lastChannels, 3, { stride: 1, padding: 1 });
    const midBlock = new UNetMidBlock2D({
      inChannels: lastChannels, tembChannels: null, resnetEps: 1e-6, resnetActFn: actFn, outputScaleFactor: 1,
      resnetTimeScaleShift: "default", attentionHeadDim: lastChannels, resnetGroups: normNumGroups, addAttention: midBlockAddAttention,
    });
    const upBlocks = reversed.map((channels, i) => new UpDecoderBlock2D({
      numLayers: layersPerBlock + 1, inChannels: i === 0 ? lastChannels : reversed[i - 1]!, outChannels: channels,
      addUpsample: i !== reversed.length - 1, resnetEps: 1e-6, resnetActFn: actFn, resnetGroups: normNumGroups, tembChannels: null,
    }));
    this.convIn = this.registerModule("conv_in", convIn);
    this.upBlocks = this.registerModule("up_blocks", new ModuleList(upBlocks));
    this.midBlock = this.registerModule("mid_block", midBlock);
    this.convNormOut = this.registerModule("conv_norm_out", new GroupNorm(normNumGroups, blockOutChannels[0]!, { eps: 1e-6 }));
    this.convOut = this.registerModule("conv_out", new Conv2d(blockOutChannels[0]!, outChannels, 3, { padding: 1 }));
  }

  /** (B, latent_channels, h, w) → (B, out_channels, h · 2^(levels-1), w · 2^(levels-1)). */
  forward(sample: Tensor): Tensor {
    return inSequence(sample, [
      (x) => this.convIn.forward(x),
      (x) => this.midBlock.forward(x),
      ...[...this.upBlocks].map((upBlock): Step => (x) => upBlock.forward(x)),
      (x) => this.convNormOut.forward(x),
      (x) => x.silu(),
      (x) => this.convOut.forward(x),
    ]);
  }
}
