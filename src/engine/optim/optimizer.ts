/**
 * Optimizer: the base of AdamW, SGD, ... (torch.optim.Optimizer).
 *
 * Parameters are organised in groups, each with its own hyper-parameters (one group may use weight decay,
 * another none); a learning-rate schedule changes `group.lr` between steps. Every parameter has its own
 * state (moment estimates, step counts), created on its first update.
 *
 * The state can be saved and restored: `stateDict()` splits it into tensors, named
 * "state.<parameterIndex>.<name>" with parameters numbered across groups in order (PyTorch's numbering),
 * and a JSON-able part holding the hyper-parameters of each group and the per-parameter numbers.
 * checkpoint.ts writes both to one safetensors file.
 */
import { noGrad } from "../autograd.js";
import { isFloatingDType } from "../dtype.js";
import { keep, tidy } from "../lifetime.js";
import { Tensor } from "../tensor.js";

/** A value a hyper-parameter may take: JSON-able, so it can be saved in a checkpoint's metadata. */
export type HyperParameterValue = number | boolean | string | null | readonly number[];

/** The hyper-parameters every optimiser has. */
export interface BaseHyperParameters {
  lr: number;
}

/** A parameter group as the optimiser holds it: every hyper-parameter filled in. */
export type ParamGroup<H extends BaseHyperParameters> = H & { params: Tensor[] };

/** A parameter group as the user gives it: hyper-parameters not given come from the optimiser's defaults. */
export type ParamGroupInput<H extends BaseHyperParameters> = Partial<H> & { params: Iterable<Tensor> };

/** The state of one parameter: tensors (moving averages) and numbers (step counts). */
export type ParameterState = Record<string, Tensor | number>;

export interface OptimizerStateDict {
  /** "state.<parameterIndex>.<name>" → state tensor. */
  tensors: Map<string, Tensor>;
  /** Hyper-parameters per group (with the indices of their parameters) and per-parameter numbers. */
  meta: {
    paramGroups: (Record<string, HyperParameterValue> & { params: number[] })[];
    state: Record<string, Record<string, number>>;
  };
}

export abstract class Optimizer<H extends BaseHyperParameters> {
  readonly paramGroups: ParamGroup<H>[] = [];
  /** Per-parameter state, keyed by the parameter object. */
  readonly state = new Map<Tensor, ParameterState>();

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput<H>>, readonly defaults: H) {
    const list = [...params];
    if (list.length === 0) throw new Error(`${this.constructor.name} got an empty parameter list`);
    const tensors = list.filter((item) => item instanceof Tensor).length;
    if (tensors === list.length) this.addParamGroup({ params: list as Tensor[] } as unknown as ParamGroupInput<H>);
    else if (tensors === 0) for (const group of list as ParamGroupInput<H>[]) this.addParamGroup(group);
    else throw new TypeError("give either tensors or parameter groups ({ params, ...hyper-parameters }), not a mix");
  }

  /** Adds a group; its missing hyper-parameters come from `defaults`. A parameter may be in one group only. */
  addParamGroup(input: ParamGroupInput<H>): void {
    const params = [...input.params];
    const existing = new Set(this.paramGroups.flatMap((group) => group.params));
    for (const param of params) {
      if (!(param instanceof Tensor)) throw new TypeError("an optimizer can only optimize tensors");
      if (existing.has(param)) throw new Error("some parameters appear in more than one parameter group");
      existing.add(param);
    }
    if (new Set(params).size !== params.length) throw new Error("a parameter group lists the same parameter twice");
    const group = { ...this.defaults, ...input, params } as ParamGroup<H>;
    this.validate(group);
    this.paramGroups.push(group);
  }

  /** Checks a group's hyper-parameters; subclasses throw a RangeError for invalid values. */
  protected validate(group: ParamGroup<H>): void {
    if (!(group.lr >= 0)) throw new RangeError(`invalid learning rate: ${group.lr}`);
  }

  /** Clears the gradients of every parameter: to null (default, frees memory) or to zeros. */
  zeroGrad(setToNone = true): void {
    for (const group of this.paramGroups) {
      for (const param of group.params) {
        if (setToNone) {
          param.grad = null;
        } else {
          const grad = param.grad;
          grad?.zero_();
          grad?.dispose();
        }
      }
    }
  }

  /** One update of every parameter that has a gradient, without autograd; temporaries are freed. */
  step(): void {
    noGrad(() => tidy(() => {
      for (const group of this.paramGroups) this.updateGroup(group);
    }));
  }

  /** Updates the parameters of one group; runs inside `step()`'s no-grad tidy scope. */
  protected abstract updateGroup(group: ParamGroup<H>): void;

  /** The state of `param`, created empty on first use. Tensors put in it must be `keep`-ed (see `keepState`). */
  protected stateOf(param: Tensor): ParameterState {
    let state = this.state.get(param);
    if (!state) {
      state = {};
      this.state.set(param, state);
    }
    return state;
  }

  /** Marks a state tensor as living until the optimizer is disposed (it is created inside a tidy scope). */
  protected keepState(tensor: Tensor): Tensor {
    return keep(tensor);
  }

  /** All parameters, numbered as in the state dict. */
  protected orderedParams(): Tensor[] {
    return this.paramGroups.flatMap((group) => group.params);
  }

  /** The state as tensors (the optimizer's own, not copies: save them, do not dispose them) and JSON. */
  stateDict(): OptimizerStateDict {
    const params = this.orderedParams();
    const tensors = new Map<string, Tensor>();
    const state: Record<string, Record<string, number>> = {};
    params.forEach((param, index) => {
      const entry = this.state.get(param);
      if (!entry) return;
      const numbers: Record<string, number> = {};
      for (const [name, value] of Object.entries(entry)) {
        if (value instanceof Tensor) tensors.set(`state.${index}.${name}`, value);
        else numbers[name] = value;
      }
      state[String(index)] = numbers;
    });
    let next = 0;
    const paramGroups = this.paramGroups.map((group) => {
      const { params: groupParams, ...hyper } = group;
      const indices = groupParams.map(() => next++);
      return { ...(hyper as unknown as Record<string, HyperParameterValue>), params: indices };
    });
    return { tensors, meta: { paramGroups, state } };
  }

  /**
   * Restores a state saved by `stateDict()` for an optimizer over the same parameters in the same groups.
   * Hyper-parameters are taken from the saved groups; state tensors are copied (the caller keeps its own),
   * floating-point ones converted to their parameter's dtype and device, as PyTorch does.
   */
  loadStateDict(saved: OptimizerStateDict): void {
    const groups = saved.meta.paramGroups;
    if (groups.length !== this.paramGroups.length) {
      throw new Error(`the saved state has ${groups.length} parameter groups, this optimizer has ${this.paramGroups.length}`);
    }
    groups.forEach((group, i) => {
      const own = this.paramGroups[i]!;
      if (group.params.length !== own.params.length) {
        throw new Error(`parameter group ${i} has ${group.params.length} parameters in the saved state but ${own.params.length} here`);
      }
      const { params: _indices, ...hyper } = group;
      this.validate({ ...own, ...hyper } as ParamGroup<H>);
    });
    const byIndex = new Map<number, Tensor>();
    groups.forEach((group, i) => group.params.forEach((index, j) => byIndex.set(index, this.paramGroups[i]!.params[j]!)));
    const fresh = new Map<Tensor, ParameterState>();
    for (const [indexText, numbers] of Object.entries(saved.meta.state)) {
      const param = byIndex.get(Number(indexText));
      if (!param) throw new Error(`the saved state has state for parameter ${indexText}, which no group lists`);
      fresh.set(param, { ...numbers });
    }
    const placed: [Tensor, string, Tensor][] = [...saved.tensors].map(([key, value]) => {
      const match = /^state\.(\d+)\.(.+)$/.exec(key);
      const param = match ? byIndex.get(Number(match[1])) : undefined;
      if (!match || !param) throw new Error(`unexpected tensor "${key}" in the saved optimizer state`);
      return [param, match[2]!, value];
    });
    for (const [param, name, value] of placed) {
      const dtype = isFloatingDType(value.dtype) ? param.dtype : value.dtype;
      const entry = fresh.get(param) ?? {};
      entry[name] = keep(noGrad(() => value.to({ dtype, device: param.device, copy: true })));
      fresh.set(param, entry);
    }
    this.#disposeState();
    for (const [param, entry] of fresh) this.state.set(param, entry);
    // Groups are updated in place so that holders of a group object (a schedule) stay valid.
    groups.forEach((group, i) => {
      const { params: _indices, ...hyper } = group;
      Object.assign(this.paramGroups[i]!, hyper);
    });
  }

  #disposeState(): void {
    for (const entry of this.state.values()) {
      for (const value of Object.values(entry)) if (value instanceof Tensor) value.dispose();
    }
    this.state.clear();
  }

  /** Frees the state tensors (not the parameters). */
  dispose(): void {
    this.#disposeState();
  }
}
