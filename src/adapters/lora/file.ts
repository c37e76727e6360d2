/**
 * Standard LoRA files, the two layouts every Stable Diffusion tool loads (ComfyUI reads both, A1111 only
 * kohya's, diffusers both):
 *
 *   diffusers / peft   `unet.<module path>.lora_A.weight` (rank×in) and `.lora_B.weight` (out×rank),
 *                      `text_encoder.<module path>…`; no alpha key means scaling 1 (alpha = rank); optional
 *                      per-component alphas in the "lora_adapter_metadata" JSON (diffusers ≥ 0.33), and
 *                      legacy `<layer>.alpha` scalars. Metadata "format": "pt".
 *   kohya / A1111      `lora_unet_<module path with "_">.lora_down.weight`, `.lora_up.weight` and `.alpha`
 *                      (scaling = alpha / rank), text encoder `lora_te_text_model_encoder_layers_<i>_…`;
 *                      metadata `ss_*` (kohya's trainer) and `modelspec.*` (the SAI model spec,
 *                      architecture "stable-diffusion-v1/lora" or "stable-diffusion-v2-…/lora").
 *
 * Writing is exact: diffusers files fold alpha/rank into lora_B (scaling 1), kohya files store alpha. Reading
 * gives each layer's down/up/alpha by full layer name ("unet.…"); kohya names are mapped back to module paths
 * with the models' own Linear names (underscores in diffusers' names make the mapping ambiguous otherwise).
 */
import { loadSafetensors, noGrad, saveSafetensors, scalarTensor, tidy, type Tensor } from "../../engine/index.js";
import type { LidbBaseModel } from "../lidb/file.js";
import { applyLora, type LoraAdapters } from "./model.js";
import { type LoraLayerWeights } from "./config.js";
import { linearLayers, MODEL_COMPONENTS, componentModel, type AdaptedModels, type ModelComponent } from "../targets.js";

export type LoraFormat = "diffusers" | "kohya";
export const LORA_FORMATS: readonly LoraFormat[] = ["diffusers", "kohya"];

const KOHYA_PREFIX: Record<ModelComponent, string> = { unet: "lora_unet_", text_encoder: "lora_te_" };

export interface LoraWriteOptions {
  format: LoraFormat;
  /** Stored dtype (default float32). */
  dtype?: "float32" | "float16";
  /** For the modelspec/ss metadata: architecture, resolution and prediction type. */
  baseModel?: LidbBaseModel;
  /** modelspec.title (default "LoRA"). */
  title?: string;
  /** modelspec.trigger_phrase / usage hint, e.g. the identifier token. */
  triggerPhrase?: string;
  /** More metadata strings (e.g. provenance "hdb.*" keys). */
  metadata?: Record<string, string>;
}

/** Writes LoRA layers (full layer names → down/up/alpha) in one of the two layouts, atomically; returns the key count. */
export function writeLoraFile(path: string, layers: Map<string, LoraLayerWeights>, options: LoraWriteOptions): number {
  const dtype = options.dtype ?? "float32";
  const metadata: Record<string, string> = { format: "pt", ...modelSpec(layers, options), ...(options.metadata ?? {}) };
  return noGrad(() => tidy(() => {
    const tensors = new Map<string, Tensor>();
    const store = (t: Tensor): Tensor => t.detach().to({ dtype, device: "cpu" }).contiguous();
    for (const [name, { down, up, alpha }] of layers) {
      const rank = down.size(0);
      const { component, path: modulePath } = splitLayerName(name);
      if (options.format === "diffusers") {
        const scaling = (alpha ?? rank) / rank;
        tensors.set(`${name}.lora_A.weight`, store(down));
        tensors.set(`${name}.lora_B.weight`, store(scaling === 1 ? up : up.float().mul(scaling)));
      } else {
        const key = KOHYA_PREFIX[component] + modulePath.replace(/\./g, "_");
        tensors.set(`${key}.lora_down.weight`, store(down));
        tensors.set(`${key}.lora_up.weight`, store(up));
        tensors.set(`${key}.alpha`, store(scalarTensor(alpha ?? rank)));
      }
    }
    saveSafetensors(path, tensors, metadata);
    return tensors.size;
  }));
}

/** A LoRA file as read: its layout, layers by the file's own layer key, and metadata. */
export interface LoraFile {
  format: LoraFormat;
  /** diffusers: full layer names ("unet.…"); kohya: the file's names ("lora_unet_…"). Float32 CPU tensors. */
  layers: Map<string, LoraLayerWeights>;
  metadata: Record<string, string>;
}

/** Reads a diffusers/peft or kohya LoRA file of Linear layers; anything else is an error naming the keys. */
export function readLoraFile(path: string): LoraFile {
  const { tensors, metadata } = loadSafetensors(path, { dtype: "float32", finite: true });
  try {
    const keys = [...tensors.keys()];
    const kohya = keys.some((k) => k.startsWith("lora_unet_") || k.startsWith("lora_te"));
    const format: LoraFormat = kohya ? "kohya" : "diffusers";
    const [downSuffix, upSuffix] = kohya ? [".lora_down.weight", ".lora_up.weight"] : [".lora_A.weight", ".lora_B.weight"];
    const layers = new Map<string, LoraLayerWeights>();
    const unknown: string[] = [];
    const alphas = format === "diffusers" ? adapterMetadataAlphas(metadata, path) : null;
    for (const key of keys) {
      if (!key.endsWith(downSuffix)) {
        const owner = [upSuffix, ".alpha"].find((s) => key.endsWith(s));
        if (!owner || !tensors.has(key.slice(0, -owner.length) + downSuffix)) unknown.push(key);
        continue;
      }
      const layer = key.slice(0, -downSuffix.length);
      const down = tensors.get(key)!;
      const up = tensors.get(layer + upSuffix);
      if (!up) throw new Error(`${path}: ${key} has no matching ${layer}${upSuffix}`);
      if (down.ndim !== 2 || up.ndim !== 2 || up.size(1) !== down.size(0)) {
        throw new Error(`${path}: ${layer} is not a Linear LoRA (down [${down.shape.join(", ")}], up [${up.shape.join(", ")}]); convolution LoRAs (LoCon) are not supported`);
      }
      if (format === "diffusers" && !/^(unet|text_encoder)\./.test(layer)) unknown.push(key);
      const alphaTensor = tensors.get(`${layer}.alpha`);
      const alpha = alphaTensor ? alphaTensor.item() : alphas?.(layer);
      layers.set(layer, { down: down.alias(), up: up.alias(), ...(alpha === undefined ? {} : { alpha }) });
    }
    if (unknown.length > 0) {
      for (const w of layers.values()) disposeLayer(w);
      throw new Error(`${path}: unsupported LoRA keys (only diffusers/peft lora_A/lora_B and kohya lora_down/lora_up of the UNet and text encoder are read): ${unknown.slice(0, 5).join(", ")}${unknown.length > 5 ? `, … (${unknown.length} in all)` : ""}`);
    }
    if (layers.size === 0) throw new Error(`${path}: no LoRA layers found`);
    return { format, layers, metadata };
  } finally {
    for (const tensor of tensors.values()) tensor.dispose();
  }
}

/** The file's layers by full layer name ("unet.…"), mapping kohya names through the models' Linear layers. */
export function resolveLoraLayers(file: LoraFile, models: AdaptedModels): Map<string, LoraLayerWeights> {
  if (file.format === "diffusers") return file.layers;
  const byKohyaName = new Map<string, string>();
  for (const component of MODEL_COMPONENTS) {
    const model = componentModel(models, component);
    if (!model) continue;
    for (const name of linearLayers(model, component).keys()) {
      byKohyaName.set(KOHYA_PREFIX[component] + name.slice(component.length + 1).replace(/\./g, "_"), name);
    }
  }
  const resolved = new Map<string, LoraLayerWeights>();
  const missing: string[] = [];
  for (const [key, weights] of file.layers) {
    const name = byKohyaName.get(key);
    if (name === undefined) missing.push(key);
    else resolved.set(name, weights);
  }
  if (missing.length > 0) {
    throw new Error(`the LoRA names layers these models lack: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? `, … (${missing.length} in all)` : ""}`);
  }
  return resolved;
}

/** Reads a LoRA file and applies it to the models with a weight (`scale`); the file's tensors are freed. */
export function applyLoraFile(models: AdaptedModels, path: string, options: { name?: string; scale?: number } = {}): LoraAdapters {
  const file = readLoraFile(path);
  try {
    return applyLora(models, resolveLoraLayers(file, models), options);
  } finally {
    for (const w of file.layers.values()) disposeLayer(w);
  }
}

export function disposeLayer(weights: LoraLayerWeights): void {
  weights.down.dispose();
  weights.up.dispose();
}

/** "unet.down_blocks…" → component and module path. */
export function splitLayerName(name: string): { component: ModelComponent; path: string } {
  const dot = name.indexOf(".");
  const component = name.slice(0, dot) as ModelComponent;
  if (dot < 0 || !MODEL_COMPONENTS.includes(component)) throw new Error(`layer name '${name}' must start with "unet." or "text_encoder."`);
  return { component, path: name.slice(dot + 1) };
}

/**
 * Per-layer alphas from diffusers' "lora_adapter_metadata" (peft LoraConfig fields under "unet." /
 * "text_encoder."): lora_alpha, overridden by alpha_pattern entries (peft's rule: the pattern matches the
 * end of the module path at a dot boundary). Undefined when the file has none (then alpha = rank).
 */
function adapterMetadataAlphas(metadata: Record<string, string>, path: string): ((layer: string) => number | undefined) | null {
  const raw = metadata["lora_adapter_metadata"];
  if (raw === undefined) return null;
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw new Error(`${path}: "lora_adapter_metadata" is not valid JSON`);
  }
  return (layer) => {
    const { component, path: modulePath } = splitLayerName(layer);
    const patterns = (config[`${component}.alpha_pattern`] ?? {}) as Record<string, number>;
    for (const [pattern, alpha] of Object.entries(patterns)) {
      if (new RegExp(`^(.*\\.)?(${pattern})$`).test(modulePath)) return alpha;
    }
    const alpha = config[`${component}.lora_alpha`];
    return typeof alpha === "number" ? alpha : undefined;
  };
}

/** modelspec.* (both layouts) and ss_* (kohya) metadata. */
function modelSpec(layers: Map<string, LoraLayerWeights>, options: LoraWriteOptions): Record<string, string> {
  const base = options.baseModel;
  const v2 = base?.architecture === "stable-diffusion-v2";
  const vPrediction = base?.predictionType === "v_prediction";
  const architecture = base === undefined || base.architecture === "unknown" ? null
    : v2 ? (vPrediction ? "stable-diffusion-v2-768-v" : "stable-diffusion-v2-512") : base.architecture;
  const resolution = base?.resolution ?? (v2 && vPrediction ? 768 : 512);
  const ranks = [...new Set([...layers.values()].map((w) => w.down.size(0)))];
  const alphas = [...new Set([...layers.values()].map((w) => w.alpha ?? w.down.size(0)))];
  const meta: Record<string, string> = {
    "modelspec.sai_model_spec": "1.0.1",
    "modelspec.implementation": "diffusers",
    "modelspec.title": options.title ?? "LoRA",
    "modelspec.date": new Date().toISOString().slice(0, 19),
    "modelspec.resolution": `${resolution}x${resolution}`,
    "modelspec.prediction_type": vPrediction ? "v" : "epsilon",
  };
  if (architecture !== null) meta["modelspec.architecture"] = `${architecture}/lora`;
  if (options.triggerPhrase !== undefined) meta["modelspec.trigger_phrase"] = options.triggerPhrase;
  if (options.format === "kohya") {
    Object.assign(meta, {
      ss_network_module: "networks.lora",
      ss_network_dim: String(ranks.length === 1 ? ranks[0] : Math.max(...ranks)),
      ss_network_alpha: String(alphas.length === 1 ? alphas[0] : Math.max(...alphas)),
      ss_v2: v2 ? "True" : "False",
      ss_base_model_version: v2 ? "sd_v2" : "sd_v1",
      ss_output_name: options.title ?? "lora",
    });
    if (base) meta["ss_sd_model_name"] = base.id;
  }
  return meta;
}
