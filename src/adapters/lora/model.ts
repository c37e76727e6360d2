/**
 * Putting LoRA adapters into a UNet and a text encoder (peft's LoraModel): fresh ones to train (the
 * DreamBooth-LoRA baseline, the rank-relaxed fine-tuning of paper §4.3), or weights from a LoRA file to apply.
 */
import type { DType } from "../../engine/index.js";
import { Generator, noGrad, tidy, zeros } from "../../engine/index.js";
import { init } from "../../engine/nn/index.js";
import { AdapterSet, attach, namedTargets } from "../adapter-set.js";
import { seedText } from "../lidb/aux-bases.js";
import { checkDimensions } from "../lidb/config.js";
import { selectAttentionTargets, type AdaptedModels, type LinearTarget } from "../targets.js";
import type { LoraLayerWeights, LoraOptions } from "./config.js";
import { LoraLinear } from "./layer.js";

/** The LoRA adapters of a pair of models (see injectLora, applyLora). */
export class LoraAdapters extends AdapterSet<LoraLinear> {
  constructor(name: string, entries: [LinearTarget, LoraLinear][]) {
    super(name, entries);
  }

  /**
   * Copies of every layer's factors (float32, on the adapters' device) and alpha, by layer name. Copies even when
   * the factors are float32 already, where `.float()` would hand back the parameter itself (as PyTorch's does): a
   * caller that kept that alias would see every later change of the adapters (DreamBooth-LoRA's initial factors did).
   */
  getFactors(): Map<string, LoraLayerWeights> {
    return noGrad(() => tidy(() => new Map(this.entries().map(([target, adapter]) => [target.name, {
      down: adapter.loraA.to({ dtype: "float32", copy: true }), up: adapter.loraB.to({ dtype: "float32", copy: true }), alpha: adapter.alpha,
    }]))));
  }

  /** Copies factors into the layers named in `weights` (each must have an adapter; shapes must match). */
  setFactors(weights: Map<string, Pick<LoraLayerWeights, "down" | "up">>): void {
    for (const [layerName, { down, up }] of weights) this.adapter(layerName).setFactors(down, up);
  }
}

/** Puts a fresh LoRA (peft's init: lora_A kaiming-uniform, lora_B zero) on every selected attention projection. */
export function injectLora(models: AdaptedModels, options: LoraOptions = {}): LoraAdapters {
  const rank = options.rank ?? 4;
  checkDimensions({ rank }, "LoRA");
  const name = options.name ?? "lora";
  const targets = options.layers ? namedTargets(models, options.layers) : selectAttentionTargets(models, options.targets);
  if (targets.length === 0) throw new Error("injectLora: no target layers (give a UNet and/or text encoder, and check the target selection)");
  const generator = new Generator("cpu", BigInt(seedText(options.seed ?? 0)));
  const entries = attach(name, targets, (target) => tidy(() => {
    const down = init.kaimingUniform_(zeros([rank, target.layer.inFeatures], { dtype: "float32" }), { a: Math.sqrt(5), generator });
    const up = zeros([target.layer.outFeatures, rank], { dtype: "float32" });
    return new LoraLinear(target.layer, { down, up, ...(options.alpha === undefined ? {} : { alpha: options.alpha }), ...(options.dtype ? { dtype: options.dtype } : {}) });
  }));
  return new LoraAdapters(name, entries);
}

/**
 * Applies LoRA weights (from a file: src/adapters/lora/file.ts) to the layers they name: any Linear of the UNet
 * or text encoder, by full layer name. `scale` multiplies every ΔW (the LoRA's weight at generation).
 */
export function applyLora(models: AdaptedModels, weights: Map<string, LoraLayerWeights>, options: { name?: string; scale?: number; dtype?: DType } = {}): LoraAdapters {
  const name = options.name ?? "lora";
  const targets = namedTargets(models, [...weights.keys()]);
  const entries = attach(name, targets, (target) => {
    const w = weights.get(target.name)!;
    return new LoraLinear(target.layer, { down: w.down, up: w.up, ...(w.alpha === undefined ? {} : { alpha: w.alpha }), ...(options.dtype ? { dtype: options.dtype } : {}) });
  });
  const adapters = new LoraAdapters(name, entries);
  if (options.scale !== undefined) adapters.setScale(options.scale);
  return adapters;
}

