/**
 * What every set of injected adapters shares (LiDB's and LoRA's, as peft's BaseTuner does): the targets and
 * their adapters, parameters, scaling, merging and removal; and the two helpers that put adapters on layers.
 * How adapters are injected, and the rules for moving and freezing models around them: see lidb/model.ts.
 */
import type { DType, Device } from "../engine/index.js";
import type { Parameter } from "../engine/nn/index.js";
import type { LidbLinear } from "./lidb/layer.js";
import type { LoraLinear } from "./lora/layer.js";
import { linearLayers, targetShapes, type AdaptedModels, type LinearTarget, type TargetShape } from "./targets.js";

/** What a set of adapters shares: targets, adapters, parameters, merging and removal. */
export abstract class AdapterSet<A extends LidbLinear | LoraLinear> {
  readonly #entries: [LinearTarget, A][];
  #removed = false;

  protected constructor(readonly name: string, entries: [LinearTarget, A][]) {
    this.#entries = entries;
  }

  /** The adapted layers in order ("unet.…", "text_encoder.…"). */
  get layerNames(): string[] {
    return this.#entries.map(([target]) => target.name);
  }
  get targets(): LinearTarget[] {
    return this.#entries.map(([target]) => target);
  }
  /** Layer names with their (out, in) weight shapes. */
  get targetShapes(): TargetShape[] {
    return targetShapes(this.targets);
  }
  get size(): number {
    return this.#entries.length;
  }

  /** The adapter of one layer, by full layer name. */
  adapter(layerName: string): A {
    const entry = this.#entries.find(([target]) => target.name === layerName);
    if (!entry) throw new Error(`no ${this.name} adapter on layer '${layerName}'`);
    return entry[1];
  }
  adapters(): A[] {
    return this.#entries.map(([, adapter]) => adapter);
  }
  entries(): [LinearTarget, A][] {
    return [...this.#entries];
  }

  /** "<layer name>.<adapter name>.<param>" → parameter, in layer order. */
  namedParameters(): [string, Parameter][] {
    return this.#entries.flatMap(([target, adapter]) => adapter.namedParameters().map(([key, p]) => [`${target.name}.${this.name}.${key}`, p] as [string, Parameter]));
  }
  /** The trainable factors, for an optimiser. */
  trainableParameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }
  /** Number of trainable values. */
  get trainableCount(): number {
    return this.trainableParameters().reduce((total, p) => total + p.numel, 0);
  }

  /** Multiplies every ΔW by `scale` (a generation weight); not while merged. */
  setScale(scale: number): void {
    for (const adapter of this.adapters()) adapter.scale = scale;
  }

  /** Adds every ΔW into its base weight (generation without adapter overhead). */
  merge(): void {
    this.#checkLive();
    for (const adapter of this.adapters()) adapter.merge();
  }
  unmerge(): void {
    this.#checkLive();
    for (const adapter of this.adapters()) adapter.unmerge();
  }
  get merged(): boolean {
    return this.adapters().some((adapter) => adapter.merged);
  }

  /** Moves/casts the adapters (bases and factors) like Module.to. */
  to(target: Device | DType | { device?: Device; dtype?: DType }): this {
    for (const adapter of this.adapters()) adapter.to(target);
    return this;
  }

  /** Takes the adapters out of the layers (unmerging first); the models are as before injection. */
  remove(): void {
    if (this.#removed) return;
    for (const [target, adapter] of this.#entries) {
      adapter.unmerge();
      target.layer.removeAdapter(this.name);
    }
    this.#removed = true;
  }

  /** remove(), then frees the adapters' tensors. */
  dispose(): void {
    this.remove();
    for (const adapter of this.adapters()) adapter.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #checkLive(): void {
    if (this.#removed) throw new Error(`the ${this.name} adapters were removed`);
  }
}

/** Creates and adds one adapter per target; on any failure, takes out and frees what was added. */
export function attach<A extends LidbLinear | LoraLinear>(name: string, targets: LinearTarget[], create: (target: LinearTarget) => A): [LinearTarget, A][] {
  const entries: [LinearTarget, A][] = [];
  try {
    for (const target of targets) {
      if (target.layer.adapters().some(([existing]) => existing === name)) {
        throw new Error(`layer ${target.name} already has an adapter named '${name}' (remove it first, or choose another name)`);
      }
      const adapter = create(target);
      try {
        target.layer.addAdapter(name, adapter);
      } catch (error) {
        adapter.dispose();
        throw error;
      }
      entries.push([target, adapter]);
    }
  } catch (error) {
    for (const [target, adapter] of entries) {
      target.layer.removeAdapter(name);
      adapter.dispose();
    }
    throw error;
  }
  return entries;
}

/** The Linear layers with these full names, in this order; every name must exist. */
export function namedTargets(models: AdaptedModels, names: readonly string[]): LinearTarget[] {
  const layers = new Map<string, LinearTarget>();
  for (const [component, model] of [["unet", models.unet], ["text_encoder", models.textEncoder]] as const) {
    if (!model) continue;
    for (const [layerName, layer] of linearLayers(model, component)) {
      layers.set(layerName, { name: layerName, component, path: layerName.slice(component.length + 1), layer });
    }
  }
  const missing = names.filter((layerName) => !layers.has(layerName));
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(", ") + (missing.length > 5 ? `, … (${missing.length} in all)` : "");
    throw new Error(`these models have no Linear layer named ${shown}`);
  }
  return names.map((layerName) => layers.get(layerName)!);
}

