/**
 * Reading the JSON files of a diffusers/transformers folder (config.json, scheduler_config.json,
 * model_index.json, *.safetensors.index.json).
 *
 * Python's json module writes bare NaN / Infinity / -Infinity (e.g. DPM-Solver's `lambda_min_clipped`), so
 * those are read as the numbers they mean; anything else that is not JSON is an error naming the file.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { JsonFileError, readJsonObject as readJson, type JsonRecord } from "../../util/json.js";
import { ModelLoadingError } from "./errors.js";

/** A parsed JSON object (configs are always objects at the top level). */
export type { JsonRecord };

/** Reads a JSON file that must hold an object (src/util/json.ts); `what` says in errors what the file is for. */
export function readJsonObject(path: string, what = "JSON file"): JsonRecord {
  try {
    return readJson(path, what);
  } catch (error) {
    if (error instanceof JsonFileError) throw new ModelLoadingError(error.message);
    throw error;
  }
}

/**
 * The parsed config of a component folder (`unet/config.json`, `scheduler/scheduler_config.json`, ...).
 * A missing folder or file, invalid JSON or a non-object are errors naming the path and what the folder holds.
 */
export function readComponentConfig(componentDir: string, fileName = "config.json"): JsonRecord {
  if (!isDirectory(componentDir)) throw new ModelLoadingError(`component folder ${componentDir} does not exist`);
  const path = join(componentDir, fileName);
  if (!existsSync(path)) {
    throw new ModelLoadingError(`no ${fileName} in ${componentDir} (the folder holds: ${describeFolder(componentDir)})`);
  }
  return readJsonObject(path, "config");
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The folder's entries for error messages: "a, b, c" (sorted, folders with a trailing "/"), or "nothing". */
export function describeFolder(dir: string): string {
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true }).map((entry) => (entry.isDirectory() ? `${entry.name}/` : entry.name));
  } catch {
    return "nothing (unreadable)";
  }
  names.sort();
  if (names.length === 0) return "nothing";
  return names.length > 30 ? `${names.slice(0, 30).join(", ")}, … (${names.length} entries)` : names.join(", ");
}
