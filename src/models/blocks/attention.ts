/**
 * Attention: diffusers' multi-head attention layer (models/attention_processor.py `Attention`) with the
 * computation of its default processor, AttnProcessor2_0, in the same order of operations:
 *
 *     [4-D input (B, C, H, W) → (B, H·W, C)]  [group_norm over channels]
 *     q = to_q(x);  k = to_k(context);  v = to_v(context)          context = encoder states, or x itself
 *     split heads → scaled dot-product attention (scale dim_head^-0.5, optional additive/boolean mask)
 *     merge heads → to_out.0 (Linear) → to_out.1 (Dropout)  [→ back to (B, C, H, W)]
 *     [+ residual]  / rescale_output_factor
 *
 * Used as self-attention (attn1) and cross-attention (attn2) in the UNet's transformer blocks, and as the
 * VAE's mid-block attention (group_norm, residual_connection, bias). Registered names are diffusers'
 * (group_norm, to_q, to_k, to_v, to_out.0, to_out.1).
 *
 * upcast_attention: AttnProcessor2_0 ignores this flag (its fused kernels accumulate in float32). Here, when
 * set and the activations are float16/bfloat16, q, k, v (and the mask) are cast to float32 for the attention
 * and the result is cast back, which keeps SD2.1-v stable in half precision. In float32 it changes nothing.
 *
 * Not ported (unused by Stable Diffusion 1.x/2.x): kv_heads, qk_norm, cross_attention_norm, added_kv_proj_dim,
 * spatial_norm, out_dim/context outputs, scale_qk=false, attention slicing.
 */
import { scaledDotProductAttention, type Tensor } from "../../engine/index.js";
import { Dropout, GroupNorm, Linear, Module, ModuleList } from "../../engine/nn/index.js";
import { parameterOptions, type ParameterOptions } from "./options.js";

export interface AttentionOptions extends ParameterOptions {
  /** Channels of the query input. */
  queryDim: number;
  /** Channels of the encoder hidden states (cross-attention); defaults to queryDim (self-attention). */
  crossAttentionDim?: number | null;
  /** Number of heads (default 8). */
  heads?: number;
  /** Channels per head (default 64). */
  dimHead?: number;
  /** Dropout after the output projection (default 0). */
  dropout?: number;
  /** Bias on to_q, to_k, to_v (default false). */
  bias?: boolean;
  /** Bias on to_out.0 (default true). */
  outBias?: boolean;
  /** Compute the attention in float32 for half-precision activations (see the file comment). */
  upcastAttention?: boolean;
  /** When set, a GroupNorm over the query channels is applied first (the VAE's attention). */
  normNumGroups?: number | null;
  /** Epsilon of that GroupNorm (default 1e-5). */
  eps?: number;
  /** Add the input to the output (default false). */
  residualConnection?: boolean;
  /** The output is divided by this (default 1). */
  rescaleOutputFactor?: number;
}

export class Attention extends Module {
  readonly groupNorm: GroupNorm | null;
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  /** [Linear(inner, query_dim), Dropout], registered as to_out.0 and to_out.1. */
  readonly toOut: ModuleList;
  readonly heads: number;
  readonly dimHead: number;
  readonly innerDim: number;
  readonly queryDim: number;
  readonly crossAttentionDim: number;
  readonly isCrossAttention: boolean;
  readonly upcastAttention: boolean;
  readonly residualConnection: boolean;
  readonly rescaleOutputFactor: number;
  /** dim_head^-0.5, the softmax temperature. */
  readonly scale: number;
  readonly #outProjection: Linear;
  readonly #outDropout: Dropout;

  constructor(options: AttentionOptions) {
    super();
    const {
      queryDim, heads = 8, dimHead = 64, dropout = 0, bias = false, outBias = true, upcastAttention = false,
      normNumGroups = null, eps = 1e-5, residualConnection = false, rescaleOutputFactor = 1,
    } = options;
    this.queryDim = queryDim;
    this.heads = heads;
    this.dimHead = dimHead;
    this.innerDim = dimHead * heads;
    this.isCrossAttention = options.crossAttentionDim !== undefined && options.crossAttentionDim !== null;
    this.crossAttentionDim = options.crossAttentionDim ?? queryDim;
    this.upcastAttention = upcastAttention;
    this.residualConnection = residualConnection;
    this.rescaleOutputFactor = rescaleOutputFactor;
    this.scale = dimHead ** -0.5;
    const where = parameterOptions(options);

    this.groupNorm = normNumGroups === null ? null : this.registerModule("group_norm", new GroupNorm(normNumGroups, queryDim, { eps, ...where }));
    this.toQ = this.registerModule("to_q", new Linear(queryDim, this.innerDim, { bias, ...where }));
    this.toK = this.registerModule("to_k", new Linear(this.crossAttentionDim, this.innerDim, { bias, ...where }));
    this.toV = this.registerModule("to_v", new Linear(this.crossAttentionDim, this.innerDim, { bias, ...where }));
    this.#outProjection = new Linear(this.innerDim, queryDim, { bias: outBias, ...where });
    this.#outDropout = new Dropout(dropout);
    this.toOut = this.registerModule("to_out", new ModuleList([this.#outProjection, this.#outDropout]));
  }

  /**
   * hiddenStates: (B, N, queryDim) tokens or (B, queryDim, H, W) feature maps (returned in the same layout).
   * encoderHiddenStates: (B, S, crossAttentionDim) for cross-attention; null attends to hiddenStates.
   * attentionMask: additive bias or boolean keep-mask over the keys, shaped (B, S), (B, 1 or N, S) or
   * (B·heads, 1 or N, S), as diffusers' prepare_attention_mask accepts.
   */
  forward(hiddenStates: Tensor, encoderHiddenStates: Tensor | null = null, attentionMask: Tensor | null = null): Tensor {
    const residual = hiddenStates;
    const inputNdim = hiddenStates.ndim;
    if (inputNdim !== 3 && inputNdim !== 4) throw new Error(`Attention: expected a 3-D or 4-D input, got shape [${hiddenStates.shape.join(", ")}]`);
    const [batch, channels, height, width] = hiddenStates.shape as [number, number, number, number];
    let tokens = inputNdim === 4 ? flattenSpatial(hiddenStates) : hiddenStates.alias();
    const context = encoderHiddenStates;
    const keyLength = (context ?? tokens).size(1);
    using mask = attentionMask === null ? null : this.prepareAttentionMask(attentionMask, keyLength, (context ?? tokens).size(0));

    if (this.groupNorm !== null) {
      using channelsFirst = tokens.transpose(1, 2);
      using normed = this.groupNorm.forward(channelsFirst);
      tokens.dispose();
      tokens = normed.transpose(1, 2);
    }

    using query = this.toQ.forward(tokens);
    using key = this.toK.forward(context ?? tokens);
    using value = this.toV.forward(context ?? tokens);
    tokens.dispose();

    const headDim = key.size(-1) / this.heads;
    const splitHeads = (t: Tensor): Tensor => {
      using viewed = t.view(batch, -1, this.heads, headDim);
      return viewed.transpose(1, 2);
    };
    using queryHeads = splitHeads(query);
    using keyHeads = splitHeads(key);
    using valueHeads = splitHeads(value);
    using attended = this.#attend(queryHeads, keyHeads, valueHeads, mask);

    using headsLast = attended.transpose(1, 2);
    using merged = headsLast.reshape(batch, -1, this.heads * headDim);
    using projected = this.#outProjection.forward(merged);
    let output = this.#outDropout.forward(projected);

    if (inputNdim === 4) {
      using transposed = output.transpose(-1, -2);
      output.dispose();
      output = transposed.reshape(batch, channels, height, width);
    }
    if (this.residualConnection) {
      const withResidual = output.add(residual);
      output.dispose();
      output = withResidual;
    }
    const rescaled = output.div(this.rescaleOutputFactor);
    output.dispose();
    return rescaled;
  }

  /** softmax(q kᵀ · scale + mask) v, in float32 when upcast_attention asks for it on half-precision inputs. */
  #attend(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | null): Tensor {
    const half = query.dtype === "float16" || query.dtype === "bfloat16";
    if (!(this.upcastAttention && half)) {
      using out = scaledDotProductAttention(query, key, value, { attnMask: mask, scale: this.scale });
      return out.to(query.dtype);
    }
    using q32 = query.float();
    using k32 = key.float();
    using v32 = value.float();
    using mask32 = mask !== null && mask.dtype !== "bool" ? mask.float() : null;
    using out = scaledDotProductAttention(q32, k32, v32, { attnMask: mask32 ?? mask, scale: this.scale });
    return out.to(query.dtype);
  }

  /**
   * diffusers' prepare_attention_mask followed by AttnProcessor2_0's view to (B, heads, L, S): a mask with B
   * rows is shared by all heads of its batch element, one with B·heads rows already has a row per head.
   * A mask whose last dim is not the key length is an error (diffusers pads it to a shape that then fails).
   */
  prepareAttentionMask(attentionMask: Tensor, keyLength: number, batch: number): Tensor {
    const shape = attentionMask.shape;
    if (shape[shape.length - 1] !== keyLength) {
      throw new Error(`Attention: the attention mask's last dim is ${shape[shape.length - 1]}, but there are ${keyLength} keys (mask shape [${shape.join(", ")}])`);
    }
    if (attentionMask.ndim !== 2 && attentionMask.ndim !== 3) {
      throw new Error(`Attention: expected a (B, S) or (B, L, S) attention mask, got shape [${shape.join(", ")}]`);
    }
    using rows = attentionMask.ndim === 2 ? attentionMask.unsqueeze(1) : attentionMask.alias();
    const queries = rows.size(1);
    if (rows.size(0) === batch * this.heads) return rows.view(batch, this.heads, queries, keyLength);
    if (rows.size(0) !== batch) {
      throw new Error(`Attention: the attention mask has ${rows.size(0)} rows, expected the batch size ${batch} or batch × heads ${batch * this.heads}`);
    }
    using perBatch = rows.unsqueeze(1);
    return perBatch.expand(batch, this.heads, queries, keyLength);
  }
}

/** (B, C, H, W) → (B, H·W, C), as AttnProcessor2_0 does (a view, then a transpose). */
function flattenSpatial(x: Tensor): Tensor {
  const [batch, channels, height, width] = x.shape as [number, number, number, number];
  using flat = x.view(batch, channels, height * width);
  return flat.transpose(1, 2);
}
