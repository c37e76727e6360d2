/**
 * PNDM: "Pseudo Numerical Methods for Diffusion Models on Manifolds" (Liu et al., 2022), as diffusers'
 * PNDMScheduler with `skip_prk_steps` (the PLMS sampler Stable Diffusion v1 ships with).
 *
 * PLMS applies a linear multistep (Adams–Bashforth) combination of up to four past noise predictions to the
 * DDIM-style transfer x_t -> x_{t-1}, so it reaches good samples in ~50 steps. It needs one extra model call
 * at the start (the second step re-evaluates the first timestep), hence `timesteps` has n + 1 entries. The
 * Runge–Kutta warm-up (`skip_prk_steps = false`) is not implemented.
 */
import { scalarTensor, tidy, type Device, type Tensor } from "../../engine/index.js";
import { Scheduler, type StepOutput, type Timestep } from "./base.js";
import { type PNDMConfig } from "./config.js";
import { int64Tensor, npArange, npLinspace, rint } from "./numeric.js";

export class PNDMScheduler extends Scheduler<PNDMConfig> {
  readonly className = "PNDMScheduler";
  readonly #finalAlphaCumprod: Tensor;
  /** Past model outputs (the "ets"), newest last, and the sample held across the first two steps. */
  #ets: Tensor[] = [];
  #curSample: Tensor | null = null;
  #counter = 0;

  constructor(config: PNDMConfig) {
    super(config);
    this.#finalAlphaCumprod = this.own(config.set_alpha_to_one ? scalarTensor(1.0) : this.alphaProdAt(0));
  }

  get initNoiseSigma(): number {
    return 1.0;
  }

  setTimesteps(numInferenceSteps: number, device?: Device): void {
    this.checkSteps(numInferenceSteps);
    this.numInferenceSteps = numInferenceSteps;
    const n = this.config.num_train_timesteps;
    let ascending: number[];
    if (this.config.timestep_spacing === "linspace") {
      ascending = npLinspace(0, n - 1, numInferenceSteps).map(rint);
    } else if (this.config.timestep_spacing === "leading") {
      const ratio = Math.floor(n / numInferenceSteps);
      ascending = Array.from({ length: numInferenceSteps }, (_, i) => i * ratio + this.config.steps_offset);
    } else {
      ascending = npArange(n, 0, -(n / numInferenceSteps)).map(rint).reverse().map((t) => t - 1);
    }
    // PLMS runs them descending with the second one repeated: [t_{n-1}, t_{n-2}, t_{n-2}, t_{n-3}, ..., t_0].
    const plms = [...ascending.slice(0, -1), ...ascending.slice(-2, -1), ...ascending.slice(-1)].reverse();
    this.setSchedule(int64Tensor(plms, device));
    this.resetState();
  }

  step(modelOutput: Tensor, timestep: Timestep, sample: Tensor): StepOutput {
    this.positionsOf(timestep);
    let t = this.timestepValue(timestep);
    const ratio = Math.floor(this.config.num_train_timesteps / this.numInferenceSteps!);
    let prevT = t - ratio;
    if (this.#counter !== 1) {
      while (this.#ets.length > 3) this.release(this.#ets.shift());
      this.#ets.push(this.own(modelOutput.alias()));
    } else {
      prevT = t;
      t = t + ratio;
    }
    const ets = this.#ets;
    const e = (i: number): Tensor => ets[ets.length - i]!;
    const prevSample = tidy(() => {
      let output: Tensor;
      let x = sample;
      if (ets.length === 1 && this.#counter === 0) {
        output = modelOutput;
        this.#setCurSample(sample);
      } else if (ets.length === 1 && this.#counter === 1) {
        output = modelOutput.add(e(1)).div(2);
        x = this.#curSample!;
      } else if (ets.length === 2) {
        output = e(1).mul(3).sub(e(2)).div(2);
      } else if (ets.length === 3) {
        output = e(1).mul(23).sub(e(2).mul(16)).add(e(3).mul(5)).div(12);
      } else {
        output = e(1).mul(55).sub(e(2).mul(59)).add(e(3).mul(37)).sub(e(4).mul(9)).mul(1 / 24);
      }
      return this.prevSample(x, t, prevT, output);
    });
    if (ets.length === 1 && this.#counter === 1) this.#setCurSample(null);
    this.#counter++;
    return { prevSample };
  }

  /** Frees the multistep history too. */
  override dispose(): void {
    this.resetState();
    super.dispose();
  }

  // DDIM-like transfer of eq. 11 (the "phi" of the paper) from t to prevT with a given noise estimate.
  private prevSample(sample: Tensor, t: number, prevT: number, modelOutput: Tensor): Tensor {
    const alphaProdT = this.alphaProdAt(t);
    const alphaProdTPrev = prevT >= 0 ? this.alphaProdAt(prevT) : this.#finalAlphaCumprod;
    const betaProdT = alphaProdT.rsub(1);
    const betaProdTPrev = alphaProdTPrev.rsub(1);
    let output = modelOutput;
    if (this.config.prediction_type === "v_prediction") {
      output = alphaProdT.pow(0.5).mul(modelOutput).add(betaProdT.pow(0.5).mul(sample));
    }
    const sampleCoeff = alphaProdTPrev.div(alphaProdT).pow(0.5);
    const denom = alphaProdT.mul(betaProdTPrev.pow(0.5)).add(alphaProdT.mul(betaProdT).mul(alphaProdTPrev).pow(0.5));
    return sampleCoeff.mul(sample).sub(alphaProdTPrev.sub(alphaProdT).mul(output).div(denom));
  }

  #setCurSample(sample: Tensor | null): void {
    this.release(this.#curSample);
    this.#curSample = sample === null ? null : this.own(sample.alias());
  }

  private resetState(): void {
    for (const t of this.#ets) this.release(t);
    this.#ets = [];
    this.#setCurSample(null);
    this.#counter = 0;
  }
}
