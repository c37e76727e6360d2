/**
 * The configuration of CLIP's text tower: the fields of a transformers `text_encoder/config.json`
 * (`CLIPTextConfig`, model_type "clip_text_model"), with transformers 5.23's defaults, as one zod schema
 * (src/util/schema.ts) whose errors name the file, the key and the value, and any value this port does not
 * support.
 *
 * Keys keep transformers' snake_case spelling so that a config round-trips through JSON unchanged. Generic
 * keys of every transformers config (architectures, dtype/torch_dtype, transformers_version, initializer_range,
 * ...) are accepted and ignored: they do not change what the model computes.
 */
import { z } from "zod";
import type { Tensor } from "../../engine/tensor.js";
import { addFieldIssue, parseWithSchema, positiveInt, probability, supported, unsupportedUnless, whenFieldsValid } from "../../util/schema.js";

/** The activations of transformers' ACT2FN that this port implements (SD1 uses quick_gelu, SD2 gelu). */
export const CLIP_TEXT_ACTIVATIONS = ["quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish"] as const;
export type CLIPTextActivation = (typeof CLIP_TEXT_ACTIVATIONS)[number];

/** A config.json that cannot build this model: the message names the file, the key and the value. */
export class CLIPTextConfigError extends Error {
  override name = "CLIPTextConfigError";
}

const tokenId = z.number({ error: "an integer or null" }).int().nullable();

/** CLIPTextConfig's fields with transformers 5.23's defaults (openai/clip-vit-base-patch32's text tower). */
const fields = z.object({
  /** When present it must be the text tower's (a full CLIPConfig nests its text tower under `text_config`). */
  model_type: z.literal("clip_text_model", { error: "\"clip_text_model\" (a CLIP text encoder)" }).optional(),
  /** transformers' bidirectional variant; CLIP's text tower is causal. */
  is_causal: z.unknown().refine((causal) => causal !== false, unsupportedUnless("true (CLIP's text tower is causal)")).optional(),
  vocab_size: positiveInt().default(49408),
  /** Width of the residual stream (768 for SD1's CLIP ViT-L/14, 1024 for SD2's OpenCLIP ViT-H). */
  hidden_size: positiveInt().default(512),
  /** Width of each layer's MLP. */
  intermediate_size: positiveInt().default(2048),
  /** Output width of CLIPTextModelWithProjection's text_projection; unused by CLIPTextModel. */
  projection_dim: positiveInt("a positive integer or null").nullable().default(512),
  num_hidden_layers: positiveInt().default(12),
  num_attention_heads: positiveInt().default(8),
  /** The longest token sequence (77 for Stable Diffusion). */
  max_position_embeddings: positiveInt().default(77),
  hidden_act: supported(CLIP_TEXT_ACTIVATIONS).default("quick_gelu"),
  layer_norm_eps: z.number({ error: "a positive number" }).positive().default(1e-5),
  /** Attention-probability dropout, applied in training mode only. */
  attention_dropout: probability("a number in [0, 1]").default(0.0),
  pad_token_id: tokenId.default(1),
  bos_token_id: tokenId.default(49406),
  /**
   * Decides the pooled output: 2 is the legacy value of every SD1/SD2 config and means "the position of the
   * highest token id" (the end token is the last in the vocabulary); any other value means "the first
   * position holding this id".
   */
  eos_token_id: z.number({ error: "one integer (it picks the pooled output)" }).int().default(49407),
});

/** The text tower's schema: the fields, the heads dividing the width, the model_type/is_causal guards dropped. */
export const clipTextConfigSchema = fields.superRefine((c, ctx) => {
  if (c.hidden_size % c.num_attention_heads !== 0) {
    addFieldIssue(ctx, "hidden_size", c.hidden_size, `a multiple of num_attention_heads (${c.num_attention_heads})`);
  }
}, { when: whenFieldsValid }).transform(({ model_type: _modelType, is_causal: _isCausal, ...config }) => config);

export type CLIPTextConfig = z.output<typeof clipTextConfigSchema>;

/**
 * A full `CLIPConfig` (model_type "clip", the text tower under `text_config`), read as transformers'
 * `CLIPTextConfig.from_pretrained` reads it: its `text_config` (missing or null: all defaults) is the config.
 */
const nestedClipConfigSchema = z.object({
  text_config: z.preprocess((value) => value ?? {}, clipTextConfigSchema),
  /**
   * The legacy key (null in openai/clip-vit-base-patch32, a full dict in older CLIPConfigs such as
   * openai/clip-vit-large-patch14's) is ignored, as transformers' per-tower `from_pretrained` ignores it: only a whole
   * CLIPConfig lets it override text_config.
   */
  text_config_dict: z.unknown().optional(),
}).transform(({ text_config }) => text_config);

/** transformers 5.23's CLIPTextConfig defaults. */
export const CLIP_TEXT_CONFIG_DEFAULTS: Readonly<CLIPTextConfig> = Object.freeze(parseWithSchema(clipTextConfigSchema, {}));

/**
 * The validated text config from a parsed config.json. A full `CLIPConfig` (model_type "clip", the text tower
 * under `text_config`) is accepted as transformers' `CLIPTextConfig.from_pretrained` accepts it: its
 * `text_config` is used (errors then name `text_config.<key>`). `source` names the file in errors.
 */
export function parseCLIPTextConfig(raw: Record<string, unknown>, source = "config.json"): CLIPTextConfig {
  const nested = raw.model_type === "clip" || "text_config" in raw;
  return parseWithSchema(nested ? nestedClipConfigSchema : clipTextConfigSchema, raw, { source, error: CLIPTextConfigError });
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
