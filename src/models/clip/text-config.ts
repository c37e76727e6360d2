/**
 * The configuration of CLIP's text tower: the fields of a transformers `text_encoder/config.json`
 * (`CLIPTextConfig`, model_type "clip_text_model"), with transformers 5.23's defaults and a validation that
 * names any key or value this port does not support.
 *
 * Keys keep transformers' snake_case spelling so that a config round-trips through JSON unchanged. Generic
 * keys of every transformers config (architectures, dtype/torch_dtype, transformers_version, initializer_range,
 * ...) are accepted and ignored: they do not change what the model computes.
 */
import type { Tensor } from "../../engine/tensor.js";

/** The activations of transformers' ACT2FN that this port implements (SD1 uses quick_gelu, SD2 gelu). */
export const CLIP_TEXT_ACTIVATIONS = ["quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish"] as const;
export type CLIPTextActivation = (typeof CLIP_TEXT_ACTIVATIONS)[number];

export interface CLIPTextConfig {
  vocab_size: number;
  /** Width of the residual stream (768 for SD1's CLIP ViT-L/14, 1024 for SD2's OpenCLIP ViT-H). */
  hidden_size: number;
  /** Width of each layer's MLP. */
  intermediate_size: number;
  /** Output width of CLIPTextModelWithProjection's text_projection; unused by CLIPTextModel. */
  projection_dim: number | null;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** The longest token sequence (77 for Stable Diffusion). */
  max_position_embeddings: number;
  hidden_act: CLIPTextActivation;
  layer_norm_eps: number;
  /** Attention-probability dropout, applied in training mode only. */
  attention_dropout: number;
  pad_token_id: number | null;
  bos_token_id: number | null;
  /**
   * Decides the pooled output: 2 is the legacy value of every SD1/SD2 config and means "the position of the
   * highest token id" (the end token is the last in the vocabulary); any other value means "the first
   * position holding this id".
   */
  eos_token_id: number;
}

/** transformers 5.23's CLIPTextConfig defaults (openai/clip-vit-base-patch32's text tower). */
export const CLIP_TEXT_CONFIG_DEFAULTS: Readonly<CLIPTextConfig> = Object.freeze({
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  projection_dim: 512,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
  attention_dropout: 0.0,
  pad_token_id: 1,
  bos_token_id: 49406,
  eos_token_id: 49407,
});

/** A config.json that cannot build this model: the message names the key and the value. */
export class CLIPTextConfigError extends Error {
  override name = "CLIPTextConfigError";
}

const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

function positiveInteger(raw: Record<string, unknown>, key: keyof CLIPTextConfig, where: string): number {
  const value = key in raw ? raw[key] : CLIP_TEXT_CONFIG_DEFAULTS[key];
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new CLIPTextConfigError(`${where}: '${key}' must be a positive integer, got ${show(raw[key])}`);
  }
  return value;
}

function tokenId(raw: Record<string, unknown>, key: "pad_token_id" | "bos_token_id", where: string): number | null {
  const value = key in raw ? raw[key] : CLIP_TEXT_CONFIG_DEFAULTS[key];
  if (value !== null && (typeof value !== "number" || !Number.isInteger(value))) {
    throw new CLIPTextConfigError(`${where}: '${key}' must be an integer or null, got ${show(value)}`);
  }
  return value;
}

/**
 * The validated text config from a parsed config.json. A full `CLIPConfig` (model_type "clip", the text tower
 * under `text_config`) is accepted as transformers' `CLIPTextConfig.from_pretrained` accepts it: its
 * `text_config` is used. `source` names the file in errors.
 */
export function parseCLIPTextConfig(raw: Record<string, unknown>, source = "config.json"): CLIPTextConfig {
  let fields = raw;
  let where = source;
  if (raw.model_type === "clip" || "text_config" in raw) {
    const nested = raw.text_config ?? {};
    if (nested === null || typeof nested !== "object" || Array.isArray(nested)) {
      throw new CLIPTextConfigError(`${source}: 'text_config' must be an object, got ${show(raw.text_config)}`);
    }
    if ("text_config_dict" in raw) {
      throw new CLIPTextConfigError(`${source}: the legacy key 'text_config_dict' is not supported; move its entries into 'text_config'`);
    }
    fields = nested as Record<string, unknown>;
    where = `${source} (text_config)`;
  }
  const modelType = fields.model_type;
  if (modelType !== undefined && modelType !== "clip_text_model") {
    throw new CLIPTextConfigError(`${where}: 'model_type' is ${show(modelType)}; a CLIP text encoder has "clip_text_model"`);
  }
  if (fields.is_causal === false) {
    throw new CLIPTextConfigError(`${where}: 'is_causal' false (bidirectional attention) is not supported; CLIP's text tower is causal`);
  }

  const hiddenAct = "hidden_act" in fields ? fields.hidden_act : CLIP_TEXT_CONFIG_DEFAULTS.hidden_act;
  if (typeof hiddenAct !== "string" || !(CLIP_TEXT_ACTIVATIONS as readonly string[]).includes(hiddenAct)) {
    throw new CLIPTextConfigError(
      `${where}: 'hidden_act' ${show(hiddenAct)} is not supported (supported: ${CLIP_TEXT_ACTIVATIONS.join(", ")})`,
    );
  }
  const eps = "layer_norm_eps" in fields ? fields.layer_norm_eps : CLIP_TEXT_CONFIG_DEFAULTS.layer_norm_eps;
  if (typeof eps !== "number" || !(eps > 0)) {
    throw new CLIPTextConfigError(`${where}: 'layer_norm_eps' must be a positive number, got ${show(fields.layer_norm_eps)}`);
  }
  const dropout = "attention_dropout" in fields ? fields.attention_dropout : CLIP_TEXT_CONFIG_DEFAULTS.attention_dropout;
  if (typeof dropout !== "number" || !(dropout >= 0 && dropout <= 1)) {
    throw new CLIPTextConfigError(`${where}: 'attention_dropout' must be a number in [0, 1], got ${show(fields.attention_dropout)}`);
  }
  const projectionDim = "projection_dim" in fields ? fields.projection_dim : CLIP_TEXT_CONFIG_DEFAULTS.projection_dim;
  if (projectionDim !== null && (typeof projectionDim !== "number" || !Number.isInteger(projectionDim) || projectionDim < 1)) {
    throw new CLIPTextConfigError(`${where}: 'projection_dim' must be a positive integer or null, got ${show(projectionDim)}`);
  }
  const eos = "eos_token_id" in fields ? fields.eos_token_id : CLIP_TEXT_CONFIG_DEFAULTS.eos_token_id;
  if (typeof eos !== "number" || !Number.isInteger(eos)) {
    throw new CLIPTextConfigError(
      `${where}: 'eos_token_id' must be one integer (it picks the pooled output), got ${show(eos)}`,
    );
  }

  const config: CLIPTextConfig = {
    vocab_size: positiveInteger(fields, "vocab_size", where),
    hidden_size: positiveInteger(fields, "hidden_size", where),
    intermediate_size: positiveInteger(fields, "intermediate_size", where),
    projection_dim: projectionDim,
    num_hidden_layers: positiveInteger(fields, "num_hidden_layers", where),
    num_attention_heads: positiveInteger(fields, "num_attention_heads", where),
    max_position_embeddings: positiveInteger(fields, "max_position_embeddings", where),
    hidden_act: hiddenAct as CLIPTextActivation,
    layer_norm_eps: eps,
    attention_dropout: dropout,
    pad_token_id: tokenId(fields, "pad_token_id", where),
    bos_token_id: tokenId(fields, "bos_token_id", where),
    eos_token_id: eos,
  };
  if (config.hidden_size % config.num_attention_heads !== 0) {
    throw new CLIPTextConfigError(
      `${where}: 'hidden_size' ${config.hidden_size} is not a multiple of 'num_attention_heads' ${config.num_attention_heads}`,
    );
  }
  return config;
}

/** A complete config from a partial one (transformers' defaults fill the rest), validated. */
export function clipTextConfig(partial: Partial<CLIPTextConfig> = {}): CLIPTextConfig {
  return parseCLIPTextConfig({ ...partial }, "CLIPTextConfig");
}

/**
 * The MLP activation named by `hidden_act`, as transformers' ACT2FN computes it (same ops, same order):
 * quick_gelu = x · sigmoid(1.702 x); gelu = exact (erf) GELU; gelu_pytorch_tanh = ATen's tanh GELU;
 * gelu_new = the tanh formula written out (GPT-2's); relu; silu = swish = x · sigmoid(x).
 */
export function clipActivation(name: CLIPTextActivation): (x: Tensor) => Tensor {
  switch (name) {
    case "quick_gelu":
      return (x) => {
        using scaled = x.mul(1.702);
        using gate = scaled.sigmoid();
        return x.mul(gate);
      };
    case "gelu":
      return (x) => x.gelu("none");
    case "gelu_pytorch_tanh":
      return (x) => x.gelu("tanh");
    case "gelu_new":
      // 0.5 * x * (1.0 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
      return (x) => {
        using half = x.mul(0.5);
        using cube = x.pow(3.0);
        using cubeTerm = cube.mul(0.044715);
        using inner = x.add(cubeTerm);
        using scaled = inner.mul(Math.sqrt(2.0 / Math.PI));
        using tanh = scaled.tanh();
        using onePlus = tanh.add(1.0);
        return half.mul(onePlus);
      };
    case "relu":
      return (x) => x.relu();
    case "silu":
    case "swish":
      return (x) => x.silu();
  }
}
