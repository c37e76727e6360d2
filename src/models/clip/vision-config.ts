/**
 * The configuration of CLIP's vision tower: the fields of a transformers `CLIPVisionConfig` (model_type
 * "clip_vision_model", transformers' configuration_clip.py) with transformers 5.23's defaults, as one zod schema
 * (src/util/schema.ts) whose errors name the file, the key and the value.
 *
 * Real checkpoints (openai/clip-vit-large-patch14, laion/CLIP-ViT-H-14-laion2B-s32B-b79K) ship a full
 * `CLIPConfig` (model_type "clip") with the vision tower under `vision_config`; it is read as transformers'
 * `CLIPVisionConfig.from_pretrained` reads it: `vision_config` is the config (its own `projection_dim` included,
 * as transformers takes it), and errors name `vision_config.<key>`.
 *
 * Keys keep transformers' snake_case spelling; generic keys of every transformers config (architectures, dtype,
 * initializer_range, ...) are accepted and ignored: they do not change what the model computes.
 */
import { z } from "zod";
import { addFieldIssue, parseWithSchema, positiveInt, probability, supported, whenFieldsValid } from "../../util/schema.js";
import { CLIP_TEXT_ACTIVATIONS } from "./text-config.js";

/** A config.json that cannot build this model: the message names the file, the key and the value. */
export class CLIPVisionConfigError extends Error {
  override name = "CLIPVisionConfigError";
}

/** CLIPVisionConfig's fields with transformers 5.23's defaults (openai/clip-vit-base-patch32's vision tower). */
const fields = z.object({
  /** When present it must be the vision tower's (a full CLIPConfig nests it under `vision_config`). */
  model_type: z.literal("clip_vision_model", { error: "\"clip_vision_model\" (a CLIP vision encoder)" }).optional(),
  /** Width of the residual stream (1024 for ViT-L/14, 1280 for ViT-H/14). */
  hidden_size: positiveInt().default(768),
  intermediate_size: positiveInt().default(3072),
  /** Output width of CLIPVisionModelWithProjection's visual_projection (768 for ViT-L/14, 1024 for ViT-H/14). */
  projection_dim: positiveInt().default(512),
  num_hidden_layers: positiveInt().default(12),
  num_attention_heads: positiveInt().default(12),
  num_channels: positiveInt().default(3),
  /**
   * The square input side the position embeddings were trained for (224 for both real towers). transformers'
   * type also allows a pair, but its CLIPVisionEmbeddings computes `(image_size // patch_size) ** 2`, which only
   * an integer survives, so only integers are accepted here.
   */
  image_size: positiveInt("a positive integer (the square side)").default(224),
  patch_size: positiveInt("a positive integer (the square side)").default(32),
  /** ViT-L/14 uses quick_gelu, OpenCLIP's ViT-H/14 gelu. */
  hidden_act: supported(CLIP_TEXT_ACTIVATIONS).default("quick_gelu"),
  layer_norm_eps: z.number({ error: "a positive number" }).positive().default(1e-5),
  /** Attention-probability dropout, applied in training mode only. */
  attention_dropout: probability("a number in [0, 1]").default(0.0),
});

/** The vision tower's schema: the fields, the heads dividing the width, the model_type guard dropped. */
export const clipVisionConfigSchema = fields.superRefine((c, ctx) => {
  if (c.hidden_size % c.num_attention_heads !== 0) {
    addFieldIssue(ctx, "hidden_size", c.hidden_size, `a multiple of num_attention_heads (${c.num_attention_heads})`);
  }
  if (c.patch_size > c.image_size) addFieldIssue(ctx, "patch_size", c.patch_size, `at most image_size (${c.image_size})`);
}, { when: whenFieldsValid }).transform(({ model_type: _modelType, ...config }) => config);

export type CLIPVisionConfig = z.output<typeof clipVisionConfigSchema>;

/** A full CLIPConfig: its `vision_config` (missing or null: all defaults) is the config. */
const nestedClipConfigSchema = z.object({
  vision_config: z.preprocess((value) => value ?? {}, clipVisionConfigSchema),
  /**
   * The legacy key (null in openai/clip-vit-base-patch32, a full dict in older CLIPConfigs such as
   * openai/clip-vit-large-patch14's) is ignored, as transformers' per-tower `from_pretrained` ignores it: only a whole
   * CLIPConfig lets it override vision_config.
   */
  vision_config_dict: z.unknown().optional(),
}).transform(({ vision_config }) => vision_config);

/** transformers 5.23's CLIPVisionConfig defaults. */
export const CLIP_VISION_CONFIG_DEFAULTS: Readonly<CLIPVisionConfig> = Object.freeze(parseWithSchema(clipVisionConfigSchema, {}));

/** Whether a parsed config.json is a full CLIPConfig (text and vision towers) rather than a vision tower's. */
export function isFullCLIPConfig(raw: Record<string, unknown>): boolean {
  return raw.model_type === "clip" || "vision_config" in raw;
}

/**
 * The validated vision config from a parsed config.json: a CLIPVisionConfig, or a full CLIPConfig's
 * `vision_config` (errors then name `vision_config.<key>`). `source` names the file in errors.
 */
export function parseCLIPVisionConfig(raw: Record<string, unknown>, source = "config.json"): CLIPVisionConfig {
  const schema = isFullCLIPConfig(raw) ? nestedClipConfigSchema : clipVisionConfigSchema;
  return parseWithSchema(schema, raw, { source, error: CLIPVisionConfigError });
}

/** A complete config from a partial one (transformers' defaults fill the rest), validated. */
export function clipVisionConfig(partial: Partial<CLIPVisionConfig> = {}): CLIPVisionConfig {
  return parseCLIPVisionConfig({ ...partial }, "CLIPVisionConfig");
}
