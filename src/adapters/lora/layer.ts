/**
 * LoraLinear: a plain LoRA adapter of one Linear layer (Hu et al. 2021), as peft computes it:
 *
 *     y = base(x) + lora_B(lora_A(x)) · scaling,      scaling = alpha / rank
 *
 * with lora_A (rank, in) ("down" in kohya files) and lora_B (out, rank) ("up"). peft's initialisation:
 * lora_A ~ kaiming_uniform(a=√5) = U(±1/√in), lora_B = 0, so ΔW = 0 at the start while lora_B's gradient is
 * not. Used as the DreamBooth-LoRA baseline, for the rank-relaxed fine-tuning of paper §4.3 (a fresh LoRA on
 * top of the merged LiDB prediction), and to apply LoRA files at generation (with a user weight, `scale`).
 */
import { linear, noGrad, tidy, type DType, type Tensor } from "../../engine/index.js";
import { Module, type Parameter } from "../../engine/nn/index.js";
import type { Linear, LinearAdapter } from "../../engine/nn/linear.js";
import { addToWeight } from "../weight-delta.js";

export interface LoraLinearOptions {
  /** Initial lora_A (rank, in) and lora_B (out, rank), any dtype/device; the rank is lora_A's rows. */
  down: Tensor;
  up: Tensor;
  /** scaling = alpha / rank; default alpha = rank (scaling 1). */
  alpha?: number;
  /** Dtype of the factors and the delta computation (default: the base weight's). */
  dtype?: DType;
}

export class LoraLinear extends Module implements LinearAdapter {
  /** (rank, in): peft's lora_A.weight, kohya's lora_down.weight. */
  readonly loraA: Parameter;
  /** (out, rank): peft's lora_B.weight, kohya's lora_up.weight. */
  readonly loraB: Parameter;
  readonly rank: number;
  readonly alpha: number;
  readonly #base: Linear;
  #scale = 1;
  #merged = false;

  constructor(base: Linear, options: LoraLinearOptions) {
    super();
    const rank = options.down.shape[0] ?? 0;
    if (options.down.ndim !== 2 || options.down.shape[1] !== base.inFeatures || rank < 1) {
      throw new Error(`LoraLinear: lora_A must have shape [rank, ${base.inFeatures}], got [${options.down.shape.join(", ")}]`);
    }
    if (options.up.ndim !== 2 || options.up.shape[0] !== base.outFeatures || options.up.shape[1] !== rank) {
      throw new Error(`LoraLinear: lora_B must have shape [${base.outFeatures}, ${rank}], got [${options.up.shape.join(", ")}]`);
    }
    const alpha = options.alpha ?? rank;
    if (!Number.isFinite(alpha)) throw new RangeError(`LoRA alpha must be a finite number, got ${alpha}`);
    this.rank = rank;
    this.alpha = alpha;
    this.#base = base;
    const where = { dtype: options.dtype ?? base.weight.dtype, device: base.weight.device };
    using down = noGrad(() => options.down.to({ ...where, copy: true }));
    using up = noGrad(() => options.up.to({ ...where, copy: true }));
    this.loraA = this.registerParameter("lora_A", down);
    this.loraB = this.registerParameter("lora_B", up);
  }

  get base(): Linear {
    return this.#base;
  }

  get dtype(): DType {
    return this.loraA.dtype;
  }

  /** alpha / rank. */
  get scaling(): number {
    return this.alpha / this.rank;
  }

  /** A user multiplier on ΔW (a LoRA's weight at generation); 1 by default. Cannot change while merged. */
  get scale(): number {
    return this.#scale;
  }
  set scale(value: number) {
    if (!Number.isFinite(value)) throw new RangeError(`LoRA scale must be a finite number, got ${value}`);
    if (this.#merged) throw new Error("LoraLinear: unmerge before changing the scale");
    this.#scale = value;
  }

  get merged(): boolean {
    return this.#merged;
  }

  delta(input: Tensor): Tensor | null {
    if (this.#merged) return null;
    return tidy(() => {
      const x = input.dtype === this.dtype ? input : input.to(this.dtype);
      const out = linear(linear(x, this.loraA), this.loraB).mul(this.scaling * this.#scale);
      return x === input ? out : out.to(input.dtype);
    });
  }

  /** Copies factors (any dtype/device) into lora_A (rank, in) and lora_B (out, rank), without autograd. */
  setFactors(down: Tensor, up: Tensor): void {
    if (this.#merged) throw new Error("LoraLinear: unmerge before setting the factors");
    for (const [what, actual, expected] of [["lora_A", down, this.loraA], ["lora_B", up, this.loraB]] as const) {
      if (actual.shape.join() !== expected.shape.join()) throw new Error(`LoRA ${what} must have shape [${expected.shape.join(", ")}], got [${actual.shape.join(", ")}]`);
    }
    noGrad(() => {
      this.loraA.copy_(down);
      this.loraB.copy_(up);
    });
  }

  /** ΔW = lora_B · lora_A · scaling · scale, (out, in) in float32. */
  deltaWeight(): Tensor {
    return noGrad(() => tidy(() => this.loraB.float().matmul(this.loraA.float()).mul(this.scaling * this.#scale)));
  }

  /** Adds ΔW into the base weight; unmerge() subtracts the same ΔW (factors and scale are frozen meanwhile). */
  merge(): void {
    if (this.#merged) return;
    addToWeight(this.#base, this.deltaWeight(), 1);
    this.#merged = true;
  }

  unmerge(): void {
    if (!this.#merged) return;
    addToWeight(this.#base, this.deltaWeight(), -1);
    this.#merged = false;
  }
}
