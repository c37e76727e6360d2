/**
 * TensorFlow's semantics of the few operations face-api's networks use that libtorch spells differently, on
 * the engine (images are (N, C, H, W) here, NHWC in TF.js):
 *  - "same" padding: TF pads ⌊total/2⌋ before and the rest after (so a stride-2 layer on an even size pads only
 *    bottom/right), where PyTorch pads symmetrically: the padding is made explicit, then a "valid" convolution;
 *  - weight layouts: convolution filters HWIO → OIHW, depthwise H×W×C×1 → C×1×H×W;
 *  - tf.image.resizeBilinear with alignCorners = halfPixelCenters = false (the legacy mapping src = dst · in/out,
 *    the lower neighbour ⌊src⌋, the upper min(⌈src⌉, in − 1), lerped as TF.js' CPU kernel does
 *    (tfjs-backend-cpu kernels/ResizeBilinear.ts): first along x on both rows, then along y, in float64);
 *  - face-api's padToSquare (ops/padToSquare.ts): zeros appended (and, centred, prepended) to the short side;
 *  - tf.maxPool with "same" padding: the padded cells never win (padded with −∞ here);
 *  - face-api's normalize (ops/normalize.ts) + ÷255, the mean RGB its networks subtract.
 * And what every ported network shares: FaceNetwork, the owner of the tensors it derives from its weights.
 */
import { arange, tensor } from "../../engine/creation.js";
import { avgPool2d, conv2d, pad, where } from "../../engine/functional.js";
import { tidy } from "../../engine/lifetime.js";
import { op } from "../../engine/dispatch.js";
import { call, type Tensor } from "../../engine/tensor.js";

/** TF's "same" padding of one dimension: [before, after]. */
export function samePadding(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** tf.conv2d / tf.depthwiseConv2d with an OIHW weight (groups = channels for depthwise): "same" or "valid". */
export function tfConv2d(x: Tensor, weight: Tensor, stride: number, padding: "same" | "valid", groups = 1): Tensor {
  const kh = weight.size(2);
  const kw = weight.size(3);
  if (padding === "valid") return conv2d(x, weight, null, { stride, groups });
  const [top, bottom] = samePadding(x.size(2), kh, stride);
  const [left, right] = samePadding(x.size(3), kw, stride);
  if (top === 0 && bottom === 0 && left === 0 && right === 0) return conv2d(x, weight, null, { stride, groups });
  using padded = pad(x, [left, right, top, bottom]);
  return conv2d(padded, weight, null, { stride, groups });
}

/** A TF.js HWIO filter as PyTorch's OIHW (contiguous). */
export function hwioToOihw(filter: Tensor): Tensor {
  using permuted = filter.permute(3, 2, 0, 1);
  return permuted.contiguous();
}

/** A TF.js depthwise H×W×C×1 filter as PyTorch's grouped C×1×H×W (contiguous). */
export function depthwiseToOihw(filter: Tensor): Tensor {
  using permuted = filter.permute(2, 3, 0, 1);
  return permuted.contiguous();
}

/** Adds a per-channel vector to (N, C, H, W). */
export function addChannels(x: Tensor, vector: Tensor): Tensor {
  using v = vector.reshape(1, -1, 1, 1);
  return x.add(v);
}

/** Multiplies (N, C, H, W) by a per-channel vector. */
export function mulChannels(x: Tensor, vector: Tensor): Tensor {
  using v = vector.reshape(1, -1, 1, 1);
  return x.mul(v);
}

/** Source rows/columns and fractions of the legacy bilinear mapping, as float64 tensors. */
function legacyAxis(inSize: number, outSize: number, device: Tensor["device"]): { lo: Tensor; hi: Tensor; frac: Tensor } {
  using dst = arange(0, outSize, 1, { dtype: "float64", device });
  using src = dst.mul(inSize / outSize);
  using loF = src.floor();
  using hiF = src.ceil().clamp(0, inSize - 1);
  return { lo: loF.long(), hi: hiF.long(), frac: src.sub(loF) };
}

/**
 * face-api's padToSquare on (N, C, H, W): the short side padded with zeros to the long one, at the end
 * (bottom/right), or centred: round(diff / 2) after and the rest before.
 */
export function padToSquare(x: Tensor, centred: boolean): Tensor {
  const [, , h, w] = x.shape as [number, number, number, number];
  if (h === w) return x.alias();
  const diff = Math.abs(h - w);
  const after = Math.round(diff * (centred ? 0.5 : 1));
  const before = centred ? diff - after : 0;
  return h > w ? pad(x, [before, after, 0, 0]) : pad(x, [0, 0, before, after]);
}

/**
 * face-api's NetInput.toBatchTensor for one image tensor: (H, W, 3) pixels 0..255 (any dtype) → (1, 3, size, size)
 * float32, padded to a square and resized with the legacy bilinear mapping when not already that size.
 *
 * The padded square of a large photo is never built (a 4032 × 3024 phone photo would make it 4032² float64s): the
 * legacy mapping's source rows and columns are computed in the square's coordinates, the ones that fall in the
 * padding read an appended zero row/column, and only the size × size gathered pixels are widened to float64 —
 * the same numbers the padded resize reads, so the same result.
 */
export function toBatchTensor(image: Tensor, size: number, centred: boolean): Tensor {
  if (image.ndim !== 3 || image.size(2) !== 3) throw new Error(`expected an (H, W, 3) image tensor, got [${image.shape.join(", ")}]`);
  const [h, w] = image.shape as [number, number, number];
  const side = Math.max(h, w);
  if (side === size) {
    using chw = image.permute(2, 0, 1);
    using floats = chw.to("float32");
    using batch = floats.unsqueeze(0);
    using square = padToSquare(batch, centred);
    return square.contiguous();
  }
  // padToSquare's offsets: round(diff / 2) after (or all of diff, not centred), the rest before.
  const diff = side - Math.min(h, w);
  const before = centred ? diff - Math.round(diff * 0.5) : 0;
  const rowOffset = h < w ? before : 0;
  const colOffset = w < h ? before : 0;
  const ys = legacyAxis(side, size, image.device);
  const xs = legacyAxis(side, size, image.device);
  const owned = [ys.lo, ys.hi, ys.frac, xs.lo, xs.hi, xs.frac];
  try {
    return tidy(() => {
      /** Square index → source index; the padding → n, the zero row/column appended below. */
      const source = (index: Tensor, offset: number, n: number): Tensor => {
        const shifted = index.sub(offset);
        return where(shifted.lt(0).logicalOr(shifted.ge(n)), n, shifted);
      };
      const padded = pad(image.permute(2, 0, 1), [0, 1, 0, 1]);
      const topRows = padded.indexSelect(1, source(ys.lo, rowOffset, h));
      const bottomRows = padded.indexSelect(1, source(ys.hi, rowOffset, h));
      const left = source(xs.lo, colOffset, w);
      const right = source(xs.hi, colOffset, w);
      const colFrac = xs.frac.reshape(1, 1, size);
      const rowFrac = ys.frac.reshape(1, size, 1);
      const horizontal = (rows: Tensor): Tensor => {
        const l = rows.indexSelect(2, left).to("float64");
        const r = rows.indexSelect(2, right).to("float64");
        return l.add(r.sub(l).mul(colFrac));
      };
      const top = horizontal(topRows);
      const bottom = horizontal(bottomRows);
      return top.add(bottom.sub(top).mul(rowFrac)).to("float32").unsqueeze(0).contiguous();
    });
  } finally {
    for (const t of owned) t.dispose();
  }
}

const maxPoolOp = op("aten::max_pool2d");

/** tf.maxPool(x, kernel, stride, "valid") on (N, C, H, W). */
export function maxPoolValid(x: Tensor, kernel: number, stride: number): Tensor {
  return call(maxPoolOp, x, [kernel, kernel], [stride, stride], [0, 0], [1, 1], false);
}

/** tf.avgPool(x, kernel, stride, "valid") on (N, C, H, W) (no padding, so every window counts all its cells). */
export function avgPoolValid(x: Tensor, kernel: number, stride: number): Tensor {
  return avgPool2d(x, kernel, stride, 0);
}

/** Subtracts a per-channel vector from (N, C, H, W). */
export function subChannels(x: Tensor, vector: Tensor): Tensor {
  using v = vector.reshape(1, -1, 1, 1);
  return x.sub(v);
}

/** tf.maxPool(x, kernel, stride, "same") on (N, C, H, W): TF's "same" padding, with −∞ so padded cells never win. */
export function maxPoolSame(x: Tensor, kernel: number, stride: number): Tensor {
  const [top, bottom] = samePadding(x.size(2), kernel, stride);
  const [left, right] = samePadding(x.size(3), kernel, stride);
  if (top === 0 && bottom === 0 && left === 0 && right === 0) return maxPoolValid(x, kernel, stride);
  using padded = pad(x, [left, right, top, bottom], "constant", -Infinity);
  return maxPoolValid(padded, kernel, stride);
}

/** The mean RGB face-api's landmark and descriptor networks subtract (FaceLandmark68NetBase, FaceRecognitionNet). */
export const FACE_API_MEAN_RGB: readonly [number, number, number] = [122.782, 117.001, 104.298];

/** face-api's normalize(x, meanRgb) then ÷255: (N, 3, H, W) pixels 0..255 → float32 (x − mean) / 255. */
export function normalizeMeanRgb(pixels: Tensor, meanRgb: readonly [number, number, number]): Tensor {
  return tidy(() => subChannels(pixels.to("float32"), tensor([...meanRgb])).div(255));
}

/**
 * The base of the ported face networks: the tensors a network derives from its weights when it is built
 * (filters transposed to OIHW, reshaped anchors) are its own, kept by own() and freed by dispose(); the weights
 * it uses as loaded stay the TfjsWeights map's.
 */
export abstract class FaceNetwork {
  private readonly derived: Tensor[] = [];

  /** Takes ownership of a tensor made from the weights; returns it. */
  protected own(t: Tensor): Tensor {
    this.derived.push(t);
    return t;
  }

  /** Frees the tensors this network made (twice is harmless). */
  dispose(): void {
    for (const t of this.derived.splice(0)) t.dispose();
  }
}
