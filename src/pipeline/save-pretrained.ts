/**
 * Writing a Stable Diffusion pipeline as a diffusers folder, the layout `StableDiffusionPipeline.from_pretrained`
 * (and our own loader) reads:
 *
 *     model_index.json
 *     scheduler/scheduler_config.json
 *     text_encoder/config.json  text_encoder/model.safetensors           (transformers' CLIPTextModel)
 *     tokenizer/vocab.json merges.txt special_tokens_map.json tokenizer_config.json
 *     unet/config.json  unet/diffusion_pytorch_model.safetensors
 *     vae/config.json   vae/diffusion_pytorch_model.safetensors
 *
 * Weights are saved under the modules' own state-dict names (which are diffusers'/transformers'), optionally
 * cast to float16 to halve the size. Every file is written atomically (src/util/atomic.ts).
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { noGrad, saveSafetensors, type DType, type Tensor } from "../engine/index.js";
import type { Module } from "../engine/nn/index.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { jsonWithFloats, TRANSFORMERS_CLIP_FLOAT_FIELDS } from "../util/json.js";

/** The diffusers and transformers versions our configs follow (the oracle's pinned versions). */
export const DIFFUSERS_VERSION = "0.42.1";
export const TRANSFORMERS_VERSION = "5.23.0";

/** A module's state dict, cast to `dtype` (float tensors only), as a new map the caller disposes. */
function castStateDict(module: Module, dtype: DType | undefined): Map<string, Tensor> {
  return noGrad(() => new Map([...module.stateDict()].map(([name, t]) => [name, dtype && t.dtype.startsWith("float") ? t.to(dtype) : t.detach()])));
}

export interface SaveComponentOptions {
  /** Cast floating-point weights to this dtype (e.g. "float16"); default: as they are. */
  dtype?: DType;
}

/** A diffusers model folder: config.json (with _class_name) + diffusion_pytorch_model.safetensors. */
export function saveDiffusersModel(dir: string, className: string, config: Record<string, unknown>, model: Module, options: SaveComponentOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  const weights = castStateDict(model, options.dtype);
  try {
    saveSafetensors(path.join(dir, "diffusion_pytorch_model.safetensors"), weights, { format: "pt" });
  } finally {
    for (const t of weights.values()) t.dispose();
  }
  writeJsonAtomic(path.join(dir, "config.json"), { _class_name: className, _diffusers_version: DIFFUSERS_VERSION, ...config });
}

/** A transformers CLIPTextModel folder: config.json + model.safetensors. */
export function saveCLIPTextModel(dir: string, config: Record<string, unknown>, model: Module, options: SaveComponentOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  const weights = castStateDict(model, options.dtype);
  try {
    saveSafetensors(path.join(dir, "model.safetensors"), weights, { format: "pt" });
  } finally {
    for (const t of weights.values()) t.dispose();
  }
  writeFileAtomic(path.join(dir, "config.json"), jsonWithFloats({
    architectures: ["CLIPTextModel"], model_type: "clip_text_model", dtype: options.dtype ?? "float32",
    transformers_version: TRANSFORMERS_VERSION, ...config,
  }, TRANSFORMERS_CLIP_FLOAT_FIELDS));
}

/** A scheduler folder: scheduler_config.json. */
export function saveSchedulerConfig(dir: string, className: string, config: Record<string, unknown>): void {
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(path.join(dir, "scheduler_config.json"), { _class_name: className, _diffusers_version: DIFFUSERS_VERSION, ...config });
}

/** Copies a tokenizer folder's files (vocab.json, merges.txt, configs) into `<dir>`. */
export function copyTokenizer(sourceDir: string, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(sourceDir)) {
    if (name.startsWith(".")) continue;
    writeFileAtomic(path.join(dir, name), readFileSync(path.join(sourceDir, name)));
  }
}

/** model_index.json of a StableDiffusionPipeline with the given scheduler class. */
export function writeModelIndex(dir: string, schedulerClass: string): void {
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(path.join(dir, "model_index.json"), {
    _class_name: "StableDiffusionPipeline", _diffusers_version: DIFFUSERS_VERSION,
    feature_extractor: [null, null], image_encoder: [null, null], requires_safety_checker: false, safety_checker: [null, null],
    scheduler: ["diffusers", schedulerClass], text_encoder: ["transformers", "CLIPTextModel"], tokenizer: ["transformers", "CLIPTokenizer"],
    unet: ["diffusers", "UNet2DConditionModel"], vae: ["diffusers", "AutoencoderKL"],
  });
}
