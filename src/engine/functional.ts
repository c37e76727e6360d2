/**
 * Free functions over tensors: joining, attention, convolution, normalisation, resampling and losses
 * (torch.* and torch.nn.functional.*). Each is one ATen operator (or a documented composition), so values
 * and gradients are PyTorch's.
 */
import { op } from "./dispatch.js";
import { call, callMany, Tensor, type TensorOrScalar } from "./tensor.js";

const ops = {
  cat: op("aten::cat"),
  stack: op("aten::stack"),
  where: op("aten::where.self"),
  whereScalarSelf: op("aten::where.ScalarSelf"),
  whereScalarOther: op("aten::where.ScalarOther"),
  whereScalar: op("aten::where.Scalar"),
  einsum: op("aten::einsum"),
  mm: op("aten::mm"),
  linalgSolve: op("aten::linalg_solve"),
  bmm: op("aten::bmm"),
  baddbmm: op("aten::baddbmm"),
  linear: op("aten::linear"),
  conv2d: op("aten::conv2d"),
  conv2dPadding: op("aten::conv2d.padding"),
  convTranspose2d: op("aten::conv_transpose2d.input"),
  groupNorm: op("aten::group_norm"),
  layerNorm: op("aten::layer_norm"),
  sdpa: op("aten::scaled_dot_product_attention"),
  nearest: op("aten::upsample_nearest2d.vec"),
  bilinear: op("aten::upsample_bilinear2d.vec"),
  bicubic: op("aten::upsample_bicubic2d.vec"),
  pad: op("aten::pad"),
  dropout: op("aten::dropout"),
  embedding: op("aten::embedding"),
  crossEntropy: op("aten::cross_entropy_loss"),
  mseLoss: op("aten::mse_loss"),
};

export type Reduction = "none" | "mean" | "sum";
const reductionCode: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  return call(ops.cat, tensors, dim);
}
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  return call(ops.stack, tensors, dim);
}
/** Elementwise choice: x where condition is true, else y. */
export function where(condition: Tensor, x: TensorOrScalar, y: TensorOrScalar): Tensor {
  if (x instanceof Tensor && y instanceof Tensor) return call(ops.where, condition, x, y);
  if (x instanceof Tensor) return call(ops.whereScalarOther, condition, x, y as number);
  if (y instanceof Tensor) return call(ops.whereScalarSelf, condition, x, y);
  return call(ops.whereScalar, condition, x, y);
}
export function einsum(equation: string, ...tensors: Tensor[]): Tensor {
  return call(ops.einsum, equation, tensors);
}
export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}
/** X with A·X = B (torch.linalg.solve): A is (…, n, n) and invertible, B is (…, n, k) or (…, n). */
export function linalgSolve(a: Tensor, b: Tensor): Tensor {
  return call(ops.linalgSolve, a, b);
}
export function mm(a: Tensor, b: Tensor): Tensor {
  return call(ops.mm, a, b);
}
export function bmm(a: Tensor, b: Tensor): Tensor {
  return call(ops.bmm, a, b);
}
/** beta * input + alpha * (batch1 @ batch2) */
export function baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, beta = 1, alpha = 1): Tensor {
  return call(ops.baddbmm, input, batch1, batch2, beta, alpha);
}
/** x @ weightᵀ + bias, with weight in PyTorch's (out, in) layout. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return call(ops.linear, x, weight, bias ?? null);
}

export interface Conv2dOptions {
  stride?: number | [number, number];
  /** Zero padding per side, or "same" / "valid" as in torch.nn.functional.conv2d. */
  padding?: number | [number, number] | "same" | "valid";
  dilation?: number | [number, number];
  groups?: number;
}
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: Conv2dOptions = {}): Tensor {
  const { stride = 1, padding = 0, dilation = 1, groups = 1 } = options;
  if (typeof padding === "string") return call(ops.conv2dPadding, x, weight, bias ?? null, stride, padding, dilation, groups);
  return call(ops.conv2d, x, weight, bias ?? null, stride, padding, dilation, groups);
}

export interface ConvTranspose2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  outputPadding?: number | [number, number];
  groups?: number;
  dilation?: number | [number, number];
}
/** Transposed convolution; weight layout (in, out/groups, kh, kw) as in PyTorch. */
export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: ConvTranspose2dOptions = {}): Tensor {
  const { stride = 1, padding = 0, outputPadding = 0, groups = 1, dilation = 1 } = options;
  return call(ops.convTranspose2d, x, weight, bias ?? null, stride, padding, outputPadding, groups, dilation);
}

export function groupNorm(x: Tensor, numGroups: number, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return call(ops.groupNorm, x, numGroups, weight ?? null, bias ?? null, eps);
}
export function layerNorm(x: Tensor, normalizedShape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return call(ops.layerNorm, x, normalizedShape, weight ?? null, bias ?? null, eps);
}

export interface AttentionOptions {
  /** Boolean mask (true = attend) or additive float mask, broadcastable to (..., L, S). */
  attnMask?: Tensor | null;
  dropoutP?: number;
  isCausal?: boolean;
  /** Defaults to 1/sqrt(head dim). */
  scale?: number | null;
}
/**
 * softmax(q kᵀ · scale + mask) v over the last two dims. Uses libtorch's fused kernel; builds without
 * it get the same mathematics composed from matmul and softmax (slower, more memory).
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const { attnMask = null, dropoutP = 0, isCausal = false, scale = null } = options;
  if (ops.sdpa.exists()) return call(ops.sdpa, q, k, v, attnMask, dropoutP, isCausal, scale);
  return attentionByMath(q, k, v, attnMask, dropoutP, isCausal, scale);
}

/** The reference composition of attention (also what PyTorch's math backend computes). */
export function attentionByMath(
  q: Tensor, k: Tensor, v: Tensor, attnMask: Tensor | null, dropoutP: number, isCausal: boolean, scale: number | null,
): Tensor {
  const headDim = q.size(-1);
  const factor = scale ?? 1 / Math.sqrt(headDim);
  using kT = k.mT();
  using raw = q.matmul(kT);
  let scores = raw.mul(factor);
  const L = q.size(-2);
  const S = k.size(-2);
  const applyMask = (mask: Tensor): void => {
    const next = mask.dtype === "bool" ? scores.maskedFill(mask.logicalNot(), -Infinity) : scores.add(mask);
    scores.dispose();
    scores = next;
  };
  if (isCausal) {
    using ones = call(op("aten::ones"), [L, S], 11, null, q.device);
    using causal = call(op("aten::tril"), ones);
    applyMask(causal);
  }
  if (attnMask) applyMask(attnMask);
  let weights = scores.softmax(-1);
  scores.dispose();
  if (dropoutP > 0) {
    const dropped = dropout(weights, dropoutP, true);
    weights.dispose();
    weights = dropped;
  }
  const out = weights.matmul(v);
  weights.dispose();
  return out;
}

export interface InterpolateOptions {
  size?: [number, number];
  scaleFactor?: number | [number, number];
  mode?: "nearest" | "bilinear" | "bicubic";
  alignCorners?: boolean;
}
/** Resamples (N, C, H, W) images, as torch.nn.functional.interpolate. */
export function interpolate(x: Tensor, options: InterpolateOptions): Tensor {
  const { size, scaleFactor, mode = "nearest", alignCorners = false } = options;
  if ((size === undefined) === (scaleFactor === undefined)) throw new Error("interpolate: give exactly one of size or scaleFactor");
  if (x.ndim !== 4) throw new Error(`interpolate: expected a 4-D (N, C, H, W) tensor, got shape [${x.shape.join(", ")}]`);
  const scales = scaleFactor === undefined ? null : typeof scaleFactor === "number" ? [scaleFactor, scaleFactor] : scaleFactor;
  const outSize = size ?? null;
  switch (mode) {
    case "nearest": return call(ops.nearest, x, outSize, scales);
    case "bilinear": return call(ops.bilinear, x, outSize, alignCorners, scales);
    case "bicubic": return call(ops.bicubic, x, outSize, alignCorners, scales);
    default: throw new Error(`interpolate: unknown mode '${String(mode)}'`);
  }
}

/** Pads the last dims: pads = [left, right, top, bottom, ...] as in torch.nn.functional.pad. */
export function pad(x: Tensor, pads: number[], mode: "constant" | "reflect" | "replicate" | "circular" = "constant", value = 0): Tensor {
  return call(ops.pad, x, pads, mode, mode === "constant" ? value : null);
}
export function dropout(x: Tensor, p: number, train: boolean): Tensor {
  if (p < 0 || p > 1) throw new RangeError(`dropout probability must be in [0, 1], got ${p}`);
  return call(ops.dropout, x, p, train);
}
/** Rows of weight picked by integer indices. */
export function embedding(weight: Tensor, indices: Tensor): Tensor {
  return call(ops.embedding, weight, indices);
}
export function crossEntropy(
  logits: Tensor, target: Tensor, options: { reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number; weight?: Tensor } = {},
): Tensor {
  return call(ops.crossEntropy, logits, target, options.weight ?? null, reductionCode[options.reduction ?? "mean"], options.ignoreIndex ?? -100, options.labelSmoothing ?? 0);
}
export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = "mean"): Tensor {
  return call(ops.mseLoss, input, target, reductionCode[reduction]);
}
export function softmax(x: Tensor, dim: number): Tensor {
  return x.softmax(dim);
}
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return x.logSoftmax(dim);
}
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  return x.gelu(approximate);
}
export function silu(x: Tensor): Tensor {
  return x.silu();
}
/** Splits along dim into tensors of the given sizes. */
export function splitSizes(x: Tensor, sizes: number[], dim = 0): Tensor[] {
  return callMany(op("aten::split_with_sizes"), x, sizes, dim);
}
/** Mean over kernel windows of (N, C, H, W) images, as torch.nn.functional.avg_pool2d (stride defaults to the kernel). */
export function avgPool2d(x: Tensor, kernelSize: number | [number, number], stride?: number | [number, number], padding: number | [number, number] = 0): Tensor {
  return call(op("aten::avg_pool2d"), x, kernelSize, stride ?? kernelSize, padding, false, true, null);
}
