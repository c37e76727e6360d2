/**
 * Applying adapter files at generation (`hdb generate --lidb <file>[:weight] --lora <file>[:weight] …`): any
 * number of LiDB and LoRA files, each with a weight (its ΔW multiplier, default 1), stacked on the same layers
 * under distinct adapter names ("lidb", "lidb_2", …, "lora", "lora_2", …).
 */
import { existsSync, statSync } from "node:fs";
import { applyLidbFile } from "./lidb/file.js";
import type { LidbAdapters } from "./lidb/model.js";
import type { LoraAdapters } from "./lora/model.js";
import { applyLoraFile } from "./lora/file.js";
import type { AdaptedModels } from "./targets.js";

export interface WeightedFile {
  path: string;
  /** Multiplier on the file's ΔW (1 = as trained). */
  weight: number;
}

/**
 * "file.safetensors" or "file.safetensors:0.8" (the text after the last ":" is the weight, unless the whole text
 * names a file). Errors say which part is wrong: a weight that is not a number is named as the weight, not as
 * part of a missing file's name; a folder is named as a folder.
 */
export function parseWeightedFile(text: string, option: string): WeightedFile {
  const colon = text.lastIndexOf(":");
  const whole = existsSync(text);
  const [path, weightText] = colon < 0 || whole ? [text, undefined] : [text.slice(0, colon), text.slice(colon + 1)];
  if (path === "") throw new Error(`--${option} needs a file path, got '${text}'`);
  const weight = weightText === undefined ? 1 : Number(weightText);
  if (weightText !== undefined && (weightText.trim() === "" || !Number.isFinite(weight))) {
    const missing = existsSync(path) ? "" : ` (and there is no file '${path}')`;
    throw new Error(`--${option} ${text}: the weight after the last ':' must be a finite number, got '${weightText}'${missing}`);
  }
  if (!existsSync(path)) throw new Error(`--${option}: no such file '${path}'`);
  if (statSync(path).isDirectory()) throw new Error(`--${option}: '${path}' is a folder; give a .safetensors file`);
  return { path, weight };
}

/** What applyAdapterFiles put into the models. */
export interface AppliedAdapters {
  adapters: (LidbAdapters | LoraAdapters)[];
  /** Compatibility doubts (e.g. a LiDB file made for other base weights). */
  warnings: string[];
  /** Takes every adapter out and frees it. */
  dispose(): void;
}

/** Applies LiDB files, then LoRA files, each with its weight; on failure nothing stays applied. */
export function applyAdapterFiles(models: AdaptedModels, files: { lidb?: readonly WeightedFile[]; lora?: readonly WeightedFile[] }): AppliedAdapters {
  const adapters: (LidbAdapters | LoraAdapters)[] = [];
  const warnings: string[] = [];
  const dispose = (): void => {
    for (const adapter of adapters.splice(0).reverse()) adapter.dispose();
  };
  try {
    for (const [i, file] of (files.lidb ?? []).entries()) {
      const applied = applyLidbFile(models, file.path, { name: i === 0 ? "lidb" : `lidb_${i + 1}`, scale: file.weight });
      adapters.push(applied.adapters);
      if (applied.relaxed) adapters.push(applied.relaxed);
      warnings.push(...applied.warnings.map((w) => `${file.path}: ${w}`));
    }
    for (const [i, file] of (files.lora ?? []).entries()) {
      adapters.push(applyLoraFile(models, file.path, { name: i === 0 ? "lora" : `lora_${i + 1}`, scale: file.weight }));
    }
  } catch (error) {
    dispose();
    throw error;
  }
  return { adapters, warnings, dispose };
}
