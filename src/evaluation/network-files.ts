/**
 * The files of a metric network: `<dir>/config.json` (architecture, labels, how it was trained) and
 * `<dir>/model.safetensors` (weights, float16 or float32; loaded into float32 modules).
 *
 * Both are written atomically (src/util/atomic.ts: a temporary file in the same folder, fsync, rename; the
 * weights first, so a crash between the two leaves the old config beside new weights, which either still fit
 * or fail to load with a shape error, never a half-written file). Every reading problem is a
 * MetricNetworkError naming the file and, for configs, the key.
 */
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { isFloatingDType, loadSafetensors, noGrad, saveSafetensors, tidy, type Tensor } from "../engine/index.js";
import type { Module } from "../engine/nn/index.js";
import { writeFileAtomic } from "../util/atomic.js";
import type { ConvEncoderConfig } from "./backbone.js";

export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";

export class MetricNetworkError extends Error {
  override name = "MetricNetworkError";
}

/** Saved weights' precision: float16 halves the file; the networks always compute in float32. */
export type WeightsDType = "float16" | "float32";

/** A parsed config.json with typed accessors whose errors name the file and the key. */
export class NetworkConfigFile {
  private constructor(readonly file: string, readonly values: Record<string, unknown>) {}

  /** Reads `<dir>/config.json` and checks that `_class_name` is `className`. */
  static read(dir: string, className: string): NetworkConfigFile {
    const file = path.join(dir, CONFIG_FILE);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new MetricNetworkError(code === "ENOENT" ? `no ${CONFIG_FILE} in ${dir}: not a saved ${className}` : `cannot read ${file}: ${(error as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new MetricNetworkError(`${file} is not valid JSON: ${(error as Error).message}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new MetricNetworkError(`${file} must hold a JSON object`);
    const config = new NetworkConfigFile(file, parsed as Record<string, unknown>);
    const found = config.string("_class_name");
    if (found !== className) throw new MetricNetworkError(`${file}: "_class_name" is "${found}", expected "${className}"`);
    return config;
  }

  #get(key: string): unknown {
    if (!(key in this.values)) throw new MetricNetworkError(`${this.file}: missing key "${key}"`);
    return this.values[key];
  }

  #fail(key: string, expected: string, value: unknown): never {
    throw new MetricNetworkError(`${this.file}: "${key}" must be ${expected}, got ${JSON.stringify(value)}`);
  }

  string(key: string): string {
    const value = this.#get(key);
    return typeof value === "string" ? value : this.#fail(key, "a string", value);
  }

  positiveInteger(key: string): number {
    const value = this.#get(key);
    return Number.isInteger(value) && (value as number) > 0 ? (value as number) : this.#fail(key, "a positive integer", value);
  }

  positiveIntegers(key: string): number[] {
    const value = this.#get(key);
    const ok = Array.isArray(value) && value.length > 0 && value.every((v) => Number.isInteger(v) && v > 0);
    return ok ? (value as number[]) : this.#fail(key, "a non-empty list of positive integers", value);
  }

  /** A non-empty list of distinct strings (class labels). */
  labels(key: string): string[] {
    const value = this.#get(key);
    const ok = Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "string") && new Set(value).size === value.length;
    return ok ? (value as string[]) : this.#fail(key, "a non-empty list of distinct strings", value);
  }

  /** The encoder fields every metric network has (see ConvEncoderConfig). */
  encoder(): ConvEncoderConfig {
    return {
      sampleSize: this.positiveInteger("sample_size"),
      inChannels: this.positiveInteger("in_channels"),
      blockOutChannels: this.positiveIntegers("block_out_channels"),
      layersPerBlock: this.positiveInteger("layers_per_block"),
      normNumGroups: this.positiveInteger("norm_num_groups"),
      stemStride: this.positiveInteger("stem_stride"),
      featureDim: this.positiveInteger("feature_dim"),
    };
  }

  /** Runs `build` (which may throw on an inconsistent config) and names the file in its error. */
  build<T>(build: () => T): T {
    try {
      return build();
    } catch (error) {
      if (error instanceof MetricNetworkError) throw error;
      throw new MetricNetworkError(`${this.file}: ${(error as Error).message}`);
    }
  }
}

/** The encoder fields as config.json writes them (diffusers' snake_case names). */
export function encoderConfigJson(config: ConvEncoderConfig): Record<string, unknown> {
  return {
    sample_size: config.sampleSize,
    in_channels: config.inChannels,
    block_out_channels: [...config.blockOutChannels],
    layers_per_block: config.layersPerBlock,
    norm_num_groups: config.normNumGroups,
    stem_stride: config.stemStride,
    feature_dim: config.featureDim,
  };
}

/** Saves a module's weights (in `dtype`) and then its config, each atomically, into `dir` (created if needed). */
export function saveNetwork(dir: string, module: Module, config: Record<string, unknown>, dtype: WeightsDType = "float16"): void {
  mkdirSync(dir, { recursive: true });
  tidy(() => {
    const tensors = new Map<string, Tensor>();
    for (const [name, value] of module.stateDict()) {
      tensors.set(name, isFloatingDType(value.dtype) && value.dtype !== dtype ? value.detach().to(dtype) : value);
    }
    saveSafetensors(path.join(dir, WEIGHTS_FILE), tensors, { format: "pt", class_name: String(config["_class_name"]) });
  });
  writeFileAtomic(path.join(dir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
}

/** Loads `<dir>/model.safetensors` into `module` (strict: every key, every shape), naming the file in errors. */
export function loadNetworkWeights(dir: string, module: Module): void {
  const file = path.join(dir, WEIGHTS_FILE);
  let tensors: Map<string, Tensor>;
  try {
    tensors = loadSafetensors(file).tensors;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new MetricNetworkError(code === "ENOENT" ? `no ${WEIGHTS_FILE} in ${dir}` : `cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    noGrad(() => module.loadStateDict(tensors));
  } catch (error) {
    throw new MetricNetworkError(`${file}: ${(error as Error).message}`);
  } finally {
    for (const tensor of tensors.values()) tensor.dispose();
  }
}
