/**
 * The similarity every feature metric of HyperDreamBooth §5 reports (DINO, CLIP-I, CLIP-T): the cosine of two
 * feature vectors, summed in float64 in a fixed order so the score does not depend on the thread count.
 */
import { tidy } from "../../engine/lifetime.js";
import type { Tensor } from "../../engine/tensor.js";

/** A feature vector ([D] or [1, D]) as float64 numbers. */
function values(t: Tensor): Float64Array {
  return tidy(() => t.reshape(-1).to({ dtype: "float64", device: "cpu" }).contiguous().data() as Float64Array);
}

/** cos(a, b) of two feature vectors ([D] or [1, D]); 0 when either is all zeros. */
export function cosineSimilarity(a: Tensor, b: Tensor): number {
  const x = values(a);
  const y = values(b);
  if (x.length !== y.length) throw new RangeError(`cosineSimilarity: features of different sizes (${x.length} and ${y.length})`);
  let dot = 0;
  let xx = 0;
  let yy = 0;
  for (let i = 0; i < x.length; i++) {
    dot += x[i]! * y[i]!;
    xx += x[i]! * x[i]!;
    yy += y[i]! * y[i]!;
  }
  const norms = Math.sqrt(xx) * Math.sqrt(yy);
  return norms > 0 ? dot / norms : 0;
}
