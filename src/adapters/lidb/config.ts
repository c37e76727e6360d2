/**
 * The settings of a Lightweight DreamBooth adapter (paper §4.1): the factorisation's sizes a, b, r, the seed
 * of its aux bases and which layers it adapts. The sizes are a zod schema (src/util/schema.ts): their type,
 * the paper's defaults and the errors come from it.
 */
import { z } from "zod";
import type { DType } from "../../engine/index.js";
import { parseWithSchema, positiveInt } from "../../util/schema.js";
import type { TargetSelection } from "../targets.js";

/** The seed of a LiDB: an integer in [0, 2^64), as a number, a bigint or decimal digits. */
export type LidbSeed = number | bigint | string;

/** The sizes of the LiDB factorisation, ΔW = A_aux·A_train·B_train·B_aux, with the paper's (§4.1: a=100, b=50, r=1). */
const lidbDimensionsSchema = z.object({
  /** Columns of A_aux and rows of A_train (paper: 100). */
  a: positiveInt().default(100),
  /** Columns of B_train and rows of B_aux (paper: 50). */
  b: positiveInt().default(50),
  /** The rank r: columns of A_train and rows of B_train (paper: 1). */
  rank: positiveInt().default(1),
});
export type LidbDimensions = z.output<typeof lidbDimensionsSchema>;

/** The sizes given (any subset), the paper's for the rest; a size that is not a positive integer is a RangeError. */
export function lidbDimensions(dims: Partial<LidbDimensions> = {}, source = "LiDB dimensions"): LidbDimensions {
  return parseWithSchema(lidbDimensionsSchema, dims, { source, error: RangeError });
}

/** Paper §4.1's sizes. */
export const LIDB_DEFAULTS: Readonly<LidbDimensions> = Object.freeze(lidbDimensions());

export interface LidbOptions extends Partial<LidbDimensions> {
  /** Seed of the aux bases and of B_train's initialisation (default 0). Stored in LiDB files. */
  seed?: LidbSeed;
  /** Which attention projections (default: all of the UNet and the text encoder). */
  targets?: TargetSelection;
  /**
   * Exactly these layers, by full name ("unet.….to_q"), in this order, instead of `targets` (how a LiDB file
   * is applied: its own target list).
   */
  layers?: readonly string[];
  /** The adapter's name on each Linear (default "lidb"). */
  name?: string;
  /** Dtype of bases, factors and the delta computation (default: each base weight's). */
  dtype?: DType;
}

/** Checks the sizes given (a RangeError naming the size and the value); `source` names their owner in errors. */
export function checkDimensions(dims: Partial<LidbDimensions>, source = "LiDB dimensions"): void {
  lidbDimensions(dims, source);
}

