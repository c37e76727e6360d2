/**
 * The 68-point face landmark network of face-api (face_landmark_68_model.bin; src/faceLandmarkNet/FaceLandmark68Net.ts
 * on src/faceFeatureExtractor/FaceFeatureExtractor.ts): a face crop → 68 (x, y) points in the iBUG 300-W order
 * (0-16 jaw, 17-26 brows, 27-35 nose, 36-41 right eye as seen, 42-47 left eye, 48-67 mouth).
 *
 * The same operations in the same order: the crop padded to a centred square and resized to 112 (legacy
 * bilinear), mean RGB (122.782, 117.001, 104.298) subtracted, ÷255 → four dense blocks (denseBlock.ts: conv0 with
 * stride 2, a plain 3×3 convolution in dense0 and a depthwise-separable one after, then three depthwise-separable
 * convolutions each fed the ReLU of the sum of all earlier outputs of the block) at 32, 64, 128, 256 channels →
 * 7×7/2 average pool → fc [256, 136] (+ bias) → (x, y) pairs relative to the 112 square, mapped back to the crop
 * (FaceLandmark68NetBase.postProcess: × 112, − the centring padding, ÷ the resized crop's width / height).
 *
 * Weights are read by their manifest names ("dense0/conv0/filters", "dense1/conv2/depthwise_filter", "fc/weights").
 */
import { cat, matmul } from "../../engine/functional.js";
import { tensor } from "../../engine/creation.js";
import { tidy } from "../../engine/lifetime.js";
import type { Tensor } from "../../engine/tensor.js";
import {
  addChannels, avgPoolValid, depthwiseToOihw, FACE_API_MEAN_RGB, FaceNetwork, hwioToOihw, normalizeMeanRgb, tfConv2d, toBatchTensor,
} from "./tf-ops.js";
import { weight, type TfjsWeights } from "./tfjs-weights.js";

export const LANDMARK_INPUT_SIZE = 112;

interface SeparableConv {
  depthwise: Tensor;
  pointwise: Tensor;
  bias: Tensor;
}
interface DenseBlock {
  conv0: SeparableConv | { filters: Tensor; bias: Tensor };
  convs: SeparableConv[];
}

export class FaceLandmark68Net extends FaceNetwork {
  private readonly blocks: DenseBlock[];
  private readonly fcWeights: Tensor;
  private readonly fcBias: Tensor;

  constructor(weights: TfjsWeights) {
    super();
    const own = (t: Tensor): Tensor => this.own(t);
    const separable = (prefix: string, cin: number, cout: number): SeparableConv => ({
      depthwise: own(depthwiseToOihw(weight(weights, `${prefix}/depthwise_filter`, [3, 3, cin, 1]))),
      pointwise: own(hwioToOihw(weight(weights, `${prefix}/pointwise_filter`, [1, 1, cin, cout]))),
      bias: weight(weights, `${prefix}/bias`, [cout]),
    });
    const channels = [[3, 32], [32, 64], [64, 128], [128, 256]] as const;
    this.blocks = channels.map(([cin, cout], i) => ({
      conv0: i === 0
        ? { filters: own(hwioToOihw(weight(weights, "dense0/conv0/filters", [3, 3, cin, cout]))), bias: weight(weights, "dense0/conv0/bias", [cout]) }
        : separable(`dense${i}/conv0`, cin, cout),
      convs: [1, 2, 3].map((j) => separable(`dense${i}/conv${j}`, cout, cout)),
    }));
    this.fcWeights = weight(weights, "fc/weights", [256, 136]);
    this.fcBias = weight(weights, "fc/bias", [136]);
  }

  /** (N, 3, 112, 112) float RGB 0..255 → (N, 136) outputs: (x, y) pairs in [0, 1] of the 112 square. */
  forward(pixels: Tensor): Tensor {
    if (pixels.ndim !== 4 || pixels.size(1) !== 3 || pixels.size(2) !== LANDMARK_INPUT_SIZE || pixels.size(3) !== LANDMARK_INPUT_SIZE) {
      throw new Error(`FaceLandmark68Net: expected (N, 3, ${LANDMARK_INPUT_SIZE}, ${LANDMARK_INPUT_SIZE}) pixels, got [${pixels.shape.join(", ")}]`);
    }
    return tidy(() => {
      let out = normalizeMeanRgb(pixels, FACE_API_MEAN_RGB);
      for (const block of this.blocks) out = denseBlock4(out, block);
      const pooled = avgPoolValid(out, 7, 2);
      // NHWC flattening order (a 1×1 map here, so the channels alone).
      const flat = pooled.permute(0, 2, 3, 1).reshape(pooled.size(0), -1);
      return matmul(flat, this.fcWeights).add(this.fcBias);
    });
  }

  /**
   * The 68 landmarks of each face crop ((H, W, 3) pixel tensors), in the crop's own pixels: (N, 68, 2) as (x, y),
   * as face-api's detectLandmarks gives them.
   */
  detect(crops: readonly Tensor[]): Tensor {
    if (crops.length === 0) throw new Error("FaceLandmark68Net.detect: no face crops given");
    return tidy(() => {
      const raw = this.forward(cat(crops.map((c) => toBatchTensor(c, LANDMARK_INPUT_SIZE, true)), 0));
      const rows = crops.map((crop, i) => {
        const [height, width] = crop.shape as [number, number, number];
        const scale = LANDMARK_INPUT_SIZE / Math.max(height, width);
        const w = width * scale;
        const h = height * scale;
        const padX = w < h ? Math.abs(w - h) / 2 : 0;
        const padY = h < w ? Math.abs(w - h) / 2 : 0;
        const points = raw.select(0, i).reshape(68, 2).mul(LANDMARK_INPUT_SIZE);
        return points.sub(tensor([padX, padY])).div(tensor([w, h])).mul(tensor([width, height]));
      });
      return cat(rows.map((r) => r.unsqueeze(0)), 0);
    });
  }
}

/** tf.separableConv2d(x, depthwise, pointwise, stride, "same") + bias (common/depthwiseSeparableConv.ts). */
function separableConv(x: Tensor, p: SeparableConv, stride: number): Tensor {
  const depthwise = tfConv2d(x, p.depthwise, stride, "same", x.size(1));
  return addChannels(tfConv2d(depthwise, p.pointwise, 1, "valid"), p.bias);
}

/** faceFeatureExtractor/denseBlock.ts denseBlock4 (isScaleDown: conv0 with stride 2). */
function denseBlock4(x: Tensor, block: DenseBlock): Tensor {
  const conv0 = block.conv0;
  const out1 = ("filters" in conv0 ? addChannels(tfConv2d(x, conv0.filters, 2, "same"), conv0.bias) : separableConv(x, conv0, 2)).relu();
  const [c1, c2, c3] = block.convs as [SeparableConv, SeparableConv, SeparableConv];
  const out2 = separableConv(out1, c1, 1);
  const in3 = out1.add(out2).relu();
  const out3 = separableConv(in3, c2, 1);
  const in4 = out1.add(out2.add(out3)).relu();
  const out4 = separableConv(in4, c3, 1);
  return out1.add(out2.add(out3.add(out4))).relu();
}
