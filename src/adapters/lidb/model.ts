/**
 * Putting adapters into a UNet and a text encoder, and the handles that manage them afterwards.
 *
 *     const lidb = injectLidb({ unet, textEncoder }, { seed: 0 });      // paper §4.1: a=100, b=50, r=1
 *     const optimizer = new AdamW(lidb.trainableParameters(), { lr: 1e-3 });
 *     ... train ...; saveLidbFile(path, lidb, { ... });                 // ~100 KB (src/adapters/lidb/file.ts)
 *
 * Each target Linear (src/adapters/targets.ts) gets an adapter through the engine's generic hook
 * (`Linear.addAdapter(name, adapter)`), so the models' own forward code runs unchanged. The handle owns the
 * adapters: their parameters are listed by the handle (`namedParameters()`: "<layer name>.<adapter
 * name>.<param>"), not by the models, so freezing, saving or loading the base models is unaffected. Rules:
 *  - move/cast the models before injecting (adapters are created on the base weights' device and dtype), or
 *    move the adapters with `handle.to(...)`;
 *  - freeze the base models yourself (`unet.requiresGrad_(false)`); the factors require grad.
 *  - `remove()` takes the adapters out (unmerging first) and `dispose()` also frees them.
 */
import type { Tensor } from "../../engine/index.js";
import { noGrad, stack, tidy } from "../../engine/index.js";
import { AdapterSet, attach, namedTargets } from "../adapter-set.js";
import { selectAttentionTargets, type AdaptedModels, type LinearTarget } from "../targets.js";
import { AUX_BASIS_VERSION, AuxBasisChecksum, buildAuxBases, seedText, uniformStream } from "./aux-bases.js";
import { lidbDimensions, type LidbDimensions, type LidbOptions, type LidbSeed } from "./config.js";
import { LidbLinear } from "./layer.js";

/**
 * LiDB factors of all layers, stacked in target order: aTrain (L, a, r) and bTrain (L, r, b); with a leading
 * batch dim (B, L, a, r) / (B, L, r, b) for per-sample factors. The LiDB file stores exactly these.
 */
export interface LidbFactors {
  aTrain: Tensor;
  bTrain: Tensor;
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
 * name) in float32 on the CPU (src/adapters/lidb/aux-bases.ts), then placed on each layer's device and dtype; A_train
 * starts at zero and B_train small random, so the models' outputs are unchanged until training.
 */
export function injectLidb(models: AdaptedModels, options: LidbOptions = {}): LidbAdapters {
  const dims = lidbDimensions({ a: options.a, b: options.b, rank: options.rank });
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

function checkStacked(factors: LidbFactors, aShape: number[], bShape: number[], what: string): void {
  for (const [label, tensor, expected] of [["aTrain", factors.aTrain, aShape], ["bTrain", factors.bTrain, bShape]] as const) {
    if (tensor.shape.length !== expected.length || tensor.shape.some((n, i) => n !== expected[i])) {
      throw new Error(`${what}LiDB factors: ${label} must have shape [${expected.join(", ")}] (L = ${expected[expected.length - 3]} layers), got [${tensor.shape.join(", ")}]`);
    }
  }
}
