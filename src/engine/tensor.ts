/**
 * Tensor: a typed, PyTorch-like handle on a libtorch tensor.
 *
 * Every method is one ATen operator called through the dispatcher (dispatch.ts), so results and gradients
 * are PyTorch's own. Tensors are immutable in shape; in-place methods end in `_` and return `this`.
 * This file is long because it is the whole method surface of one class; free functions (cat, conv2d, ...)
 * live in functional.ts and creation routines in creation.ts.
 */
import { checkBackwardGuards } from "./backward-guards.js";
import { op, type Operator } from "./dispatch.js";
import { dtypeCode, dtypeFromCode, isFloatingDType, type DType, type TypedArray } from "./dtype.js";
import { track, untrack } from "./lifetime.js";
import { native, type Handle, type NativeValue } from "./native/addon.js";

export type Device = string;
/** A value accepted where PyTorch takes a Tensor or a Python number. */
export type TensorOrScalar = Tensor | number | boolean;
/** Operator arguments: tensors are passed by handle, arrays of tensors element-wise. */
export type OpArg = Tensor | NativeValue | readonly (Tensor | null)[];

/** An index for `Tensor.index`: an integer, a slice, null (the whole dim), "..." or an index tensor. */
export type IndexSpec = number | { start?: number; end?: number; step?: number } | null | "..." | Tensor;

export class Tensor {
  #handle: Handle;
  #info: [number, string, number[], boolean] | undefined;
  kept = false;

  /** Wraps a handle the caller owns; the tensor is tracked by the current `tidy` scope. */
  constructor(handle: Handle) {
    this.#handle = handle;
    track(this, handle);
  }

  get handle(): Handle {
    if (this.#handle < 0) throw new Error("this tensor was disposed and cannot be used any more");
    return this.#handle;
  }

  get disposed(): boolean {
    return this.#handle < 0;
  }

  /** Frees the native tensor now. Safe to call twice. */
  dispose(): void {
    if (this.#handle >= 0) {
      native.free(this.#handle);
      untrack(this);
      this.#handle = -1;
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private get meta(): [number, string, number[], boolean] {
    return (this.#info ??= native.info(this.handle));
  }

  get shape(): readonly number[] {
    return this.meta[2];
  }
  get dtype(): DType {
    return dtypeFromCode(this.meta[0]);
  }
  get device(): Device {
    return this.meta[1];
  }
  get ndim(): number {
    return this.meta[2].length;
  }
  get numel(): number {
    return this.meta[2].reduce((a, b) => a * b, 1);
  }
  size(dim: number): number {
    const shape = this.shape;
    const d = dim < 0 ? dim + shape.length : dim;
    const n = shape[d];
    if (n === undefined) throw new RangeError(`dim ${dim} out of range for a tensor of shape [${shape.join(", ")}]`);
    return n;
  }

  // ---- autograd ------------------------------------------------------------------------------------

  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  set requiresGrad(value: boolean) {
    native.setRequiresGrad(this.handle, value);
  }
  requiresGrad_(value = true): this {
    this.requiresGrad = value;
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  /** Name of the autograd node that produced this tensor (e.g. "AddBackward0"), or null for leaves. */
  get gradFn(): string | null {
    return native.gradFn(this.handle);
  }
  /** The accumulated gradient, as a new handle on the same storage (dispose it or use tidy). */
  get grad(): Tensor | null {
    const handle = native.getGrad(this.handle);
    return handle === null ? null : new Tensor(handle);
  }
  set grad(value: Tensor | null) {
    native.setGrad(this.handle, value ? value.handle : null);
  }
  backward(gradient?: Tensor, options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    checkBackwardGuards();
    native.backward([this.handle], [gradient ? gradient.handle : null], options.retainGraph ?? null, options.createGraph ?? false);
  }
  detach(): Tensor {
    return call(ops.detach, this);
  }

  // ---- conversion ----------------------------------------------------------------------------------

  /** `to(dtype)`, `to(device)` or `to({ dtype, device })`, as Tensor.to in PyTorch. */
  to(target: DType | Device | { dtype?: DType; device?: Device; copy?: boolean }): Tensor {
    const spec = typeof target === "string" ? (isDType(target) ? { dtype: target } : { device: target }) : target;
    return call(ops.to, this, spec.dtype === undefined ? null : dtypeCode(spec.dtype), null, spec.device ?? null, null, false, spec.copy ?? false);
  }
  float(): Tensor {
    return this.to("float32");
  }
  half(): Tensor {
    return this.to("float16");
  }
  bfloat16(): Tensor {
    return this.to("bfloat16");
  }
  long(): Tensor {
    return this.to("int64");
  }
  cpu(): Tensor {
    return this.to("cpu");
  }
  clone(): Tensor {
    return call(ops.clone, this);
  }
  contiguous(): Tensor {
    return call(ops.contiguous, this);
  }

  /** The only element as a JS number (or boolean for bool tensors). */
  item(): number {
    return ops.item.call(this.handle) as number;
  }

  /** A copy of the elements in a typed array (float16/bfloat16 are widened to float32). */
  data(): TypedArray {
    const dtype = this.dtype;
    if (dtype === "float16" || dtype === "bfloat16") {
      using wide = this.to("float32");
      return wide.data();
    }
    const bytes = native.toBytes(this.handle);
    switch (dtype) {
      case "float32": return new Float32Array(bytes);
      case "float64": return new Float64Array(bytes);
      case "int64": return new BigInt64Array(bytes);
      case "int32": return new Int32Array(bytes);
      case "int16": return new Int16Array(bytes);
      case "int8": return new Int8Array(bytes);
      default: return new Uint8Array(bytes);
    }
  }

  /** Raw little-endian bytes of the elements, in this tensor's dtype. */
  bytes(): Uint8Array {
    return new Uint8Array(native.toBytes(this.handle));
  }

  /** Nested JS arrays of numbers (int64 as numbers; beyond 2^53 precision is lost). */
  toArray(): unknown {
    const flat = Array.from(this.data() as ArrayLike<number | bigint>, (v) => (typeof v === "bigint" ? Number(v) : v));
    const shape = this.shape;
    if (shape.length === 0) return flat[0];
    const build = (dim: number, offset: number): unknown => {
      const n = shape[dim]!;
      if (dim === shape.length - 1) return flat.slice(offset, offset + n);
      const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: n }, (_, i) => build(dim + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  toString(): string {
    return `Tensor(shape=[${this.shape.join(", ")}], dtype=${this.dtype}, device=${this.device}${this.requiresGrad ? ", requiresGrad" : ""})`;
  }

  // ---- arithmetic (broadcasting, with autograd) -----------------------------------------------------

  add(other: TensorOrScalar, alpha = 1): Tensor {
    return other instanceof Tensor ? call(ops.add, this, other, alpha) : call(ops.addScalar, this, other, alpha);
  }
  sub(other: TensorOrScalar, alpha = 1): Tensor {
    return other instanceof Tensor ? call(ops.sub, this, other, alpha) : call(ops.subScalar, this, other, alpha);
  }
  /** other - this, for a number other. */
  rsub(other: number): Tensor {
    return call(ops.rsubScalar, this, other);
  }
  mul(other: TensorOrScalar): Tensor {
    return other instanceof Tensor ? call(ops.mul, this, other) : call(ops.mulScalar, this, other);
  }
  /** Division; roundingMode "trunc" or "floor" as in torch.div. */
  div(other: TensorOrScalar, roundingMode?: "trunc" | "floor"): Tensor {
    if (roundingMode) {
      return other instanceof Tensor ? call(ops.divMode, this, other, roundingMode) : call(ops.divScalarMode, this, other, roundingMode);
    }
    return other instanceof Tensor ? call(ops.div, this, other) : call(ops.divScalar, this, other);
  }
  pow(exponent: TensorOrScalar): Tensor {
    return exponent instanceof Tensor ? call(ops.powTensor, this, exponent) : call(ops.powScalar, this, exponent);
  }
  remainder(other: TensorOrScalar): Tensor {
    return other instanceof Tensor ? call(ops.remainder, this, other) : call(ops.remainderScalar, this, other);
  }
  matmul(other: Tensor): Tensor {
    return call(ops.matmul, this, other);
  }
  neg(): Tensor {
    return call(ops.neg, this);
  }
  reciprocal(): Tensor {
    return call(ops.reciprocal, this);
  }
  square(): Tensor {
    return call(ops.square, this);
  }
  lerp(end: Tensor, weight: TensorOrScalar): Tensor {
    return weight instanceof Tensor ? call(ops.lerpTensor, this, end, weight) : call(ops.lerp, this, end, weight);
  }

  // ---- comparison and selection --------------------------------------------------------------------

  eq(other: TensorOrScalar): Tensor {
    return other instanceof Tensor ? call(ops.eq, this, other) : call(ops.eqScalar, this, other);
  }
  ne(other: TensorOrScalar): Tensor {
    return other instanceof Tensor ? call(ops.ne, this, other) : call(ops.neScalar, this, other);
  }
  lt(other: TensorOrScalar): Tensor {
    return other instanceof Tensor ? call(ops.lt, this, other) : call(ops.ltScalar, this, other);
  }
  le(other: TensorOrScalar): Tensor {
    return other instanceof Tensor ? call(ops.le, this, other) : call(ops.leScalar, this, other);
  }
  gt(other: TensorOrScalar): Tensor {
    return other instanceof Tensor ? call(ops.gt, this, other) : call(ops.gtScalar, this, other);
  }
  ge(other: TensorOrScalar): Tensor {
    return other instanceof Tensor ? call(ops.ge, this, other) : call(ops.geScalar, this, other);
  }
  logicalNot(): Tensor {
    return call(ops.logicalNot, this);
  }
  logicalAnd(other: Tensor): Tensor {
    return call(ops.logicalAnd, this, other);
  }
  logicalOr(other: Tensor): Tensor {
    return call(ops.logicalOr, this, other);
  }
  any(): Tensor {
    return call(ops.any, this);
  }
  all(): Tensor {
    return call(ops.all, this);
  }
  /** Elements where mask is true are replaced by value. */
  maskedFill(mask: Tensor, value: TensorOrScalar): Tensor {
    return value instanceof Tensor ? call(ops.maskedFillTensor, this, mask, value) : call(ops.maskedFill, this, mask, value);
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return call(ops.clamp, this, min ?? null, max ?? null);
  }
  isFinite(): Tensor {
    return call(ops.isfinite, this);
  }

  // ---- elementwise functions -------------------------------------------------------------------------

  abs(): Tensor { return call(ops.abs, this); }
  exp(): Tensor { return call(ops.exp, this); }
  log(): Tensor { return call(ops.log, this); }
  log1p(): Tensor { return call(ops.log1p, this); }
  expm1(): Tensor { return call(ops.expm1, this); }
  sqrt(): Tensor { return call(ops.sqrt, this); }
  rsqrt(): Tensor { return call(ops.rsqrt, this); }
  sin(): Tensor { return call(ops.sin, this); }
  cos(): Tensor { return call(ops.cos, this); }
  tanh(): Tensor { return call(ops.tanh, this); }
  sigmoid(): Tensor { return call(ops.sigmoid, this); }
  relu(): Tensor { return call(ops.relu, this); }
  silu(): Tensor { return call(ops.silu, this); }
  erf(): Tensor { return call(ops.erf, this); }
  sign(): Tensor { return call(ops.sign, this); }
  floor(): Tensor { return call(ops.floor, this); }
  ceil(): Tensor { return call(ops.ceil, this); }
  round(): Tensor { return call(ops.round, this); }
  /** GELU, exact ("none") or the tanh approximation. */
  gelu(approximate: "none" | "tanh" = "none"): Tensor {
    return call(ops.gelu, this, approximate);
  }
  softmax(dim: number, dtype?: DType): Tensor {
    return call(ops.softmax, this, dim, dtype ? dtypeCode(dtype) : null);
  }
  logSoftmax(dim: number, dtype?: DType): Tensor {
    return call(ops.logSoftmax, this, dim, dtype ? dtypeCode(dtype) : null);
  }

  // ---- reductions ---------------------------------------------------------------------------------------

  sum(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? call(ops.sumAll, this) : call(ops.sum, this, dim, keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? call(ops.meanAll, this) : call(ops.mean, this, dim, keepdim);
  }
  /** Variance with Bessel's correction by default (correction=1), as torch.var. */
  var(dim?: number | number[], options: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return call(ops.var, this, dim ?? null, options.correction ?? 1, options.keepdim ?? false);
  }
  std(dim?: number | number[], options: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return call(ops.std, this, dim ?? null, options.correction ?? 1, options.keepdim ?? false);
  }
  prod(): Tensor {
    return call(ops.prod, this);
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return call(ops.logsumexp, this, dim, keepdim);
  }
  /** Maximum of all elements. */
  max(): Tensor {
    return call(ops.maxAll, this);
  }
  /** Maximum along a dim, with its indices. */
  maxAlong(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = callMany(ops.maxDim, this, dim, keepdim);
    return { values: values!, indices: indices! };
  }
  min(): Tensor {
    return call(ops.minAll, this);
  }
  minAlong(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = callMany(ops.minDim, this, dim, keepdim);
    return { values: values!, indices: indices! };
  }
  amax(dim: number | number[], keepdim = false): Tensor {
    return call(ops.amax, this, dim, keepdim);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return call(ops.argmax, this, dim ?? null, keepdim);
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return call(ops.argmin, this, dim ?? null, keepdim);
  }
  /** Vector p-norm over dims (all elements by default), as torch.linalg.vector_norm. */
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor {
    return call(ops.vectorNorm, this, p, dim ?? null, keepdim);
  }
  cumsum(dim: number): Tensor {
    return call(ops.cumsum, this, dim);
  }
  topk(k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
    const [values, indices] = callMany(ops.topk, this, k, dim, largest, sorted);
    return { values: values!, indices: indices! };
  }
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = callMany(ops.sort, this, dim, descending);
    return { values: values!, indices: indices! };
  }

  // ---- shape and views ------------------------------------------------------------------------------

  reshape(...shape: number[]): Tensor {
    return call(ops.reshape, this, shape);
  }
  view(...shape: number[]): Tensor {
    return call(ops.view, this, shape);
  }
  permute(...dims: number[]): Tensor {
    return call(ops.permute, this, dims);
  }
  transpose(dim0: number, dim1: number): Tensor {
    return call(ops.transpose, this, dim0, dim1);
  }
  /** Transpose of the last two dims. */
  mT(): Tensor {
    return this.transpose(-2, -1);
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return call(ops.flatten, this, startDim, endDim);
  }
  unflatten(dim: number, sizes: number[]): Tensor {
    return call(ops.unflatten, this, dim, sizes);
  }
  squeeze(dim?: number | number[]): Tensor {
    return dim === undefined ? call(ops.squeezeAll, this) : call(ops.squeezeDims, this, typeof dim === "number" ? [dim] : dim);
  }
  unsqueeze(dim: number): Tensor {
    return call(ops.unsqueeze, this, dim);
  }
  expand(...shape: number[]): Tensor {
    return call(ops.expand, this, shape);
  }
  expandAs(other: Tensor): Tensor {
    return this.expand(...other.shape);
  }
  repeat(...repeats: number[]): Tensor {
    return call(ops.repeat, this, repeats);
  }
  /** Splits into pieces of `size` (a number) or of the given sizes along dim. */
  split(size: number | number[], dim = 0): Tensor[] {
    return typeof size === "number" ? callMany(ops.split, this, size, dim) : callMany(ops.splitWithSizes, this, size, dim);
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return callMany(ops.chunk, this, chunks, dim);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return call(ops.narrow, this, dim, start, length);
  }
  /** Elements start..end (exclusive) with step along dim; negative start/end count from the end. */
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
    return call(ops.slice, this, dim, start ?? null, end ?? null, step);
  }
  /** The elements in reverse order along each of dims (a copy), as torch.flip. */
  flip(...dims: number[]): Tensor {
    return call(ops.flip, this, dims);
  }
  /** The sub-tensor at `index` along dim (the dim is removed); negative indices count from the end. */
  select(dim: number, index: number): Tensor {
    return call(ops.select, this, dim, index);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return call(ops.indexSelect, this, dim, index);
  }
  gather(dim: number, index: Tensor): Tensor {
    return call(ops.gather, this, dim, index);
  }
  /**
   * NumPy/PyTorch-style indexing: `x.index(0, null, { start: 1, end: -1 }, "...")` is `x[0, :, 1:-1, ...]`.
   * Integer tensors (or bool masks) index as advanced indices via aten::index. A negative slice step
   * walks backwards as in NumPy (`{ step: -1 }` is `[::-1]`; PyTorch itself rejects negative steps).
   */
  index(...specs: IndexSpec[]): Tensor {
    const ellipsis = specs.indexOf("...");
    if (ellipsis !== specs.lastIndexOf("...")) throw new Error("index: at most one '...' is allowed");
    const consuming = specs.filter((s) => s !== "...").length;
    if (consuming > this.ndim) throw new RangeError(`index: ${consuming} indices for a tensor of ${this.ndim} dims`);
    const expanded: IndexSpec[] = [];
    for (const spec of specs) {
      if (spec === "...") for (let i = 0; i < this.ndim - consuming; i++) expanded.push(null);
      else expanded.push(spec);
    }
    // `result` is undefined while nothing was applied yet (then the answer is an alias of this tensor).
    let result: Tensor | undefined;
    const advanced: (Tensor | null)[] = [];
    let dim = 0;
    const replace = (next: Tensor): void => {
      result?.dispose();
      result = next;
    };
    for (const spec of expanded) {
      const current = result ?? this;
      if (typeof spec === "number") {
        replace(current.select(dim, spec));
      } else if (spec === null) {
        advanced.push(null);
        dim++;
      } else if (spec instanceof Tensor) {
        advanced.push(spec);
        dim++;
      } else if (typeof spec === "object") {
        const step = spec.step ?? 1;
        replace(step < 0 ? reverseSlice(current, dim, spec.start, spec.end, step) : current.slice(dim, spec.start ?? null, spec.end ?? null, step));
        advanced.push(null);
        dim++;
      }
    }
    if (advanced.some((t) => t !== null)) replace(call(ops.index, result ?? this, advanced));
    return result ?? this.alias();
  }
  /** A new handle on the same tensor (same storage, same autograd identity). */
  alias(): Tensor {
    return call(ops.alias, this);
  }

  // ---- in place (used by optimisers, initialisers and weight merging) --------------------------------

  add_(other: TensorOrScalar, alpha = 1): this {
    if (other instanceof Tensor) ops.add_.run(this.handle, other.handle, alpha);
    else ops.addScalar_.run(this.handle, other, alpha);
    return this;
  }
  sub_(other: TensorOrScalar, alpha = 1): this {
    if (other instanceof Tensor) ops.sub_.run(this.handle, other.handle, alpha);
    else ops.subScalar_.run(this.handle, other, alpha);
    return this;
  }
  mul_(other: TensorOrScalar): this {
    if (other instanceof Tensor) ops.mul_.run(this.handle, other.handle);
    else ops.mulScalar_.run(this.handle, other);
    return this;
  }
  div_(other: TensorOrScalar): this {
    if (other instanceof Tensor) ops.div_.run(this.handle, other.handle);
    else ops.divScalar_.run(this.handle, other);
    return this;
  }
  zero_(): this {
    ops.zero_.run(this.handle);
    return this;
  }
  fill_(value: number): this {
    ops.fill_.run(this.handle, value);
    return this;
  }
  copy_(source: Tensor): this {
    ops.copy_.run(this.handle, source.handle);
    return this;
  }
  clamp_(min?: number | null, max?: number | null): this {
    ops.clamp_.run(this.handle, min ?? null, max ?? null);
    return this;
  }
  sqrt_(): this {
    ops.sqrt_.run(this.handle);
    return this;
  }
  lerp_(end: Tensor, weight: number): this {
    ops.lerp_.run(this.handle, end.handle, weight);
    return this;
  }
  /** this += value * t1 * t2 */
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this {
    ops.addcmul_.run(this.handle, t1.handle, t2.handle, value);
    return this;
  }
  /** this += value * t1 / t2 */
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this {
    ops.addcdiv_.run(this.handle, t1.handle, t2.handle, value);
    return this;
  }
  uniform_(from = 0, to = 1, generator?: { id: number }): this {
    ops.uniform_.run(this.handle, from, to, generator ? generator.id : null);
    return this;
  }
  normal_(mean = 0, std = 1, generator?: { id: number }): this {
    ops.normal_.run(this.handle, mean, std, generator ? generator.id : null);
    return this;
  }
}

/** x[start:end:step] along dim for a negative step, with NumPy's (Python's slice.indices) semantics. */
function reverseSlice(x: Tensor, dim: number, start: number | undefined, end: number | undefined, step: number): Tensor {
  const n = x.size(dim);
  // Start defaults to the last element and end to "before the first" (-1); both clamp to [-1, n - 1].
  const first = start === undefined ? n - 1 : start < 0 ? Math.max(start + n, -1) : Math.min(start, n - 1);
  const last = end === undefined ? -1 : end < 0 ? Math.max(end + n, -1) : Math.min(end, n - 1);
  // Element i of the flipped tensor is element n - 1 - i of x.
  using flipped = x.flip(dim);
  return flipped.slice(dim, n - 1 - first, n - 1 - last, -step);
}

function isDType(value: string): value is DType {
  try {
    dtypeCode(value as DType);
    return true;
  } catch {
    return false;
  }
}

function unwrap(arg: OpArg): NativeValue {
  if (arg instanceof Tensor) return arg.handle;
  if (Array.isArray(arg)) return arg.map((a: OpArg) => (a instanceof Tensor ? a.handle : (a as NativeValue)));
  return arg as NativeValue;
}

// The hot path of every operator: unwrap in place (no extra arrays) and call the addon directly.
function callNative(operator: Operator, wantResult: boolean, args: OpArg[]): NativeValue {
  for (let i = 0; i < args.length; i++) args[i] = unwrap(args[i]);
  return native.call(operator.nativeId, wantResult, ...(args as NativeValue[]));
}

/** Calls an operator that returns one tensor. */
export function call(operator: Operator, ...args: OpArg[]): Tensor {
  const handle = callNative(operator, true, args);
  if (typeof handle !== "number") throw new Error(`${operator.qualifiedName} did not return a single tensor`);
  return new Tensor(handle);
}

/** Calls an operator that returns several tensors (a tuple or a Tensor[]). */
export function callMany(operator: Operator, ...args: OpArg[]): Tensor[] {
  const handles = callNative(operator, true, args);
  if (!Array.isArray(handles)) throw new Error(`${operator.qualifiedName} did not return a list of tensors`);
  return handles.map((h) => new Tensor(h as Handle));
}

/** Runs an operator for its side effect (in place). */
export function callInPlace(operator: Operator, ...args: OpArg[]): void {
  callNative(operator, false, args);
}

export function isTensor(value: unknown): value is Tensor {
  return value instanceof Tensor;
}

export function assertFloating(tensor: Tensor, what: string): void {
  if (!isFloatingDType(tensor.dtype)) throw new TypeError(`${what} needs a floating-point tensor, got ${tensor.dtype}`);
}

const ops = {
  detach: op("aten::detach"),
  alias: op("aten::alias"),
  to: op("aten::to.dtype_layout"),
  clone: op("aten::clone"),
  contiguous: op("aten::contiguous"),
  item: op("aten::item"),
  add: op("aten::add.Tensor"), addScalar: op("aten::add.Scalar"),
  sub: op("aten::sub.Tensor"), subScalar: op("aten::sub.Scalar"), rsubScalar: op("aten::rsub.Scalar"),
  mul: op("aten::mul.Tensor"), mulScalar: op("aten::mul.Scalar"),
  div: op("aten::div.Tensor"), divScalar: op("aten::div.Scalar"),
  divMode: op("aten::div.Tensor_mode"), divScalarMode: op("aten::div.Scalar_mode"),
  powTensor: op("aten::pow.Tensor_Tensor"), powScalar: op("aten::pow.Tensor_Scalar"),
  remainder: op("aten::remainder.Tensor"), remainderScalar: op("aten::remainder.Scalar"),
  matmul: op("aten::matmul"), neg: op("aten::neg"), reciprocal: op("aten::reciprocal"), square: op("aten::square"),
  lerp: op("aten::lerp.Scalar"), lerpTensor: op("aten::lerp.Tensor"),
  eq: op("aten::eq.Tensor"), eqScalar: op("aten::eq.Scalar"), ne: op("aten::ne.Tensor"), neScalar: op("aten::ne.Scalar"),
  lt: op("aten::lt.Tensor"), ltScalar: op("aten::lt.Scalar"), le: op("aten::le.Tensor"), leScalar: op("aten::le.Scalar"),
  gt: op("aten::gt.Tensor"), gtScalar: op("aten::gt.Scalar"), ge: op("aten::ge.Tensor"), geScalar: op("aten::ge.Scalar"),
  logicalNot: op("aten::logical_not"), logicalAnd: op("aten::logical_and"), logicalOr: op("aten::logical_or"),
  any: op("aten::any"), all: op("aten::all"),
  maskedFill: op("aten::masked_fill.Scalar"), maskedFillTensor: op("aten::masked_fill.Tensor"),
  clamp: op("aten::clamp"), isfinite: op("aten::isfinite"),
  abs: op("aten::abs"), exp: op("aten::exp"), log: op("aten::log"), log1p: op("aten::log1p"), expm1: op("aten::expm1"),
  sqrt: op("aten::sqrt"), rsqrt: op("aten::rsqrt"), sin: op("aten::sin"), cos: op("aten::cos"), tanh: op("aten::tanh"),
  sigmoid: op("aten::sigmoid"), relu: op("aten::relu"), silu: op("aten::silu"), erf: op("aten::erf"),
  sign: op("aten::sign"), floor: op("aten::floor"), ceil: op("aten::ceil"), round: op("aten::round"),
  gelu: op("aten::gelu"), softmax: op("aten::softmax.int"), logSoftmax: op("aten::log_softmax.int"),
  sumAll: op("aten::sum"), sum: op("aten::sum.dim_IntList"), meanAll: op("aten::mean"), mean: op("aten::mean.dim"),
  var: op("aten::var.correction"), std: op("aten::std.correction"), prod: op("aten::prod"),
  logsumexp: op("aten::logsumexp"),
  maxAll: op("aten::max"), maxDim: op("aten::max.dim"), minAll: op("aten::min"), minDim: op("aten::min.dim"),
  amax: op("aten::amax"), argmax: op("aten::argmax"), argmin: op("aten::argmin"),
  vectorNorm: op("aten::linalg_vector_norm"), cumsum: op("aten::cumsum"), topk: op("aten::topk"), sort: op("aten::sort"),
  reshape: op("aten::reshape"), view: op("aten::view"), permute: op("aten::permute"), transpose: op("aten::transpose.int"),
  flatten: op("aten::flatten.using_ints"), unflatten: op("aten::unflatten.int"),
  squeezeAll: op("aten::squeeze"), squeezeDims: op("aten::squeeze.dims"), unsqueeze: op("aten::unsqueeze"),
  expand: op("aten::expand"), repeat: op("aten::repeat"),
  split: op("aten::split.Tensor"), splitWithSizes: op("aten::split_with_sizes"), chunk: op("aten::chunk"),
  narrow: op("aten::narrow"), slice: op("aten::slice.Tensor"), select: op("aten::select.int"),
  indexSelect: op("aten::index_select"), gather: op("aten::gather"), index: op("aten::index.Tensor"), flip: op("aten::flip"),
  add_: op("aten::add_.Tensor"), addScalar_: op("aten::add_.Scalar"), sub_: op("aten::sub_.Tensor"), subScalar_: op("aten::sub_.Scalar"),
  mul_: op("aten::mul_.Tensor"), mulScalar_: op("aten::mul_.Scalar"), div_: op("aten::div_.Tensor"), divScalar_: op("aten::div_.Scalar"),
  zero_: op("aten::zero_"), fill_: op("aten::fill_.Scalar"), copy_: op("aten::copy_"), clamp_: op("aten::clamp_"),
  sqrt_: op("aten::sqrt_"), lerp_: op("aten::lerp_.Scalar"), addcmul_: op("aten::addcmul_"), addcdiv_: op("aten::addcdiv_"),
  uniform_: op("aten::uniform_"), normal_: op("aten::normal_"),
};
