/**
 * The settings of a Lightweight DreamBooth adapter (paper §4.1): the factorisation's sizes a, b, r, the seed
 * of its aux bases and which layers it adapts.
 */
import type { DType } from "../../engine/index.js";
import type { TargetSelection } from "../targets.js";

/** The seed of a LiDB: an integer in [0, 2^64), as a number, a bigint or decimal digits. */
export type LidbSeed = number | bigint | string;

/** The sizes of the LiDB factorisation (paper §4.1: a=100, b=50, r=1). */
export interface LidbDimensions {
  /** Columns of A_aux and rows of A_train (paper: 100). */
  a: number;
  /** Columns of B_train and rows of B_aux (paper: 50). */
  b: number;
  /** The rank r: columns of A_train and rows of B_train (paper: 1). */
  rank: number;
}

/** Paper §4.1's sizes. */
export const LIDB_DEFAULTS: Readonly<LidbDimensions> = { a: 100, b: 50, rank: 1 };

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

export function checkDimensions(dims: Partial<LidbDimensions>): void {
  for (const [name, value] of Object.entries(dims)) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new RangeError(`LiDB dimension ${name} must be a positive integer, got ${value}`);
  }
}

