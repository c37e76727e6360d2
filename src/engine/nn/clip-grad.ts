/** Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_). */
import { noGrad } from "../autograd.js";
import { full } from "../creation.js";
import { stack } from "../functional.js";
import { tidy } from "../lifetime.js";
import type { Tensor } from "../tensor.js";

/**
 * Scales the gradients of `parameters` in place so that their global `normType`-norm (the norm of all
 * gradients as one vector) is at most `maxNorm`, and returns that norm as it was before clipping.
 *
 * Numerically this is PyTorch's `foreach=False` path: one vector norm per gradient (grouped by device and
 * dtype, in order of first appearance), the norm of those norms, then every gradient times
 * clamp(maxNorm / (total + 1e-6), max=1) — multiplied even when the factor is 1, as PyTorch does.
 */
export function clipGradNorm_(parameters: Iterable<Tensor>, maxNorm: number, normType = 2, options: { errorIfNonfinite?: boolean } = {}): Tensor {
  return noGrad(() => tidy(() => {
    const grads = [...parameters].map((p) => p.grad).filter((g): g is Tensor => g !== null);
    if (grads.length === 0) return full([], 0, { dtype: "float32" });
    const groups = new Map<string, Tensor[]>();
    for (const grad of grads) {
      const key = `${grad.device}/${grad.dtype}`;
      const group = groups.get(key);
      if (group) group.push(grad);
      else groups.set(key, [grad]);
    }
    const firstDevice = grads[0]!.device;
    const norms = [...groups.values()].flat().map((g) => g.norm(normType).to(firstDevice));
    const total = stack(norms).norm(normType);
    if (options.errorIfNonfinite && !Number.isFinite(total.item())) {
      throw new Error(`the total norm of order ${normType} of the gradients is non-finite, so they cannot be clipped`);
    }
    // maxNorm / (total + 1e-6) is evaluated by PyTorch as reciprocal(total + 1e-6) * maxNorm.
    const clipCoefficient = total.add(1e-6).reciprocal().mul(maxNorm).clamp(null, 1.0);
    for (const grad of grads) {
      const factor = clipCoefficient.to(grad.device);
      grad.mul_(factor);
    }
    return total;
  }));
}
