/**
 * Linear: y = x Wᵀ + b (torch.nn.Linear), with PyTorch's parameter names, layout and initialisation, plus a
 * generic hook for additive adapters (LoRA-style low-rank updates).
 *
 * Adapters: model code calls `this.toQ.forward(x)` on readonly fields, so an adapter cannot be swapped in as a
 * replacement module; instead a Linear carries named adapters and its forward returns
 *
 *     base(x) + Σ_adapters adapter.delta(x)          (in the order the adapters were added)
 *
 * An adapter's `delta` may return null to contribute nothing (an adapter merged into the weight, or disabled).
 * The Linear does not own its adapters: it neither lists their parameters nor moves or frees them; whoever
 * added them does (in this project, the handles of src/adapters/{lidb,lora}/model.ts). With no adapter, forward is exactly
 * torch.nn.Linear's one operator.
 */
import type { TensorOptions } from "../creation.js";
import { linear } from "../functional.js";
import type { Tensor } from "../tensor.js";
import { defaultLayerInit_ } from "./init.js";
import { Module } from "./module.js";
import { Parameter } from "./parameter.js";

export interface LinearOptions extends Omit<TensorOptions, "requiresGrad"> {
  /** Whether to learn an additive bias (default true). */
  bias?: boolean;
}

/**
 * An additive update of a Linear layer's output. `delta(input)` gets the layer's input (…, in) and returns a
 * new tensor (the layer frees it) that broadcasts against the base output (…, out), or null for no
 * contribution. A delta of another dtype than the base output is cast to the output's dtype.
 */
export interface LinearAdapter extends Module {
  delta(input: Tensor): Tensor | null;
}

export class Linear extends Module {
  /** (outFeatures, inFeatures), as in PyTorch, so checkpoints load without transposing. */
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly #adapters = new Map<string, LinearAdapter>();

  constructor(readonly inFeatures: number, readonly outFeatures: number, options: LinearOptions = {}) {
    super();
    const { bias = true, ...tensorOptions } = options;
    this.weight = this.registerParameter("weight", Parameter.empty([outFeatures, inFeatures], tensorOptions));
    this.bias = bias ? this.registerParameter("bias", Parameter.empty([outFeatures], tensorOptions)) : null;
    this.resetParameters();
  }

  /**
   * PyTorch's default: kaiming_uniform_(a=sqrt(5)) for the weight, which is U(-1/sqrt(in), 1/sqrt(in)),
   * and the same bound for the bias. The weight is drawn first, then the bias (the RNG order matters).
   */
  resetParameters(): void {
    defaultLayerInit_(this.weight, this.bias);
  }

  /** Adds an adapter under `name` (unique per layer): forward then adds `adapter.delta(x)` to its output. */
  addAdapter(name: string, adapter: LinearAdapter): void {
    if (name === "") throw new Error("Linear.addAdapter: the adapter name must not be empty");
    if (this.#adapters.has(name)) throw new Error(`Linear.addAdapter: this layer already has an adapter named '${name}'`);
    this.#adapters.set(name, adapter);
  }

  /** Detaches the adapter named `name` and returns it (undefined if there is none); freeing it is the caller's job. */
  removeAdapter(name: string): LinearAdapter | undefined {
    const adapter = this.#adapters.get(name);
    this.#adapters.delete(name);
    return adapter;
  }

  /** The adapters with their names, in the order they were added. */
  adapters(): [string, LinearAdapter][] {
    return [...this.#adapters];
  }

  forward(input: Tensor): Tensor {
    const base = linear(input, this.weight, this.bias);
    if (this.#adapters.size === 0) return base;
    let output = base;
    for (const adapter of this.#adapters.values()) {
      const delta = adapter.delta(input);
      if (delta === null) continue;
      const matching = delta.dtype === output.dtype ? delta : delta.to(output.dtype);
      const sum = output.add(matching);
      if (matching !== delta) matching.dispose();
      delta.dispose();
      output.dispose();
      output = sum;
    }
    return output;
  }
}
