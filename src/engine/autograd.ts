/** Autograd entry points: grad mode scopes, backward, and gradients of outputs w.r.t. inputs. */
import { checkBackwardGuards } from "./backward-guards.js";
import { native } from "./native/addon.js";
import { Tensor } from "./tensor.js";

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const previous = native.setGradEnabled(enabled);
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error("grad mode scopes do not take async functions");
    return result;
  } finally {
    native.setGradEnabled(previous);
  }
}

/** Runs fn without recording operations for autograd (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs fn with autograd recording on, also inside a noGrad scope (torch.enable_grad). */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

export function isGradEnabled(): boolean {
  return native.gradEnabled();
}

export interface GradOptions {
  gradOutputs?: (Tensor | null)[];
  retainGraph?: boolean;
  /** Record the gradient computation itself, for higher-order gradients. */
  createGraph?: boolean;
  /** Return null for inputs that do not influence the outputs instead of throwing. */
  allowUnused?: boolean;
}

/** Gradients of outputs w.r.t. inputs, without touching `.grad` (torch.autograd.grad). */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor[], options: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const gradOutputs = options.gradOutputs ?? outs.map(() => null);
  if (gradOutputs.length !== outs.length) throw new Error(`grad: ${outs.length} outputs but ${gradOutputs.length} gradOutputs`);
  checkBackwardGuards();
  const handles = native.grad(
    outs.map((t) => t.handle), inputs.map((t) => t.handle), gradOutputs.map((g) => (g ? g.handle : null)),
    options.retainGraph ?? null, options.createGraph ?? false, options.allowUnused ?? false,
  );
  return handles.map((h) => (h === null ? null : new Tensor(h)));
}

/** Accumulates gradients of several outputs into the leaves' `.grad` (torch.autograd.backward). */
export function backward(outputs: Tensor[], gradOutputs?: (Tensor | null)[], options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
  checkBackwardGuards();
  native.backward(
    outputs.map((t) => t.handle), (gradOutputs ?? outputs.map(() => null)).map((g) => (g ? g.handle : null)),
    options.retainGraph ?? null, options.createGraph ?? false,
  );
}
