/**
 * Weight initialisation, as torch.nn.init.
 *
 * Each function fills a tensor in place (without autograd) and returns it. The bounds and standard
 * deviations are computed with exactly PyTorch's formulas, in the same order of floating-point operations,
 * and the random draws are the same single `uniform_` / `normal_` call on the same generator, so after
 * `manualSeed(s)` a layer gets bit-identical weights to the PyTorch layer built after `torch.manual_seed(s)`.
 */
import { noGrad } from "../autograd.js";
import type { Generator } from "../random.js";
import type { Tensor } from "../tensor.js";

export type Nonlinearity =
  | "linear" | "conv1d" | "conv2d" | "conv3d" | "conv_transpose1d" | "conv_transpose2d" | "conv_transpose3d"
  | "sigmoid" | "tanh" | "relu" | "leaky_relu" | "selu";

/** The recommended gain for a nonlinearity (torch.nn.init.calculate_gain); `param` is leaky_relu's slope. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear": case "conv1d": case "conv2d": case "conv3d":
    case "conv_transpose1d": case "conv_transpose2d": case "conv_transpose3d": case "sigmoid":
      return 1;
    case "tanh":
      return 5.0 / 3;
    case "relu":
      return Math.sqrt(2.0);
    case "leaky_relu": {
      const slope = param ?? 0.01;
      return Math.sqrt(2.0 / (1 + slope * slope));
    }
    case "selu":
      return 3.0 / 4;
    default:
      throw new Error(`unsupported nonlinearity '${String(nonlinearity)}'`);
  }
}

/**
 * fan_in and fan_out of a weight: for (out, in, *kernel) the receptive field (product of the kernel dims)
 * times in and out channels respectively (torch.nn.init._calculate_fan_in_and_fan_out).
 */
export function calculateFanInAndFanOut(tensor: Tensor): { fanIn: number; fanOut: number } {
  const shape = tensor.shape;
  if (shape.length < 2) throw new Error("fan in and fan out cannot be computed for a tensor with fewer than 2 dimensions");
  const receptiveField = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1]! * receptiveField, fanOut: shape[0]! * receptiveField };
}

function correctFan(tensor: Tensor, mode: "fan_in" | "fan_out"): number {
  const { fanIn, fanOut } = calculateFanInAndFanOut(tensor);
  return mode === "fan_in" ? fanIn : fanOut;
}

/** Tensors with a zero-sized dim are left alone, as in PyTorch (which warns). */
const isEmpty = (tensor: Tensor): boolean => tensor.shape.includes(0);

export function uniform_(tensor: Tensor, low = 0, high = 1, generator?: Generator): Tensor {
  return noGrad(() => tensor.uniform_(low, high, generator));
}

export function normal_(tensor: Tensor, mean = 0, std = 1, generator?: Generator): Tensor {
  return noGrad(() => tensor.normal_(mean, std, generator));
}

export function constant_(tensor: Tensor, value: number): Tensor {
  return noGrad(() => tensor.fill_(value));
}
export function zeros_(tensor: Tensor): Tensor {
  return noGrad(() => tensor.zero_());
}
export function ones_(tensor: Tensor): Tensor {
  return noGrad(() => tensor.fill_(1));
}

export interface KaimingOptions {
  /** Negative slope of the rectifier after this layer (leaky_relu); Linear and Conv use sqrt(5). */
  a?: number;
  mode?: "fan_in" | "fan_out";
  nonlinearity?: Nonlinearity;
  generator?: Generator;
}

/** U(-bound, bound) with bound = sqrt(3) · gain / sqrt(fan) (He et al. 2015; torch.nn.init.kaiming_uniform_). */
export function kaimingUniform_(tensor: Tensor, options: KaimingOptions = {}): Tensor {
  if (isEmpty(tensor)) return tensor;
  const fan = correctFan(tensor, options.mode ?? "fan_in");
  const gain = calculateGain(options.nonlinearity ?? "leaky_relu", options.a ?? 0);
  const std = gain / Math.sqrt(fan);
  const bound = Math.sqrt(3.0) * std;
  return uniform_(tensor, -bound, bound, options.generator);
}

/** N(0, std²) with std = gain / sqrt(fan) (torch.nn.init.kaiming_normal_). */
export function kaimingNormal_(tensor: Tensor, options: KaimingOptions = {}): Tensor {
  if (isEmpty(tensor)) return tensor;
  const fan = correctFan(tensor, options.mode ?? "fan_in");
  const gain = calculateGain(options.nonlinearity ?? "leaky_relu", options.a ?? 0);
  const std = gain / Math.sqrt(fan);
  return normal_(tensor, 0, std, options.generator);
}

/** U(-a, a) with a = gain · sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010; torch.nn.init.xavier_uniform_). */
export function xavierUniform_(tensor: Tensor, gain = 1, generator?: Generator): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(tensor);
  const std = gain * Math.sqrt(2.0 / (fanIn + fanOut));
  const a = Math.sqrt(3.0) * std;
  return uniform_(tensor, -a, a, generator);
}

/** N(0, std²) with std = gain · sqrt(2 / (fan_in + fan_out)) (torch.nn.init.xavier_normal_). */
export function xavierNormal_(tensor: Tensor, gain = 1, generator?: Generator): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(tensor);
  const std = gain * Math.sqrt(2.0 / (fanIn + fanOut));
  return normal_(tensor, 0, std, generator);
}

/**
 * PyTorch's default initialisation of Linear and Conv layers: kaiming_uniform_(a=sqrt(5)) for the weight
 * (U(±1/sqrt(fan_in))), then U(±1/sqrt(fan_in)) for the bias. The weight is drawn first (RNG order matters).
 */
export function defaultLayerInit_(weight: Tensor, bias: Tensor | null): void {
  kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const { fanIn } = calculateFanInAndFanOut(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound);
  }
}
