/**
 * Exponential moving average of parameters (Polyak averaging), as diffusers' EMAModel with its default
 * warm-up: at update n ≥ 1 the decay is min(maxDecay, (1 + n) / (10 + n)) (0 at the first), and every shadow tensor moves towards
 * its parameter by (1 − decay). Diffusion models are sampled from the averaged weights: they are much
 * smoother than the last step's.
 */
import { noGrad } from "../autograd.js";
import { keep } from "../lifetime.js";
import type { Tensor } from "../tensor.js";

export class ExponentialMovingAverage {
  readonly shadow: Tensor[];
  /** Updates taken (diffusers' optimization_step). */
  updates = 0;

  constructor(readonly parameters: readonly Tensor[], readonly maxDecay = 0.9999) {
    this.shadow = noGrad(() => parameters.map((p) => keep(p.detach().clone())));
  }

  /** The decay the next update uses: 0 for the first (the shadow becomes the parameters), as diffusers. */
  get decay(): number {
    return this.updates === 0 ? 0 : Math.min(this.maxDecay, (1 + this.updates) / (10 + this.updates));
  }

  update(): void {
    const weight = 1 - this.decay;
    noGrad(() => this.parameters.forEach((p, i) => this.shadow[i]!.lerp_(p, weight)));
    this.updates += 1;
  }

  /** Copies the averaged weights into the parameters (for saving or sampling). */
  copyTo(targets: readonly Tensor[] = this.parameters): void {
    if (targets.length !== this.shadow.length) throw new Error(`EMA holds ${this.shadow.length} tensors, asked to copy into ${targets.length}`);
    noGrad(() => targets.forEach((t, i) => t.copy_(this.shadow[i]!)));
  }

  /** Overwrites the shadow weights (resuming from a checkpoint). */
  load(shadow: readonly Tensor[], updates: number): void {
    this.copyFrom(shadow);
    this.updates = updates;
  }

  private copyFrom(source: readonly Tensor[]): void {
    if (source.length !== this.shadow.length) throw new Error(`EMA holds ${this.shadow.length} tensors, got ${source.length} to load`);
    noGrad(() => source.forEach((s, i) => {
      if (s.shape.join() !== this.shadow[i]!.shape.join()) throw new Error(`EMA tensor ${i}: shape [${s.shape.join(", ")}] does not match [${this.shadow[i]!.shape.join(", ")}]`);
      this.shadow[i]!.copy_(s);
    }));
  }

  dispose(): void {
    for (const t of this.shadow) t.dispose();
  }
}
