/**
 * Merging an adapter's ΔW into its base layer's weight and taking it out again (shared by LiDB and LoRA).
 */
import { noGrad, tidy, type Tensor } from "../engine/index.js";
import type { Linear } from "../engine/nn/index.js";

/** weight += sign · delta, with delta cast to the weight's dtype and device first (so ± the same values); frees delta. */
export function addToWeight(layer: Linear, delta: Tensor, sign: 1 | -1): void {
  noGrad(() => tidy(() => {
    const cast = delta.to({ dtype: layer.weight.dtype, device: layer.weight.device });
    layer.weight.add_(cast, sign);
    delta.dispose();
  }));
}
