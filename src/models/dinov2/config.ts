/**
 * The configuration of DINOv2: the fields of a transformers `Dinov2Config` (model_type "dinov2", transformers'
 * configuration_dinov2.py) with transformers 5.23's defaults, as one zod schema (src/util/schema.ts) whose errors
 * name the file, the key and the value.
 *
 * The backbone keys (out_features, out_indices, stage_names, apply_layernorm, reshape_hidden_states) only concern
 * Dinov2Backbone and are accepted and ignored, with the generic keys of every transformers config.
 */
import { z } from "zod";
import { addFieldIssue, parseWithSchema, positiveInt, probability, supported, whenFieldsValid } from "../../util/schema.js";
import { CLIP_TEXT_ACTIVATIONS } from "../clip/text-config.js";

/** A config.json that cannot build this model: the message names the file, the key and the value. */
export class Dinov2ConfigError extends Error {
  override name = "Dinov2ConfigError";
}

/** An integer side, or [height, width] (transformers' Dinov2PatchEmbeddings takes either). */
const side = z.union([positiveInt(), z.tuple([positiveInt(), positiveInt()])], { error: "a positive integer or [height, width]" });

/** Dinov2Config's fields with transformers 5.23's defaults (facebook/dinov2-base's, but for image_size 518). */
const fields = z.object({
  model_type: z.literal("dinov2", { error: "\"dinov2\" (a DINOv2 model; dinov2_with_registers is another architecture)" }).optional(),
  hidden_size: positiveInt().default(768),
  num_hidden_layers: positiveInt().default(12),
  num_attention_heads: positiveInt().default(12),
  /** The MLP's width is int(hidden_size · mlp_ratio) (SwiGLU: that ·2/3, rounded up to a multiple of 8). */
  mlp_ratio: z.number({ error: "a positive number" }).positive().default(4),
  hidden_act: supported(CLIP_TEXT_ACTIVATIONS).default("gelu"),
  /** Dropout of the embeddings, applied in training mode only. */
  hidden_dropout_prob: probability("a number in [0, 1]").default(0.0),
  /** Attention-probability dropout, applied in training mode only. */
  attention_probs_dropout_prob: probability("a number in [0, 1]").default(0.0),
  layer_norm_eps: z.number({ error: "a positive number" }).positive().default(1e-6),
  /** The input side the position embeddings were trained for (518 for the released models). */
  image_size: side.default(224),
  patch_size: side.default(14),
  num_channels: positiveInt().default(3),
  qkv_bias: z.boolean({ error: "true or false" }).default(true),
  /** The initial value of LayerScale's lambda1 (checkpoints store the trained values). */
  layerscale_value: z.number({ error: "a number" }).default(1.0),
  /** Stochastic depth: identity at inference, so any rate loads; training with it is not implemented. */
  drop_path_rate: probability("a number in [0, 1]").default(0.0),
  /** facebook/dinov2-giant's feed-forward: SiLU-gated (weights_in, weights_out) instead of fc1/fc2. */
  use_swiglu_ffn: z.boolean({ error: "true or false" }).default(false),
  /** Whether the model has a mask_token (for masked-image pre-training inputs). */
  use_mask_token: z.boolean({ error: "true or false" }).default(true),
});

/** DINOv2's schema: the fields, the heads dividing the width, the position grid being square. */
export const dinov2ConfigSchema = fields.superRefine((c, ctx) => {
  if (c.hidden_size % c.num_attention_heads !== 0) {
    addFieldIssue(ctx, "hidden_size", c.hidden_size, `a multiple of num_attention_heads (${c.num_attention_heads})`);
  }
  const [ih, iw] = pair(c.image_size);
  const [ph, pw] = pair(c.patch_size);
  // interpolate_pos_encoding reshapes the trained positions to a square grid.
  if (Math.floor(ih / ph) !== Math.floor(iw / pw) || ih < ph) {
    addFieldIssue(ctx, "image_size", c.image_size, `a size giving a square grid of at least one patch of patch_size ${JSON.stringify(c.patch_size)}`);
  }
}, { when: whenFieldsValid }).transform(({ model_type: _modelType, ...config }) => config);

export type Dinov2Config = z.output<typeof dinov2ConfigSchema>;

/** transformers 5.23's Dinov2Config defaults. */
export const DINOV2_CONFIG_DEFAULTS: Readonly<Dinov2Config> = Object.freeze(parseWithSchema(dinov2ConfigSchema, {}));

/** The validated config from a parsed config.json; `source` names the file in errors. */
export function parseDinov2Config(raw: Record<string, unknown>, source = "config.json"): Dinov2Config {
  return parseWithSchema(dinov2ConfigSchema, raw, { source, error: Dinov2ConfigError });
}

/** A complete config from a partial one (transformers' defaults fill the rest), validated. */
export function dinov2Config(partial: Partial<Dinov2Config> = {}): Dinov2Config {
  return parseDinov2Config({ ...partial }, "Dinov2Config");
}

/** An integer side as [height, width]. */
export function pair(value: number | readonly [number, number]): [number, number] {
  return typeof value === "number" ? [value, value] : [value[0], value[1]];
}
