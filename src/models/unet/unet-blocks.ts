/**
 * The UNet's resolution levels: diffusers' CrossAttnDownBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn,
 * UpBlock2D and CrossAttnUpBlock2D (models/unets/unet_2d_blocks.py), with diffusers' registered names
 * (resnets.*, attentions.*, downsamplers.0, upsamplers.0).
 *
 *     down:  for each layer: h = resnet(h, temb) [; h = attention(h, context)]; keep h as a skip connection
 *            then h = downsampler(h) (also kept)                     → { hiddenStates, resSamples }
 *     mid:   h = resnets[0](h, temb); for each layer: h = resnets[i+1](attentions[i](h, context), temb)
 *     up:    for each layer: h = resnet(cat([h, skip.pop()], channels), temb) [; h = attention(h, context)]
 *            then h = upsampler(h, upsampleSize)
 *
 * All blocks of one kind take the same forward arguments (the UNet calls them uniformly); blocks without
 * attention ignore the conditioning. Dual cross-attention and the non-"default" resnet time-scale shift are
 * not ported and give a clear error.
 */
import { cat, type Tensor } from "../../engine/index.js";
import { Module, ModuleList } from "../../engine/nn/index.js";
import { ResnetBlock2D } from "../blocks/resnet.js";
import { Downsample2D, Upsample2D } from "../blocks/sampling.js";
import { parameterOptions, type ParameterOptions } from "../blocks/options.js";
import { Transformer2DModel, type TransformerConditioning } from "../blocks/transformer.js";

/** Options shared by every UNet block (diffusers' keyword arguments, camelCased). */
export interface UNetBlockOptions extends ParameterOptions {
  tembChannels: number;
  dropout?: number;
  /** Resnets per block (default 1). */
  numLayers?: number;
  resnetEps?: number;
  /** Only "default". */
  resnetTimeScaleShift?: string;
  resnetActFn?: string;
  resnetGroups?: number;
  /** Accepted for config compatibility; diffusers' ResnetBlock2D always pre-normalises. */
  resnetPreNorm?: boolean;
  /** Resnet outputs are divided by this (default 1). */
  outputScaleFactor?: number;
}

/** Options of the blocks with transformers. */
export interface CrossAttentionBlockOptions extends UNetBlockOptions {
  /** Transformer blocks per Transformer2DModel: one number for all layers or one per layer (default 1). */
  transformerLayersPerBlock?: number | number[];
  /** Heads of each attention; the head width is the block's channels / heads (default 1). */
  numAttentionHeads?: number;
  crossAttentionDim?: number;
  /** Only false. */
  dualCrossAttention?: boolean;
  useLinearProjection?: boolean;
  onlyCrossAttention?: boolean;
  upcastAttention?: boolean;
  /** Only "default". */
  attentionType?: string;
}

export interface DownBlockOptions extends UNetBlockOptions {
  inChannels: number;
  outChannels: number;
  addDownsample?: boolean;
  downsamplePadding?: number;
}
export type CrossAttnDownBlockOptions = DownBlockOptions & CrossAttentionBlockOptions;

export interface UpBlockOptions extends UNetBlockOptions {
  /** Channels of the deepest skip connection this block consumes (its last resnet's). */
  inChannels: number;
  /** Channels coming from the previous (deeper) block. */
  prevOutputChannel: number;
  outChannels: number;
  addUpsample?: boolean;
  /** diffusers' resolution_idx (used only by FreeU, which is not ported); accepted and kept. */
  resolutionIdx?: number | null;
}
export type CrossAttnUpBlockOptions = UpBlockOptions & CrossAttentionBlockOptions;

export interface MidBlockOptions extends CrossAttentionBlockOptions {
  inChannels: number;
  outChannels?: number | null;
  resnetGroupsOut?: number | null;
}

/** What a down block returns: the hidden states for the next block and the skip connections it produced. */
export interface DownBlockOutput {
  /** The same tensor as the last of resSamples. */
  hiddenStates: Tensor;
  /** One per resnet (after its attention), then the downsampled output if the block downsamples. */
  resSamples: Tensor[];
}

function checkCommon(name: string, options: UNetBlockOptions & { dualCrossAttention?: boolean; attentionType?: string }): void {
  const shift = options.resnetTimeScaleShift ?? "default";
  if (shift !== "default") throw new Error(`${name}: unsupported resnet_time_scale_shift '${shift}' (only "default")`);
  if (options.dualCrossAttention) throw new Error(`${name}: dual_cross_attention true is not supported (only false)`);
  const attentionType = options.attentionType ?? "default";
  if (attentionType !== "default") throw new Error(`${name}: unsupported attention_type '${attentionType}' (only "default")`);
}

function resnet(options: UNetBlockOptions, inChannels: number, outChannels: number, groups?: number): ResnetBlock2D {
  return new ResnetBlock2D({
    inChannels, outChannels, tembChannels: options.tembChannels, eps: options.resnetEps ?? 1e-6,
    groups: groups ?? options.resnetGroups ?? 32, dropout: options.dropout ?? 0,
    timeEmbeddingNorm: options.resnetTimeScaleShift ?? "default", nonLinearity: options.resnetActFn ?? "swish",
    outputScaleFactor: options.outputScaleFactor ?? 1, ...parameterOptions(options),
  });
}

function transformer(options: CrossAttentionBlockOptions, channels: number, layers: number, groups: number): Transformer2DModel {
  const heads = options.numAttentionHeads ?? 1;
  return new Transformer2DModel({
    numAttentionHeads: heads, attentionHeadDim: Math.floor(channels / heads), inChannels: channels, numLayers: layers,
    crossAttentionDim: options.crossAttentionDim ?? 1280, normNumGroups: groups,
    useLinearProjection: options.useLinearProjection ?? false, onlyCrossAttention: options.onlyCrossAttention ?? false,
    upcastAttention: options.upcastAttention ?? false, attentionType: options.attentionType ?? "default",
    ...parameterOptions(options),
  });
}

function layersPerLayer(value: number | number[] | undefined, numLayers: number, name: string): number[] {
  const list = typeof value === "number" || value === undefined ? Array<number>(numLayers).fill(value ?? 1) : value;
  if (list.length !== numLayers) throw new Error(`${name}: transformer_layers_per_block has ${list.length} entries for ${numLayers} layers`);
  return list;
}

/** Replaces `current` by `next`, disposing `current` unless it is `keepAlive`. */
function advance(current: Tensor, next: Tensor, keepAlive?: Tensor): Tensor {
  if (current !== keepAlive) current.dispose();
  return next;
}

/** Resnets, each followed by a Transformer2DModel, then an optional stride-2 downsampler. */
export class CrossAttnDownBlock2D extends Module {
  readonly hasCrossAttention = true;
  readonly attentions: ModuleList<Transformer2DModel>;
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;

  constructor(options: CrossAttnDownBlockOptions) {
    super();
    checkCommon("CrossAttnDownBlock2D", options);
    const { inChannels, outChannels, numLayers = 1, addDownsample = true, downsamplePadding = 1 } = options;
    const transformerLayers = layersPerLayer(options.transformerLayersPerBlock, numLayers, "CrossAttnDownBlock2D");
    const groups = options.resnetGroups ?? 32;
    const resnets: ResnetBlock2D[] = [];
    const attentions: Transformer2DModel[] = [];
    for (let i = 0; i < numLayers; i++) {
      resnets.push(resnet(options, i === 0 ? inChannels : outChannels, outChannels));
      attentions.push(transformer(options, outChannels, transformerLayers[i]!, groups));
    }
    this.attentions = this.registerModule("attentions", new ModuleList(attentions));
    this.resnets = this.registerModule("resnets", new ModuleList(resnets));
    this.downsamplers = addDownsample
      ? this.registerModule("downsamplers", new ModuleList([new Downsample2D(outChannels, { useConv: true, outChannels, padding: downsamplePadding, ...parameterOptions(options) })]))
      : null;
  }

  forward(hiddenStates: Tensor, temb: Tensor, conditioning: TransformerConditioning = {}): DownBlockOutput {
    const resSamples: Tensor[] = [];
    let hidden = hiddenStates;
    for (let i = 0; i < this.resnets.length; i++) {
      using afterResnet = this.resnets.at(i).forward(hidden, temb);
      hidden = this.attentions.at(i).forward(afterResnet, conditioning);
      resSamples.push(hidden);
    }
    for (const downsampler of this.downsamplers ?? []) {
      hidden = downsampler.forward(hidden);
      resSamples.push(hidden);
    }
    return { hiddenStates: hidden, resSamples };
  }
}

/** Resnets, then an optional stride-2 downsampler (no attention). */
export class DownBlock2D extends Module {
  readonly hasCrossAttention = false;
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;

  constructor(options: DownBlockOptions) {
    super();
    checkCommon("DownBlock2D", options);
    const { inChannels, outChannels, numLayers = 1, addDownsample = true, downsamplePadding = 1 } = options;
    const resnets = Array.from({ length: numLayers }, (_, i) => resnet(options, i === 0 ? inChannels : outChannels, outChannels));
    this.resnets = this.registerModule("resnets", new ModuleList(resnets));
    this.downsamplers = addDownsample
      ? this.registerModule("downsamplers", new ModuleList([new Downsample2D(outChannels, { useConv: true, outChannels, padding: downsamplePadding, ...parameterOptions(options) })]))
      : null;
  }

  /** The conditioning is ignored (no attention); the argument keeps the down blocks interchangeable. */
  forward(hiddenStates: Tensor, temb: Tensor, _conditioning: TransformerConditioning = {}): DownBlockOutput {
    const resSamples: Tensor[] = [];
    let hidden = hiddenStates;
    for (const block of this.resnets) {
      hidden = block.forward(hidden, temb);
      resSamples.push(hidden);
    }
    for (const downsampler of this.downsamplers ?? []) {
      hidden = downsampler.forward(hidden);
      resSamples.push(hidden);
    }
    return { hiddenStates: hidden, resSamples };
  }
}

/** The bottleneck: a resnet, then (attention, resnet) pairs, at constant resolution. */
export class UNetMidBlock2DCrossAttn extends Module {
  readonly hasCrossAttention = true;
  readonly attentions: ModuleList<Transformer2DModel>;
  readonly resnets: ModuleList<ResnetBlock2D>;

  constructor(options: MidBlockOptions) {
    super();
    checkCommon("UNetMidBlock2DCrossAttn", options);
    const { inChannels, numLayers = 1 } = options;
    const outChannels = options.outChannels ?? inChannels;
    const groups = options.resnetGroups ?? Math.min(Math.floor(inChannels / 4), 32);
    const groupsOut = options.resnetGroupsOut ?? groups;
    const transformerLayers = layersPerLayer(options.transformerLayersPerBlock, numLayers, "UNetMidBlock2DCrossAttn");
    const resnets: ResnetBlock2D[] = [resnetWithGroups(options, inChannels, outChannels, groups, groupsOut)];
    const attentions: Transformer2DModel[] = [];
    for (let i = 0; i < numLayers; i++) {
      attentions.push(transformer({ ...options, onlyCrossAttention: false }, outChannels, transformerLayers[i]!, groupsOut));
      resnets.push(resnet(options, outChannels, outChannels, groupsOut));
    }
    this.attentions = this.registerModule("attentions", new ModuleList(attentions));
    this.resnets = this.registerModule("resnets", new ModuleList(resnets));
  }

  forward(hiddenStates: Tensor, temb: Tensor, conditioning: TransformerConditioning = {}): Tensor {
    let hidden = this.resnets.at(0).forward(hiddenStates, temb);
    for (let i = 0; i < this.attentions.length; i++) {
      hidden = advance(hidden, this.attentions.at(i).forward(hidden, conditioning));
      hidden = advance(hidden, this.resnets.at(i + 1).forward(hidden, temb));
    }
    return hidden;
  }
}

function resnetWithGroups(options: UNetBlockOptions, inChannels: number, outChannels: number, groups: number, groupsOut: number): ResnetBlock2D {
  return new ResnetBlock2D({
    inChannels, outChannels, tembChannels: options.tembChannels, eps: options.resnetEps ?? 1e-6, groups, groupsOut,
    dropout: options.dropout ?? 0, timeEmbeddingNorm: options.resnetTimeScaleShift ?? "default",
    nonLinearity: options.resnetActFn ?? "swish", outputScaleFactor: options.outputScaleFactor ?? 1,
    ...parameterOptions(options),
  });
}

/** Channels of each resnet of an up block: its own input plus the skip connection it consumes. */
function upResnetChannels(options: UpBlockOptions, i: number, numLayers: number): number {
  const resSkipChannels = i === numLayers - 1 ? options.inChannels : options.outChannels;
  const resnetInChannels = i === 0 ? options.prevOutputChannel : options.outChannels;
  return resnetInChannels + resSkipChannels;
}

/** Takes the last skip connection off `skips` and concatenates it to `hidden` along the channels. */
function concatSkip(hidden: Tensor, skips: Tensor[]): Tensor {
  const skip = skips.pop();
  if (skip === undefined) throw new Error("up block: ran out of skip connections (res_hidden_states)");
  return cat([hidden, skip], 1);
}

function checkSkips(name: string, resHiddenStates: readonly Tensor[], resnets: number): void {
  if (resHiddenStates.length !== resnets) {
    throw new Error(`${name}: got ${resHiddenStates.length} skip connections for ${resnets} resnets`);
  }
}

/** Resnets over (hidden ⊕ skip connection), each followed by a Transformer2DModel, then an optional upsampler. */
export class CrossAttnUpBlock2D extends Module {
  readonly hasCrossAttention = true;
  readonly attentions: ModuleList<Transformer2DModel>;
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | null;
  readonly resolutionIdx: number | null;

  constructor(options: CrossAttnUpBlockOptions) {
    super();
    checkCommon("CrossAttnUpBlock2D", options);
    const { outChannels, numLayers = 1, addUpsample = true } = options;
    const transformerLayers = layersPerLayer(options.transformerLayersPerBlock, numLayers, "CrossAttnUpBlock2D");
    const groups = options.resnetGroups ?? 32;
    const resnets: ResnetBlock2D[] = [];
    const attentions: Transformer2DModel[] = [];
    for (let i = 0; i < numLayers; i++) {
      resnets.push(resnet(options, upResnetChannels(options, i, numLayers), outChannels));
      attentions.push(transformer(options, outChannels, transformerLayers[i]!, groups));
    }
    this.attentions = this.registerModule("attentions", new ModuleList(attentions));
    this.resnets = this.registerModule("resnets", new ModuleList(resnets));
    this.upsamplers = addUpsample ? this.registerModule("upsamplers", new ModuleList([new Upsample2D(outChannels, { useConv: true, outChannels, ...parameterOptions(options) })])) : null;
    this.resolutionIdx = options.resolutionIdx ?? null;
  }

  /** resHiddenStates: this block's skip connections, shallowest first (they are consumed from the end). */
  forward(
    hiddenStates: Tensor, resHiddenStates: readonly Tensor[], temb: Tensor, conditioning: TransformerConditioning = {},
    upsampleSize: [number, number] | null = null,
  ): Tensor {
    checkSkips("CrossAttnUpBlock2D", resHiddenStates, this.resnets.length);
    const skips = [...resHiddenStates];
    let hidden = hiddenStates;
    for (let i = 0; i < this.resnets.length; i++) {
      using joined = concatSkip(hidden, skips);
      using afterResnet = this.resnets.at(i).forward(joined, temb);
      hidden = advance(hidden, this.attentions.at(i).forward(afterResnet, conditioning), hiddenStates);
    }
    for (const upsampler of this.upsamplers ?? []) hidden = advance(hidden, upsampler.forward(hidden, upsampleSize), hiddenStates);
    return hidden === hiddenStates ? hidden.alias() : hidden;
  }
}

/** Resnets over (hidden ⊕ skip connection), then an optional upsampler (no attention). */
export class UpBlock2D extends Module {
  readonly hasCrossAttention = false;
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | null;
  readonly resolutionIdx: number | null;

  constructor(options: UpBlockOptions) {
    super();
    checkCommon("UpBlock2D", options);
    const { outChannels, numLayers = 1, addUpsample = true } = options;
    const resnets = Array.from({ length: numLayers }, (_, i) => resnet(options, upResnetChannels(options, i, numLayers), outChannels));
    this.resnets = this.registerModule("resnets", new ModuleList(resnets));
    this.upsamplers = addUpsample ? this.registerModule("upsamplers", new ModuleList([new Upsample2D(outChannels, { useConv: true, outChannels, ...parameterOptions(options) })])) : null;
    this.resolutionIdx = options.resolutionIdx ?? null;
  }

  /** The conditioning is ignored (no attention); the argument keeps the up blocks interchangeable. */
  forward(
    hiddenStates: Tensor, resHiddenStates: readonly Tensor[], temb: Tensor, _conditioning: TransformerConditioning = {},
    upsampleSize: [number, number] | null = null,
  ): Tensor {
    checkSkips("UpBlock2D", resHiddenStates, this.resnets.length);
    const skips = [...resHiddenStates];
    let hidden = hiddenStates;
    for (const block of this.resnets) {
      using joined = concatSkip(hidden, skips);
      hidden = advance(hidden, block.forward(joined, temb), hiddenStates);
    }
    for (const upsampler of this.upsamplers ?? []) hidden = advance(hidden, upsampler.forward(hidden, upsampleSize), hiddenStates);
    return hidden === hiddenStates ? hidden.alias() : hidden;
  }
}

export type UNetDownBlock = CrossAttnDownBlock2D | DownBlock2D;
export type UNetUpBlock = CrossAttnUpBlock2D | UpBlock2D;
