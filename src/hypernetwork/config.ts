/**
 * The HyperNetwork's configuration (HyperDreamBooth §4.2), saved as its folder's config.json: the LiDB space it
 * predicts into (the layers, a, b, r and the basis seed of the LiDB files it writes), the image encoder it
 * reads (referenced by id or path, never copied: prior-art mistake 4), and the transformer decoder's sizes.
 * One zod schema gives the type, the defaults and the errors (src/util/schema.ts).
 */
import { z } from "zod";
import { finiteNumber, parseWithSchema, positiveInt } from "../util/schema.js";

const hyperNetworkConfigSchema = z.object({
  _class_name: z.literal("HyperNetwork").default("HyperNetwork"),
  /** The adapted layers in LiDB-file order ("unet.….to_q", …, "text_encoder.….out_proj"): one weight token each. */
  layers: z.array(z.string().min(1)).min(1, { error: "a non-empty list of layer names" }),
  /** The LiDB factorisation the predictions live in (§4.1), and the seed of its aux bases. */
  lidb_a: positiveInt(),
  lidb_b: positiveInt(),
  lidb_rank: positiveInt().default(1),
  lidb_seed: z.string().regex(/^\d+$/, { error: "a seed in decimal digits" }).default("0"),
  /** The base model the LiDB files target (recorded in them, checked when they are applied). */
  base_model: z.string().default(""),
  /** The frozen image encoder: a model id or folder, and the width of the features it gives. */
  encoder: z.string().min(1, { error: "a model id or folder" }),
  encoder_hidden_size: positiveInt(),
  /** Which hidden state of the encoder is read: -1 the last, -2 the penultimate (CLIP's usual choice for features). */
  encoder_layer: z.number().int().max(-1, { error: "a negative index: -1 the last hidden state, -2 the one before" }).default(-2),
  /** The decoder: token width, transformer layers (2 in the paper), heads and head width. */
  hidden_size: positiveInt().default(256),
  num_layers: positiveInt().default(2),
  num_heads: positiveInt().default(4),
  head_dim: positiveInt().default(64),
  /** Refinement rounds s: θ_k = θ_{k-1} + T(f, θ_{k-1}). */
  rounds: positiveInt().default(4),
  /**
   * Standard deviation of the output head's initial weights: small, not zero. A zero head predicts the LiDB
   * initialisation exactly for every photo, and with A_train = 0 there the diffusion gradient of B_train is
   * zero and that of A_train is the same for every identity (prior-art mistake 2).
   */
  head_init_std: finiteNumber().min(0).default(1e-3),
});

export type HyperNetworkConfig = z.output<typeof hyperNetworkConfigSchema>;
export type HyperNetworkConfigInput = z.input<typeof hyperNetworkConfigSchema>;

/** A config with its defaults filled in; `source` names the file in errors. */
export function hyperNetworkConfig(input: unknown, source = "HyperNetwork config"): HyperNetworkConfig {
  return parseWithSchema(hyperNetworkConfigSchema, input, { source });
}

/** Values per layer in the flattened prediction: A_train (a×r) then B_train (r×b). */
export function valuesPerLayer(config: Pick<HyperNetworkConfig, "lidb_a" | "lidb_b" | "lidb_rank">): number {
  return config.lidb_rank * (config.lidb_a + config.lidb_b);
}
