/**
 * The common part of the sigma-parametrised schedulers (Euler, Euler ancestral, DPM-Solver++): a float32 noise
 * level per inference step plus a final one (`sigmas`, n + 1 values on the CPU), and diffusers' step counter.
 *
 * As in diffusers, the step counter starts at the position of the first timestep passed (or at
 * `setBeginIndex`) and advances by one per `step`; unlike diffusers, a timestep that is not the one the
 * counter points at is an error rather than silently ignored.
 */
import { tidy, Tensor } from "../../engine/index.js";
import { Scheduler, type Timestep } from "./base.js";
import { SchedulerError, type SchedulerConfig } from "./config.js";
import { float32Tensor, int64Tensor, valuesOf } from "./numeric.js";

export abstract class SigmaScheduler<C extends SchedulerConfig> extends Scheduler<C> {
  #sigmas: Tensor | null = null;
  #sigmaList: number[] = [];
  #stepIndex: number | null = null;
  #beginIndex: number | null = null;

  /** The noise levels of the inference steps and a final one (float32, CPU). */
  get sigmas(): Tensor {
    if (this.#sigmas === null) throw this.notReady("sigmas");
    return this.#sigmas;
  }

  get sigmaList(): readonly number[] {
    if (this.#sigmas === null) throw this.notReady("sigmaList");
    return this.#sigmaList;
  }

  /** The index of the next step (null until the first scaleModelInput or step). */
  get stepIndex(): number | null {
    return this.#stepIndex;
  }

  get beginIndex(): number | null {
    return this.#beginIndex;
  }

  /** Starts sampling at this index of `timesteps` (image-to-image pipelines start part-way). */
  setBeginIndex(beginIndex = 0): void {
    this.#beginIndex = beginIndex;
  }

  /** Installs a new schedule: timesteps (already a tensor) and sigmas (cast to float32); resets the counter. */
  protected setSigmaSchedule(timesteps: Tensor, sigmas: readonly number[]): void {
    this.setSchedule(timesteps);
    this.release(this.#sigmas);
    this.#sigmas = this.own(float32Tensor(sigmas));
    this.#sigmaList = Array.from(this.#sigmas.data() as Float32Array);
    this.#stepIndex = null;
    this.#beginIndex = null;
  }

  /** diffusers' index_for_timestep: the second match when a timestep occurs twice, else the first. */
  protected indexForTimestep(timestep: Timestep, method: string): number {
    const found = this.positionsOf(timestep, method);
    return found.length > 1 ? found[1]! : found[0]!;
  }

  /** The step counter for this call (initialised on first use) after checking the timestep matches it. */
  protected currentIndex(timestep: Timestep, method: string): number {
    if (this.#sigmas === null) throw this.notReady(method);
    if (this.#stepIndex === null) {
      this.#stepIndex = this.#beginIndex ?? this.indexForTimestep(timestep, method);
    }
    const index = this.#stepIndex;
    const list = this.timestepList;
    if (index >= list.length) {
      throw new SchedulerError(`${this.className}.${method}: all ${list.length} steps were taken; call setTimesteps again`);
    }
    const t = this.timestepValue(timestep);
    if (t !== list[index]) {
      throw new SchedulerError(
        `${this.className}.${method}: timestep ${t} is not the schedule's step ${index} (${list[index]}); ` +
        "steps must follow scheduler.timesteps in order",
      );
    }
    return index;
  }

  protected advance(): void {
    this.#stepIndex = (this.#stepIndex ?? 0) + 1;
  }

  /** The sigma of each batch element for addNoise, as diffusers picks them, shaped to broadcast over x. */
  protected sigmasFor(x: Tensor, timesteps: Tensor | readonly number[]): Tensor {
    const values = timesteps instanceof Tensor ? valuesOf(timesteps) : [...timesteps];
    let indices: number[];
    if (this.#beginIndex === null) indices = values.map((t) => this.indexForTimestep(t, "addNoise"));
    else indices = values.map(() => this.#stepIndex ?? this.#beginIndex!);
    return tidy(() => {
      const sigmas = this.sigmas.to({ device: x.device, dtype: x.dtype });
      let sigma = sigmas.index(int64Tensor(indices, x.device)).flatten();
      while (sigma.ndim < x.ndim) sigma = sigma.unsqueeze(-1);
      return sigma;
    });
  }

  /** In-place alphas_cumprod[-1] = 2**-24 (zero-terminal-SNR schedules keep sigma_max finite). */
  protected capTerminalAlpha(): void {
    tidy(() => {
      this.alphasCumprod.select(0, -1).fill_(2 ** -24);
    });
  }

  /** The standard deviation of the initial noise from sigmas.max(), float32 ops as diffusers. */
  protected noiseSigma(): number {
    return tidy(() => {
      const max = this.sigmas.max();
      if (this.config.timestep_spacing === "linspace" || this.config.timestep_spacing === "trailing") return max.item();
      return max.pow(2).add(1).pow(0.5).item();
    });
  }

  override dispose(): void {
    this.#sigmas = null;
    this.#sigmaList = [];
    super.dispose();
  }
}
