/**
 * UNetMidBlock2D: diffusers' mid-block without cross-attention (models/unets/unet_2d_blocks.py), the block
 * at the lowest resolution of the VAE's encoder and decoder:
 *
 *     h = resnets[0](x, temb);  for each layer i:  h = attentions[i](h) (if any);  h = resnets[i + 1](h, temb)
 *
 * The attention is diffusers' "deprecated attention block" configuration of `Attention`: one head as wide as
 * the channels (attention_head_dim = in_channels in the VAE), a GroupNorm over the channels first, biases on
 * q/k/v, and the input added back (residual_connection). Registered names are diffusers'
 * ("mid_block.attentions.0.to_q.weight", "mid_block.resnets.1.norm2.bias").
 *
 * Not ported: the "spatial" time-embedding norm (ResnetBlockCondNorm2D, used by MoVQ decoders only) and
 * resnet_pre_norm = false (diffusers ignores it: its ResnetBlock2D always pre-normalises).
 */
import type { Tensor } from "../../engine/index.js";
import { Module, ModuleList } from "../../engine/nn/index.js";
import { Attention } from "../blocks/attention.js";
import { ResnetBlock2D } from "../blocks/resnet.js";
import { inSequence, type Step } from "./in-sequence.js";

export interface UNetMidBlock2DOptions {
  inChannels: number;
  /** Width of the timestep embedding; null for none (the VAE). */
  tembChannels: number | null;
  dropout?: number;
  /** Attention + resnet pairs after the first resnet (default 1). */
  numLayers?: number;
  /** GroupNorm epsilon of the resnets and the attention's norm (default 1e-6). */
  resnetEps?: number;
  /** Only "default" is supported. */
  resnetTimeScaleShift?: string;
  /** diffusers' activation name for the resnets (default "swish", i.e. SiLU). */
  resnetActFn?: string;
  /** GroupNorm groups of the resnets (default 32; null: min(in_channels / 4, 32), as diffusers). */
  resnetGroups?: number | null;
  /** GroupNorm groups of the attention's norm; defaults to resnetGroups. */
  attnGroups?: number | null;
  /** Add the attention layers (default true). */
  addAttention?: boolean;
  /** Channels per attention head (default 1, as diffusers; null: in_channels; the VAE passes in_channels: one head). */
  attentionHeadDim?: number | null;
  /** Resnet outputs and attention outputs are divided by this (default 1). */
  outputScaleFactor?: number;
}

export class UNetMidBlock2D extends Module {
  /** One per layer; null entries when addAttention is false (diffusers keeps None there). */
  readonly attentions: readonly (Attention | null)[];
  /** numLayers + 1 resnets. */
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly addAttention: boolean;

  constructor(options: UNetMidBlock2DOptions) {
    super();
    const {
      inChannels, tembChannels, dropout = 0, numLayers = 1, resnetEps = 1e-6, resnetTimeScaleShift = "default",
      resnetActFn = "swish", addAttention = true, outputScaleFactor = 1,
    } = options;
    if (resnetTimeScaleShift !== "default") {
      throw new Error(`UNetMidBlock2D: resnet_time_scale_shift '${resnetTimeScaleShift}' is not supported (only "default")`);
    }
    const resnetGroups = options.resnetGroups === undefined ? 32 : options.resnetGroups ?? Math.min(Math.floor(inChannels / 4), 32);
    const attnGroups = options.attnGroups ?? resnetGroups;
    const attentionHeadDim = options.attentionHeadDim === undefined ? 1 : options.attentionHeadDim ?? inChannels;
    if (inChannels % attentionHeadDim !== 0) {
      throw new Error(`UNetMidBlock2D: in_channels ${inChannels} is not divisible by attention_head_dim ${attentionHeadDim}`);
    }
    this.addAttention = addAttention;

    const resnet = (): ResnetBlock2D => new ResnetBlock2D({
      inChannels, outChannels: inChannels, tembChannels, eps: resnetEps, groups: resnetGroups, dropout,
      timeEmbeddingNorm: resnetTimeScaleShift, nonLinearity: resnetActFn, outputScaleFactor,
    });
    // Built in diffusers' order (resnet, then attention and resnet per layer), registered in its order
    // (attentions before resnets), so parameters are listed exactly as in diffusers' state dict.
    const resnets = [resnet()];
    const attentions: (Attention | null)[] = [];
    for (let i = 0; i < numLayers; i++) {
      attentions.push(addAttention
        ? new Attention({
          queryDim: inChannels, heads: inChannels / attentionHeadDim, dimHead: attentionHeadDim,
          rescaleOutputFactor: outputScaleFactor, eps: resnetEps, normNumGroups: attnGroups,
          residualConnection: true, bias: true,
        })
        : null);
      resnets.push(resnet());
    }
    this.attentions = attentions;
    this.registerModule("attentions", new ModuleList(attentions.filter((a): a is Attention => a !== null)));
    this.resnets = this.registerModule("resnets", new ModuleList(resnets));
  }

  /** (B, C, H, W) → (B, C, H, W). */
  forward(hiddenStates: Tensor, temb: Tensor | null = null): Tensor {
    const steps: Step[] = [(x) => this.resnets.at(0).forward(x, temb)];
    this.attentions.forEach((attention, i) => {
      if (attention !== null) steps.push((x) => attention.forward(x));
      steps.push((x) => this.resnets.at(i + 1).forward(x, temb));
    });
    return inSequence(hiddenStates, steps);
  }
}
