/**
 * Reporting statistics for the metric networks and the evaluation tables: ROC-AUC, a t-based confidence
 * interval of a mean, and cosine similarity matrices.
 *
 * The scalar statistics run on plain JS numbers (doubles): they summarise a few hundred to a few million
 * numbers once, which is reporting, not tensor maths. Cosine similarities run on the engine.
 */
import { type Tensor } from "../engine/index.js";
import { l2Normalize } from "./identity-network.js";

/**
 * The exact area under the ROC curve: the probability that a random positive scores higher than a random
 * negative, ties counting one half (the Mann–Whitney U statistic over P·N). Computed from midranks in
 * O(n log n); no thresholds, no interpolation.
 */
export function rocAuc(scores: ArrayLike<number>, isPositive: ArrayLike<boolean>): number {
  const n = scores.length;
  if (isPositive.length !== n) throw new Error(`rocAuc: ${n} scores but ${isPositive.length} labels`);
  const values = Float64Array.from(scores);
  for (let i = 0; i < n; i++) if (Number.isNaN(values[i]!)) throw new Error(`rocAuc: score ${i} is NaN`);
  let positives = 0;
  for (let i = 0; i < n; i++) if (isPositive[i]) positives++;
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) throw new Error(`rocAuc needs positives and negatives, got ${positives} positive and ${negatives} negative`);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => values[a]! - values[b]!);
  // Sum of the (1-based, midrank for ties) ranks of the positives.
  let positiveRankSum = 0;
  for (let start = 0; start < n;) {
    let end = start + 1;
    while (end < n && values[order[end]!] === values[order[start]!]) end++;
    const midrank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) if (isPositive[order[k]!]) positiveRankSum += midrank;
    start = end;
  }
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export interface ConfidenceInterval {
  mean: number;
  /** Sample standard deviation (n − 1 in the denominator). */
  standardDeviation: number;
  /** standardDeviation / √n. */
  standardError: number;
  /** t quantile × standard error: the interval is mean ± halfWidth. */
  halfWidth: number;
  low: number;
  high: number;
  level: number;
  count: number;
}

/**
 * The mean of `values` with a two-sided confidence interval from Student's t distribution with n − 1 degrees of
 * freedom: mean ± t_{(1+level)/2, n−1} · s / √n. This is the interval for the mean of independent samples from
 * a roughly normal population (and, by the central limit theorem, for means of a few dozen samples of nearly
 * anything); it is wider than the normal ±1.96 s/√n for small n (t_{0.975, 9} = 2.262).
 */
export function meanConfidenceInterval(values: ArrayLike<number>, level = 0.95): ConfidenceInterval {
  const n = values.length;
  if (n < 2) throw new Error(`meanConfidenceInterval needs at least 2 values, got ${n}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`confidence level must be in (0, 1), got ${level}`);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const value = values[i]!;
    if (!Number.isFinite(value)) throw new Error(`meanConfidenceInterval: value ${i} is ${value}`);
    sum += value;
  }
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (values[i]! - mean) ** 2;
  const standardDeviation = Math.sqrt(squares / (n - 1));
  const standardError = standardDeviation / Math.sqrt(n);
  const halfWidth = studentTQuantile((1 + level) / 2, n - 1) * standardError;
  return { mean, standardDeviation, standardError, halfWidth, low: mean - halfWidth, high: mean + halfWidth, level, count: n };
}

/** (N, D) × (M, D) → (N, M) cosine similarities (rows normalised to unit length first). */
export function cosineSimilarityMatrix(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 2 || b.ndim !== 2 || a.size(1) !== b.size(1)) {
    throw new Error(`cosineSimilarityMatrix needs (N, D) and (M, D), got [${a.shape.join(", ")}] and [${b.shape.join(", ")}]`);
  }
  using left = l2Normalize(a);
  using right = l2Normalize(b);
  using transposed = right.mT();
  return left.matmul(transposed);
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom, through the regularised incomplete beta function. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`degrees of freedom must be > 0, got ${df}`);
  const tail = 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The t with P(T ≤ t) = p (Student's t, `df` degrees of freedom): bisection on the CDF to full precision. */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`probability must be in (0, 1), got ${p}`);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let low = 0;
  let high = 1;
  while (studentTCdf(high, df) < p) {
    low = high;
    high *= 2;
    if (high > 1e12) throw new Error(`studentTQuantile(${p}, ${df}) did not bracket`);
  }
  for (let i = 0; i < 200 && high - low > 1e-15 * high; i++) {
    const middle = (low + high) / 2;
    if (studentTCdf(middle, df) < p) low = middle;
    else high = middle;
  }
  return (low + high) / 2;
}

/** I_x(a, b) by its continued fraction (Numerical Recipes §6.4), using the symmetry for fast convergence. */
function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return h;
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: ~15 significant digits). */
function logGamma(x: number): number {
  const coefficients = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let sum = coefficients[0]!;
  for (let i = 1; i < 9; i++) sum += coefficients[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}
