/**
 * DDIM: "Denoising Diffusion Implicit Models" (Song, Meng & Ermon, 2021), as diffusers' DDIMScheduler.
 *
 * DDIM takes large steps along a non-Markovian process with the same marginals as DDPM: it predicts x_0 and
 * the noise, then re-noises x_0 to the previous timestep. `eta` interpolates between the deterministic sampler
 * (eta = 0, an ODE discretisation that makes latents invertible) and DDPM-like ancestral sampling (eta = 1).
 * `set_alpha_to_one` chooses whether the final step lands on alpha_bar = 1 or on alpha_bar_0 (Stable
 * Diffusion: false); `steps_offset` shifts "leading" timesteps (Stable Diffusion: 1).
 */
import { scalarTensor, tidy, type Device, type Tensor } from "../../engine/index.js";
import { Scheduler, type StepOptions, type StepOutput, type Timestep } from "./base.js";
import { SchedulerError, type DDIMConfig } from "./config.js";
import { integerTimesteps } from "./ddpm.js";
import { int64Tensor, randnTensor } from "./numeric.js";

export interface DDIMStepOptions extends StepOptions {
  /** Recompute the noise from the clipped x_0 (only matters with clip_sample). */
  useClippedModelOutput?: boolean;
  /** Noise to use instead of drawing it (for eta > 0); not with a generator. */
  varianceNoise?: Tensor;
}

export class DDIMScheduler extends Scheduler<DDIMConfig> {
  readonly className = "DDIMScheduler";
  readonly #finalAlphaCumprod: Tensor;

  constructor(config: DDIMConfig) {
    super(config);
    this.#finalAlphaCumprod = this.own(config.set_alpha_to_one ? scalarTensor(1.0) : this.alphaProdAt(0));
  }

  get initNoiseSigma(): number {
    return 1.0;
  }

  setTimesteps(numInferenceSteps: number, device?: Device): void {
    this.checkSteps(numInferenceSteps);
    this.numInferenceSteps = numInferenceSteps;
    this.setSchedule(int64Tensor(integerTimesteps(this.config, numInferenceSteps), device));
  }

  step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, options: DDIMStepOptions = {}): StepOutput {
    this.positionsOf(timestep);
    const t = this.timestepValue(timestep);
    const config = this.config;
    const eta = options.eta ?? 0;
    if (eta > 0 && options.varianceNoise && options.generator) {
      throw new SchedulerError(`${this.className}.step: pass either a generator or varianceNoise, not both`);
    }
    // As diffusers: the previous timestep is t - num_train_timesteps // num_inference_steps for every spacing.
    const prevT = t - Math.floor(config.num_train_timesteps / this.numInferenceSteps!);
    return tidy(() => {
      const alphaProdT = this.alphaProdAt(t);
      const alphaProdTPrev = prevT >= 0 ? this.alphaProdAt(prevT) : this.#finalAlphaCumprod;
      const betaProdT = alphaProdT.rsub(1);

      let predOriginalSample: Tensor;
      let predEpsilon: Tensor;
      if (config.prediction_type === "epsilon") {
        predOriginalSample = sample.sub(betaProdT.pow(0.5).mul(modelOutput)).div(alphaProdT.pow(0.5));
        predEpsilon = modelOutput;
      } else if (config.prediction_type === "sample") {
        predOriginalSample = modelOutput.alias();
        predEpsilon = sample.sub(alphaProdT.pow(0.5).mul(predOriginalSample)).div(betaProdT.pow(0.5));
      } else {
        predOriginalSample = alphaProdT.pow(0.5).mul(sample).sub(betaProdT.pow(0.5).mul(modelOutput));
        predEpsilon = alphaProdT.pow(0.5).mul(modelOutput).add(betaProdT.pow(0.5).mul(sample));
      }
      if (config.clip_sample) predOriginalSample = predOriginalSample.clamp(-config.clip_sample_range, config.clip_sample_range);

      // sigma_t of eq. 16: (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_{t-1}).
      const betaProdTPrev = alphaProdTPrev.rsub(1);
      const variance = betaProdTPrev.div(betaProdT).mul(alphaProdT.div(alphaProdTPrev).rsub(1));
      const stdDevT = variance.pow(0.5).mul(eta);
      if (options.useClippedModelOutput) {
        predEpsilon = sample.sub(alphaProdT.pow(0.5).mul(predOriginalSample)).div(betaProdT.pow(0.5));
      }
      const predSampleDirection = alphaProdTPrev.rsub(1).sub(stdDevT.pow(2)).pow(0.5).mul(predEpsilon);
      let prevSample = alphaProdTPrev.pow(0.5).mul(predOriginalSample).add(predSampleDirection);
      if (eta > 0) {
        const noise = options.varianceNoise
          ?? randnTensor(modelOutput.shape, { generator: options.generator, device: modelOutput.device, dtype: modelOutput.dtype });
        prevSample = prevSample.add(stdDevT.mul(noise));
      }
      return { prevSample, predOriginalSample };
    });
  }

  /** v = sqrt(alpha_bar_t) noise - sqrt(1 - alpha_bar_t) x_0: the v-prediction training target. */
  getVelocity(sample: Tensor, noise: Tensor, timesteps: Tensor | readonly number[]): Tensor {
    return this.velocity(sample, noise, timesteps);
  }
}
