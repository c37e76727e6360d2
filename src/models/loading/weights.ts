/**
 * Loading a diffusers/transformers component folder's safetensors weights into a Module.
 *
 * A component folder (`unet/`, `vae/`, `text_encoder/`) holds its weights as one of:
 *  - one file: `diffusion_pytorch_model.safetensors` (diffusers) or `model.safetensors` (transformers);
 *  - a variant of it: `diffusion_pytorch_model.fp16.safetensors` (`variant: "fp16"`);
 *  - shards: `diffusion_pytorch_model.safetensors.index.json` whose `weight_map` sends each key to a shard
 *    file (`diffusion_pytorch_model-00001-of-00002.safetensors`); with a variant the index is
 *    `diffusion_pytorch_model.safetensors.index.fp16.json` (the variant goes before the last extension, as
 *    diffusers' and transformers' `_add_variant` put it) and the shards `…fp16-00001-of-00002.safetensors`.
 *
 * Every file's header is read and checked against the module's state dict before any tensor is read, so a
 * wrong checkpoint fails fast with one error naming the folder, the file, and each key with the expected and
 * found shape. Tensors are then read one file at a time (only the keys the module has) and copied into the
 * module, converting dtype (fp16 checkpoints load into an fp32 module) and device; memory stays at the
 * module plus one shard. Pickle `.bin` checkpoints are not read (they can run code); the error says so.
 */
import { readdirSync } from "node:fs";
import { basename, isAbsolute, join, normalize } from "node:path";
import type { DType } from "../../engine/dtype.js";
import type { Module } from "../../engine/nn/module.js";
import { loadSafetensors, readSafetensorsHeader } from "../../engine/safetensors/index.js";
import type { Device, Tensor } from "../../engine/tensor.js";
import { describeFolder, isDirectory, isFile, readJsonObject } from "./config.js";
import { ModelLoadingError } from "./errors.js";

export { readComponentConfig } from "./config.js";

/**
 * Weight file names in the order they are looked for: diffusers models first, then transformers models.
 * `indexFirst`: diffusers prefers an index over a single file when both exist, transformers the opposite.
 */
const WEIGHT_NAMES = [
  { stem: "diffusion_pytorch_model", indexFirst: true },
  { stem: "model", indexFirst: false },
] as const;

/** diffusers'/transformers' `_add_variant`: the variant goes before the last extension ("a.safetensors" → "a.fp16.safetensors"). */
export function addVariant(fileName: string, variant?: string): string {
  if (variant === undefined) return fileName;
  const dot = fileName.lastIndexOf(".");
  return dot < 0 ? `${fileName}.${variant}` : `${fileName.slice(0, dot)}.${variant}${fileName.slice(dot)}`;
}

/** The weight files a component folder holds, as found by `findWeightFiles`. */
export interface WeightFiles {
  /** The component folder. */
  dir: string;
  /** The single file, or the shard files in the order the index first names them (absolute paths). */
  files: string[];
  /** The index file, when sharded. */
  index?: string;
  /** For sharded weights: key → shard path, as the index's weight_map says. */
  weightMap?: Map<string, string>;
}

/** The file names looked for in a component folder, in order (for messages and for download selection). */
export function weightFileCandidates(variant?: string): string[] {
  const names: string[] = [];
  for (const { stem, indexFirst } of WEIGHT_NAMES) {
    const single = addVariant(`${stem}.safetensors`, variant);
    const index = addVariant(`${stem}.safetensors.index.json`, variant);
    names.push(...(indexFirst ? [index, single] : [single, index]));
  }
  return names;
}

/**
 * Finds a component folder's safetensors weights for `variant` (none: the plain files). Sharded weights are
 * resolved through their index, and every shard must exist. Errors name the folder, every file looked for and
 * what the folder holds.
 */
export function findWeightFiles(componentDir: string, variant?: string): WeightFiles {
  if (!isDirectory(componentDir)) throw new ModelLoadingError(`component folder ${componentDir} does not exist`);
  for (const name of weightFileCandidates(variant)) {
    const path = join(componentDir, name);
    if (!isFile(path)) continue;
    return name.endsWith(".json") ? readShardIndex(componentDir, path) : { dir: componentDir, files: [path] };
  }
  const lookedFor = weightFileCandidates(variant).join(", ");
  let hint = "";
  const present = safeList(componentDir);
  if (variant !== undefined && present.some((n) => weightFileCandidates().includes(n))) {
    hint = `; there are weights without the "${variant}" variant: load without a variant to use them`;
  } else if (present.some((n) => n.endsWith(".bin") || n.endsWith(".bin.index.json"))) {
    hint = "; only pickle .bin weights are present, which are not read (they can run code): convert them to safetensors";
  } else if (variant === undefined) {
    const variants = [...new Set(present.map((n) => /^(?:diffusion_pytorch_model|model)\.([^.]+?)(?:-\d{5}-of-\d{5})?\.safetensors$/.exec(n)?.[1]).filter((v) => v))];
    if (variants.length > 0) hint = `; there are variant weights: pass variant ${variants.map((v) => `"${v}"`).join(" or ")}`;
  }
  throw new ModelLoadingError(
    `no ${variant === undefined ? "" : `"${variant}" variant `}safetensors weights in ${componentDir}: looked for ${lookedFor}; ` +
      `the folder holds: ${describeFolder(componentDir)}${hint}`,
  );
}

/**
 * The variant to load a component with, as diffusers' pipelines decide it per component: `variant` when the
 * folder has weights for it, otherwise none (a pipeline whose text encoder has fp16 files but whose VAE has
 * not loads the plain VAE).
 */
export function componentVariant(componentDir: string, variant?: string): string | undefined {
  if (variant === undefined) return undefined;
  return weightFileCandidates(variant).some((name) => isFile(join(componentDir, name))) ? variant : undefined;
}

/** Parses and checks a shard index: a `weight_map` object of key → shard file, every shard present. */
function readShardIndex(componentDir: string, indexPath: string): WeightFiles {
  const index = readJsonObject(indexPath, "shard index");
  const map = index.weight_map;
  if (map === null || typeof map !== "object" || Array.isArray(map)) {
    throw new ModelLoadingError(`shard index ${indexPath} has no "weight_map" object (keys: ${Object.keys(index).join(", ") || "none"})`);
  }
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  const keysPerShard = new Map<string, number>();
  for (const [key, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== "string" || shard === "" || isAbsolute(shard) || normalize(shard).split(/[\\/]/).includes("..")) {
      throw new ModelLoadingError(`shard index ${indexPath}: weight_map["${key}"] must be a shard file name inside the folder, found ${JSON.stringify(shard)}`);
    }
    const path = join(componentDir, shard);
    weightMap.set(key, path);
    if (!keysPerShard.has(path)) files.push(path);
    keysPerShard.set(path, (keysPerShard.get(path) ?? 0) + 1);
  }
  if (files.length === 0) throw new ModelLoadingError(`shard index ${indexPath} has an empty weight_map`);
  const missing = files.filter((file) => !isFile(file));
  if (missing.length > 0) {
    const list = missing.map((file) => `${basename(file)} (${keysPerShard.get(file)} keys)`).join(", ");
    throw new ModelLoadingError(`shard index ${indexPath} names shard files that are missing: ${list}; the folder holds: ${describeFolder(componentDir)}`);
  }
  return { dir: componentDir, files, index: indexPath, weightMap };
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export interface LoadPretrainedOptions {
  /** Load `<name>.<variant>.safetensors` (e.g. "fp16") instead of the plain weights. */
  variant?: string;
  /** Cast the module's floating-point parameters and buffers to this dtype first (the weights are converted to it). */
  dtype?: DType;
  /** Move the module here first; the weights are read on the CPU and copied over. */
  device?: Device;
  /**
   * true (default): the checkpoint must hold exactly the module's keys. false: keys missing on either side are
   * returned instead. Shape mismatches are errors either way.
   */
  strict?: boolean;
  /** Checkpoint keys to drop silently even when strict (transformers' `_keys_to_ignore_on_load_unexpected`). */
  ignoreUnexpected?: readonly RegExp[];
}

export interface LoadedWeights {
  /** The weight files read (the single file, or the shards), and the index when sharded. */
  files: string[];
  index?: string;
  /** Module keys the checkpoint lacks (non-empty only with strict: false). */
  missing: string[];
  /** Checkpoint keys the module lacks (non-empty only with strict: false), besides those ignored. */
  unexpected: string[];
}

/** Where each checkpoint key is stored and its shape, from the files' headers. */
interface KeyLocation {
  file: string;
  shape: readonly number[];
}

/**
 * Loads a component folder's weights into `module` (in place, without autograd), as diffusers'/transformers'
 * `from_pretrained` does after building the model from its config. See the file comment for the files looked
 * for; every problem is reported before anything is copied.
 */
export function loadPretrainedWeights(module: Module, componentDir: string, options: LoadPretrainedOptions = {}): LoadedWeights {
  const strict = options.strict ?? true;
  const found = findWeightFiles(componentDir, options.variant);
  const locations = readLocations(found);
  if (options.dtype !== undefined || options.device !== undefined) {
    module.to({ ...(options.dtype === undefined ? {} : { dtype: options.dtype }), ...(options.device === undefined ? {} : { device: options.device }) });
  }
  const own = module.stateDict();
  const missing = [...own.keys()].filter((key) => !locations.has(key));
  const ignored = (key: string): boolean => options.ignoreUnexpected?.some((pattern) => pattern.test(key)) ?? false;
  const unexpected = [...locations.keys()].filter((key) => !own.has(key) && !ignored(key));
  // One line however many keys are wrong (a config of another width mismatches every tensor): the first few of
  // each kind and how many there are.
  const mismatches: string[] = [];
  for (const [key, target] of own) {
    const location = locations.get(key);
    if (location && !sameShape(location.shape, target.shape)) {
      mismatches.push(`shape mismatch for "${key}" in ${basename(location.file)}: the module has [${target.shape.join(", ")}], the file has [${location.shape.join(", ")}]`);
    }
  }
  const problems: string[] = [];
  if (mismatches.length > 0) {
    problems.push(mismatches.slice(0, SHOWN).join("; ") +
      (mismatches.length > SHOWN ? `; … (${mismatches.length} shape mismatches in all: is config.json the one these weights were saved with?)` : ""));
  }
  if (strict && missing.length > 0) problems.push(`missing keys (${missing.length}): ${quoteList(missing)}`);
  if (strict && unexpected.length > 0) {
    problems.push(`unexpected keys (${unexpected.length}): ${unexpected.map((key) => `"${key}" (${basename(locations.get(key)!.file)})`).slice(0, SHOWN).join(", ")}${unexpected.length > SHOWN ? ", …" : ""}`);
  }
  if (problems.length > 0) {
    throw new ModelLoadingError(`cannot load ${describeFiles(found)} into ${module.constructor.name}: ${problems.join("; ")}`);
  }
  for (const file of found.files) {
    const names = [...locations].filter(([key, location]) => location.file === file && own.has(key)).map(([key]) => key);
    if (names.length === 0) continue;
    const { tensors } = loadSafetensors(file, { names, finite: true });
    try {
      module.loadStateDict(tensors, { strict: false });
    } catch (error) {
      throw new ModelLoadingError(`cannot load ${file} into ${module.constructor.name}: ${(error as Error).message}`);
    } finally {
      for (const tensor of tensors.values()) tensor.dispose();
    }
  }
  return { files: found.files, ...(found.index === undefined ? {} : { index: found.index }), missing, unexpected };
}

/**
 * Every tensor of a component folder's weights (all shards merged), for conversions and comparisons. The
 * caller owns the tensors (dispose them, or call inside `tidy`).
 */
export function loadPretrainedStateDict(componentDir: string, options: { variant?: string; dtype?: DType; device?: Device } = {}): Map<string, Tensor> {
  const found = findWeightFiles(componentDir, options.variant);
  readLocations(found); // checks the index against the shards and for duplicate keys before reading data
  const result = new Map<string, Tensor>();
  try {
    for (const file of found.files) {
      const { tensors } = loadSafetensors(file, {
        ...(options.dtype === undefined ? {} : { dtype: options.dtype }),
        ...(options.device === undefined ? {} : { device: options.device }),
      });
      for (const [key, tensor] of tensors) result.set(key, tensor);
    }
  } catch (error) {
    for (const tensor of result.values()) tensor.dispose();
    throw error;
  }
  return result;
}

/** Reads every file's header: key → file and shape. Checks the index's weight_map against the shards. */
function readLocations(found: WeightFiles): Map<string, KeyLocation> {
  const locations = new Map<string, KeyLocation>();
  for (const file of found.files) {
    const { entries } = readSafetensorsHeader(file);
    for (const [key, entry] of entries) {
      const previous = locations.get(key);
      if (previous) throw new ModelLoadingError(`key "${key}" is stored twice: in ${previous.file} and in ${file}`);
      locations.set(key, { file, shape: entry.shape });
    }
  }
  if (found.weightMap) {
    for (const [key, shard] of found.weightMap) {
      const location = locations.get(key);
      if (location === undefined || location.file !== shard) {
        const where = location === undefined ? "no shard holds it" : `it is in ${basename(location.file)}`;
        throw new ModelLoadingError(`shard index ${found.index}: weight_map puts "${key}" in ${basename(shard)}, but ${where}`);
      }
    }
  }
  return locations;
}

function describeFiles(found: WeightFiles): string {
  if (found.index === undefined) return found.files[0]!;
  return `${found.index} (shards ${found.files.map((file) => basename(file)).join(", ")})`;
}

/** How many keys of each kind a loading error lists before giving the count. */
const SHOWN = 3;

function quoteList(keys: string[], limit = SHOWN): string {
  const shown = keys.slice(0, limit).map((key) => `"${key}"`).join(", ");
  return keys.length > limit ? `${shown}, …` : shown;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
