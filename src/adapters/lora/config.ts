/**
 * The settings of a LoRA adapter (Hu et al. 2021; peft's LoraConfig): rank, alpha, the seed of lora_A's
 * initialisation and which layers it adapts; and one layer's LoRA weights as files hold them.
 */
import type { DType, Tensor } from "../../engine/index.js";
import type { LidbSeed } from "../lidb/config.js";
import type { TargetSelection } from "../targets.js";

export interface LoraOptions {
  /** Rank (default 4). */
  rank?: number;
  /** scaling = alpha / rank (default alpha = rank). */
  alpha?: number;
  /** Seed of lora_A's initialisation (default 0; a local CPU generator, never the global one). */
  seed?: LidbSeed;
  targets?: TargetSelection;
  /** Exactly these layers, by full name, in this order, instead of `targets`. */
  layers?: readonly string[];
  /** The adapter's name on each Linear (default "lora"); give distinct names to stack several LoRAs. */
  name?: string;
  dtype?: DType;
}

/** One layer's LoRA weights, as read from or written to LoRA files. */
export interface LoraLayerWeights {
  /** (rank, in): lora_A / lora_down. */
  down: Tensor;
  /** (out, rank): lora_B / lora_up. */
  up: Tensor;
  /** scaling = alpha / rank; undefined means alpha = rank. */
  alpha?: number;
}

