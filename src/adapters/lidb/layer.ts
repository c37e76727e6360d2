/**
 * LidbLinear: the Lightweight DreamBooth adapter of one Linear layer (paper §4.1).
 *
 * For a PyTorch-convention weight W of shape (out, in) = (n, m), y = x Wᵀ + bias, LiDB adds
 *
 *       ΔW    =    A_aux    ·    A_train    ·    B_train    ·    B_aux
 *      (n×m)        (n×a)          (a×r)           (r×b)          (b×m)
 *                   frozen       trainable       trainable       frozen
 *                 orthonormal    zero at init    small random   orthonormal
 *                   columns                       at init          rows
 *                 └──── lora_B = up (n×r) ────┘ └──── lora_A = down (r×m) ───┘
 *
 * with the paper's a=100, b=50, r=1 by default (all three configurable).
 *
 * In LoRA terms (lora_B/up (n×r) · lora_A/down (r×m)): up = A_aux·A_train and down = B_train·B_aux, exactly;
 * that is how LiDB files export to standard LoRA files (src/adapters/export.ts). The forward never builds ΔW: it
 * runs right to left on the activations, x·B_auxᵀ·B_trainᵀ·A_trainᵀ·A_auxᵀ (four thin matmuls).
 *
 * Initialisation: A_train = 0 and B_train ~ U(±1/√b) (LoRA's init of its down factor, fan-in b), drawn from a
 * deterministic stream of (seed, layer name). So ΔW = 0 at the start but the gradient of A_train is not
 * (prior-art mistake 2: with both factors zero, nothing trains).
 *
 * Per-sample factors: `setBatchedFactors(aTrain [B, a, r], bTrain [B, r, b])` makes sample i of the batch use
 * its own factors in one forward pass (many identities per batch; a hypernetwork's predictions, with
 * gradients flowing back into it). The tensors are used as given (not copied) until `clearBatchedFactors()`.
 *
 * The bases come from src/adapters/lidb/aux-bases.ts (float32, device- and dtype-independent); the adapter keeps them
 * and the factors in its compute dtype (the base weight's by default) on the base weight's device.
 */
import { linear, matmul, noGrad, tensor, tidy, type DType, type Tensor } from "../../engine/index.js";
import { Module, type Buffer, type Parameter } from "../../engine/nn/index.js";
import type { Linear, LinearAdapter } from "../../engine/nn/linear.js";
import type { AuxBases } from "./aux-bases.js";
import type { LidbDimensions } from "./config.js";
import { addToWeight } from "../weight-delta.js";

export interface LidbLinearOptions extends LidbDimensions {
  /** The layer's bases (from buildAuxBases), float32. */
  bases: AuxBases;
  /** B_train's initial values, float32 (r×b), from the injection's deterministic stream. */
  bTrainInit: Float32Array;
  /** Dtype of the bases, factors and delta computation (default: the base weight's). */
  dtype?: DType;
}

export class LidbLinear extends Module implements LinearAdapter {
  /** (n, a), frozen: orthonormal columns (see aux-bases.ts). A non-persistent buffer. */
  readonly aAux: Buffer;
  /** (b, m), frozen: orthonormal rows. */
  readonly bAux: Buffer;
  /** (a, r), trainable; zero at initialisation. */
  readonly aTrain: Parameter;
  /** (r, b), trainable; small random at initialisation. */
  readonly bTrain: Parameter;
  readonly dims: LidbDimensions;
  readonly #base: Linear;
  #scale = 1;
  #merged = false;
  #batched: { aTrain: Tensor; bTrain: Tensor } | null = null;

  constructor(base: Linear, options: LidbLinearOptions) {
    super();
    const { a, b, rank } = options;
    const n = base.outFeatures;
    const m = base.inFeatures;
    if (options.bases.aAux.length !== n * a || options.bases.bAux.length !== b * m) {
      throw new Error(`LidbLinear: bases of ${options.bases.aAux.length} and ${options.bases.bAux.length} values do not fit a (${n}, ${m}) weight with a=${a}, b=${b}`);
    }
    if (options.bTrainInit.length !== rank * b) throw new Error(`LidbLinear: B_train needs ${rank * b} initial values, got ${options.bTrainInit.length}`);
    this.dims = { a, b, rank };
    this.#base = base;
    const where = { dtype: options.dtype ?? base.weight.dtype, device: base.weight.device };
    const upload = (values: Float32Array, shape: number[]): Tensor => tidy(() => tensor(values, { shape, dtype: "float32" }).to(where));
    using aAux = upload(options.bases.aAux, [n, a]);
    using bAux = upload(options.bases.bAux, [b, m]);
    using aTrain = upload(new Float32Array(a * rank), [a, rank]);
    using bTrain = upload(options.bTrainInit, [rank, b]);
    this.aAux = this.registerBuffer("a_aux", aAux, { persistent: false });
    this.bAux = this.registerBuffer("b_aux", bAux, { persistent: false });
    this.aTrain = this.registerParameter("a_train", aTrain);
    this.bTrain = this.registerParameter("b_train", bTrain);
  }

  /** The layer this adapter belongs to. */
  get base(): Linear {
    return this.#base;
  }

  /** The compute dtype (of the bases and factors). */
  get dtype(): DType {
    return this.aTrain.dtype;
  }

  /** A multiplier on ΔW (1 by default; generation weights). Cannot change while merged. */
  get scale(): number {
    return this.#scale;
  }
  set scale(value: number) {
    if (!Number.isFinite(value)) throw new RangeError(`LiDB scale must be a finite number, got ${value}`);
    if (this.#merged) throw new Error("LidbLinear: unmerge before changing the scale");
    this.#scale = value;
  }

  get merged(): boolean {
    return this.#merged;
  }

  get hasBatchedFactors(): boolean {
    return this.#batched !== null;
  }

  delta(input: Tensor): Tensor | null {
    if (this.#merged) return null;
    return tidy(() => {
      const x = input.dtype === this.dtype ? input : input.to(this.dtype);
      const projected = linear(x, this.bAux);
      const out = this.#batched
        ? this.#batchedCore(projected, input.shape)
        : linear(linear(linear(projected, this.bTrain), this.aTrain), this.aAux);
      const scaled = this.#scale === 1 ? out : out.mul(this.#scale);
      return x === input ? scaled : scaled.to(input.dtype);
    });
  }

  /** (B, …, b) → (B, …, n) with sample i's own B_train and A_train. */
  #batchedCore(projected: Tensor, inputShape: readonly number[]): Tensor {
    const { aTrain, bTrain } = this.#batched!;
    const batch = inputShape[0];
    if (projected.ndim < 2 || batch !== aTrain.size(0)) {
      throw new Error(`LidbLinear: the per-sample factors are for a batch of ${aTrain.size(0)}, but the layer input has shape [${inputShape.join(", ")}]`);
    }
    const tokens = projected.reshape(batch, -1, this.dims.b);
    const toDtype = (t: Tensor): Tensor => (t.dtype === this.dtype ? t : t.to(this.dtype));
    const low = tokens.matmul(toDtype(bTrain).transpose(1, 2)).matmul(toDtype(aTrain).transpose(1, 2));
    return linear(low, this.aAux).reshape(...inputShape.slice(0, -1), this.aAux.size(0));
  }

  /** Copies factors (any dtype/device) into A_train (a, r) and B_train (r, b), without autograd. */
  setFactors(aTrain: Tensor, bTrain: Tensor): void {
    if (this.#merged) throw new Error("LidbLinear: unmerge before setting the factors");
    checkShape("A_train", aTrain.shape, [this.dims.a, this.dims.rank]);
    checkShape("B_train", bTrain.shape, [this.dims.rank, this.dims.b]);
    noGrad(() => {
      this.aTrain.copy_(aTrain);
      this.bTrain.copy_(bTrain);
    });
  }

  /**
   * Per-sample factors aTrain (B, a, r) and bTrain (B, r, b), used as given until clearBatchedFactors():
   * gradients flow into whatever produced them. The layer input's first dim must be B.
   */
  setBatchedFactors(aTrain: Tensor, bTrain: Tensor): void {
    if (this.#merged) throw new Error("LidbLinear: per-sample factors cannot be used while the adapter is merged");
    const batch = aTrain.shape[0] ?? 0;
    checkShape("batched A_train", aTrain.shape, [batch, this.dims.a, this.dims.rank]);
    checkShape("batched B_train", bTrain.shape, [batch, this.dims.rank, this.dims.b]);
    this.#batched = { aTrain, bTrain };
  }

  clearBatchedFactors(): void {
    this.#batched = null;
  }

  /** up = A_aux·A_train (n, r) and down = B_train·B_aux (r, m) in float32: the exact LoRA factors of ΔW. */
  loraFactors(): { up: Tensor; down: Tensor } {
    return noGrad(() => tidy(() => ({
      up: matmul(this.aAux.float(), this.aTrain.float()),
      down: matmul(this.bTrain.float(), this.bAux.float()),
    })));
  }

  /** ΔW (n, m) in float32, times the scale. */
  deltaWeight(): Tensor {
    return noGrad(() => tidy(() => {
      const { up, down } = this.loraFactors();
      const delta = up.matmul(down);
      return this.#scale === 1 ? delta : delta.mul(this.#scale);
    }));
  }

  /**
   * Adds ΔW into the base weight; the forward then skips the adapter. The factors and the scale are frozen
   * until unmerge(), which recomputes the same ΔW and subtracts it (no copy of the weight is kept).
   */
  merge(): void {
    if (this.#merged) return;
    if (this.#batched) throw new Error("LidbLinear: clear the per-sample factors before merging");
    addToWeight(this.#base, this.deltaWeight(), 1);
    this.#merged = true;
  }

  /** Subtracts what merge() added: exact up to the float rounding of the base weight's dtype. */
  unmerge(): void {
    if (!this.#merged) return;
    addToWeight(this.#base, this.deltaWeight(), -1);
    this.#merged = false;
  }

  override dispose(): void {
    this.#batched = null;
    super.dispose();
  }
}

function checkShape(what: string, actual: readonly number[], expected: readonly number[]): void {
  if (actual.length !== expected.length || actual.some((n, i) => n !== expected[i])) {
    throw new Error(`LiDB ${what} must have shape [${expected.join(", ")}], got [${actual.join(", ")}]`);
  }
}
