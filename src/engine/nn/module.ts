/**
 * Module: the base class of layers and models (torch.nn.Module).
 *
 * A module owns named parameters, buffers and child modules, registered explicitly in its constructor:
 *
 *     this.weight = this.registerParameter("weight", Parameter.empty([out, in]));
 *     this.attention = this.registerModule("attention", new CausalSelfAttention(config));
 *
 * Explicit registration (rather than discovering properties by reflection) keeps the order of parameters
 * deterministic and identical to PyTorch's registration order, which is what makes state dict keys
 * ("blocks.0.attention.qkv.weight") and optimiser parameter indices line up with PyTorch checkpoints.
 *
 * Lifetime: parameters and buffers are `keep`-ed, so tidy scopes never free them; `dispose()` frees them all.
 */
import { noGrad } from "../autograd.js";
import { dtypeCode, isFloatingDType, type DType } from "../dtype.js";
import type { Tensor, Device } from "../tensor.js";
import { Buffer, Parameter, type ModuleTensor } from "./parameter.js";

/** A module with a one-tensor forward (what Sequential chains). */
export interface UnaryModule extends Module {
  forward(input: Tensor): Tensor;
}

export interface LoadStateDictResult {
  missing: string[];
  unexpected: string[];
}

export abstract class Module {
  /** Training mode (dropout active). Set recursively by `train()` / `eval()`. */
  training = true;
  readonly #parameters = new Map<string, Parameter>();
  readonly #buffers = new Map<string, Buffer>();
  readonly #modules = new Map<string, Module>();

  // ---- registration ---------------------------------------------------------------------------------

  /** Registers a parameter under `name`; a plain tensor is wrapped in a Parameter sharing its storage. */
  protected registerParameter(name: string, value: Tensor): Parameter {
    this.#checkName(name);
    const parameter = value instanceof Parameter ? value : new Parameter(value);
    this.#parameters.set(name, parameter);
    return parameter;
  }

  /** Registers a buffer; non-persistent buffers move with the module but stay out of `stateDict()`. */
  protected registerBuffer(name: string, value: Tensor, options: { persistent?: boolean } = {}): Buffer {
    this.#checkName(name);
    const buffer = value instanceof Buffer ? value : new Buffer(value, options);
    this.#buffers.set(name, buffer);
    return buffer;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    this.#checkName(name);
    this.#modules.set(name, module);
    return module;
  }

  #checkName(name: string): void {
    if (name === "" || name.includes(".")) throw new Error(`invalid name '${name}': names must be non-empty and contain no '.'`);
    if (this.#parameters.has(name) || this.#buffers.has(name) || this.#modules.has(name)) {
      throw new Error(`'${name}' is already registered on ${this.constructor.name}`);
    }
  }

  // ---- traversal --------------------------------------------------------------------------------------

  /** Direct children with their names, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.#modules];
  }
  children(): Module[] {
    return [...this.#modules.values()];
  }

  /** This module and every descendant, pre-order, with dotted names ("" for this module); each once. */
  namedModules(prefix = ""): [string, Module][] {
    const result: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (module: Module, name: string): void => {
      if (seen.has(module)) return;
      seen.add(module);
      result.push([name, module]);
      for (const [childName, child] of module.#modules) visit(child, name === "" ? childName : `${name}.${childName}`);
    };
    visit(this, prefix);
    return result;
  }
  modules(): Module[] {
    return this.namedModules().map(([, module]) => module);
  }

  /** Parameters with dotted names, in PyTorch's order; a parameter shared by two modules appears once. */
  namedParameters(): [string, Parameter][] {
    return this.#collect((module) => module.#parameters);
  }
  parameters(): Parameter[] {
    return this.namedParameters().map(([, parameter]) => parameter);
  }
  namedBuffers(): [string, Buffer][] {
    return this.#collect((module) => module.#buffers);
  }
  buffers(): Buffer[] {
    return this.namedBuffers().map(([, buffer]) => buffer);
  }

  #collect<T extends ModuleTensor>(own: (module: Module) => Map<string, T>): [string, T][] {
    const result: [string, T][] = [];
    const seen = new Set<T>();
    for (const [moduleName, module] of this.namedModules()) {
      for (const [name, tensor] of own(module)) {
        if (seen.has(tensor)) continue;
        seen.add(tensor);
        result.push([moduleName === "" ? name : `${moduleName}.${name}`, tensor]);
      }
    }
    return result;
  }

  // ---- state dict -------------------------------------------------------------------------------------

  /**
   * Every parameter and persistent buffer by dotted name (shared tensors under each of their names, as in
   * PyTorch). The values are the module's own tensors, not copies: read or save them, do not dispose them.
   */
  stateDict(): Map<string, Tensor> {
    const result = new Map<string, Tensor>();
    const visit = (module: Module, prefix: string): void => {
      for (const [name, parameter] of module.#parameters) result.set(prefix + name, parameter);
      for (const [name, buffer] of module.#buffers) if (buffer.persistent) result.set(prefix + name, buffer);
      for (const [name, child] of module.#modules) visit(child, `${prefix}${name}.`);
    };
    visit(this, "");
    return result;
  }

  /**
   * Copies values into the module's tensors in place (without autograd), converting dtype and device as
   * needed (fp16 weights load into an fp32 module). Everything is checked before anything is copied, and
   * all problems are reported in one error: missing keys, unexpected keys and shape mismatches.
   * With `strict: false`, missing and unexpected keys are returned instead (shape mismatches still throw).
   */
  loadStateDict(stateDict: Map<string, Tensor> | Record<string, Tensor>, options: { strict?: boolean } = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const source = stateDict instanceof Map ? stateDict : new Map(Object.entries(stateDict));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((key) => !source.has(key));
    const unexpected = [...source.keys()].filter((key) => !own.has(key));
    const mismatched: string[] = [];
    for (const [key, target] of own) {
      const value = source.get(key);
      if (value && !sameShape(value.shape, target.shape)) {
        mismatched.push(`  shape mismatch for "${key}": the module has [${target.shape.join(", ")}], the state dict has [${value.shape.join(", ")}]`);
      }
    }
    const problems: string[] = [];
    if (strict && missing.length > 0) problems.push(`  missing keys: ${missing.map((k) => `"${k}"`).join(", ")}`);
    if (strict && unexpected.length > 0) problems.push(`  unexpected keys: ${unexpected.map((k) => `"${k}"`).join(", ")}`);
    problems.push(...mismatched);
    if (problems.length > 0) {
      throw new Error(`error loading the state dict into ${this.constructor.name}:\n${problems.join("\n")}`);
    }
    noGrad(() => {
      for (const [key, target] of own) {
        const value = source.get(key);
        if (value && value !== target) target.copy_(value);
      }
    });
    return { missing, unexpected };
  }

  // ---- modes, devices, freezing -----------------------------------------------------------------------

  /** Sets training mode on this module and every descendant. */
  train(mode = true): this {
    for (const module of this.modules()) module.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /**
   * Moves and/or casts every parameter and buffer in place: `to("cuda")`, `to("float16")`,
   * `to("cuda", "float16")` or `to({ device, dtype })`. As in PyTorch, a dtype applies to floating-point
   * tensors only. The Parameter objects stay the same (their data is swapped with `set_data`), so an
   * optimiser built before the move still holds valid parameters; its state, however, stays where it was,
   * so move the model before creating the optimiser, as in PyTorch.
   */
  to(target: Device | DType | { device?: Device; dtype?: DType }, dtype?: DType): this {
    let spec: { device?: Device; dtype?: DType };
    if (typeof target === "string") spec = isDType(target) ? { dtype: target } : { device: target, dtype };
    else spec = target;
    const tensors: ModuleTensor[] = [...this.parameters(), ...this.buffers()];
    noGrad(() => {
      for (const tensor of tensors) {
        const newDType = spec.dtype && isFloatingDType(tensor.dtype) ? spec.dtype : tensor.dtype;
        const newDevice = spec.device ?? tensor.device;
        if (newDType === tensor.dtype && sameDevice(newDevice, tensor.device)) continue;
        const moved = tensor.to({ dtype: newDType, device: newDevice });
        tensor.setData(moved);
        moved.dispose();
      }
    });
    return this;
  }

  /** Turns gradient recording on or off for every parameter (freezing: `requiresGrad_(false)`). */
  requiresGrad_(requiresGrad = true): this {
    for (const parameter of this.parameters()) parameter.requiresGrad = requiresGrad;
    return this;
  }

  /** Calls fn on every descendant and then on this module (children first, as torch.nn.Module.apply). */
  apply(fn: (module: Module) => void): this {
    for (const child of this.#modules.values()) child.apply(fn);
    fn(this);
    return this;
  }

  /** Clears gradients: to null by default (frees memory), or to zeros with `setToNone = false`. */
  zeroGrad(setToNone = true): void {
    for (const parameter of this.parameters()) {
      if (setToNone) {
        parameter.grad = null;
      } else {
        const grad = parameter.grad;
        grad?.zero_();
        grad?.dispose();
      }
    }
  }

  /** Number of parameter elements (trainable only, by default). */
  parameterCount(trainableOnly = true): number {
    return this.parameters().filter((p) => !trainableOnly || p.requiresGrad).reduce((total, p) => total + p.numel, 0);
  }

  /** Frees every parameter and buffer of this module and its descendants. The module is unusable after. */
  dispose(): void {
    for (const tensor of [...this.parameters(), ...this.buffers()]) tensor.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

function isDType(name: string): name is DType {
  try {
    dtypeCode(name as DType);
    return true;
  } catch {
    return false;
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/** "cuda" and "cuda:0" name the same device when only one is meant; compare loosely for the no-op check. */
function sameDevice(a: Device, b: Device): boolean {
  return a === b || (b.startsWith(`${a}:`) && a !== "cpu" && b.endsWith(":0"));
}
