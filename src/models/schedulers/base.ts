/**
 * What every noise scheduler shares: the training noise schedule (betas, alphas_cumprod), the inference
 * timesteps set by `setTimesteps`, timestep lookup with clear errors, ownership of scheduler tensors, and
 * the forward process `addNoise` for schedulers parametrised by alphas_cumprod.
 *
 * Scheduler-owned tensors are exempt from `tidy` scopes (`keep`) and freed by `dispose()`; `timesteps` and
 * other schedule tensors stay valid until the next `setTimesteps` or `dispose`. Every method frees its own
 * temporaries, so a sampling loop that disposes its old latents (or runs each step in `tidy`) stays flat.
 */
import { keep, tidy, Tensor, type Device, type Generator } from "../../engine/index.js";
import { SchedulerError, type SchedulerClassName, type SchedulerConfig } from "./config.js";
import { int64Tensor, trainingSchedule, valuesOf } from "./numeric.js";

/** A timestep: a number from `timestepList` or a 0-d tensor from `timesteps`. */
export type Timestep = number | Tensor;

export interface StepOptions {
  /** Noise for the stochastic samplers (DDPM, DDIM with eta > 0, Euler ancestral, SDE-DPM-Solver++). */
  generator?: Generator | readonly Generator[];
  /** DDIM's eta; the other schedulers ignore it (as diffusers pipelines pass it only to schedulers taking it). */
  eta?: number;
}

export interface StepOutput {
  /** x_{t-1}: the sample to feed the model at the next timestep. */
  prevSample: Tensor;
  /** The model's estimate of the clean sample x_0 at this step (not given by every scheduler). */
  predOriginalSample?: Tensor;
}

export abstract class Scheduler<C extends SchedulerConfig = SchedulerConfig> {
  /** The diffusers class this scheduler reproduces. */
  abstract readonly className: SchedulerClassName;
  /** Model evaluations per step (1 for every scheduler here, as in diffusers). */
  readonly order = 1;
  readonly config: Readonly<C>;
  /** Training noise schedule, float32 on the CPU: beta_t, alpha_t = 1 - beta_t and their cumulative product. */
  readonly betas: Tensor;
  readonly alphas: Tensor;
  readonly alphasCumprod: Tensor;
  /** The inference steps requested by the last `setTimesteps` (null before). */
  numInferenceSteps: number | null = null;

  #timesteps: Tensor | null = null;
  #timestepList: number[] = [];
  readonly #owned = new Set<Tensor>();

  protected constructor(config: C) {
    this.config = Object.freeze({ ...config }) as Readonly<C>;
    const schedule = trainingSchedule(config);
    this.betas = this.own(schedule.betas);
    this.alphas = this.own(schedule.alphas);
    this.alphasCumprod = this.own(schedule.alphasCumprod);
  }

  /** The inference timesteps, descending (int64, or float32 for the Euler schedulers), on setTimesteps' device. */
  get timesteps(): Tensor {
    if (this.#timesteps === null) throw this.notReady("timesteps");
    return this.#timesteps;
  }

  /** The inference timesteps as numbers (exactly the values of `timesteps`). */
  get timestepList(): readonly number[] {
    if (this.#timesteps === null) throw this.notReady("timestepList");
    return this.#timestepList;
  }

  /** The standard deviation of the initial noise: multiply fresh N(0, 1) latents by it. */
  abstract get initNoiseSigma(): number;

  /** Chooses `numInferenceSteps` timesteps out of the training ones (to be run before sampling). */
  abstract setTimesteps(numInferenceSteps: number, device?: Device): void;

  /** One reverse step: from the model output at timestep t and x_t, the sample x_{t-1}. */
  abstract step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, options?: StepOptions): StepOutput;

  /** Scales the model input for timestep t; the identity (the same tensor) unless the scheduler says otherwise. */
  scaleModelInput(sample: Tensor, _timestep?: Timestep): Tensor {
    return sample;
  }

  /** Forward process q(x_t | x_0): sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, per batch element. */
  addNoise(originalSamples: Tensor, noise: Tensor, timesteps: Tensor | readonly number[]): Tensor {
    return tidy(() => {
      const { sqrtAlpha, sqrtOneMinusAlpha } = this.alphaFactors(originalSamples, timesteps);
      return sqrtAlpha.mul(originalSamples).add(sqrtOneMinusAlpha.mul(noise));
    });
  }

  /** Frees every tensor the scheduler owns. The scheduler cannot be used afterwards. */
  dispose(): void {
    for (const t of this.#owned) t.dispose();
    this.#owned.clear();
    this.#timesteps = null;
    this.#timestepList = [];
  }

  // ---- for subclasses ----------------------------------------------------------------------------------

  /** v = sqrt(alpha_bar_t) noise - sqrt(1 - alpha_bar_t) x_0 (diffusers' get_velocity of DDPM and DDIM). */
  protected velocity(sample: Tensor, noise: Tensor, timesteps: Tensor | readonly number[]): Tensor {
    return tidy(() => {
      const { sqrtAlpha, sqrtOneMinusAlpha } = this.alphaFactors(sample, timesteps);
      return sqrtAlpha.mul(noise).sub(sqrtOneMinusAlpha.mul(sample));
    });
  }

  /** sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t) at the timesteps, flattened and shaped to broadcast over x. */
  protected alphaFactors(x: Tensor, timesteps: Tensor | readonly number[]): { sqrtAlpha: Tensor; sqrtOneMinusAlpha: Tensor } {
    const alphasCumprod = this.alphasCumprod.to({ device: x.device, dtype: x.dtype });
    const index = timesteps instanceof Tensor ? timesteps.to(x.device) : int64Tensor(timesteps, x.device);
    this.checkTrainingTimesteps(index);
    const picked = alphasCumprod.index(index);
    const expand = (t: Tensor): Tensor => {
      let r = t.flatten();
      while (r.ndim < x.ndim) r = r.unsqueeze(-1);
      return r;
    };
    return { sqrtAlpha: expand(picked.pow(0.5)), sqrtOneMinusAlpha: expand(alphasCumprod.index(index).rsub(1).pow(0.5)) };
  }

  /** Takes ownership of a tensor: exempt from tidy scopes, freed by dispose(). */
  protected own<T extends Tensor>(t: T): T {
    keep(t);
    this.#owned.add(t);
    return t;
  }

  /** Frees an owned tensor now. */
  protected release(t: Tensor | null | undefined): void {
    if (!t) return;
    this.#owned.delete(t);
    t.dispose();
  }

  /** Replaces the inference timesteps (the old tensor is freed). */
  protected setSchedule(timesteps: Tensor): void {
    this.release(this.#timesteps);
    this.#timesteps = this.own(timesteps);
    this.#timestepList = valuesOf(timesteps);
  }

  protected checkSteps(numInferenceSteps: number): void {
    const n = this.config.num_train_timesteps;
    if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
      throw new SchedulerError(`${this.className}.setTimesteps: numInferenceSteps must be an integer >= 1, got ${numInferenceSteps}`);
    }
    if (numInferenceSteps > n) {
      throw new SchedulerError(
        `${this.className}.setTimesteps: numInferenceSteps ${numInferenceSteps} cannot be larger than num_train_timesteps ${n}`,
      );
    }
  }

  /** The timestep as a number (int schedules compare exactly, float32 schedules after rounding to float32). */
  protected timestepValue(timestep: Timestep, method = "step"): number {
    if (this.#timesteps === null) throw this.notReady(method);
    const value = timestep instanceof Tensor ? Number(timestep.item()) : timestep;
    if (typeof value !== "number" || Number.isNaN(value)) {
      throw new SchedulerError(`${this.className}: a timestep must be a number or a one-element tensor, got ${String(timestep)}`);
    }
    return this.timesteps.dtype === "float32" ? Math.fround(value) : value;
  }

  /** Positions of t in the schedule; an error naming the schedule when there is none (or before setTimesteps). */
  protected positionsOf(timestep: Timestep, method = "step"): number[] {
    const t = this.timestepValue(timestep, method);
    const found: number[] = [];
    this.#timestepList.forEach((v, i) => {
      if (v === t) found.push(i);
    });
    if (found.length === 0) {
      const list = this.#timestepList;
      const shown = list.length > 12 ? `${list.slice(0, 6).join(", ")}, ..., ${list.slice(-3).join(", ")}` : list.join(", ");
      throw new SchedulerError(
        `${this.className}.${method}: timestep ${t} is not in the schedule set by setTimesteps(${this.numInferenceSteps}): [${shown}]`,
      );
    }
    return found;
  }

  /** alphas_cumprod[t] as a 0-d tensor (a view), with a clear error outside the training timesteps. */
  protected alphaProdAt(t: number): Tensor {
    const n = this.config.num_train_timesteps;
    if (!Number.isInteger(t) || t < 0 || t >= n) {
      throw new SchedulerError(`${this.className}.step: timestep ${t} is outside the training timesteps [0, ${n - 1}]`);
    }
    return this.alphasCumprod.select(0, t);
  }

  protected notReady(what: string): SchedulerError {
    return new SchedulerError(`${this.className}.${what}: call setTimesteps(numInferenceSteps) first`);
  }

  private checkTrainingTimesteps(index: Tensor): void {
    if (index.dtype !== "int64" && index.dtype !== "int32") {
      throw new SchedulerError(`${this.className}.addNoise: timesteps must be integers (int64), got ${index.dtype}`);
    }
    const values = valuesOf(index);
    const n = this.config.num_train_timesteps;
    const bad = values.find((v) => v < 0 || v >= n);
    if (bad !== undefined) throw new SchedulerError(`${this.className}.addNoise: timestep ${bad} is outside [0, ${n - 1}]`);
  }
}
