/**
 * face-api's Tiny Face Detector (tiny_face_detector_model.bin, 190 KB; src/tinyFaceDetector/TinyFaceDetector.ts on
 * src/tinyYolov2/TinyYolov2Base.ts): a YOLOv2-style single-shot detector (Redmon & Farhadi 2017, "YOLO9000") on a
 * small depthwise-separable backbone, trained on face boxes. About twice as fast as SSD MobileNet V1 on a CPU, at
 * the price of recall (bench/faces/detector-recall.ts: 19 of the 22 faces SSD finds on face-api's demo photos at
 * 416 px); the SSD detector stays the default (ssd-mobilenet-v1.ts). Its boxes are near-square, around the head.
 *
 * The same operations in the same order as face-api (TinyYolov2Base.forwardInput / runMobilenet, the
 * withSeparableConvs + isFirstLayerConv2d configuration with filter sizes 3, 16, 32, 64, 128, 256, 512):
 *  - the photo padded at the bottom/right to a square, resized to inputSize (legacy bilinear; NetInput.toBatchTensor
 *    with isCenterInputs false), mean RGB (117.001, 114.697, 97.404) subtracted, ÷255;
 *  - conv0: a plain 3×3 convolution ("valid", 3 → 16) + bias → leaky ReLU;
 *  - conv1 … conv5: zero padding of 1, depthwise 3×3 + pointwise 1×1 (separableConv2d, "valid") + bias → leaky
 *    ReLU (depthwiseSeparableConv.ts), each after a 2×2 max pool ("same"; stride 2 before conv1 … conv5, and a
 *    stride-1 one after conv5), channels 16 → 32 → 64 → 128 → 256 → 512;
 *  - conv8: 1×1 convolution ("valid", 512 → 25) + bias: for each cell of the (inputSize/32)² grid, 5 anchors ×
 *    (x, y, w, h, objectness). The leaky ReLU is face-api's leaky.ts: relu(x − 0.1x) + 0.1x.
 * Decoding (TinyYolov2Base.extractBoxes, in float64 as face-api's JavaScript does): score = sigmoid(objectness)
 * (one class, "face": no class scores, so no softmax), kept when above scoreThreshold; centre = (cell +
 * sigmoid(tx, ty)) / cells, size = exp(tw, th) · anchor / cells, both × the padding correction inputSize /
 * reshaped side; greedy IoU non-maximum suppression at 0.4 on the boxes × inputSize (ops/nonMaxSuppression.ts,
 * its tie order included); each kept box × the photo's width and height (ObjectDetection). Boxes are not clipped
 * to the photo, as face-api does not clip them.
 *
 * Weights are read by their manifest names ("conv0/filters", "conv3/depthwise_filter", "conv8/bias").
 */
import { tidy } from "../../engine/lifetime.js";
import type { Tensor } from "../../engine/tensor.js";
import type { FaceBox } from "./ssd-mobilenet-v1.js";
import { addChannels, depthwiseToOihw, FaceNetwork, hwioToOihw, maxPoolSame, normalizeMeanRgb, tfConv2d, toBatchTensor } from "./tf-ops.js";
import { weight, type TfjsWeights } from "./tfjs-weights.js";

/** face-api's default input size (TinyYolov2Options): 416; 320 or 608 trade recall of small faces for speed. */
export const TINY_FACE_DETECTOR_INPUT_SIZE = 416;
/** The mean RGB the Tiny Face Detector subtracts (tinyFaceDetector/const.ts). */
export const TINY_FACE_DETECTOR_MEAN_RGB: readonly [number, number, number] = [117.001, 114.697, 97.404];
/** The five anchors (width, height) in grid cells (tinyFaceDetector/const.ts BOX_ANCHORS). */
export const TINY_FACE_DETECTOR_ANCHORS: readonly (readonly [number, number])[] = [
  [1.603231, 2.094468], [6.041143, 7.080126], [2.882459, 3.518061], [4.266906, 5.178857], [9.041765, 10.66308],
];
const IOU_THRESHOLD = 0.4;
/** tf.scalar(0.1) in float32, the slope leaky.ts multiplies by. */
const LEAKY_SLOPE = 0.10000000149011612;
const CHANNELS = [16, 32, 64, 128, 256, 512] as const;
const BOX_ENCODING = 5;

export interface TinyDetectOptions {
  /** The side the photo is resized to, a multiple of 32 (face-api's default 416). */
  inputSize?: number;
  /** Keep boxes scoring above this, in (0, 1) (face-api's default 0.5). */
  scoreThreshold?: number;
}

interface Separable { depthwise: Tensor; pointwise: Tensor; bias: Tensor }

export class TinyFaceDetector extends FaceNetwork {
  private readonly conv0: { filters: Tensor; bias: Tensor };
  private readonly separables: Separable[];
  private readonly conv8: { filters: Tensor; bias: Tensor };

  constructor(weights: TfjsWeights) {
    super();
    this.conv0 = {
      filters: this.own(hwioToOihw(weight(weights, "conv0/filters", [3, 3, 3, CHANNELS[0]]))),
      bias: weight(weights, "conv0/bias", [CHANNELS[0]]),
    };
    this.separables = CHANNELS.slice(1).map((cout, i) => {
      const cin = CHANNELS[i]!;
      const prefix = `conv${i + 1}`;
      return {
        depthwise: this.own(depthwiseToOihw(weight(weights, `${prefix}/depthwise_filter`, [3, 3, cin, 1]))),
        pointwise: this.own(hwioToOihw(weight(weights, `${prefix}/pointwise_filter`, [1, 1, cin, cout]))),
        bias: weight(weights, `${prefix}/bias`, [cout]),
      };
    });
    const outputs = TINY_FACE_DETECTOR_ANCHORS.length * BOX_ENCODING;
    this.conv8 = {
      filters: this.own(hwioToOihw(weight(weights, "conv8/filters", [1, 1, CHANNELS[5], outputs]))),
      bias: weight(weights, "conv8/bias", [outputs]),
    };
  }

  /**
   * (N, 3, S, S) float RGB 0..255, S a multiple of 32 → (N, 25, S/32, S/32) raw outputs: channel 5a + k is
   * anchor a's (tx, ty, tw, th, objectness)[k], the order face-api reshapes its NHWC output in.
   */
  forward(pixels: Tensor): Tensor {
    if (pixels.ndim !== 4 || pixels.size(1) !== 3 || pixels.size(2) !== pixels.size(3) || pixels.size(2) % 32 !== 0 || pixels.size(2) === 0) {
      throw new Error(`TinyFaceDetector: expected (N, 3, S, S) pixels with S a multiple of 32, got [${pixels.shape.join(", ")}]`);
    }
    return tidy(() => {
      const x = normalizeMeanRgb(pixels, TINY_FACE_DETECTOR_MEAN_RGB);
      let out = leaky(addChannels(tfConv2d(x, this.conv0.filters, 1, "valid"), this.conv0.bias));
      this.separables.forEach((layer, i) => {
        out = maxPoolSame(out, 2, 2);
        out = separableLayer(out, layer);
        if (i === this.separables.length - 1) out = maxPoolSame(out, 2, 1);
      });
      return addChannels(tfConv2d(out, this.conv8.filters, 1, "valid"), this.conv8.bias);
    });
  }

  /**
   * Faces in one photo, an (H, W, 3) pixel tensor, as face-api's TinyFaceDetector.locateFaces finds them with
   * TinyFaceDetectorOptions({ inputSize, scoreThreshold }): boxes in the photo's pixels, best score first.
   */
  detect(image: Tensor, options: TinyDetectOptions = {}): FaceBox[] {
    const inputSize = options.inputSize ?? TINY_FACE_DETECTOR_INPUT_SIZE;
    const scoreThreshold = options.scoreThreshold ?? 0.5;
    if (!Number.isInteger(inputSize) || inputSize <= 0 || inputSize % 32 !== 0) {
      throw new Error(`TinyFaceDetector: inputSize must be a positive multiple of 32 (320, 416, 608, …), got ${inputSize}`);
    }
    if (!(scoreThreshold > 0 && scoreThreshold < 1)) throw new Error(`TinyFaceDetector: scoreThreshold must be in (0, 1), got ${scoreThreshold}`);
    if (image.ndim !== 3 || image.size(2) !== 3) throw new Error(`TinyFaceDetector: expected an (H, W, 3) image tensor, got [${image.shape.join(", ")}]`);
    const [height, width] = image.shape as [number, number, number];
    const cells = inputSize / 32;
    const raw = tidy(() => {
      const out = this.forward(toBatchTensor(image, inputSize, false));
      return Float64Array.from(out.select(0, 0).permute(1, 2, 0).contiguous().data() as Float32Array);
    });
    // computeReshapedDimensions: the photo's size once its long side is inputSize, rounded.
    const scale = inputSize / Math.max(height, width);
    const reshapedWidth = Math.round(width * scale);
    const reshapedHeight = Math.round(height * scale);
    const side = Math.max(reshapedWidth, reshapedHeight);
    const correctionX = side / reshapedWidth;
    const correctionY = side / reshapedHeight;
    const anchors = TINY_FACE_DETECTOR_ANCHORS.length;
    const candidates: { score: number; left: number; top: number; right: number; bottom: number }[] = [];
    for (let row = 0; row < cells; row++) {
      for (let col = 0; col < cells; col++) {
        for (let a = 0; a < anchors; a++) {
          const at = ((row * cells + col) * anchors + a) * BOX_ENCODING;
          const score = sigmoid(raw[at + 4]!);
          if (!(score > scoreThreshold)) continue;
          const [anchorW, anchorH] = TINY_FACE_DETECTOR_ANCHORS[a]!;
          const centreX = ((col + sigmoid(raw[at]!)) / cells) * correctionX;
          const centreY = ((row + sigmoid(raw[at + 1]!)) / cells) * correctionY;
          const boxW = ((Math.exp(raw[at + 2]!) * anchorW) / cells) * correctionX;
          const boxH = ((Math.exp(raw[at + 3]!) * anchorH) / cells) * correctionY;
          const left = centreX - boxW / 2;
          const top = centreY - boxH / 2;
          candidates.push({ score, left, top, right: left + boxW, bottom: top + boxH });
        }
      }
    }
    const kept = nonMaxSuppression(candidates.map((c) => ({
      score: c.score, x: c.left * inputSize, y: c.top * inputSize, width: (c.right - c.left) * inputSize, height: (c.bottom - c.top) * inputSize,
    })), IOU_THRESHOLD);
    return kept.map((i) => {
      const c = candidates[i]!;
      return { score: c.score, x: c.left * width, y: c.top * height, width: (c.right - c.left) * width, height: (c.bottom - c.top) * height };
    });
  }
}

/** face-api's leaky.ts: relu(x − 0.1x) + 0.1x (a leaky ReLU of slope 0.1, in its order of operations). */
function leaky(x: Tensor): Tensor {
  const min = x.mul(LEAKY_SLOPE);
  return x.sub(min).relu().add(min);
}

/** depthwiseSeparableConv.ts: pad 1, depthwise 3×3 + pointwise 1×1 ("valid"), + bias → leaky ReLU. */
function separableLayer(x: Tensor, p: Separable): Tensor {
  const depthwise = tfConv2d(x, p.depthwise, 1, "same", x.size(1));
  return leaky(addChannels(tfConv2d(depthwise, p.pointwise, 1, "valid"), p.bias));
}

function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

/**
 * ops/nonMaxSuppression.ts with IoU (ops/iou.ts): candidates sorted by ascending score (a stable sort), the last
 * taken, every remaining one overlapping it by more than the threshold dropped, repeated. The kept indices, in
 * the order taken (best score first; of equal scores the later candidate first, as face-api takes them).
 */
function nonMaxSuppression(boxes: readonly FaceBox[], threshold: number): number[] {
  let order = boxes.map((b, index) => ({ score: b.score, index })).sort((p, q) => p.score - q.score).map((c) => c.index);
  const picked: number[] = [];
  while (order.length > 0) {
    const current = order.pop()!;
    picked.push(current);
    const a = boxes[current]!;
    order = order.filter((j) => iou(a, boxes[j]!) <= threshold);
  }
  return picked;
}

function iou(a: FaceBox, b: FaceBox): number {
  const w = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const h = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const intersection = w * h;
  return intersection / (a.width * a.height + b.width * b.height - intersection);
}
