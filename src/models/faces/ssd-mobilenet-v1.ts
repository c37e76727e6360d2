/**
 * The face detector: SSD with a MobileNet V1 backbone (Liu et al. 2016, "SSD: Single Shot MultiBox Detector";
 * Howard et al. 2017, "MobileNets"), trained on WIDER FACE, as face-api ships it (ssd_mobilenetv1_model.bin) and
 * runs it in src/ssdMobilenetv1/. Chosen over the Tiny Face Detector for recall: the photos people bring include
 * group photos and small faces, and SSD at 512 px finds far more of those (face-api's own documentation says
 * the same); its ~40 ms more per photo on a CPU is small beside the rest of personalisation.
 *
 * The same operations in the same order as face-api: the photo padded at the bottom/right to a square, resized
 * to 512 (legacy bilinear), ÷127.5 − 1 → MobileNet V1 (conv 3×3/2 then 13 depthwise 3×3 (strides 2 at 2, 4, 6, 12)
 * + batch norm (ε = 0.001) + ReLU6 / pointwise 1×1 + offset + ReLU6 pairs; conv_11's output kept) → 8 more
 * pointwise layers (strides 2 at 1, 3, 5, 7) → 6 box predictors (on conv_11, the last MobileNet output and
 * prediction conv 1, 3, 5, 7) of 3 or 6 anchors, NHWC-ordered → boxes decoded against the 5,118 stored anchors
 * (`Output/extra_dim`) with the (10, 10, 5, 5) scales → face score = sigmoid of class 1
 * (mobileNetV1.ts, predictionLayer.ts, boxPredictionLayer.ts, outputLayer.ts). Then face-api's locateFaces: score
 * above minConfidence, greedy non-maximum suppression at IoU 0.5 (nonMaxSuppression.ts; the IoU matrix on the
 * engine, the greedy pass over it), boxes clipped to [0, 1] and mapped back to the photo's pixels.
 */
import { cat, stack } from "../../engine/functional.js";
import { tensor } from "../../engine/creation.js";
import { tidy } from "../../engine/lifetime.js";
import { op } from "../../engine/dispatch.js";
import { call, type Tensor } from "../../engine/tensor.js";
import { addChannels, depthwiseToOihw, FaceNetwork, hwioToOihw, tfConv2d, toBatchTensor } from "./tf-ops.js";
import { weight, type TfjsWeights } from "./tfjs-weights.js";

export const SSD_INPUT_SIZE = 512;
const BATCH_NORM_EPSILON = 0.0010000000474974513;
const CHANNELS = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024] as const;
const PREDICTION_CHANNELS: readonly (readonly [number, number, number])[] = [
  [1024, 256, 1], [256, 512, 2], [512, 128, 1], [128, 256, 2], [256, 128, 1], [128, 256, 2], [256, 64, 1], [64, 128, 2],
];
const PREDICTOR_INPUTS = [[512, 3], [1024, 6], [512, 6], [256, 6], [256, 6], [128, 6]] as const;

/** One detected face: its box in the photo's pixels and its score. */
export interface FaceBox {
  score: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface DetectOptions {
  /** Keep boxes scoring above this (face-api's default 0.5). */
  minConfidence?: number;
  /** At most this many boxes (face-api's default 100). */
  maxResults?: number;
}

interface Pointwise { filters: Tensor; offset: Tensor }
interface Depthwise { filters: Tensor; scale: Tensor; offset: Tensor; mean: Tensor; variance: Tensor }
interface Predictor { boxFilters: Tensor; boxBias: Tensor; classFilters: Tensor; classBias: Tensor; anchors: number }

export class SsdMobilenetV1 extends FaceNetwork {
  private readonly conv0: Pointwise;
  private readonly pairs: { depthwise: Depthwise; pointwise: Pointwise }[];
  private readonly prediction: Pointwise[];
  private readonly predictors: Predictor[];
  private readonly anchors: Tensor;

  constructor(weights: TfjsWeights) {
    super();
    const own = (t: Tensor): Tensor => this.own(t);
    const pointwise = (prefix: string, k: number, cin: number, cout: number): Pointwise => ({
      filters: own(hwioToOihw(weight(weights, `${prefix}/weights`, [k, k, cin, cout]))),
      offset: weight(weights, `${prefix}/convolution_bn_offset`, [cout]),
    });
    this.conv0 = pointwise("MobilenetV1/Conv2d_0_pointwise", 3, 3, 32);
    this.pairs = CHANNELS.slice(1).map((cout, i) => {
      const idx = i + 1;
      const cin = CHANNELS[i]!;
      const d = `MobilenetV1/Conv2d_${idx}_depthwise`;
      return {
        depthwise: {
          filters: own(depthwiseToOihw(weight(weights, `${d}/depthwise_weights`, [3, 3, cin, 1]))),
          scale: weight(weights, `${d}/BatchNorm/gamma`, [cin]),
          offset: weight(weights, `${d}/BatchNorm/beta`, [cin]),
          mean: weight(weights, `${d}/BatchNorm/moving_mean`, [cin]),
          variance: weight(weights, `${d}/BatchNorm/moving_variance`, [cin]),
        },
        pointwise: pointwise(`MobilenetV1/Conv2d_${idx}_pointwise`, 1, cin, cout),
      };
    });
    this.prediction = PREDICTION_CHANNELS.map(([cin, cout, stride], i) => pointwise(`Prediction/Conv2d_${i}_pointwise`, stride === 2 ? 3 : 1, cin, cout));
    this.predictors = PREDICTOR_INPUTS.map(([cin, anchors], i) => {
      const p = `Prediction/BoxPredictor_${i}`;
      return {
        boxFilters: own(hwioToOihw(weight(weights, `${p}/BoxEncodingPredictor/weights`, [1, 1, cin, anchors * 4]))),
        boxBias: weight(weights, `${p}/BoxEncodingPredictor/biases`, [anchors * 4]),
        classFilters: own(hwioToOihw(weight(weights, `${p}/ClassPredictor/weights`, [1, 1, cin, anchors * 3]))),
        classBias: weight(weights, `${p}/ClassPredictor/biases`, [anchors * 3]),
        anchors,
      };
    });
    this.anchors = own(weight(weights, "Output/extra_dim", [1, -1, 4]).reshape(-1, 4));
  }

  /** (N, 3, 512, 512) float RGB 0..255 → decoded boxes (N, 5118, 4) as face-api's [y0, x0, y1, x1] in [0, 1], scores (N, 5118). */
  forward(pixels: Tensor): { boxes: Tensor; scores: Tensor } {
    if (pixels.ndim !== 4 || pixels.size(1) !== 3 || pixels.size(2) !== SSD_INPUT_SIZE || pixels.size(3) !== SSD_INPUT_SIZE) {
      throw new Error(`SsdMobilenetV1: expected (N, 3, ${SSD_INPUT_SIZE}, ${SSD_INPUT_SIZE}) pixels, got [${pixels.shape.join(", ")}]`);
    }
    return tidy(() => {
      const x = pixels.to("float32").div(127.5).sub(1);
      let out = pointwiseLayer(x, this.conv0, 2);
      let conv11: Tensor | null = null;
      this.pairs.forEach((pair, i) => {
        const idx = i + 1;
        out = depthwiseLayer(out, pair.depthwise, [2, 4, 6, 12].includes(idx) ? 2 : 1);
        out = pointwiseLayer(out, pair.pointwise, 1);
        if (idx === 11) conv11 = out;
      });
      if (conv11 === null) throw new Error("SsdMobilenetV1: conv layer 11 produced no output");
      const features: Tensor[] = [];
      let p = out;
      this.prediction.forEach((layer, i) => {
        p = pointwiseLayer(p, layer, PREDICTION_CHANNELS[i]![2]);
        features[i] = p;
      });
      const inputs = [conv11, out, features[1]!, features[3]!, features[5]!, features[7]!];
      const batch = x.size(0);
      const encodings = this.predictors.map((pr, i) => nhwc(addChannels(tfConv2d(inputs[i]!, pr.boxFilters, 1, "same"), pr.boxBias)).reshape(batch, -1, 4));
      const classes = this.predictors.map((pr, i) => nhwc(addChannels(tfConv2d(inputs[i]!, pr.classFilters, 1, "same"), pr.classBias)).reshape(batch, -1, 3));
      const boxes = decodeBoxes(this.anchors, cat(encodings, 1));
      const scores = cat(classes, 1).select(2, 1).sigmoid();
      return { boxes, scores };
    });
  }

  /**
   * Faces in one photo, an (H, W, 3) pixel tensor, as face-api's SsdMobilenetv1.locateFaces finds them: boxes in
   * the photo's pixels, best score first.
   */
  detect(image: Tensor, options: DetectOptions = {}): FaceBox[] {
    const minConfidence = options.minConfidence ?? 0.5;
    const maxResults = options.maxResults ?? 100;
    if (!(minConfidence > 0 && minConfidence < 1)) throw new Error(`SsdMobilenetV1: minConfidence must be in (0, 1), got ${minConfidence}`);
    const [height, width] = image.shape as [number, number, number];
    return tidy(() => {
      const { boxes, scores } = this.forward(toBatchTensor(image, SSD_INPUT_SIZE, false));
      const scoreValues = Array.from(scores.select(0, 0).data() as Float32Array);
      const candidates = scoreValues.map((score, index) => ({ score, index })).filter((c) => c.score > minConfidence).sort((a, b) => b.score - a.score);
      if (candidates.length === 0) return [];
      const chosen = boxes.select(0, 0).indexSelect(0, tensor(candidates.map((c) => c.index), { dtype: "int64" }));
      const iou = Array.from(iouMatrix(chosen).data() as Float32Array);
      const n = candidates.length;
      const kept: number[] = [];
      for (let i = 0; i < n && kept.length < Math.min(maxResults, scoreValues.length); i++) {
        if (kept.every((j) => iou[i * n + j]! <= 0.5)) kept.push(i);
      }
      const coords = Array.from(chosen.data() as Float32Array);
      // face-api's reshaped input dimensions (rounded) and the padding factors they give.
      const scale = SSD_INPUT_SIZE / Math.max(height, width);
      const padX = SSD_INPUT_SIZE / Math.round(width * scale);
      const padY = SSD_INPUT_SIZE / Math.round(height * scale);
      return kept.map((i) => {
        const [y0, x0, y1, x1] = coords.slice(i * 4, i * 4 + 4) as [number, number, number, number];
        const top = Math.max(0, y0) * padY;
        const bottom = Math.min(1, y1) * padY;
        const left = Math.max(0, x0) * padX;
        const right = Math.min(1, x1) * padX;
        return { score: candidates[i]!.score, x: left * width, y: top * height, width: (right - left) * width, height: (bottom - top) * height };
      });
    });
  }
}

/** conv (stride, "same") + offset → ReLU6 (pointwiseConvLayer.ts). */
function pointwiseLayer(x: Tensor, p: Pointwise, stride: number): Tensor {
  return addChannels(tfConv2d(x, p.filters, stride, "same"), p.offset).clamp(0, 6);
}

/** depthwise conv (stride, "same") → batch norm → ReLU6 (mobileNetV1.ts depthwiseConvLayer). */
function depthwiseLayer(x: Tensor, p: Depthwise, stride: number): Tensor {
  const out = tfConv2d(x, p.filters, stride, "same", x.size(1));
  const factor = p.variance.add(BATCH_NORM_EPSILON).rsqrt().mul(p.scale);
  const normalised = out.sub(p.mean.reshape(1, -1, 1, 1)).mul(factor.reshape(1, -1, 1, 1)).add(p.offset.reshape(1, -1, 1, 1));
  return normalised.clamp(0, 6);
}

/** (N, C, H, W) → (N, H, W, C), the order TF.js reshapes predictions in. */
function nhwc(x: Tensor): Tensor {
  return x.permute(0, 2, 3, 1).contiguous();
}

/** outputLayer.ts decodeBoxesLayer: anchors (A, 4) and encodings (N, A, 4) → (N, A, 4) boxes. */
function decodeBoxes(anchors: Tensor, encodings: Tensor): Tensor {
  const a = (k: number): Tensor => anchors.select(1, k);
  const e = (k: number): Tensor => encodings.select(2, k);
  const sizes = [a(2).sub(a(0)), a(3).sub(a(1))] as const;
  const centres = [a(0).add(sizes[0].div(2)), a(1).add(sizes[1].div(2))] as const;
  const half0 = e(2).div(5).exp().mul(sizes[0]).div(2);
  const mid0 = e(0).div(10).mul(sizes[0]).add(centres[0]);
  const half1 = e(3).div(5).exp().mul(sizes[1]).div(2);
  const mid1 = e(1).div(10).mul(sizes[1]).add(centres[1]);
  return stack([mid0.sub(half0), mid1.sub(half1), mid0.add(half0), mid1.add(half1)], 2);
}

/** IoU of every pair of [y0, x0, y1, x1] boxes (min/max taken per axis, as face-api's IOU does): (B, B). */
function iouMatrix(boxes: Tensor): Tensor {
  const col = (k: number): Tensor => boxes.select(1, k);
  const y0 = minimum(col(0), col(2));
  const x0 = minimum(col(1), col(3));
  const y1 = maximum(col(0), col(2));
  const x1 = maximum(col(1), col(3));
  const area = y1.sub(y0).mul(x1.sub(x0));
  const rows = (t: Tensor): Tensor => t.unsqueeze(1);
  const cols = (t: Tensor): Tensor => t.unsqueeze(0);
  const inter = minimum(rows(y1), cols(y1)).sub(maximum(rows(y0), cols(y0))).clamp(0)
    .mul(minimum(rows(x1), cols(x1)).sub(maximum(rows(x0), cols(x0))).clamp(0));
  const union = rows(area).add(cols(area)).sub(inter);
  const valid = rows(area).gt(0).logicalAnd(cols(area).gt(0));
  return inter.div(union).mul(valid.to("float32"));
}

const minimumOp = op("aten::minimum");
const maximumOp = op("aten::maximum");
function minimum(a: Tensor, b: Tensor): Tensor {
  return call(minimumOp, a, b);
}
function maximum(a: Tensor, b: Tensor): Tensor {
  return call(maximumOp, a, b);
}
