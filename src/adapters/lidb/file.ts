/**
 * The LiDB file: one identity's Lightweight DreamBooth weights (paper §4.1), ~100 KB for SD1.5.
 *
 * A safetensors file with two tensors, the trainable factors of every layer stacked in target order,
 *
 *     lidb.a_train   (L, a, r)        lidb.b_train   (L, r, b)          float32 (default) or float16
 *
 * and string metadata:
 *
 *     format                    "pt" (the safetensors convention)
 *     hdb.format                "lidb"          hdb.format_version    "1"
 *     lidb.a / lidb.b / lidb.rank / lidb.seed   the factorisation and the seed of its aux bases
 *     lidb.basis                the basis construction's version (aux-bases.ts)
 *     lidb.basis_sha256         checksum of the aux bases (verified on load)
 *     lidb.targets              the L layers with their weight shapes: JSON [[name, out, in], …], deflated
 *                               and base64-encoded (13 KB of names become < 1 KB)
 *     base_model.id / .architecture / .prediction_type / .resolution
 *     base_model.targets_sha256 hash of the target names and shapes
 *     base_model.weights_sha256 hash of the targeted base weights (rounded to fp16, so an fp32 checkpoint and
 *                               its fp16 variant agree), when the weights were available
 *     identifier                the identifier token of the prompts ("a [V] face")
 *     training                  a JSON summary (steps, learning rate, …) from the trainer
 *     created / software
 *
 * A personalised result (paper §4.3, src/personalize/) adds its rank-relaxed part: a LoRA of rank r on the same
 * layers, trained on top of the LiDB's ΔW, as `relaxed.<layer>.lora_A` (r, in) and `relaxed.<layer>.lora_B` (out, r)
 * with metadata `relaxed.rank` and `relaxed.alpha` (scaling alpha / r); such a file is format version 2, so that
 * a reader that knows only version 1 refuses it rather than silently drawing with the LiDB part alone.
 * ΔW of the file = ΔW_LiDB + ΔW_relaxed, exactly a LoRA of rank lidb.rank + r (src/adapters/export.ts).
 *
 * The aux bases are never stored (prior-art mistake 4: 130 MB of bases, or a 1–4 MB LoRA, as the
 * deliverable): they are rebuilt from the seed and layer names, and their checksum must match. For SD1.5
 * (176 layers, 26,400 values) the fp32 file is 105,600 bytes of factors plus a ~2 KB header: 107,472 bytes
 * with a short training summary (test/adapters/file.test.ts), against the paper's "120 KB".
 */
import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { z } from "zod";
import { loadSafetensors, noGrad, readSafetensorsHeader, saveSafetensors, tidy, type Tensor } from "../../engine/index.js";
import { AUX_BASIS_VERSION, seedText } from "./aux-bases.js";
import { checkDimensions, type LidbDimensions, type LidbSeed } from "./config.js";
import { injectLidb, type LidbAdapters, type LidbFactors } from "./model.js";
import { linearLayers, MODEL_COMPONENTS, componentModel, type AdaptedModels, type TargetShape } from "../targets.js";
import { parseWithSchema } from "../../util/schema.js";
import type { LoraLayerWeights } from "../lora/config.js";
import { applyLora, type LoraAdapters } from "../lora/model.js";

export const LIDB_FORMAT = "lidb";
export const LIDB_FORMAT_VERSION = 1;
/** The version of files with a rank-relaxed part (see the top of this file). */
export const LIDB_RELAXED_FORMAT_VERSION = 2;

/** The base model a LiDB file was made for. */
export interface LidbBaseModel {
  /** A model id ("runwayml/stable-diffusion-v1-5") or folder name. */
  id: string;
  /** "stable-diffusion-v1", "stable-diffusion-v2", or "unknown". */
  architecture: string;
  /** "epsilon" or "v_prediction", when known. */
  predictionType?: string;
  /** Native image size in pixels (512 for SD1.5, 768 for SD2.1-v), when known. */
  resolution?: number;
}

/** Everything a LiDB file says about itself (its header; no tensor data). */
export interface LidbFileInfo {
  formatVersion: number;
  dims: LidbDimensions;
  seed: string;
  basisVersion: string;
  basisChecksum: string;
  targets: TargetShape[];
  baseModel: LidbBaseModel & { targetsHash: string; weightsHash: string | null };
  identifier: string | null;
  training: Record<string, unknown> | null;
  created: string | null;
  software: string | null;
  dtype: "float32" | "float16";
  /** The rank-relaxed part's rank and alpha (paper §4.3), or null for a plain LiDB file. */
  relaxed: { rank: number; alpha: number } | null;
}

/** A LiDB file in memory: its header and its factors (float32, on the CPU; the caller frees them). */
export interface LidbFile {
  info: LidbFileInfo;
  factors: LidbFactors;
  /** The rank-relaxed part by layer name (float32 CPU; alpha set), when the file has one. */
  relaxed?: Map<string, LoraLayerWeights>;
}

export interface LidbWriteOptions {
  baseModel: LidbBaseModel;
  /** The identifier token ("sks", "[V]"). */
  identifier?: string;
  /** A JSON-serialisable summary of how the weights were made. */
  training?: Record<string, unknown>;
  /** Stored dtype of the factors (default float32). */
  dtype?: "float32" | "float16";
}

/** What writeLidbFile needs: the factors and everything that identifies them; no model. */
export interface LidbContents extends LidbWriteOptions {
  factors: LidbFactors;
  targets: readonly TargetShape[];
  dims: LidbDimensions;
  seed: LidbSeed;
  basisChecksum: string;
  /** Hash of the targeted base weights (see targetedWeightsHash), when known. */
  weightsHash?: string | null;
  /** The rank-relaxed part (paper §4.3): one LoRA layer per target, all of one rank and alpha. */
  relaxed?: Map<string, LoraLayerWeights>;
}

const relaxedKeys = (layer: string): [string, string] => [`relaxed.${layer}.lora_A`, `relaxed.${layer}.lora_B`];

/** Writes a LiDB file atomically; returns its size in bytes. */
export function writeLidbFile(path: string, contents: LidbContents): number {
  const { dims, targets, factors } = contents;
  checkDimensions(dims);
  const dtype = contents.dtype ?? "float32";
  const expectA = [targets.length, dims.a, dims.rank];
  const expectB = [targets.length, dims.rank, dims.b];
  if (factors.aTrain.shape.join() !== expectA.join() || factors.bTrain.shape.join() !== expectB.join()) {
    throw new Error(`LiDB factors must be aTrain [${expectA.join(", ")}] and bTrain [${expectB.join(", ")}] for ${targets.length} layers, got [${factors.aTrain.shape.join(", ")}] and [${factors.bTrain.shape.join(", ")}]`);
  }
  const metadata: Record<string, string> = {
    "format": "pt",
    "hdb.format": LIDB_FORMAT,
    "hdb.format_version": String(LIDB_FORMAT_VERSION),
    "lidb.a": String(dims.a),
    "lidb.b": String(dims.b),
    "lidb.rank": String(dims.rank),
    "lidb.seed": seedText(contents.seed),
    "lidb.basis": AUX_BASIS_VERSION,
    "lidb.basis_sha256": contents.basisChecksum,
    "lidb.targets": encodeTargets(targets),
    "base_model.id": contents.baseModel.id,
    "base_model.architecture": contents.baseModel.architecture,
    "base_model.targets_sha256": targetsHash(targets),
    "created": new Date().toISOString(),
    "software": "hyperdreambooth",
  };
  if (contents.baseModel.predictionType !== undefined) metadata["base_model.prediction_type"] = contents.baseModel.predictionType;
  if (contents.baseModel.resolution !== undefined) metadata["base_model.resolution"] = String(contents.baseModel.resolution);
  if (contents.weightsHash) metadata["base_model.weights_sha256"] = contents.weightsHash;
  if (contents.identifier !== undefined) metadata["identifier"] = contents.identifier;
  if (contents.training !== undefined) metadata["training"] = JSON.stringify(contents.training);
  const relaxed = contents.relaxed ? relaxedRankOf(contents.relaxed, targets) : null;
  if (relaxed) {
    metadata["hdb.format_version"] = String(LIDB_RELAXED_FORMAT_VERSION);
    metadata["relaxed.rank"] = String(relaxed.rank);
    metadata["relaxed.alpha"] = String(relaxed.alpha);
  }
  tidy(() => {
    const store = (t: Tensor): Tensor => t.detach().to({ dtype, device: "cpu" }).contiguous();
    const tensors = new Map<string, Tensor>([["lidb.a_train", store(factors.aTrain)], ["lidb.b_train", store(factors.bTrain)]]);
    for (const target of relaxed ? targets : []) {
      const { down, up } = contents.relaxed!.get(target.name)!;
      const [a, b] = relaxedKeys(target.name);
      tensors.set(a, store(down));
      tensors.set(b, store(up));
    }
    saveSafetensors(path, tensors, metadata);
  });
  return statSync(path).size;
}

/** The relaxed part's rank and alpha, checking it holds exactly the targets, with their shapes, at one rank and alpha. */
function relaxedRankOf(layers: Map<string, LoraLayerWeights>, targets: readonly TargetShape[]): { rank: number; alpha: number } {
  const first = layers.get(targets[0]!.name);
  const rank = first?.down.shape[0] ?? 0;
  const alpha = first?.alpha ?? rank;
  const extra = [...layers.keys()].filter((name) => !targets.some((t) => t.name === name));
  if (extra.length > 0) throw new Error(`the rank-relaxed part has layers the LiDB part lacks: ${extra.slice(0, 3).join(", ")}${extra.length > 3 ? ` (${extra.length} in all)` : ""}`);
  for (const target of targets) {
    const layer = layers.get(target.name);
    if (!layer) throw new Error(`the rank-relaxed part has no layer ${target.name}`);
    const [down, up] = [layer.down.shape.join(), layer.up.shape.join()];
    if (down !== [rank, target.inFeatures].join() || up !== [target.outFeatures, rank].join()) {
      throw new Error(`the rank-relaxed part of ${target.name} must be lora_A [${rank}, ${target.inFeatures}] and lora_B [${target.outFeatures}, ${rank}], got [${down}] and [${up}]`);
    }
    if ((layer.alpha ?? rank) !== alpha) throw new Error(`the rank-relaxed part's alpha differs between layers (${alpha} and ${layer.alpha} at ${target.name})`);
  }
  return { rank, alpha };
}

/**
 * Saves the current factors of injected LiDB adapters, with the hash of the base weights they sit on
 * (computed here; the adapters must not be merged, or the hash would include their own ΔW).
 */
export function saveLidbFile(path: string, adapters: LidbAdapters, options: LidbWriteOptions): number {
  if (adapters.merged) throw new Error("saveLidbFile: unmerge the LiDB adapters first (the base-weight hash would include ΔW)");
  const factors = adapters.getFactors();
  try {
    return writeLidbFile(path, {
      ...options, factors, targets: adapters.targetShapes, dims: adapters.dims, seed: adapters.seed,
      basisChecksum: adapters.basisChecksum, weightsHash: hashWeights(adapters.targets.map((t) => t.layer.weight)),
    });
  } finally {
    factors.aTrain.dispose();
    factors.bTrain.dispose();
  }
}

/** A metadata entry every LiDB file has; `what` says in errors what it records. */
const recorded = (what: string) => z.string({ error: what });
/** A whole number written as decimal digits (the sizes, the resolution). */
const countText = z.string({ error: "a positive integer" }).regex(/^[1-9]\d*$/).transform(Number);
/** Something stored as text and decoded: a decoding error is an issue naming the entry and what it should be. */
const decoded = <T>(expected: string, decode: (text: string) => T) => z.string({ error: expected }).transform((text, ctx): T => {
  try {
    return decode(text);
  } catch {
    ctx.addIssue({ code: "custom", input: text, message: expected });
    return z.NEVER;
  }
});
/** The target list: [name, out, in] per adapted layer, in factor order. */
const targetRows = z.array(z.tuple([z.string().regex(/^(unet|text_encoder)\./), z.int().positive(), z.int().positive()]), {
  error: "a non-empty list of [layer name, out, in]",
}).min(1);
const TARGETS_ENCODING = "a deflated, base64-encoded JSON list";

/** The metadata of a LiDB file (see the top of this file), as its header stores it: strings. */
const lidbMetadataSchema = z.object({
  "lidb.a": countText,
  "lidb.b": countText,
  "lidb.rank": countText,
  "lidb.seed": recorded("the seed of the aux bases"),
  "lidb.basis": recorded("the aux bases' construction version"),
  "lidb.basis_sha256": recorded("the aux bases' checksum"),
  "lidb.targets": decoded(TARGETS_ENCODING, (text) => JSON.parse(inflateRawSync(Buffer.from(text, "base64")).toString("utf8")) as unknown).pipe(targetRows),
  "base_model.id": recorded("the base model's id"),
  "base_model.architecture": recorded("the base model's architecture"),
  "base_model.targets_sha256": recorded("the hash of the target list"),
  "base_model.prediction_type": z.string().optional(),
  "base_model.resolution": countText.optional(),
  "base_model.weights_sha256": z.string().optional(),
  "identifier": z.string().optional(),
  "training": decoded("a JSON summary of the training", (text) => JSON.parse(text) as Record<string, unknown>).optional(),
  "created": z.string().optional(),
  "software": z.string().optional(),
});

/** Reads and checks a LiDB file's header (no tensor data). */
export function readLidbFileInfo(path: string): LidbFileInfo {
  const header = readSafetensorsHeader(path);
  const meta = header.metadata;
  if (meta["hdb.format"] !== LIDB_FORMAT) {
    throw new Error(`${path} is not a LiDB file (its metadata has no "hdb.format": "lidb"${meta["hdb.format"] ? `, but "${meta["hdb.format"]}"` : ""})`);
  }
  const version = Number(meta["hdb.format_version"]);
  if (version !== LIDB_FORMAT_VERSION && version !== LIDB_RELAXED_FORMAT_VERSION) {
    throw new Error(`${path}: LiDB format version ${meta["hdb.format_version"]} is not supported (this build reads versions ${LIDB_FORMAT_VERSION} and ${LIDB_RELAXED_FORMAT_VERSION})`);
  }
  const m = parseWithSchema(lidbMetadataSchema, meta, { source: path, error: Error });
  const dims = { a: m["lidb.a"], b: m["lidb.b"], rank: m["lidb.rank"] };
  const targets = m["lidb.targets"].map(([name, outFeatures, inFeatures]) => ({ name, outFeatures, inFeatures }));
  const a = header.entries.get("lidb.a_train");
  const b = header.entries.get("lidb.b_train");
  const expectA = [targets.length, dims.a, dims.rank];
  const expectB = [targets.length, dims.rank, dims.b];
  if (!a || !b || a.shape.join() !== expectA.join() || b.shape.join() !== expectB.join()) {
    throw new Error(`${path}: expected tensors lidb.a_train [${expectA.join(", ")}] and lidb.b_train [${expectB.join(", ")}] for ${targets.length} layers, found ${[...header.entries].map(([k, e]) => `${k} [${e.shape.join(", ")}]`).join(", ") || "none"}`);
  }
  if (a.dtype !== b.dtype || (a.dtype !== "float32" && a.dtype !== "float16")) throw new Error(`${path}: LiDB factors must be float32 or float16, got ${a.dtype} and ${b.dtype}`);
  const storedTargetsHash = m["base_model.targets_sha256"];
  if (storedTargetsHash !== targetsHash(targets)) throw new Error(`${path}: the target list does not match its own hash (base_model.targets_sha256): the file is corrupt`);
  const resolution = m["base_model.resolution"];
  const predictionType = m["base_model.prediction_type"];
  let relaxed: { rank: number; alpha: number } | null = null;
  if (version === LIDB_RELAXED_FORMAT_VERSION) {
    const rank = Number(meta["relaxed.rank"]);
    const alpha = Number(meta["relaxed.alpha"]);
    if (!Number.isInteger(rank) || rank < 1 || !Number.isFinite(alpha)) {
      throw new Error(`${path}: a version 2 LiDB file needs relaxed.rank (a positive integer) and relaxed.alpha (a number), got ${meta["relaxed.rank"]} and ${meta["relaxed.alpha"]}`);
    }
    for (const target of targets) {
      const [aKey, bKey] = relaxedKeys(target.name);
      const [down, up] = [header.entries.get(aKey), header.entries.get(bKey)];
      if (down?.shape.join() !== [rank, target.inFeatures].join() || up?.shape.join() !== [target.outFeatures, rank].join()) {
        throw new Error(`${path}: expected ${aKey} [${rank}, ${target.inFeatures}] and ${bKey} [${target.outFeatures}, ${rank}], found ` +
          `${down ? `[${down.shape.join(", ")}]` : "none"} and ${up ? `[${up.shape.join(", ")}]` : "none"}`);
      }
    }
    relaxed = { rank, alpha };
  }
  return {
    formatVersion: version, dims, seed: seedText(m["lidb.seed"]), basisVersion: m["lidb.basis"], basisChecksum: m["lidb.basis_sha256"], targets,
    baseModel: {
      id: m["base_model.id"], architecture: m["base_model.architecture"],
      ...(predictionType === undefined ? {} : { predictionType }),
      ...(resolution === undefined ? {} : { resolution }),
      targetsHash: storedTargetsHash, weightsHash: m["base_model.weights_sha256"] ?? null,
    },
    identifier: m.identifier ?? null, training: m.training ?? null, created: m.created ?? null, software: m.software ?? null,
    dtype: a.dtype, relaxed,
  };
}

/** Reads a LiDB file: header checks, then the factors as float32 CPU tensors. */
export function loadLidbFile(path: string): LidbFile {
  const info = readLidbFileInfo(path);
  const relaxedNames = info.relaxed ? info.targets.flatMap((t) => relaxedKeys(t.name)) : [];
  const { tensors } = loadSafetensors(path, { dtype: "float32", names: ["lidb.a_train", "lidb.b_train", ...relaxedNames], finite: true });
  const file: LidbFile = { info, factors: { aTrain: tensors.get("lidb.a_train")!, bTrain: tensors.get("lidb.b_train")! } };
  if (info.relaxed) {
    const { alpha } = info.relaxed;
    file.relaxed = new Map(info.targets.map((t) => {
      const [a, b] = relaxedKeys(t.name);
      return [t.name, { down: tensors.get(a)!, up: tensors.get(b)!, alpha }];
    }));
  }
  return file;
}

/** Frees a loaded LiDB file's tensors (factors and relaxed part). */
export function disposeLidbFile(file: LidbFile): void {
  file.factors.aTrain.dispose();
  file.factors.bTrain.dispose();
  for (const { down, up } of file.relaxed?.values() ?? []) {
    down.dispose();
    up.dispose();
  }
}

/** Problems (errors) and doubts (warnings) about applying a LiDB file to these models. */
export interface LidbCompatibility {
  errors: string[];
  warnings: string[];
}

/**
 * Checks a LiDB file against models: every target layer must exist with the recorded weight shape, the
 * basis version must be this build's; a different base-weight hash is a warning (a fine-tune or another
 * checkpoint of the same architecture: the file applies, but was made for other weights).
 */
export function checkLidbCompatibility(info: LidbFileInfo, models: AdaptedModels): LidbCompatibility {
  const errors: string[] = [];
  const warnings: string[] = [];
  const forModel = `made for ${info.baseModel.id} (${info.baseModel.architecture})`;
  if (info.basisVersion !== AUX_BASIS_VERSION) {
    errors.push(`its aux bases are "${info.basisVersion}", this build makes "${AUX_BASIS_VERSION}"`);
  }
  const layers = new Map<string, { out: number; in: number; weight: Tensor }>();
  for (const component of MODEL_COMPONENTS) {
    const model = componentModel(models, component);
    if (!model) continue;
    for (const [name, layer] of linearLayers(model, component)) layers.set(name, { out: layer.outFeatures, in: layer.inFeatures, weight: layer.weight });
  }
  const missingComponents = MODEL_COMPONENTS.filter((c) => !componentModel(models, c) && info.targets.some((t) => t.name.startsWith(`${c}.`)));
  for (const component of missingComponents) errors.push(`it adapts the ${component}, which was not given`);
  const missing: string[] = [];
  const mismatched: string[] = [];
  for (const target of info.targets) {
    const component = target.name.slice(0, target.name.indexOf("."));
    if (missingComponents.includes(component as never)) continue;
    const layer = layers.get(target.name);
    if (!layer) missing.push(target.name);
    else if (layer.out !== target.outFeatures || layer.in !== target.inFeatures) {
      mismatched.push(`${target.name}: the file has a ${target.outFeatures}×${target.inFeatures} weight, the model ${layer.out}×${layer.in}`);
    }
  }
  if (missing.length > 0) errors.push(`the model has no layer ${listSome(missing)}`);
  if (mismatched.length > 0) errors.push(`weight shapes differ: ${listSome(mismatched)}`);
  if (errors.length === 0 && info.baseModel.weightsHash !== null) {
    const hash = hashWeights(info.targets.map((t) => layers.get(t.name)!.weight));
    if (hash !== null && hash !== info.baseModel.weightsHash) {
      warnings.push(`the targeted base weights differ from those of ${info.baseModel.id} the file was made with (another checkpoint or a fine-tune of the same architecture)`);
    }
  }
  return { errors: errors.map((e) => `this LiDB file was ${forModel}, but ${e}`), warnings };
}

/**
 * Applies a LiDB file to models: checks compatibility (all errors in one message), injects adapters on the
 * file's layers with its seed and sizes, verifies the rebuilt bases against the file's checksum, and sets
 * the factors; a rank-relaxed part goes on the same layers as LoRA adapters named "<name>_relaxed", with the
 * same scale. Returns the adapters (and the warnings, e.g. other base weights).
 */
export function applyLidbFile(
  models: AdaptedModels, file: string | LidbFile, options: { name?: string; scale?: number; dtype?: "float32" | "float16" | "bfloat16" } = {},
): { adapters: LidbAdapters; relaxed: LoraAdapters | null; warnings: string[] } {
  const loaded = typeof file === "string" ? loadLidbFile(file) : file;
  const source = typeof file === "string" ? file : "the LiDB file";
  try {
    const { info } = loaded;
    const { errors, warnings } = checkLidbCompatibility(info, models);
    if (errors.length > 0) throw new Error(`${source}: ${errors.join("; ")}`);
    const adapters = injectLidb(models, {
      ...info.dims, seed: info.seed, layers: info.targets.map((t) => t.name),
      ...(options.name === undefined ? {} : { name: options.name }), ...(options.dtype === undefined ? {} : { dtype: options.dtype }),
    });
    if (adapters.basisChecksum !== info.basisChecksum) {
      adapters.dispose();
      throw new Error(`${source}: the aux bases rebuilt from seed ${info.seed} have checksum ${adapters.basisChecksum}, the file expects ${info.basisChecksum}: the bases differ from those the factors were trained with`);
    }
    adapters.setFactors(loaded.factors);
    if (options.scale !== undefined) adapters.setScale(options.scale);
    let relaxed: LoraAdapters | null = null;
    if (loaded.relaxed) {
      try {
        relaxed = applyLora(models, loaded.relaxed, {
          name: `${options.name ?? "lidb"}_relaxed`, ...(options.scale === undefined ? {} : { scale: options.scale }), ...(options.dtype === undefined ? {} : { dtype: options.dtype }),
        });
      } catch (error) {
        adapters.dispose();
        throw error;
      }
    }
    return { adapters, relaxed, warnings };
  } finally {
    if (typeof file === "string") disposeLidbFile(loaded);
  }
}

/** What the base model is, from the text encoder's activation or the UNet's config (SD2 uses gelu and linear projections). */
export function describeBaseModel(models: AdaptedModels, id: string, extra: { predictionType?: string; resolution?: number } = {}): LidbBaseModel {
  const textConfig = (models.textEncoder as { config?: { hidden_act?: string } } | null | undefined)?.config;
  const unetConfig = (models.unet as { config?: { use_linear_projection?: boolean; cross_attention_dim?: number | number[] } } | null | undefined)?.config;
  let architecture = "unknown";
  if (textConfig?.hidden_act === "quick_gelu") architecture = "stable-diffusion-v1";
  else if (textConfig?.hidden_act === "gelu") architecture = "stable-diffusion-v2";
  else if (unetConfig) architecture = unetConfig.use_linear_projection ? "stable-diffusion-v2" : "stable-diffusion-v1";
  return { id, architecture, ...extra };
}

/** SHA-256 over "name out×in" lines: identifies the target list and the base model's layer shapes. */
export function targetsHash(targets: readonly TargetShape[]): string {
  const hash = createHash("sha256");
  for (const t of targets) hash.update(`${t.name} ${t.outFeatures}x${t.inFeatures}\n`);
  return hash.digest("hex");
}

/** SHA-256 of weights rounded to float16 (so fp32 and fp16 copies of a checkpoint agree); null on the meta device. */
export function hashWeights(weights: readonly Tensor[]): string | null {
  if (weights.some((w) => w.device === "meta")) return null;
  const hash = createHash("sha256");
  for (const weight of weights) hash.update(noGrad(() => tidy(() => weight.to({ dtype: "float16", device: "cpu" }).contiguous().bytes())));
  return hash.digest("hex");
}

function encodeTargets(targets: readonly TargetShape[]): string {
  const json = JSON.stringify(targets.map((t) => [t.name, t.outFeatures, t.inFeatures]));
  return deflateRawSync(Buffer.from(json, "utf8"), { level: 9 }).toString("base64");
}

function listSome(items: string[]): string {
  return items.slice(0, 5).join("; ") + (items.length > 5 ? `; … (${items.length} in all)` : "");
}
