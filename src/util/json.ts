/**
 * Reading JSON files, with errors that name the file and say what it was for.
 *
 * Python's json module writes bare NaN / Infinity / -Infinity (e.g. DPM-Solver's `lambda_min_clipped`), so
 * `parsePythonJson` reads those as the numbers they mean; anything else that is not JSON is an error.
 */
import { readFileSync } from "node:fs";

/** A parsed JSON object. */
export type JsonRecord = Record<string, unknown>;

/** A JSON file that is missing, unreadable, not JSON, or not the shape asked for; the message names the file. */
export class JsonFileError extends Error {
  override name = "JsonFileError";
}

/** JSON as Python's json module writes it: bare NaN, Infinity and -Infinity are allowed. */
export function parsePythonJson(text: string, source = "JSON"): unknown {
  const marker = "\u0000num:";
  let json = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      json += c;
      if (c === "\\") json += text[++i] ?? "";
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    const word = /^(-?Infinity|NaN)/.exec(text.slice(i, i + 9));
    if (!inString && word) {
      json += JSON.stringify(marker + word[1]);
      i += word[1]!.length - 1;
      continue;
    }
    json += c;
  }
  try {
    return JSON.parse(json, (_key, value: unknown) =>
      typeof value === "string" && value.startsWith(marker) ? Number(value.slice(marker.length)) : value);
  } catch (error) {
    throw new JsonFileError(`${source}: not valid JSON (${(error as Error).message})`);
  }
}

/**
 * Reads a JSON file (Python's bare NaN/Infinity allowed); `what` says in errors what the file is for
 * ("config", "pipeline index").
 */
export function readJsonFile(file: string, what = "JSON file"): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new JsonFileError(code === "ENOENT" ? `${what} ${file} does not exist` : `cannot read ${what} ${file}: ${(error as Error).message}`);
  }
  try {
    return parsePythonJson(text, file);
  } catch (error) {
    throw new JsonFileError(`${what} ${file} is not valid JSON: ${(error as Error).message.replace(`${file}: `, "")}`);
  }
}

/** Reads a JSON file that must hold an object (as configs do at the top level). */
export function readJsonObject(file: string, what = "JSON file"): JsonRecord {
  const parsed = readJsonFile(file, what);
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new JsonFileError(`${what} ${file} must hold a JSON object, found ${Array.isArray(parsed) ? "an array" : JSON.stringify(parsed)}`);
  }
  return parsed as JsonRecord;
}

/**
 * The fields that transformers' CLIP configs type as float. JavaScript has one number type, so 1.0 is written
 * as `1`, which Python's json reads as an int; transformers ≥ 5 validates its configs' fields strictly and refuses
 * an int in a float field (CLIPVisionConfig with `"initializer_factor": 1` fails to load).
 */
export const TRANSFORMERS_CLIP_FLOAT_FIELDS: ReadonlySet<string> = new Set(["layer_norm_eps", "initializer_range", "initializer_factor", "attention_dropout", "dropout"]);

/**
 * `value` as JSON text (2-space indent, trailing newline, as writeJsonAtomic writes), with the integral numbers
 * of the keys in `floatKeys` written as floats ("1.0"), so that Python reads them as floats.
 */
export function jsonWithFloats(value: unknown, floatKeys: ReadonlySet<string>): string {
  const marker = "\u0000float:";
  const text = JSON.stringify(value, (key, v: unknown) => (floatKeys.has(key) && Number.isInteger(v) ? `${marker}${String(v)}` : v), 2);
  return `${text.replace(/"\\u0000float:(-?\d+)"/g, "$1.0")}\n`;
}
