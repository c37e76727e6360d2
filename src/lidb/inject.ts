/**
 * Putting adapters into a UNet and a text encoder, and the handles that manage them afterwards.
 *
 *     const lidb = injectLidb({ unet, textEncoder }, { seed: 0 });      // paper §4.1: a=100, b=50, r=1
 *     const optimizer = new AdamW(lidb.trainableParameters(), { lr: 1e-3 });
 *     ... train ...; saveLidbFile(path, lidb, { ... });                 // ~100 KB (src/lidb/file.ts)
 *
 * Each target Linear (src/lidb/targets.ts) gets an adapter through the engine's generic hook
 * (`Linear.addAdapter(name, adapter)`), so the models' own forward code runs unchanged. The handle owns the
 * adapters: their parameters are listed by the handle (`namedParameters()`: "<layer name>.<adapter
 * name>.<param>"), not by the models, so freezing, saving or loading the base models is unaffected. Rules:
 *  - move/cast the models before injecting (adapters are created on the base weights' device and dtype), or
 *    move the adapters with `handle.to(...)`;
 *  - freeze the base models yourself (`unet.requiresGrad_(false)`); the factors require grad.
 *  - `remove()` takes the adapters out (unmerging first) and `dispose()` also frees them.
 */
import type { DType, Device, Tensor } from "../engine/index.js";
import { Generator, noGrad, stack, tidy, zeros } from "../engine/index.js";
import { init, type Parameter } from "../engine/nn/index.js";
import { AUX_BASIS_VERSION, AuxBasisChecksum, buildAuxBases, checkDimensions, seedText, uniformStream, type LidbDimensions, type LidbSeed } from "./aux-bases.js";
import { LidbLinear } from "./lidb-linear.js";
import { LoraLinear } from "./lora-linear.js";
import { linearLayers, selectAttentionTargets, targetShapes, type AdaptedModels, type LinearTarget, type TargetSelection, type TargetShape } from "./targets.js";

/** Paper §4.1's sizes. */
export const LIDB_DEFAULTS: Readonly<LidbDimensions> = { a: 100, b: 50, rank: 1 };

export interface LidbOptions extends Partial<LidbDimensions> {
  /** Seed of the aux bases and of B_train's initialisation (default 0). Stored in LiDB files. */
  seed?: LidbSeed;
  /** Which attention projections (default: all of the UNet and the text encoder). */
  targets?: TargetSelection;
  /**
   * Exactly these layers, by full name ("unet.….to_q"), in this order, instead of `targets` (how a LiDB file
   * is applied: its own target list).
   */
  layers?: readonly string[];
  /** The adapter's name on each Linear (default "lidb"). */
  name?: string;
  /** Dtype of bases, factors and the delta computation (default: each base weight's). */
  dtype?: DType;
}

/**
 * LiDB factors of all layers, stacked in target order: aTrain (L, a, r) and bTrain (L, r, b); with a leading
 * batch dim (B, L, a, r) / (B, L, r, b) for per-sample factors. The LiDB file stores exactly these.
 */
export interface LidbFactors {
  aTrain: Tensor;
  bTrain: Tensor;
}

/** What a set of adapters shares: targets, adapters, parameters, merging and removal. */
abstract class AdapterSet<A extends LidbLinear | LoraLinear> {
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

/** The LiDB adapters of a pair of models (see injectLidb). */
export class LidbAdapters extends AdapterSet<LidbLinear> {
  /** SHA-256 of every aux basis in float32, in target order (stored in LiDB files, checked on load). */
  readonly basisChecksum: string;
  readonly dims: LidbDimensions;
  /** The seed in canonical decimal form. */
  readonly seed: string;
  /** Per-layer views of the per-sample factors (kept until cleared). */
  readonly #batchedViews: Tensor[] = [];

  constructor(name: string, entries: [LinearTarget, LidbLinear][], dims: LidbDimensions, seed: string, basisChecksum: string) {
    super(name, entries);
    this.dims = dims;
    this.seed = seed;
    this.basisChecksum = basisChecksum;
  }

  /** A copy of all factors, stacked in target order, float32 on the adapters' device (the caller frees it). */
  getFactors(): LidbFactors {
    return noGrad(() => tidy(() => ({
      aTrain: stack(this.adapters().map((adapter) => adapter.aTrain.float())),
      bTrain: stack(this.adapters().map((adapter) => adapter.bTrain.float())),
    })));
  }

  /** Copies stacked factors aTrain (L, a, r) and bTrain (L, r, b) into the adapters (any dtype/device). */
  setFactors(factors: LidbFactors): void {
    const { a, b, rank } = this.dims;
    checkStacked(factors, [this.size, a, rank], [this.size, rank, b], "");
    tidy(() => {
      for (const [i, adapter] of this.adapters().entries()) adapter.setFactors(factors.aTrain.select(0, i), factors.bTrain.select(0, i));
    });
  }

  /**
   * Per-sample factors aTrain (B, L, a, r) and bTrain (B, L, r, b): sample i of every forward pass uses its own
   * factors until clearBatchedFactors(); gradients flow into whatever produced the tensors (the caller keeps
   * them alive meanwhile). With gradient checkpointing (unet.enableGradientCheckpointing), the recompute
   * backpropagates each block separately: pass leaves (`x.detach().requiresGrad_()`) and send their .grad back
   * into the producer yourself, as a graph shared by several blocks cannot be backpropagated twice.
   */
  setBatchedFactors(factors: LidbFactors): void {
    const { a, b, rank } = this.dims;
    const batch = factors.aTrain.shape[0] ?? 0;
    checkStacked(factors, [batch, this.size, a, rank], [batch, this.size, rank, b], "per-sample ");
    this.clearBatchedFactors();
    for (const [i, adapter] of this.adapters().entries()) {
      const aTrain = factors.aTrain.select(1, i);
      const bTrain = factors.bTrain.select(1, i);
      aTrain.kept = true;
      bTrain.kept = true;
      adapter.setBatchedFactors(aTrain, bTrain);
      this.#batchedViews.push(aTrain, bTrain);
    }
  }
  clearBatchedFactors(): void {
    for (const adapter of this.adapters()) adapter.clearBatchedFactors();
    for (const view of this.#batchedViews.splice(0)) view.dispose();
  }

  override dispose(): void {
    this.clearBatchedFactors();
    super.dispose();
  }
}

/**
 * Puts a LiDB adapter (paper §4.1) on every selected attention projection. Bases are built from (seed, layer
 * name) in float32 on the CPU (src/lidb/aux-bases.ts), then placed on each layer's device and dtype; A_train
 * starts at zero and B_train small random, so the models' outputs are unchanged until training.
 */
export function injectLidb(models: AdaptedModels, options: LidbOptions = {}): LidbAdapters {
  const dims: LidbDimensions = { a: options.a ?? LIDB_DEFAULTS.a, b: options.b ?? LIDB_DEFAULTS.b, rank: options.rank ?? LIDB_DEFAULTS.rank };
  checkDimensions(dims);
  const seed = seedText(options.seed ?? 0);
  const name = options.name ?? "lidb";
  const targets = options.layers ? namedTargets(models, options.layers) : selectAttentionTargets(models, options.targets);
  if (targets.length === 0) throw new Error("injectLidb: no target layers (give a UNet and/or text encoder, and check the target selection)");
  warnIfNarrowLayers(targets.map((t) => ({ name: t.name, outFeatures: t.layer.outFeatures, inFeatures: t.layer.inFeatures })), dims);
  const checksum = new AuxBasisChecksum();
  const entries = attach(name, targets, (target) => {
    const bases = buildAuxBases(seed, { name: target.name, outFeatures: target.layer.outFeatures, inFeatures: target.layer.inFeatures }, dims);
    checksum.update(bases);
    return new LidbLinear(target.layer, { ...dims, bases, bTrainInit: lidbBTrainInit(seed, target.name, dims), ...(options.dtype ? { dtype: options.dtype } : {}) });
  });
  return new LidbAdapters(name, entries, dims, seed, checksum.digest());
}

/**
 * A_aux (out × a) can have orthonormal columns only when a ≤ out, and B_aux (b × in) orthonormal rows only
 * when b ≤ in. On narrower layers (tiny test models with the paper's a = 100, b = 50) part of the factors
 * cannot change ΔW: their gradients are rounding noise that Adam turns into full-size steps. Warn (once per
 * call, through Node's warning channel) rather than refuse, since the file format still round-trips.
 */
export function warnIfNarrowLayers(layers: readonly { name: string; outFeatures: number; inFeatures: number }[], dims: LidbDimensions): string | null {
  const narrow = layers.filter((l) => dims.a > l.outFeatures || dims.b > l.inFeatures);
  const first = narrow[0];
  if (!first) return null;
  const message = `LiDB a=${dims.a}, b=${dims.b} exceed the width of ${narrow.length} of ${layers.length} target layers ` +
    `(e.g. ${first.name}: out ${first.outFeatures}, in ${first.inFeatures}); factor directions beyond the layer width cannot ` +
    "change ΔW and only add optimiser noise: use a ≤ out_features and b ≤ in_features for such models";
  process.emitWarning(message, { code: "HDB_LIDB_NARROW_LAYERS" });
  return message;
}

/** B_train's initial values for a layer: U(±1/√b), deterministic in (seed, layer name). */
export function lidbBTrainInit(seed: LidbSeed, layerName: string, dims: LidbDimensions): Float32Array {
  const bound = 1 / Math.sqrt(dims.b);
  const uniform = uniformStream(`${AUX_BASIS_VERSION}\0${seedText(seed)}\0${layerName}\0B_train_init`, dims.rank * dims.b);
  return Float32Array.from(uniform, (u) => (2 * u - 1) * bound);
}

export interface LoraOptions {
  /** Rank (default 4). */
  rank?: number;
  /** scaling = alpha / rank (default alpha = rank). */
  alpha?: number;
  /** Seed of lora_A's initialisation (default 0; a local CPU generator, never the global one). */
  seed?: LidbSeed;
  targets?: TargetSelection;
  /** Exactly these layers, by full name, in this order, instead of `targets`. */
  layers?: readonly string[];
  /** The adapter's name on each Linear (default "lora"); give distinct names to stack several LoRAs. */
  name?: string;
  dtype?: DType;
}

/** One layer's LoRA weights, as read from or written to LoRA files. */
export interface LoraLayerWeights {
  /** (rank, in): lora_A / lora_down. */
  down: Tensor;
  /** (out, rank): lora_B / lora_up. */
  up: Tensor;
  /** scaling = alpha / rank; undefined means alpha = rank. */
  alpha?: number;
}

/** The LoRA adapters of a pair of models (see injectLora, applyLora). */
export class LoraAdapters extends AdapterSet<LoraLinear> {
  constructor(name: string, entries: [LinearTarget, LoraLinear][]) {
    super(name, entries);
  }

  /** Copies of every layer's factors (float32, on the adapters' device) and alpha, by layer name. */
  getFactors(): Map<string, LoraLayerWeights> {
    return noGrad(() => tidy(() => new Map(this.entries().map(([target, adapter]) => [target.name, {
      down: adapter.loraA.float(), up: adapter.loraB.float(), alpha: adapter.alpha,
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
  checkDimensions({ rank });
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
 * Applies LoRA weights (from a file: src/lidb/lora-file.ts) to the layers they name: any Linear of the UNet
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

/** Creates and adds one adapter per target; on any failure, takes out and frees what was added. */
function attach<A extends LidbLinear | LoraLinear>(name: string, targets: LinearTarget[], create: (target: LinearTarget) => A): [LinearTarget, A][] {
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
function namedTargets(models: AdaptedModels, names: readonly string[]): LinearTarget[] {
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

function checkStacked(factors: LidbFactors, aShape: number[], bShape: number[], what: string): void {
  for (const [label, tensor, expected] of [["aTrain", factors.aTrain, aShape], ["bTrain", factors.bTrain, bShape]] as const) {
    if (tensor.shape.length !== expected.length || tensor.shape.some((n, i) => n !== expected[i])) {
      throw new Error(`${what}LiDB factors: ${label} must have shape [${expected.join(", ")}] (L = ${expected[expected.length - 3]} layers), got [${tensor.shape.join(", ")}]`);
    }
  }
}
