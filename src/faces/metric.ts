/**
 * The Face Rec metric (HyperDreamBooth §5, "Face Rec"): the cosine similarity of face descriptors (dlib's ResNet,
 * 128-d) of two faces, each described on its eye-levelled crop (FaceAnalyzer.describe). 1 = same direction;
 * descriptors of one person across photos lie close, of different people further apart (measured on real photos
 * in reports/faces/).
 */
import { tidy } from "../engine/lifetime.js";
import type { Tensor } from "../engine/tensor.js";

/** Cosine similarity of every row of a (N, D) with every row of b (M, D): (N, M) float32. */
export function descriptorSimilarity(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 2 || b.ndim !== 2 || a.size(1) !== b.size(1)) {
    throw new Error(`descriptorSimilarity: expected (N, D) and (M, D) descriptors, got [${a.shape.join(", ")}] and [${b.shape.join(", ")}]`);
  }
  return tidy(() => {
    const na = a.float().div(a.float().norm(2, -1, true).clamp(1e-12));
    const nb = b.float().div(b.float().norm(2, -1, true).clamp(1e-12));
    return na.matmul(nb.transpose(0, 1));
  });
}
