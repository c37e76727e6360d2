/**
 * The frozen auxiliary bases of Lightweight DreamBooth (paper §4.1): A_aux (n×a) and B_aux (b×m) per layer.
 *
 * What they are. Random matrices with orthonormal rows or columns ("semi-orthogonal"): a matrix of shape
 * rows×cols has orthonormal rows when rows ≤ cols and orthonormal columns otherwise. With SD's sizes that is
 *
 *     B_aux (b×m, b=50 ≤ m):   B_aux B_auxᵀ = I_b    its rows are orthonormal, as the paper says;
 *     A_aux (n×a, a=100 ≤ n):  A_auxᵀ A_aux = I_a    its rows cannot be orthogonal (n > a vectors in R^a), so
 *                                                   its columns are: A_auxᵀ has the paper's orthogonal rows.
 *
 * Magnitude 1, and why. With both bases isometric, ΔW = A_aux (A_train B_train) B_aux preserves the Frobenius
 * norm of the a×b core: ‖ΔW‖_F = ‖A_train B_train‖_F. So the factors' scale means the same as a plain LoRA's,
 * learning rates transfer, and a distance between two cores is exactly the distance between their ΔW (the
 * gauge-free weight loss of prior-art mistake 3 can be computed on the tiny a×b core). At typical factor
 * values (entries ~0.1 for A_train and the U(±1/√b) ≈ ±0.14 init of B_train) a rank-1 ΔW has a norm of about
 * 0.1·√100 · 0.1·√50 ≈ 0.7, a few percent of an SD attention projection's Frobenius norm (~20–35): the scale of
 * a DreamBooth-LoRA update.
 *
 * How they are built, and why this way (prior-art mistake 1: bases regenerated with the global RNG on the
 * layer's device and dtype differ between CPU and GPU, so exported weights stop matching what was trained).
 * Here each matrix comes from its own stream, seeded by SHA-256("hdb-lidb-aux/v1", seed, layer name, matrix),
 * of a xoshiro128** generator implemented in integer arithmetic in JavaScript: uniform values in [-1, 1),
 * orthonormalised by modified Gram-Schmidt in float64, then rounded once to float32.
 * Only +, ×, ÷ and √ (all correctly rounded in IEEE 754) are used, so the float32 values are bit-identical on
 * every machine, OS and JavaScript engine, whatever libtorch/BLAS/LAPACK is installed; they are then copied
 * to the layer's device and cast to its dtype (the same values on CPU and CUDA, in fp32, fp16 and bf16). The
 * global RNG is never touched. A SHA-256 checksum of the float32 bytes of all bases (target order, A_aux then
 * B_aux per layer) goes into LiDB files and is verified on load: a basis that changed is an error, not a
 * silently distorted face.
 *
 * Memory: SD1.5's 176 layers with a=100, b=50 hold ~33M values (~130 MB in fp32). They are never stored in
 * files (prior-art mistake 4); building them takes a few seconds on one core.
 */
import { createHash, type Hash } from "node:crypto";
import type { TargetShape } from "../targets.js";
import { checkDimensions, type LidbDimensions, type LidbSeed } from "./config.js";

/** Bumped if the construction ever changes (it is part of every seed, so old files then fail their checksum). */
export const AUX_BASIS_VERSION = "hdb-lidb-aux/v1";

/** A layer's two bases as float32 row-major arrays: aAux (n×a) and bAux (b×m). */
export interface AuxBases {
  aAux: Float32Array;
  bAux: Float32Array;
}


/** Checks a seed and returns it in canonical decimal form (the form hashed into the streams and stored in files). */
export function seedText(seed: LidbSeed): string {
  const value = typeof seed === "bigint" ? seed
    : typeof seed === "string" ? (/^\d{1,20}$/.test(seed) ? BigInt(seed) : -1n)
    : Number.isSafeInteger(seed) ? BigInt(seed) : -1n;
  if (value < 0n || value >= 1n << 64n) throw new RangeError(`the LiDB seed must be an integer in [0, 2^64), got ${String(seed)}`);
  return value.toString();
}

/** Builds one layer's bases: A_aux (n×a) and B_aux (b×m) for the weight (n, m) = (outFeatures, inFeatures). */
export function buildAuxBases(seed: LidbSeed, layer: TargetShape, dims: Pick<LidbDimensions, "a" | "b">): AuxBases {
  checkDimensions(dims);
  const base = `${AUX_BASIS_VERSION}\0${seedText(seed)}\0${layer.name}`;
  return {
    aAux: semiOrthogonal(layer.outFeatures, dims.a, new Xoshiro128(`${base}\0A_aux`)),
    bAux: semiOrthogonal(dims.b, layer.inFeatures, new Xoshiro128(`${base}\0B_aux`)),
  };
}

/**
 * Incremental SHA-256 of bases in target order (A_aux then B_aux of each layer, float32 little-endian bytes):
 * feed each layer's bases with `update`, read the hex digest with `digest`.
 */
export class AuxBasisChecksum {
  readonly #hash: Hash = createHash("sha256");
  update(bases: AuxBases): void {
    for (const array of [bases.aAux, bases.bAux]) this.#hash.update(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  }
  digest(): string {
    return this.#hash.digest("hex");
  }
}

/** The basis checksum of a whole target list, computed layer by layer without keeping the bases. */
export function auxBasisChecksum(seed: LidbSeed, targets: readonly TargetShape[], dims: Pick<LidbDimensions, "a" | "b">): string {
  const checksum = new AuxBasisChecksum();
  for (const target of targets) checksum.update(buildAuxBases(seed, target, dims));
  return checksum.digest();
}

/**
 * The first `count` values of the stream for `key` as uniform doubles in [0, 1): the same generator the bases
 * use, for other deterministic draws (B_train's initialisation).
 */
export function uniformStream(key: string, count: number): Float64Array {
  const rng = new Xoshiro128(key);
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = rng.unit();
  return values;
}

/**
 * A rows×cols float32 matrix (row-major) with orthonormal rows (rows ≤ cols) or orthonormal columns
 * (rows > cols): min(rows, cols) random vectors of length max(rows, cols), orthonormalised.
 */
function semiOrthogonal(rows: number, cols: number, rng: Xoshiro128): Float32Array {
  const count = Math.min(rows, cols);
  const length = Math.max(rows, cols);
  const vectors = orthonormalVectors(count, length, rng);
  const out = new Float32Array(rows * cols);
  if (rows <= cols) {
    out.set(vectors);
  } else {
    for (let j = 0; j < count; j++) for (let i = 0; i < length; i++) out[i * cols + j] = vectors[j * length + i]!;
  }
  return out;
}

/** `count` orthonormal vectors of R^length (count ≤ length), one after the other in a float64 array. */
function orthonormalVectors(count: number, length: number, rng: Xoshiro128): Float64Array {
  const q = new Float64Array(count * length);
  const v = new Float64Array(length);
  for (let k = 0; k < count; k++) {
    for (;;) {
      for (let i = 0; i < length; i++) v[i] = 2 * rng.unit() - 1;
      const before = Math.sqrt(dot(v, 0, v, 0, length));
      // Modified Gram-Schmidt: one pass is enough here, as random vectors are well conditioned (for
      // 100 of R^1280, cond ≈ 1.6): orthogonality comes out at float64 rounding, far below float32's.
      for (let j = 0; j < k; j++) {
        const offset = j * length;
        const projection = dot(q, offset, v, 0, length);
        for (let i = 0; i < length; i++) v[i]! -= projection * q[offset + i]!;
      }
      const norm = Math.sqrt(dot(v, 0, v, 0, length));
      // A draw (almost) inside the span of the earlier vectors: draw again (never happens in practice).
      if (!(norm > 1e-3 * before)) continue;
      for (let i = 0; i < length; i++) q[k * length + i] = v[i]! / norm;
      break;
    }
  }
  return q;
}

/** Σ x[xOffset + i]·y[yOffset + i] with four running sums (a fixed order, so the same result everywhere). */
function dot(x: Float64Array, xOffset: number, y: Float64Array, yOffset: number, length: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < length; i += 4) {
    s0 += x[xOffset + i]! * y[yOffset + i]!;
    s1 += x[xOffset + i + 1]! * y[yOffset + i + 1]!;
    s2 += x[xOffset + i + 2]! * y[yOffset + i + 2]!;
    s3 += x[xOffset + i + 3]! * y[yOffset + i + 3]!;
  }
  for (; i < length; i++) s0 += x[xOffset + i]! * y[yOffset + i]!;
  return (s0 + s1) + (s2 + s3);
}

/**
 * xoshiro128** 1.1 (Blackman and Vigna), seeded with the first 16 bytes of SHA-256(key). 32-bit integer
 * arithmetic only, so every platform produces the same stream.
 */
class Xoshiro128 {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  constructor(key: string) {
    const digest = createHash("sha256").update(key, "utf8").digest();
    this.#s0 = digest.readUInt32LE(0);
    this.#s1 = digest.readUInt32LE(4);
    this.#s2 = digest.readUInt32LE(8);
    this.#s3 = digest.readUInt32LE(12);
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** The next 32-bit output, as an unsigned integer. */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  unit(): number {
    const high = this.next() >>> 5;
    const low = this.next() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
