/**
 * Reading the JSON files of a diffusers/transformers folder (config.json, scheduler_config.json,
 * model_index.json, *.safetensors.index.json).
 *
 * Python's json module writes bare NaN / Infinity / -Infinity (e.g. DPM-Solver's `lambda_min_clipped`), so
 * those are read as the numbers they mean; anything else that is not JSON is an error naming the file.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parsePythonJson } from "../schedulers/config.js";
import { ModelLoadingError } from "./errors.js";

/** A parsed JSON object (configs are always objects at the top level). */
export type JsonRecord = Record<string, unknown>;

/** Reads a JSON file that must hold an object; `what` says in errors what the file is for. */
export function readJsonObject(path: string, what = "JSON file"): JsonRecord {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelLoadingError(code === "ENOENT" ? `${what} ${path} does not exist` : `cannot read ${what} ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parsePythonJson(text, path);
  } catch (error) {
    throw new ModelLoadingError(`${what} ${path} is not valid JSON: ${(error as Error).message.replace(`${path}: `, "")}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ModelLoadingError(`${what} ${path} must hold a JSON object, found ${Array.isArray(parsed) ? "an array" : JSON.stringify(parsed)}`);
  }
  return parsed as JsonRecord;
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
