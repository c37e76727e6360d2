/** Containers: Sequential (chains one-input modules) and ModuleList (an indexed list of submodules). */
import type { Tensor } from "../tensor.js";
import { Module, type UnaryModule } from "./module.js";

/**
 * Registers modules under "0", "1", ... (PyTorch's names, so "layers.0.weight" matches its checkpoints).
 * Iterable, with `at(i)` (negative indices count from the end) and `push`.
 */
export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  readonly #items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const module of modules) this.push(module);
  }

  push(...modules: M[]): this {
    for (const module of modules) this.#items.push(this.registerModule(String(this.#items.length), module));
    return this;
  }

  at(index: number): M {
    const item = this.#items.at(index);
    if (!item) throw new RangeError(`index ${index} is out of range for a ModuleList of ${this.#items.length}`);
    return item;
  }

  get length(): number {
    return this.#items.length;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.#items[Symbol.iterator]();
  }
}

/**
 * Applies its modules in order: forward(x) = mₙ(…m₁(x)). Intermediate handles are freed as soon as the next
 * module has run (autograd keeps what it needs on its own), so only the final output is the caller's.
 */
export class Sequential extends ModuleList<UnaryModule> {
  constructor(...modules: UnaryModule[]) {
    super(modules);
  }

  forward(input: Tensor): Tensor {
    let output = input.alias();
    for (const module of this) {
      const next = module.forward(output);
      if (next !== output) output.dispose();
      output = next;
    }
    return output;
  }
}
