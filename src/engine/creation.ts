/** Creating tensors: from JS data, constants, ranges and random distributions (torch.* factories). */
import { op } from "./dispatch.js";
import { dtypeBytes, dtypeCode, type DType, type TypedArray } from "./dtype.js";
import { native } from "./native/addon.js";
import type { Generator } from "./random.js";
import { call, Tensor, type Device } from "./tensor.js";

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}
export interface RandomOptions extends TensorOptions {
  generator?: Generator;
}

const ops = {
  empty: op("aten::empty.memory_format"),
  zeros: op("aten::zeros"),
  ones: op("aten::ones"),
  full: op("aten::full"),
  arange: op("aten::arange.start_step"),
  linspace: op("aten::linspace"),
  eye: op("aten::eye"),
  randn: op("aten::randn.generator"),
  rand: op("aten::rand.generator"),
  randint: op("aten::randint.low_generator"),
  multinomial: op("aten::multinomial"),
  normal: op("aten::normal.float_float"),
  zerosLike: op("aten::zeros_like"),
  onesLike: op("aten::ones_like"),
  fullLike: op("aten::full_like"),
  randnLike: op("aten::randn_like"),
  randLike: op("aten::rand_like"),
};

function checkShape(shape: readonly number[]): number[] {
  for (const n of shape) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`invalid shape [${shape.join(", ")}]: sizes must be integers >= 0`);
  }
  return [...shape];
}

function finish(tensor: Tensor, options: TensorOptions): Tensor {
  if (options.requiresGrad) tensor.requiresGrad = true;
  return tensor;
}

const dt = (options: TensorOptions): number | null => (options.dtype ? dtypeCode(options.dtype) : null);
const dev = (options: TensorOptions): string | null => options.device ?? null;

export function empty(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return finish(call(ops.empty, checkShape(shape), dt(options), null, dev(options)), options);
}
export function zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return finish(call(ops.zeros, checkShape(shape), dt(options), null, dev(options)), options);
}
export function ones(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return finish(call(ops.ones, checkShape(shape), dt(options), null, dev(options)), options);
}
export function full(shape: readonly number[], value: number | boolean, options: TensorOptions = {}): Tensor {
  return finish(call(ops.full, checkShape(shape), value, dt(options), null, dev(options)), options);
}
/** Values start, start+step, ... below end (torch.arange). Integer arguments give int64, as in PyTorch. */
export function arange(start: number, end?: number, step = 1, options: TensorOptions = {}): Tensor {
  const [from, to] = end === undefined ? [0, start] : [start, end];
  return finish(call(ops.arange, from, to, step, dt(options), null, dev(options)), options);
}
export function linspace(start: number, end: number, steps: number, options: TensorOptions = {}): Tensor {
  return finish(call(ops.linspace, start, end, steps, dt(options), null, dev(options)), options);
}
export function eye(n: number, options: TensorOptions = {}): Tensor {
  return finish(call(ops.eye, n, dt(options), null, dev(options)), options);
}
/** Standard normal samples; with a generator, exactly torch.randn(shape, generator=g). */
export function randn(shape: readonly number[], options: RandomOptions = {}): Tensor {
  return finish(call(ops.randn, checkShape(shape), options.generator?.id ?? null, dt(options), null, dev(options)), options);
}
export function rand(shape: readonly number[], options: RandomOptions = {}): Tensor {
  return finish(call(ops.rand, checkShape(shape), options.generator?.id ?? null, dt(options), null, dev(options)), options);
}
/**
 * `numSamples` indices drawn from each row of `weights` (1-D or 2-D, non-negative, not necessarily summing to
 * one), as torch.multinomial: int64, with or without replacement.
 */
export function multinomial(weights: Tensor, numSamples: number, options: { replacement?: boolean; generator?: Generator } = {}): Tensor {
  if (!Number.isInteger(numSamples) || numSamples < 1) throw new RangeError(`multinomial: numSamples must be a positive integer, got ${numSamples}`);
  return call(ops.multinomial, weights, numSamples, options.replacement ?? false, options.generator?.id ?? null);
}
/** Integers in [low, high), int64 by default. */
export function randint(low: number, high: number, shape: readonly number[], options: RandomOptions = {}): Tensor {
  // The schema's default dtype is int64, but an explicit None would mean the default float dtype.
  return call(ops.randint, low, high, checkShape(shape), options.generator?.id ?? null, dt(options) ?? dtypeCode("int64"), null, dev(options));
}
export function normal(mean: number, std: number, shape: readonly number[], options: RandomOptions = {}): Tensor {
  return finish(call(ops.normal, mean, std, checkShape(shape), options.generator?.id ?? null, dt(options), null, dev(options)), options);
}
export function zerosLike(like: Tensor, options: TensorOptions = {}): Tensor {
  return finish(call(ops.zerosLike, like, dt(options), null, dev(options)), options);
}
export function onesLike(like: Tensor, options: TensorOptions = {}): Tensor {
  return finish(call(ops.onesLike, like, dt(options), null, dev(options)), options);
}
export function fullLike(like: Tensor, value: number, options: TensorOptions = {}): Tensor {
  return finish(call(ops.fullLike, like, value, dt(options), null, dev(options)), options);
}
export function randnLike(like: Tensor, options: TensorOptions = {}): Tensor {
  return finish(call(ops.randnLike, like, dt(options), null, dev(options)), options);
}
export function randLike(like: Tensor, options: TensorOptions = {}): Tensor {
  return finish(call(ops.randLike, like, dt(options), null, dev(options)), options);
}

/** A CPU tensor holding a copy of raw little-endian bytes (one copy). */
export function fromBytes(bytes: ArrayBufferView | ArrayBuffer, dtype: DType, shape: readonly number[]): Tensor {
  const numel = checkShape(shape).reduce((a, b) => a * b, 1);
  const length = bytes.byteLength;
  if (numel * dtypeBytes[dtype] !== length) {
    throw new RangeError(`${length} bytes do not hold a ${dtype} tensor of shape [${shape.join(", ")}] (${numel * dtypeBytes[dtype]} bytes)`);
  }
  return new Tensor(native.fromBytes(bytes, dtypeCode(dtype), shape));
}

/**
 * An ArrayBuffer over a contiguous CPU tensor's own memory: writing into it writes the tensor (used to read
 * files straight into tensors). The buffer keeps the memory alive while it is reachable.
 */
export function memoryView(tensor: Tensor): ArrayBuffer {
  return native.memoryView(tensor.handle);
}

type Nested = number | boolean | Nested[];

function inferDType(data: TypedArray | Nested): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Int16Array) return "int16";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint8Array) return "uint8";
  if (data instanceof BigInt64Array) return "int64";
  return "float32";
}

function flatten(data: Nested, shape: number[], out: number[], depth: number): void {
  if (Array.isArray(data)) {
    if (shape.length <= depth) shape.push(data.length);
    else if (shape[depth] !== data.length) throw new RangeError(`ragged nested array: length ${data.length} at depth ${depth}, expected ${shape[depth]}`);
    for (const item of data) flatten(item, shape, out, depth + 1);
  } else {
    if (depth !== shape.length) throw new RangeError("ragged nested array: a number where an array was expected");
    if (typeof data !== "number" && typeof data !== "boolean") throw new TypeError(`tensor data must be numbers, got ${typeof data}`);
    out.push(Number(data));
  }
}

/**
 * A tensor from nested arrays or a typed array (torch.tensor). Nested numbers default to float32; typed
 * arrays keep their element type; `shape` is needed for typed arrays that are not 1-D.
 */
export function tensor(data: TypedArray | Nested, options: TensorOptions & { shape?: readonly number[] } = {}): Tensor {
  let values: TypedArray;
  let shape: number[];
  if (ArrayBuffer.isView(data)) {
    values = data;
    shape = options.shape ? [...options.shape] : [data.length];
  } else {
    const flat: number[] = [];
    shape = [];
    flatten(data, shape, flat, 0);
    values = new Float64Array(flat);
    if (options.shape) shape = [...options.shape];
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel !== values.length) throw new RangeError(`shape [${shape.join(", ")}] needs ${numel} values, got ${values.length}`);
  const sourceDType: DType = ArrayBuffer.isView(data) ? inferDType(data) : "float64";
  const target = options.dtype ?? inferDType(data);
  const view = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  let result = fromBytes(view, sourceDType, shape);
  if (sourceDType !== target || (options.device && options.device !== "cpu")) {
    const moved = result.to({ dtype: target, device: options.device ?? "cpu" });
    result.dispose();
    result = moved;
  }
  return finish(result, options);
}

/** A 0-d tensor holding one number. */
export function scalarTensor(value: number, options: TensorOptions = {}): Tensor {
  return full([], value, { dtype: "float32", ...options });
}
