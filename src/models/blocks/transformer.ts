/**
 * The UNet's spatial transformer: diffusers' GEGLU (models/activations.py), FeedForward and
 * BasicTransformerBlock (models/attention.py) and Transformer2DModel for continuous (B, C, H, W) inputs
 * (models/transformers/transformer_2d.py), with diffusers' registered names:
 *
 *     Transformer2DModel:    norm → proj_in → transformer_blocks.* → proj_out, + residual
 *     BasicTransformerBlock: x += attn1(norm1(x));  x += attn2(norm2(x), context);  x += ff(norm3(x))
 *     FeedForward:           net.0 (GEGLU: proj, x · gelu(gate)) → net.1 (Dropout) → net.2 (Linear)
 *
 * Only the "layer_norm" norm type and the "default" attention type are ported (what Stable Diffusion
 * 1.x/2.x use); the ada-norm variants, gated (GLIGEN) attention, positional embeddings, and the vectorized
 * and patched inputs of Transformer2DModel give a clear error instead.
 */
import type { Tensor } from "../../engine/index.js";
import { Conv2d, Dropout, GroupNorm, LayerNorm, Linear, Module, ModuleList, type UnaryModule } from "../../engine/nn/index.js";
import { Attention } from "./attention.js";
import { parameterOptions, type ParameterOptions } from "./options.js";

/** Gated GELU: proj to 2·dimOut, split into (x, gate), return x · gelu(gate). */
export class GEGLU extends Module {
  readonly proj: Linear;

  constructor(dimIn: number, dimOut: number, options: { bias?: boolean } & ParameterOptions = {}) {
    super();
    this.proj = this.registerModule("proj", new Linear(dimIn, dimOut * 2, { bias: options.bias ?? true, ...parameterOptions(options) }));
  }

  forward(hiddenStates: Tensor): Tensor {
    using projected = this.proj.forward(hiddenStates);
    const [values, gate] = projected.chunk(2, -1) as [Tensor, Tensor];
    using gelu = gate.gelu();
    const out = values.mul(gelu);
    values.dispose();
    gate.dispose();
    return out;
  }
}

/** diffusers' GELU activation module: proj, then gelu (exact, or the tanh approximation). */
export class GELUProjection extends Module {
  readonly proj: Linear;

  constructor(dimIn: number, dimOut: number, readonly approximate: "none" | "tanh" = "none", options: { bias?: boolean } & ParameterOptions = {}) {
    super();
    this.proj = this.registerModule("proj", new Linear(dimIn, dimOut, { bias: options.bias ?? true, ...parameterOptions(options) }));
  }

  forward(hiddenStates: Tensor): Tensor {
    using projected = this.proj.forward(hiddenStates);
    return projected.gelu(this.approximate);
  }
}

export interface FeedForwardOptions extends ParameterOptions {
  dim: number;
  /** Defaults to dim. */
  dimOut?: number | null;
  /** Hidden width = dim · mult unless innerDim is given (default 4). */
  mult?: number;
  dropout?: number;
  /** "geglu" (default), "gelu" or "gelu-approximate". */
  activationFn?: string;
  /** A second dropout after the output layer (default false). */
  finalDropout?: boolean;
  innerDim?: number | null;
  bias?: boolean;
}

/** The transformer MLP, registered as net.0 (activation projection), net.1 (Dropout), net.2 (Linear). */
export class FeedForward extends Module {
  readonly net: ModuleList<UnaryModule>;

  constructor(options: FeedForwardOptions) {
    super();
    const { dim, mult = 4, dropout = 0, activationFn = "geglu", finalDropout = false, bias = true } = options;
    const innerDim = options.innerDim ?? Math.trunc(dim * mult);
    const dimOut = options.dimOut ?? dim;
    const where = parameterOptions(options);
    let activation: UnaryModule;
    if (activationFn === "geglu") activation = new GEGLU(dim, innerDim, { bias, ...where });
    else if (activationFn === "gelu") activation = new GELUProjection(dim, innerDim, "none", { bias, ...where });
    else if (activationFn === "gelu-approximate") activation = new GELUProjection(dim, innerDim, "tanh", { bias, ...where });
    else throw new Error(`FeedForward: unsupported activation_fn '${activationFn}' (supported: geglu, gelu, gelu-approximate)`);
    const layers: UnaryModule[] = [activation, new Dropout(dropout), new Linear(innerDim, dimOut, { bias, ...where })];
    if (finalDropout) layers.push(new Dropout(dropout));
    this.net = this.registerModule("net", new ModuleList(layers));
  }

  forward(hiddenStates: Tensor): Tensor {
    let hidden = hiddenStates;
    for (const layer of this.net) {
      const next = layer.forward(hidden);
      if (hidden !== hiddenStates) hidden.dispose();
      hidden = next;
    }
    return hidden;
  }
}

export interface BasicTransformerBlockOptions extends ParameterOptions {
  dim: number;
  numAttentionHeads: number;
  attentionHeadDim: number;
  dropout?: number;
  /** Channels of the encoder hidden states; null gives a block without cross-attention (attn2). */
  crossAttentionDim?: number | null;
  activationFn?: string;
  attentionBias?: boolean;
  /** attn1 attends to the encoder hidden states instead of to itself. */
  onlyCrossAttention?: boolean;
  /** attn2 is a second self-attention. */
  doubleSelfAttention?: boolean;
  upcastAttention?: boolean;
  normElementwiseAffine?: boolean;
  /** Only "layer_norm". */
  normType?: string;
  normEps?: number;
  finalDropout?: boolean;
  /** Only "default". */
  attentionType?: string;
  /** Only null. */
  positionalEmbeddings?: string | null;
  /** Only null (ada-norm blocks are not ported). */
  numEmbedsAdaNorm?: number | null;
  ffInnerDim?: number | null;
  ffBias?: boolean;
  attentionOutBias?: boolean;
}

/** Masks and context shared by every transformer block of a forward pass. */
export interface TransformerConditioning {
  /** (B, S_context, crossAttentionDim) text embeddings; null makes attn2 a self-attention. */
  encoderHiddenStates?: Tensor | null;
  /** Self-attention mask or bias over the block's own tokens. */
  attentionMask?: Tensor | null;
  /** Cross-attention mask or bias over the encoder tokens. */
  encoderAttentionMask?: Tensor | null;
}

/** Pre-LayerNorm transformer block: self-attention, cross-attention, GEGLU feed-forward, each residual. */
export class BasicTransformerBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn1: Attention;
  readonly norm2: LayerNorm | null;
  readonly attn2: Attention | null;
  readonly norm3: LayerNorm;
  readonly ff: FeedForward;
  readonly onlyCrossAttention: boolean;

  constructor(options: BasicTransformerBlockOptions) {
    super();
    const {
      dim, numAttentionHeads, attentionHeadDim, dropout = 0, crossAttentionDim = null, activationFn = "geglu",
      attentionBias = false, onlyCrossAttention = false, doubleSelfAttention = false, upcastAttention = false,
      normElementwiseAffine = true, normType = "layer_norm", normEps = 1e-5, finalDropout = false,
      attentionType = "default", positionalEmbeddings = null, numEmbedsAdaNorm = null, ffInnerDim = null,
      ffBias = true, attentionOutBias = true,
    } = options;
    if (normType !== "layer_norm") throw new Error(`BasicTransformerBlock: unsupported norm_type '${normType}' (only "layer_norm")`);
    if (numEmbedsAdaNorm !== null) throw new Error(`BasicTransformerBlock: num_embeds_ada_norm ${numEmbedsAdaNorm} is not supported (ada-norm blocks are not ported)`);
    if (attentionType !== "default") throw new Error(`BasicTransformerBlock: unsupported attention_type '${attentionType}' (only "default")`);
    if (positionalEmbeddings !== null) throw new Error(`BasicTransformerBlock: unsupported positional_embeddings '${positionalEmbeddings}' (only null)`);
    this.onlyCrossAttention = onlyCrossAttention;
    const where = parameterOptions(options);
    const layerNorm = (): LayerNorm => new LayerNorm(dim, { eps: normEps, elementwiseAffine: normElementwiseAffine, ...where });
    const attention = (context: number | null): Attention => new Attention({
      queryDim: dim, crossAttentionDim: context, heads: numAttentionHeads, dimHead: attentionHeadDim, dropout,
      bias: attentionBias, upcastAttention, outBias: attentionOutBias, ...where,
    });

    this.norm1 = this.registerModule("norm1", layerNorm());
    this.attn1 = this.registerModule("attn1", attention(onlyCrossAttention ? crossAttentionDim : null));
    if (crossAttentionDim !== null || doubleSelfAttention) {
      this.norm2 = this.registerModule("norm2", layerNorm());
      this.attn2 = this.registerModule("attn2", attention(doubleSelfAttention ? null : crossAttentionDim));
    } else {
      this.norm2 = null;
      this.attn2 = null;
    }
    this.norm3 = this.registerModule("norm3", layerNorm());
    this.ff = this.registerModule("ff", new FeedForward({ dim, dropout, activationFn, finalDropout, innerDim: ffInnerDim, bias: ffBias, ...where }));
  }

  /** (B, N, dim) tokens → (B, N, dim). */
  forward(hiddenStates: Tensor, conditioning: TransformerConditioning = {}): Tensor {
    const { encoderHiddenStates = null, attentionMask = null, encoderAttentionMask = null } = conditioning;
    let hidden = hiddenStates;
    const addResidual = (update: Tensor): void => {
      const next = update.add(hidden);
      update.dispose();
      if (hidden !== hiddenStates) hidden.dispose();
      hidden = next;
    };

    using normed1 = this.norm1.forward(hidden);
    addResidual(this.attn1.forward(normed1, this.onlyCrossAttention ? encoderHiddenStates : null, attentionMask));

    if (this.attn2 !== null && this.norm2 !== null) {
      using normed2 = this.norm2.forward(hidden);
      addResidual(this.attn2.forward(normed2, encoderHiddenStates, encoderAttentionMask));
    }

    using normed3 = this.norm3.forward(hidden);
    addResidual(this.ff.forward(normed3));
    return hidden;
  }
}

export interface Transformer2DModelOptions extends ParameterOptions {
  /** Default 16. */
  numAttentionHeads?: number;
  /** Channels per head (default 88). */
  attentionHeadDim?: number;
  /** Channels of the (B, C, H, W) input; required (only continuous inputs are ported). */
  inChannels: number;
  /** Defaults to inChannels. */
  outChannels?: number | null;
  /** Transformer blocks (default 1). */
  numLayers?: number;
  dropout?: number;
  /** Groups of the input GroupNorm (default 32). */
  normNumGroups?: number;
  crossAttentionDim?: number | null;
  attentionBias?: boolean;
  activationFn?: string;
  /** Linear proj_in/proj_out on tokens (SD2.x) instead of 1×1 convolutions on feature maps (SD1.x). */
  useLinearProjection?: boolean;
  onlyCrossAttention?: boolean;
  doubleSelfAttention?: boolean;
  upcastAttention?: boolean;
  normType?: string;
  normElementwiseAffine?: boolean;
  normEps?: number;
  attentionType?: string;
  /** Unused for continuous inputs (accepted because configs carry it). */
  sampleSize?: number | null;
  /** Only null: vectorized (discrete) inputs are not ported. */
  numVectorEmbeds?: number | null;
  /** Only null: patched inputs are not ported. */
  patchSize?: number | null;
  numEmbedsAdaNorm?: number | null;
}

/** A transformer over the pixels of a feature map, conditioned on encoder states, with a residual. */
export class Transformer2DModel extends Module {
  readonly norm: GroupNorm;
  readonly projIn: Linear | Conv2d;
  readonly transformerBlocks: ModuleList<BasicTransformerBlock>;
  readonly projOut: Linear | Conv2d;
  readonly useLinearProjection: boolean;
  readonly innerDim: number;
  readonly inChannels: number;
  readonly outChannels: number;

  constructor(options: Transformer2DModelOptions) {
    super();
    const {
      numAttentionHeads = 16, attentionHeadDim = 88, inChannels, numLayers = 1, dropout = 0, normNumGroups = 32,
      crossAttentionDim = null, attentionBias = false, activationFn = "geglu", useLinearProjection = false,
      onlyCrossAttention = false, doubleSelfAttention = false, upcastAttention = false, normType = "layer_norm",
      normElementwiseAffine = true, normEps = 1e-5, attentionType = "default",
      numVectorEmbeds = null, patchSize = null, numEmbedsAdaNorm = null,
    } = options;
    if (inChannels === undefined || inChannels === null) throw new Error("Transformer2DModel: in_channels is required (only continuous inputs are ported)");
    if (numVectorEmbeds !== null) throw new Error(`Transformer2DModel: num_vector_embeds ${numVectorEmbeds} is not supported (discrete inputs are not ported)`);
    if (patchSize !== null) throw new Error(`Transformer2DModel: patch_size ${patchSize} is not supported (patched inputs are not ported)`);
    if (numEmbedsAdaNorm !== null) throw new Error(`Transformer2DModel: num_embeds_ada_norm ${numEmbedsAdaNorm} is not supported (ada-norm blocks are not ported)`);
    this.useLinearProjection = useLinearProjection;
    this.innerDim = numAttentionHeads * attentionHeadDim;
    this.inChannels = inChannels;
    this.outChannels = options.outChannels ?? inChannels;
    const where = parameterOptions(options);

    this.norm = this.registerModule("norm", new GroupNorm(normNumGroups, inChannels, { eps: 1e-6, ...where }));
    this.projIn = this.registerModule("proj_in", useLinearProjection
      ? new Linear(inChannels, this.innerDim, where)
      : new Conv2d(inChannels, this.innerDim, 1, { stride: 1, padding: 0, ...where }));
    this.transformerBlocks = this.registerModule("transformer_blocks", new ModuleList(Array.from({ length: numLayers }, () =>
      new BasicTransformerBlock({
        dim: this.innerDim, numAttentionHeads, attentionHeadDim, dropout, crossAttentionDim, activationFn,
        attentionBias, onlyCrossAttention, doubleSelfAttention, upcastAttention, normType, normElementwiseAffine, normEps,
        attentionType, ...where,
      }))));
    this.projOut = this.registerModule("proj_out", useLinearProjection
      ? new Linear(this.innerDim, this.outChannels, where)
      : new Conv2d(this.innerDim, this.outChannels, 1, { stride: 1, padding: 0, ...where }));
  }

  /**
   * (B, C, H, W) → (B, C_out, H, W). Masks given as (B, S) keep-masks (1 keep, 0 discard) are turned into
   * additive biases (B, 1, S) of 0 / −10000, as diffusers does; 3-D masks are used as they are.
   */
  forward(hiddenStates: Tensor, conditioning: TransformerConditioning = {}): Tensor {
    const [batch, , height, width] = hiddenStates.shape as [number, number, number, number];
    using attentionMask = maskToBias(conditioning.attentionMask ?? null, hiddenStates);
    using encoderAttentionMask = maskToBias(conditioning.encoderAttentionMask ?? null, hiddenStates);
    const blockConditioning: TransformerConditioning = {
      encoderHiddenStates: conditioning.encoderHiddenStates ?? null, attentionMask, encoderAttentionMask,
    };

    let hidden = this.#tokensIn(hiddenStates, batch, height, width);
    for (const block of this.transformerBlocks) {
      const next = block.forward(hidden, blockConditioning);
      hidden.dispose();
      hidden = next;
    }
    using projected = this.#tokensOut(hidden, batch, height, width);
    hidden.dispose();
    return projected.add(hiddenStates);
  }

  /** norm → proj_in → (B, H·W, inner): the conv before flattening, the linear layer after. */
  #tokensIn(hiddenStates: Tensor, batch: number, height: number, width: number): Tensor {
    using normed = this.norm.forward(hiddenStates);
    if (!this.useLinearProjection) {
      using projected = this.projIn.forward(normed);
      return toTokens(projected, batch, height, width);
    }
    using tokens = toTokens(normed, batch, height, width);
    return this.projIn.forward(tokens);
  }

  /** proj_out and back to (B, C, H, W): the linear layer before unflattening, the conv after. */
  #tokensOut(hidden: Tensor, batch: number, height: number, width: number): Tensor {
    if (!this.useLinearProjection) {
      using maps = toMaps(hidden, batch, height, width);
      return this.projOut.forward(maps);
    }
    using projected = this.projOut.forward(hidden);
    return toMaps(projected, batch, height, width);
  }
}

/** (B, C, H, W) → (B, H·W, C): permute(0, 2, 3, 1).reshape, as diffusers. */
function toTokens(x: Tensor, batch: number, height: number, width: number): Tensor {
  using permuted = x.permute(0, 2, 3, 1);
  return permuted.reshape(batch, height * width, x.size(1));
}

/** (B, H·W, C) → contiguous (B, C, H, W): reshape(B, H, W, C).permute(0, 3, 1, 2).contiguous(), as diffusers. */
function toMaps(x: Tensor, batch: number, height: number, width: number): Tensor {
  using unflattened = x.reshape(batch, height, width, x.size(-1));
  using permuted = unflattened.permute(0, 3, 1, 2);
  return permuted.contiguous();
}

/**
 * A (B, S) keep-mask (1 keep, 0 discard) as the additive (B, 1, S) bias diffusers uses:
 * (1 − mask) · −10000 in the activations' dtype. Other masks are returned as they are (a new handle).
 */
export function maskToBias(mask: Tensor | null, like: Tensor): Tensor | null {
  if (mask === null) return null;
  if (mask.ndim !== 2) return mask.alias();
  using converted = mask.to(like.dtype);
  using inverted = converted.rsub(1);
  using bias = inverted.mul(-10000.0);
  return bias.unsqueeze(1);
}
