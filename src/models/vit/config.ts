/**
 * The configuration of a plain ViT (the DINO metric's network, HyperDreamBooth §5: facebook/dino-vits16): the
 * fields of a transformers `ViTConfig` (model_type "vit", transformers' configuration_vit.py) with transformers
 * 5.23's defaults, as one zod schema (src/util/schema.ts) whose errors name the file, the key and the value.
 *
 * encoder_stride only concerns ViTForMaskedImageModeling's decoder and is validated and ignored, with the generic
 * keys of every transformers config (architectures, initializer_range, torch_dtype, ...).
 */
import { z } from "zod";
import { addFieldIssue, parseWithSchema, positiveInt, probability, supported, whenFieldsValid } from "../../util/schema.js";
import { CLIP_TEXT_ACTIVATIONS } from "../clip/text-config.js";

/** A config.json that cannot build this model: the message names the file, the key and the value. */
export class ViTConfigError extends Error {
  override name = "ViTConfigError";
}

/** The pooler's activations this port computes (transformers' ACT2FN names). */
export const VIT_POOLER_ACTIVATIONS = ["tanh", ...CLIP_TEXT_ACTIVATIONS] as const;

/** An integer side, or [height, width] (transformers' ViTPatchEmbeddings takes either). */
const side = z.union([positiveInt(), z.tuple([positiveInt(), positiveInt()])], { error: "a positive integer or [height, width]" });

/** ViTConfig's fields with transformers 5.23's defaults (google/vit-base-patch16-224's). */
const fields = z.object({
  model_type: z.literal("vit", { error: "\"vit\" (a ViT model; DINOv2 and CLIP's vision tower are other architectures)" }).optional(),
  hidden_size: positiveInt().default(768),
  num_hidden_layers: positiveInt().default(12),
  num_attention_heads: positiveInt().default(12),
  intermediate_size: positiveInt().default(3072),
  hidden_act: supported(CLIP_TEXT_ACTIVATIONS).default("gelu"),
  /** Dropout of the embeddings and of each sublayer's output, applied in training mode only. */
  hidden_dropout_prob: probability("a number in [0, 1]").default(0.0),
  /** Attention-probability dropout, applied in training mode only. */
  attention_probs_dropout_prob: probability("a number in [0, 1]").default(0.0),
  layer_norm_eps: z.number({ error: "a positive number" }).positive().default(1e-12),
  /** The input size the position embeddings were trained for (224 for dino-vits16). */
  image_size: side.default(224),
  patch_size: side.default(16),
  num_channels: positiveInt().default(3),
  qkv_bias: z.boolean({ error: "true or false" }).default(true),
  encoder_stride: positiveInt().default(16),
  /** The pooler's width; null (the default) means hidden_size. Only used when the checkpoint has a pooler. */
  pooler_output_size: positiveInt().nullable().default(null),
  pooler_act: supported(VIT_POOLER_ACTIVATIONS).default("tanh"),
});

/** ViT's schema: the fields, the heads dividing the width, at least one patch; pooler_output_size resolved. */
export const vitConfigSchema = fields.superRefine((c, ctx) => {
  if (c.hidden_size % c.num_attention_heads !== 0) {
    addFieldIssue(ctx, "hidden_size", c.hidden_size, `a multiple of num_attention_heads (${c.num_attention_heads})`);
  }
  const [ih, iw] = pair(c.image_size);
  const [ph, pw] = pair(c.patch_size);
  if (ih < ph || iw < pw) addFieldIssue(ctx, "patch_size", c.patch_size, `at most image_size (${JSON.stringify(c.image_size)})`);
}, { when: whenFieldsValid }).transform(({ model_type: _modelType, pooler_output_size: poolerSize, ...config }) => ({
  ...config, pooler_output_size: poolerSize ?? config.hidden_size,
}));

export type ViTConfig = z.output<typeof vitConfigSchema>;

/** transformers 5.23's ViTConfig defaults. */
export const VIT_CONFIG_DEFAULTS: Readonly<ViTConfig> = Object.freeze(parseWithSchema(vitConfigSchema, {}));

/** The validated config from a parsed config.json; `source` names the file in errors. */
export function parseViTConfig(raw: Record<string, unknown>, source = "config.json"): ViTConfig {
  return parseWithSchema(vitConfigSchema, raw, { source, error: ViTConfigError });
}

/** A complete config from a partial one (transformers' defaults fill the rest), validated. */
export function vitConfig(partial: Partial<z.input<typeof vitConfigSchema>> = {}): ViTConfig {
  return parseViTConfig({ ...partial }, "ViTConfig");
}

/** An integer side as [height, width]. */
export function pair(value: number | readonly [number, number]): [number, number] {
  return typeof value === "number" ? [value, value] : [value[0], value[1]];
}
