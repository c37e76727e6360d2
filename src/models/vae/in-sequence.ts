/**
 * Runs layers one after another, freeing each intermediate as soon as the next layer has consumed it, so that
 * a VAE pass at 512×512 holds one or two feature maps at a time rather than all of them (autograd keeps what
 * backward needs on its own). The input stays the caller's; on an error the intermediates are freed too.
 */
import type { Tensor } from "../../engine/index.js";

export type Step = (x: Tensor) => Tensor;

export function inSequence(input: Tensor, steps: Iterable<Step>): Tensor {
  let current = input;
  try {
    for (const step of steps) {
      const next = step(current);
      if (current !== input && next !== current) current.dispose();
      current = next;
    }
  } catch (error) {
    if (current !== input) current.dispose();
    throw error;
  }
  return current === input ? input.alias() : current;
}
