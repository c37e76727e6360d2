/**
 * Finding NaN and ±Inf in tensors, for the checks that refuse them at the edges (files read, gradients and
 * weights after a training step, latents during generation).
 *
 * Cheap by construction: one isfinite().all() per tensor through libtorch (each tensor's bool mask freed as soon
 * as it is reduced, so the peak is one tensor's mask, not the model's), the per-tensor flags stacked on the
 * tensors' device, and one copy to the host for all of them. No JS loop ever touches the values.
 */
import { isFloatingDType } from "./dtype.js";
import { stack } from "./functional.js";
import { noGrad } from "./autograd.js";
import { tidy } from "./lifetime.js";
import type { Tensor } from "./tensor.js";

/**
 * The names of the tensors holding a NaN or an infinity, in the order given ([] when all are finite). Integer and
 * bool tensors cannot hold either and are skipped, as are empty tensors and tensors on the meta device.
 */
export function nonFiniteNames(tensors: Iterable<readonly [string, Tensor]>): string[] {
  const checked = [...tensors].filter(([, t]) => isFloatingDType(t.dtype) && t.numel > 0 && t.device !== "meta");
  if (checked.length === 0) return [];
  return noGrad(() => tidy(() => {
    const flags = new Map<string, Tensor[]>();
    for (const [, t] of checked) {
      const flag = tidy(() => t.isFinite().all());
      const list = flags.get(t.device);
      if (list) list.push(flag);
      else flags.set(t.device, [flag]);
    }
    const finite = new Map([...flags].map(([device, list]) => [device, stack(list).cpu().data() as Uint8Array]));
    const seen = new Map<string, number>();
    return checked.filter(([, t]) => {
      const i = seen.get(t.device) ?? 0;
      seen.set(t.device, i + 1);
      return finite.get(t.device)![i] === 0;
    }).map(([name]) => name);
  }));
}

/** Whether every element of every tensor is finite (see nonFiniteNames). */
export function allFinite(tensors: readonly Tensor[]): boolean {
  return nonFiniteNames(tensors.map((t, i) => [String(i), t] as const)).length === 0;
}
