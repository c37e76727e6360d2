/**
 * Learning-rate schedules: a LambdaLR-like `LRScheduler` (lr = base lr × multiplier(step)) and the
 * schedules of diffusers' `get_scheduler` (diffusers/optimization.py), with the same multipliers.
 *
 * As in PyTorch, creating a scheduler already applies the multiplier for step 0 (a warmup therefore starts
 * training at lr 0), and `step()` is called after each `optimizer.step()`.
 */
import type { BaseHyperParameters, Optimizer } from "./optimizer.js";

/** Multiplier of the base learning rate at a given step (0-based count of scheduler steps). */
export type LrLambda = (step: number) => number;

export interface LRSchedulerState {
  lastEpoch: number;
  baseLrs: number[];
  lastLrs: number[];
}

export class LRScheduler {
  /** Steps taken (-1 before the initial step the constructor makes), PyTorch's `last_epoch`. */
  lastEpoch: number;
  /** Each group's learning rate when the schedule started. */
  baseLrs: number[];
  #lastLrs: number[] = [];
  readonly #lambdas: LrLambda[];

  /** One lambda for all groups, or one per group. */
  constructor(readonly optimizer: Optimizer<BaseHyperParameters>, lrLambda: LrLambda | LrLambda[], lastEpoch = -1) {
    const groups = optimizer.paramGroups;
    this.#lambdas = Array.isArray(lrLambda) ? lrLambda : groups.map(() => lrLambda);
    if (this.#lambdas.length !== groups.length) {
      throw new Error(`expected ${groups.length} lr lambdas (one per parameter group), got ${this.#lambdas.length}`);
    }
    this.baseLrs = groups.map((group) => group.lr);
    this.lastEpoch = lastEpoch;
    this.step();
  }

  /** Advances one step and sets every group's lr to base lr × multiplier(new step). */
  step(): void {
    this.lastEpoch += 1;
    this.#apply();
  }

  #apply(): void {
    const groups = this.optimizer.paramGroups;
    this.#lastLrs = groups.map((group, i) => {
      group.lr = this.baseLrs[i]! * this.#lambdas[i]!(this.lastEpoch);
      return group.lr;
    });
  }

  /** The learning rates set by the latest step, one per group. */
  getLastLr(): number[] {
    return [...this.#lastLrs];
  }

  /** JSON-able state (the lambdas themselves are code and are not saved). */
  stateDict(): LRSchedulerState {
    return { lastEpoch: this.lastEpoch, baseLrs: [...this.baseLrs], lastLrs: [...this.#lastLrs] };
  }

  /** Resumes a saved schedule: restores the step count and base lrs and sets the groups' lrs to match. */
  loadStateDict(state: LRSchedulerState): void {
    if (state.baseLrs.length !== this.optimizer.paramGroups.length) {
      throw new Error(`the saved schedule has ${state.baseLrs.length} groups, the optimizer has ${this.optimizer.paramGroups.length}`);
    }
    this.lastEpoch = state.lastEpoch;
    this.baseLrs = [...state.baseLrs];
    this.#apply();
  }
}

export interface WarmupOptions {
  warmupSteps: number;
}
export interface DecayOptions extends WarmupOptions {
  totalSteps: number;
}

/** Linear ramp from 0 to 1 over `warmupSteps`, then `after(step)` (diffusers' warmup, shared by all). */
const warmup = (warmupSteps: number, after: LrLambda): LrLambda => (step) =>
  step < warmupSteps ? step / Math.max(1, warmupSteps) : after(step);

/** The decay phase's progress in [0, 1] (beyond 1 after totalSteps). */
const progress = (step: number, { warmupSteps, totalSteps }: DecayOptions): number => (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);

/** Constant multiplier 1 (diffusers "constant"). */
export function constantSchedule(optimizer: Optimizer<BaseHyperParameters>): LRScheduler {
  return new LRScheduler(optimizer, () => 1);
}

/** Linear warmup, then constant (diffusers "constant_with_warmup"). */
export function constantWithWarmupSchedule(optimizer: Optimizer<BaseHyperParameters>, options: WarmupOptions): LRScheduler {
  return new LRScheduler(optimizer, warmup(options.warmupSteps, () => 1.0));
}

/** Linear warmup, then linear decay to 0 at totalSteps (diffusers "linear"). */
export function linearSchedule(optimizer: Optimizer<BaseHyperParameters>, options: DecayOptions): LRScheduler {
  const { warmupSteps, totalSteps } = options;
  return new LRScheduler(optimizer, warmup(warmupSteps, (step) => Math.max(0.0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps))));
}

/**
 * Linear warmup, then cosine decay: 0.5·(1 + cos(π · 2 · cycles · progress)); the default 0.5 cycles is a
 * half cosine from 1 to 0 at totalSteps (diffusers "cosine").
 */
export function cosineSchedule(optimizer: Optimizer<BaseHyperParameters>, options: DecayOptions & { cycles?: number }): LRScheduler {
  const cycles = options.cycles ?? 0.5;
  return new LRScheduler(optimizer, warmup(options.warmupSteps, (step) =>
    Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * cycles * 2.0 * progress(step, options))))));
}

/** Linear warmup, then `cycles` cosine decays from 1 to 0, each restarting at 1 (diffusers "cosine_with_restarts"). */
export function cosineWithRestartsSchedule(optimizer: Optimizer<BaseHyperParameters>, options: DecayOptions & { cycles?: number }): LRScheduler {
  const cycles = options.cycles ?? 1;
  return new LRScheduler(optimizer, warmup(options.warmupSteps, (step) => {
    const done = progress(step, options);
    if (done >= 1.0) return 0.0;
    return Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * ((cycles * done) % 1.0))));
  }));
}

export type SchedulerName = "constant" | "constant_with_warmup" | "linear" | "cosine" | "cosine_with_restarts";

/** A schedule by diffusers' name (`get_scheduler`), for training scripts configured by strings. */
export function getScheduler(
  name: SchedulerName, optimizer: Optimizer<BaseHyperParameters>, options: { warmupSteps?: number; totalSteps?: number; cycles?: number } = {},
): LRScheduler {
  if (name === "constant") return constantSchedule(optimizer);
  const { warmupSteps, totalSteps, cycles } = options;
  if (warmupSteps === undefined) throw new Error(`the ${name} schedule needs warmupSteps`);
  if (name === "constant_with_warmup") return constantWithWarmupSchedule(optimizer, { warmupSteps });
  if (totalSteps === undefined) throw new Error(`the ${name} schedule needs totalSteps`);
  switch (name) {
    case "linear": return linearSchedule(optimizer, { warmupSteps, totalSteps });
    case "cosine": return cosineSchedule(optimizer, { warmupSteps, totalSteps });
    case "cosine_with_restarts": return cosineWithRestartsSchedule(optimizer, { warmupSteps, totalSteps, cycles: cycles ?? 1 });
    default: throw new Error(`unknown schedule '${String(name)}'`);
  }
}
