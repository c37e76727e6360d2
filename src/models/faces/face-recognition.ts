/**
 * The face descriptor network: dlib's ResNet face recognition model (dlib_face_recognition_resnet_model_v1,
 * Davis King, public domain; 99.38 % on LFW), as face-api converted it to TF.js (face_recognition_model.bin)
 * and runs it in src/faceRecognitionNet/: a 150 × 150 RGB face → a 128-d descriptor.
 *
 * The same operations in the same order as face-api's FaceRecognitionNet.forwardInput: subtract the mean RGB
 * (122.782, 117.001, 104.298), ÷255 → conv 7×7/2 "valid" (conv32_down) → max pool 3/2 → 3 residual blocks at 32
 * channels, 4 at 64, 3 at 128, 3 at 256, the first of each group (and conv256_down_out) a "down" block: conv 3×3/2
 * "valid" beside a 2×2 average pool of the input, zero channels appended to it, the conv output grown by a zero
 * row and column when the pool is larger (residualLayer.ts) → mean over H, W → × fc [256, 128]. Each conv is
 * conv + bias, then an affine "scale" layer (× weights + biases), then ReLU except the second of a block.
 *
 * Weights are read by their manifest names ("conv32_down/conv/filters", "conv64_down/conv1/scale/weights", "fc").
 * It is not a trainable Module: it only ever runs frozen, on the weights face-api ships.
 */
import { cat, matmul, pad } from "../../engine/functional.js";
import { tidy } from "../../engine/lifetime.js";
import { zerosLike } from "../../engine/creation.js";
import type { Tensor } from "../../engine/tensor.js";
import {
  addChannels, avgPoolValid, FACE_API_MEAN_RGB, FaceNetwork, hwioToOihw, maxPoolValid, mulChannels, normalizeMeanRgb, tfConv2d, toBatchTensor,
} from "./tf-ops.js";
import { weight, type TfjsWeights } from "./tfjs-weights.js";

/** The descriptor's input side. */
export const FACE_DESCRIPTOR_SIZE = 150;

interface ConvScale {
  filters: Tensor;
  bias: Tensor;
  scaleWeights: Tensor;
  scaleBiases: Tensor;
}

const BLOCKS: readonly (readonly [string, number, number, boolean])[] = [
  // name, input channels, output channels, down
  ["conv32_1", 32, 32, false], ["conv32_2", 32, 32, false], ["conv32_3", 32, 32, false],
  ["conv64_down", 32, 64, true], ["conv64_1", 64, 64, false], ["conv64_2", 64, 64, false], ["conv64_3", 64, 64, false],
  ["conv128_down", 64, 128, true], ["conv128_1", 128, 128, false], ["conv128_2", 128, 128, false],
  ["conv256_down", 128, 256, true], ["conv256_1", 256, 256, false], ["conv256_2", 256, 256, false],
  ["conv256_down_out", 256, 256, true],
];

export class FaceRecognitionNet extends FaceNetwork {
  private readonly stem: ConvScale;
  private readonly blocks: { name: string; down: boolean; conv1: ConvScale; conv2: ConvScale }[];
  private readonly fc: Tensor;

  constructor(weights: TfjsWeights) {
    super();
    const convScale = (prefix: string, k: number, cin: number, cout: number): ConvScale => ({
      filters: this.own(hwioToOihw(weight(weights, `${prefix}/conv/filters`, [k, k, cin, cout]))),
      bias: weight(weights, `${prefix}/conv/bias`, [cout]),
      scaleWeights: weight(weights, `${prefix}/scale/weights`, [cout]),
      scaleBiases: weight(weights, `${prefix}/scale/biases`, [cout]),
    });
    this.stem = convScale("conv32_down", 7, 3, 32);
    this.blocks = BLOCKS.map(([name, cin, cout, down]) => ({
      name, down, conv1: convScale(`${name}/conv1`, 3, cin, cout), conv2: convScale(`${name}/conv2`, 3, cout, cout),
    }));
    this.fc = weight(weights, "fc", [256, 128]);
  }

  /** (N, 3, 150, 150) float RGB 0..255 → (N, 128) descriptors. */
  forward(pixels: Tensor): Tensor {
    if (pixels.ndim !== 4 || pixels.size(1) !== 3 || pixels.size(2) !== FACE_DESCRIPTOR_SIZE || pixels.size(3) !== FACE_DESCRIPTOR_SIZE) {
      throw new Error(`FaceRecognitionNet: expected (N, 3, ${FACE_DESCRIPTOR_SIZE}, ${FACE_DESCRIPTOR_SIZE}) pixels, got [${pixels.shape.join(", ")}]`);
    }
    return tidy(() => {
      const normalized = normalizeMeanRgb(pixels, FACE_API_MEAN_RGB);
      let out = convLayer(normalized, this.stem, 2, "valid", true);
      out = maxPoolValid(out, 3, 2);
      for (const block of this.blocks) out = block.down ? residualDown(out, block.conv1, block.conv2) : residual(out, block.conv1, block.conv2);
      const pooled = out.mean([2, 3]);
      return matmul(pooled, this.fc);
    });
  }

  /**
   * Descriptors of face crops, each an (H, W, 3) pixel tensor: padded to a centred square and resized to 150 as
   * face-api's computeFaceDescriptor does (NetInput.toBatchTensor(150, true)) → (N, 128).
   */
  describe(crops: readonly Tensor[]): Tensor {
    if (crops.length === 0) throw new Error("FaceRecognitionNet.describe: no face crops given");
    return tidy(() => this.forward(cat(crops.map((c) => toBatchTensor(c, FACE_DESCRIPTOR_SIZE, true)), 0)));
  }
}

/** conv (stride, padding) + bias → × scale weights + scale biases → ReLU (faceRecognitionNet/convLayer.ts). */
function convLayer(x: Tensor, p: ConvScale, stride: number, padding: "same" | "valid", relu: boolean): Tensor {
  const out = mulChannels(addChannels(tfConv2d(x, p.filters, stride, padding), p.bias), p.scaleWeights);
  const scaled = addChannels(out, p.scaleBiases);
  return relu ? scaled.relu() : scaled;
}

/** relu(conv2(conv1(x)) + x). */
function residual(x: Tensor, conv1: ConvScale, conv2: ConvScale): Tensor {
  const out = convLayer(convLayer(x, conv1, 1, "same", true), conv2, 1, "same", false);
  return out.add(x).relu();
}

/** The down block: conv 3×3/2 "valid" path beside a 2×2 average pool with zero channels appended. */
function residualDown(x: Tensor, conv1: ConvScale, conv2: ConvScale): Tensor {
  let out = convLayer(convLayer(x, conv1, 2, "valid", true), conv2, 1, "same", false);
  let pooled = avgPoolValid(x, 2, 2);
  if (pooled.size(2) !== out.size(2) || pooled.size(3) !== out.size(3)) {
    // face-api appends one zero row, then one zero column, to the conv path.
    out = pad(out, [0, 1, 0, 1]);
  }
  if (pooled.size(1) !== out.size(1)) pooled = cat([pooled, zerosLike(pooled)], 1);
  return pooled.add(out).relu();
}
