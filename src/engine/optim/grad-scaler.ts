/**
 * GradScaler: dynamic loss scaling for float16 training (torch.amp.GradScaler).
 *
 * Why: float16 gradients of small magnitude underflow to zero. Multiplying the loss by a large scale S
 * before backward keeps them representable; the gradients are divided by S again (`unscale_`) before the
 * optimiser uses them. If any gradient overflowed (inf/NaN), that step is skipped and S is halved; after
 * `growthInterval` consecutive good steps S is doubled, so S tracks the largest safe value.
 *
 * The bookkeeping runs in ATen's own kernels (`_amp_foreach_non_finite_check_and_unscale_`,
 * `_amp_update_scale_`) on the scale's device, so it behaves exactly as PyTorch's and does not sync a GPU
 * except where PyTorch does (deciding whether to step).
 *
 * Use:
 *     const loss = scaler.scale(computeLoss());  loss.backward();
 *     scaler.unscale_(optimizer);  clipGradNorm_(params, 1.0);   // optional, to work on true gradients
 *     scaler.step(optimizer);  scaler.update();
 */
import { noGrad } from "../autograd.js";
import { full } from "../creation.js";
import { op } from "../dispatch.js";
import { keep, tidy } from "../lifetime.js";
import { callInPlace, Tensor } from "../tensor.js";
import type { BaseHyperParameters, Optimizer } from "./optimizer.js";

const unscaleOp = op("aten::_amp_foreach_non_finite_check_and_unscale_");
const updateScaleOp = op("aten::_amp_update_scale_");

export interface GradScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
  /** When false every method is a pass-through (scale() returns its input as a new handle). */
  enabled?: boolean;
}

export interface GradScalerState {
  scale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  growthTracker: number;
}

type AnyOptimizer = Optimizer<BaseHyperParameters>;

/** Where each optimizer is in the current iteration; found-inf flags are per device. */
interface OptimizerStage {
  stage: "unscaled" | "stepped";
  foundInfPerDevice: Map<string, Tensor>;
}

export class GradScaler {
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly enabled: boolean;
  #initScale: number;
  #initGrowthTracker = 0;
  #scale: Tensor | null = null;
  #growthTracker: Tensor | null = null;
  #stages = new Map<AnyOptimizer, OptimizerStage>();

  constructor(options: GradScalerOptions = {}) {
    this.#initScale = options.initScale ?? 2 ** 16;
    this.growthFactor = options.growthFactor ?? 2.0;
    this.backoffFactor = options.backoffFactor ?? 0.5;
    this.growthInterval = options.growthInterval ?? 2000;
    this.enabled = options.enabled ?? true;
    if (!(this.growthFactor > 1)) throw new RangeError("growthFactor must be > 1");
    if (!(this.backoffFactor < 1)) throw new RangeError("backoffFactor must be < 1");
  }

  /** The scale and growth tracker live on the device of the first scaled loss. */
  #lazyInit(device: string): Tensor {
    if (!this.#scale) {
      this.#scale = keep(full([], this.#initScale, { dtype: "float32", device }));
      this.#growthTracker = keep(full([], this.#initGrowthTracker, { dtype: "int32", device }));
    }
    return this.#scale;
  }

  /** loss × scale (a new tensor, recorded by autograd). */
  scale(loss: Tensor): Tensor {
    if (!this.enabled) return loss.alias();
    const scale = this.#lazyInit(loss.device);
    using onDevice = scale.to(loss.device);
    return loss.mul(onDevice);
  }

  /**
   * Divides the optimizer's gradients by the scale in place and records whether any is inf/NaN.
   * Call at most once per optimizer between `update()`s, and only after all gradients are accumulated.
   */
  unscale_(optimizer: AnyOptimizer): void {
    if (!this.enabled) return;
    const scale = this.#requireScale("unscale_");
    const existing = this.#stages.get(optimizer);
    if (existing?.stage === "unscaled") throw new Error("unscale_() has already been called on this optimizer since the last update()");
    if (existing?.stage === "stepped") throw new Error("unscale_() is being called after step()");
    const foundInfPerDevice = new Map<string, Tensor>();
    noGrad(() => tidy(() => {
      const groups = new Map<string, Tensor[]>();
      for (const group of optimizer.paramGroups) {
        for (const param of group.params) {
          const grad = param.grad;
          if (!grad) continue;
          if (grad.dtype === "float16") {
            throw new Error("attempting to unscale float16 gradients: keep the parameters (and so the gradients) in float32");
          }
          const key = `${grad.device}|${grad.dtype}`;
          const list = groups.get(key);
          if (list) list.push(grad);
          else groups.set(key, [grad]);
        }
      }
      // The reciprocal is taken in double precision, as PyTorch does, then rounded to float32.
      const inverseScale = scale.to("float64").reciprocal().to("float32");
      for (const grads of groups.values()) {
        const device = grads[0]!.device;
        let foundInf = foundInfPerDevice.get(device);
        if (!foundInf) {
          foundInf = keep(full([], 0.0, { dtype: "float32", device }));
          foundInfPerDevice.set(device, foundInf);
        }
        callInPlace(unscaleOp, grads, foundInf, inverseScale.to(device));
      }
    }));
    this.#stages.set(optimizer, { stage: "unscaled", foundInfPerDevice });
  }

  /**
   * Unscales (unless `unscale_` was called) and runs `optimizer.step()` only if every gradient is finite.
   * Returns whether the optimizer stepped.
   */
  step(optimizer: AnyOptimizer): boolean {
    if (!this.enabled) {
      optimizer.step();
      return true;
    }
    this.#requireScale("step");
    if (this.#stages.get(optimizer)?.stage === "stepped") throw new Error("step() has already been called since the last update()");
    if (!this.#stages.has(optimizer)) this.unscale_(optimizer);
    const state = this.#stages.get(optimizer)!;
    if (state.foundInfPerDevice.size === 0) throw new Error("no inf checks were recorded for this optimizer: did any parameter get a gradient?");
    const found = [...state.foundInfPerDevice.values()].reduce((total, flag) => total + flag.item(), 0);
    const stepped = found === 0;
    if (stepped) optimizer.step();
    state.stage = "stepped";
    return stepped;
  }

  /**
   * Adjusts the scale for the next iteration: × backoffFactor if any optimizer saw inf/NaN this iteration,
   * × growthFactor after growthInterval clean iterations in a row; or sets it to `newScale`.
   */
  update(newScale?: number): void {
    if (!this.enabled) return;
    const scale = this.#requireScale("update");
    noGrad(() => {
      if (newScale !== undefined) {
        scale.fill_(newScale);
        return;
      }
      const flags = [...this.#stages.values()].flatMap((state) => [...state.foundInfPerDevice.values()]);
      if (flags.length === 0) throw new Error("no inf checks were recorded prior to update()");
      using combined = flags[0]!.to({ device: scale.device, copy: true });
      for (const flag of flags.slice(1)) {
        using moved = flag.to(scale.device);
        combined.add_(moved);
      }
      callInPlace(updateScaleOp, scale, this.#growthTracker!, combined, this.growthFactor, this.backoffFactor, this.growthInterval);
    });
    this.#resetStages();
  }

  #resetStages(): void {
    for (const state of this.#stages.values()) for (const flag of state.foundInfPerDevice.values()) flag.dispose();
    this.#stages.clear();
  }

  #requireScale(method: string): Tensor {
    if (!this.#scale) throw new Error(`${method}() was called before scale(): the scale is created by the first scale(loss)`);
    return this.#scale;
  }

  /** The current scale (the initial one before the first `scale()`; 1 when disabled). */
  getScale(): number {
    if (!this.enabled) return 1;
    return this.#scale ? this.#scale.item() : this.#initScale;
  }

  /** Consecutive clean steps since the last growth or backoff. */
  getGrowthTracker(): number {
    return this.#growthTracker ? this.#growthTracker.item() : this.#initGrowthTracker;
  }

  stateDict(): GradScalerState {
    return {
      scale: this.getScale(), growthFactor: this.growthFactor, backoffFactor: this.backoffFactor,
      growthInterval: this.growthInterval, growthTracker: this.getGrowthTracker(),
    };
  }

  /** Restores the scale and growth tracker (the factors and interval are this scaler's own). */
  loadStateDict(state: GradScalerState): void {
    this.#initScale = state.scale;
    this.#initGrowthTracker = state.growthTracker;
    this.#scale?.fill_(state.scale);
    this.#growthTracker?.fill_(state.growthTracker);
  }

  /** Frees the scale, tracker and pending flags. */
  dispose(): void {
    this.#resetStages();
    this.#scale?.dispose();
    this.#growthTracker?.dispose();
    this.#scale = null;
    this.#growthTracker = null;
  }
}
