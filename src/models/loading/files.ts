/**
 * Which files a pipeline (or a single component) needs, chosen from a list of the files available: a hub
 * repository's file list when downloading, a local folder's when checking that a checkout is complete. The
 * same rules serve both, so a download fetches exactly what loading will look for:
 *
 *  - model_index.json;
 *  - each model component: config.json and its safetensors weights for the chosen variant (falling back to the
 *    plain weights for a component without that variant, as diffusers does), one file or an index + shards;
 *  - the tokenizer: vocab.json + merges.txt or tokenizer.json, with the config files present;
 *  - the scheduler: scheduler_config.json.
 *
 * Nothing else: no .bin/.ckpt/.h5/.msgpack/.onnx weights, no other variants, no safety checker.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { readJsonObject } from "./config.js";
import type { ComponentKind, ModelIndex } from "./model-index.js";
import { addVariant, weightFileCandidates } from "./weights.js";

/** An image processor's settings (transformers' preprocessor_config.json): fetched with a model when present. */
export const PREPROCESSOR_CONFIG = "preprocessor_config.json";

/** Tokenizer files worth having; either vocab.json + merges.txt or tokenizer.json is required. */
export const TOKENIZER_FILES = ["vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "tokenizer.json", "added_tokens.json"];

export interface FileSelection {
  /** Repository-relative paths ("unet/config.json") to fetch or that were found, in a stable order. */
  files: string[];
  /** What is needed but not available, as readable descriptions naming the paths. */
  missing: string[];
}

/**
 * The files to fetch for a pipeline (`modelIndex` given) or for a single component at the repository root, or in
 * `subfolder` (config.json, weights, and the tokenizer files and preprocessor_config.json if any), from
 * `available` paths. A subfolder holding only preprocessor_config.json (a pipeline's feature_extractor/) needs
 * nothing else.
 */
export function selectPipelineFiles(
  available: Iterable<string>, modelIndex: ModelIndex | undefined, options: { variant?: string; subfolder?: string } = {},
): FileSelection {
  const set = new Set(available);
  if (modelIndex === undefined || options.subfolder !== undefined) {
    const prefix = options.subfolder === undefined ? "" : `${options.subfolder.replace(/\/+$/, "")}/`;
    const extras = [...TOKENIZER_FILES, PREPROCESSOR_CONFIG].filter((name) => set.has(prefix + name)).map((name) => prefix + name);
    if (!set.has(`${prefix}config.json`) && set.has(prefix + PREPROCESSOR_CONFIG)) return { files: extras, missing: [] };
    const model = selectComponentFiles(set, prefix, "model", options.variant);
    return { files: [...model.files, ...extras], missing: model.missing };
  }
  const files = ["model_index.json"];
  const missing = set.has("model_index.json") ? [] : ["model_index.json"];
  for (const component of modelIndex.components) {
    const selection = selectComponentFiles(set, `${component.name}/`, component.kind, options.variant);
    files.push(...selection.files);
    missing.push(...selection.missing);
  }
  return { files, missing };
}

/** The files one component folder (`prefix`: "unet/", or "" for the root) needs. */
export function selectComponentFiles(available: ReadonlySet<string>, prefix: string, kind: ComponentKind, variant?: string): FileSelection {
  const has = (name: string): boolean => available.has(prefix + name);
  const files: string[] = [];
  const missing: string[] = [];
  const need = (name: string): void => {
    if (has(name)) files.push(prefix + name);
    else missing.push(prefix + name);
  };
  if (kind === "scheduler") {
    need("scheduler_config.json");
  } else if (kind === "tokenizer") {
    const present = TOKENIZER_FILES.filter(has);
    if (!(present.includes("tokenizer.json") || (present.includes("vocab.json") && present.includes("merges.txt")))) {
      missing.push(`${prefix}vocab.json and ${prefix}merges.txt (or ${prefix}tokenizer.json)`);
    }
    files.push(...present.map((name) => prefix + name));
  } else {
    need("config.json");
    const weights = selectWeightFiles(available, prefix, variant);
    files.push(...weights.files);
    missing.push(...weights.missing);
  }
  return { files, missing };
}

/**
 * A component's weight files among `available`: the variant's when the folder has any (else the plain ones),
 * the first of `weightFileCandidates` present; for an index, also the shards named like its shards.
 */
export function selectWeightFiles(available: ReadonlySet<string>, prefix: string, variant?: string): FileSelection {
  const chosen = variant !== undefined && weightFileCandidates(variant).some((name) => available.has(prefix + name)) ? variant : undefined;
  for (const name of weightFileCandidates(chosen)) {
    if (!available.has(prefix + name)) continue;
    if (!name.endsWith(".json")) return { files: [prefix + name], missing: [] };
    const stem = name.slice(0, name.indexOf(".safetensors"));
    const shard = shardPattern(stem, chosen);
    const shards = [...available].filter((path) => path.startsWith(prefix) && shard.test(path.slice(prefix.length))).sort();
    return { files: [prefix + name, ...shards], missing: [] };
  }
  const names = [addVariant("diffusion_pytorch_model.safetensors", variant), addVariant("model.safetensors", variant)].map((name) => prefix + name);
  const sharded = "or sharded weights with a .safetensors.index.json";
  return { files: [], missing: [`${names.join(" or ")} (${sharded}${variant === undefined ? "" : `, or any of these without the "${variant}" variant`})`] };
}

/** Shard file names as diffusers/transformers write them: `stem[.variant]-00001-of-00002.safetensors` (and the old `stem-00001-of-00002.variant.safetensors`). */
function shardPattern(stem: string, variant?: string): RegExp {
  const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const numbered = "-\\d{5}-of-\\d{5}";
  if (variant === undefined) return new RegExp(`^${escape(stem)}${numbered}\\.safetensors$`);
  return new RegExp(`^(?:${escape(addVariant(stem, variant))}${numbered}\\.safetensors|${escape(stem)}${numbered}\\.${escape(variant)}\\.safetensors)$`);
}

/**
 * The files under `root` (and one folder level down) as "dir/name" paths; symlinks are followed, and a
 * dangling one (a cache snapshot whose blob is gone) is not a file.
 */
export function listLocalFiles(root: string): string[] {
  const result: string[] = [];
  const visit = (dir: string, prefix: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const stats = statOrUndefined(join(dir, name));
      if (stats?.isFile()) result.push(prefix + name);
      else if (stats?.isDirectory() && depth > 0) visit(join(dir, name), `${prefix}${name}/`, depth - 1);
    }
  };
  visit(root, "", 1);
  return result;
}

/**
 * What a local pipeline or component folder lacks for loading (with `modelIndex`: the pipeline's components),
 * including shards that a present index names but that are not there.
 */
export function missingLocalFiles(root: string, modelIndex: ModelIndex | undefined, options: { variant?: string } = {}): string[] {
  const available = listLocalFiles(root);
  const selection = selectPipelineFiles(available, modelIndex, options);
  const present = new Set(available);
  const missing = [...selection.missing];
  for (const index of selection.files.filter((file) => file.endsWith(".json") && file.includes(".safetensors.index."))) {
    const folder = index.includes("/") ? index.slice(0, index.lastIndexOf("/") + 1) : "";
    for (const shard of shardsOfIndex(join(root, index))) {
      if (!present.has(folder + shard) && !missing.includes(folder + shard)) missing.push(folder + shard);
    }
  }
  return missing;
}

/** The shard file names an index's weight_map names (its own errors are reported by loading). */
export function shardsOfIndex(indexPath: string): string[] {
  try {
    const map = readJsonObject(indexPath, "shard index").weight_map;
    if (map === null || typeof map !== "object") return [];
    return [...new Set(Object.values(map as Record<string, unknown>).filter((v): v is string => typeof v === "string"))];
  } catch {
    return [];
  }
}

function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
