/**
 * DDPM: "Denoising Diffusion Probabilistic Models" (Ho, Jain & Abbeel, 2020), as diffusers' DDPMScheduler.
 *
 * Training uses its forward process (`addNoise`), the v-prediction target (`getVelocity`, Salimans & Ho 2022)
 * and the SNR with the loss weights built on it (`computeSnr`, `minSnrWeights`, `truncatedMinSnrWeights`; Hang et
 * al. 2023), the one implementation LiDB training and the base-model recipe share. Sampling walks the ancestral
 * posterior q(x_{t-1} | x_t, x_0) with the predicted x_0 and fresh Gaussian noise each step; `variance_type`
 * picks that noise's variance (the posterior's "fixed_small", or beta_t for "fixed_large"), and `clip_sample`
 * clamps x_0 for pixel-space models.
 */
import { scalarTensor, tidy, type Device, type Tensor } from "../../engine/index.js";
import { Scheduler, type StepOptions, type StepOutput, type Timestep } from "./base.js";
import { SchedulerError, type BaseSchedulerConfig, type DDPMConfig } from "./config.js";
import { int64Tensor, npArange, npLinspace, randnTensor, rint } from "./numeric.js";

/**
 * DDPM/DDIM inference timesteps (integers, descending) for the spacings of "Common Diffusion Noise Schedules
 * and Sample Steps are Flawed" (Lin et al. 2024, table 2): "linspace" and "trailing" include the last training
 * timestep, "leading" (with `steps_offset`) is Stable Diffusion's.
 */
export function integerTimesteps(config: Pick<BaseSchedulerConfig, "timestep_spacing" | "num_train_timesteps" | "steps_offset">, num: number): number[] {
  const n = config.num_train_timesteps;
  switch (config.timestep_spacing) {
    case "linspace":
      return npLinspace(0, n - 1, num).map((t) => Math.trunc(rint(t))).reverse();
    case "leading": {
      const ratio = Math.floor(n / num);
      return Array.from({ length: num }, (_, i) => i * ratio + config.steps_offset).reverse();
    }
    default:
      return npArange(n, 0, -(n / num)).map((t) => Math.trunc(rint(t)) - 1);
  }
}

export class DDPMScheduler extends Scheduler<DDPMConfig> {
  readonly className = "DDPMScheduler";
  readonly #one: Tensor;

  constructor(config: DDPMConfig) {
    super(config);
    this.#one = this.own(scalarTensor(1.0));
  }

  get initNoiseSigma(): number {
    return 1.0;
  }

  setTimesteps(numInferenceSteps: number, device?: Device): void {
    this.checkSteps(numInferenceSteps);
    this.numInferenceSteps = numInferenceSteps;
    this.setSchedule(int64Tensor(integerTimesteps(this.config, numInferenceSteps), device));
  }

  /** The timestep after t in the schedule (-1 after the last). */
  previousTimestep(timestep: Timestep): number {
    const index = this.positionsOf(timestep)[0]!;
    const list = this.timestepList;
    return index === list.length - 1 ? -1 : list[index + 1]!;
  }

  step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, options: StepOptions = {}): StepOutput {
    const t = this.timestepValue(timestep);
    const prevT = this.previousTimestep(t);
    const config = this.config;
    return tidy(() => {
      const alphaProdT = this.alphaProdAt(t);
      const alphaProdTPrev = prevT >= 0 ? this.alphaProdAt(prevT) : this.#one;
      const betaProdT = alphaProdT.rsub(1);
      const betaProdTPrev = alphaProdTPrev.rsub(1);
      const currentAlphaT = alphaProdT.div(alphaProdTPrev);
      const currentBetaT = currentAlphaT.rsub(1);

      let predOriginalSample: Tensor;
      if (config.prediction_type === "epsilon") {
        predOriginalSample = sample.sub(betaProdT.pow(0.5).mul(modelOutput)).div(alphaProdT.pow(0.5));
      } else if (config.prediction_type === "sample") {
        predOriginalSample = modelOutput.alias();
      } else {
        predOriginalSample = alphaProdT.pow(0.5).mul(sample).sub(betaProdT.pow(0.5).mul(modelOutput));
      }
      if (config.clip_sample) predOriginalSample = predOriginalSample.clamp(-config.clip_sample_range, config.clip_sample_range);

      const predOriginalSampleCoeff = alphaProdTPrev.pow(0.5).mul(currentBetaT).div(betaProdT);
      const currentSampleCoeff = currentAlphaT.pow(0.5).mul(betaProdTPrev).div(betaProdT);
      let prevSample = predOriginalSampleCoeff.mul(predOriginalSample).add(currentSampleCoeff.mul(sample));

      if (t > 0) {
        const noise = randnTensor(modelOutput.shape, { generator: options.generator, device: modelOutput.device, dtype: modelOutput.dtype });
        const variance = this.variance(alphaProdT, alphaProdTPrev, currentBetaT);
        const scaled = config.variance_type === "fixed_small_log" ? variance.mul(noise) : variance.pow(0.5).mul(noise);
        prevSample = prevSample.add(scaled);
      } else {
        prevSample = prevSample.add(0);
      }
      return { prevSample, predOriginalSample };
    });
  }

  /** v = sqrt(alpha_bar_t) noise - sqrt(1 - alpha_bar_t) x_0: the v-prediction training target. */
  getVelocity(sample: Tensor, noise: Tensor, timesteps: Tensor | readonly number[]): Tensor {
    return this.velocity(sample, noise, timesteps);
  }

  private variance(alphaProdT: Tensor, alphaProdTPrev: Tensor, currentBetaT: Tensor): Tensor {
    // _get_variance recomputes beta_t from alpha_bar_t / alpha_bar_{t-1}, as diffusers does.
    const betaT = alphaProdT.div(alphaProdTPrev).rsub(1);
    const variance = alphaProdTPrev.rsub(1).div(alphaProdT.rsub(1)).mul(betaT).clamp(1e-20);
    switch (this.config.variance_type) {
      case "fixed_small":
        return variance;
      case "fixed_small_log":
        return variance.log().mul(0.5).exp();
      case "fixed_large":
        return currentBetaT;
      default:
        throw new SchedulerError(`${this.className}: variance_type=${JSON.stringify(this.config.variance_type)} is not supported`);
    }
  }
}

/**
 * Signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t) at integer timesteps, computed as diffusers'
 * training_utils.compute_snr, for min-SNR-gamma loss weighting (Hang et al. 2023).
 */
export function computeSnr(scheduler: { alphasCumprod: Tensor }, timesteps: Tensor): Tensor {
  return tidy(() => {
    const alphasCumprod = scheduler.alphasCumprod;
    const sqrtAlphas = alphasCumprod.pow(0.5);
    const sqrtOneMinus = alphasCumprod.rsub(1.0).pow(0.5);
    const pick = (table: Tensor): Tensor => {
      let r = table.to(timesteps.device).index(timesteps).float();
      while (r.ndim < timesteps.ndim) r = r.unsqueeze(-1);
      return r.expand(...timesteps.shape);
    };
    return pick(sqrtAlphas).div(pick(sqrtOneMinus)).pow(2);
  });
}

/**
 * Min-SNR-γ loss weights at integer timesteps (Hang et al. 2023, as diffusers' training scripts compute them):
 * min(SNR, γ)/SNR for ε-prediction, min(SNR, γ)/(SNR + 1) for v-prediction.
 */
export function minSnrWeights(scheduler: DDPMScheduler, timesteps: Tensor, gamma: number): Tensor {
  return tidy(() => {
    const snr = computeSnr(scheduler, timesteps);
    const clipped = snr.clamp(null, gamma);
    return scheduler.config.prediction_type === "v_prediction" ? clipped.div(snr.add(1)) : clipped.div(snr);
  });
}

/**
 * Truncated min-SNR-γ weights for ε-prediction: clamp(SNR, min(1, γ), γ)/SNR, so the high-noise steps (SNR < 1)
 * weigh 1/SNR > 1 instead of 1, and words take hold (the base-model recipe's diffusion phases 3 and 4).
 */
export function truncatedMinSnrWeights(scheduler: { alphasCumprod: Tensor }, timesteps: Tensor, gamma: number): Tensor {
  return tidy(() => {
    const snr = computeSnr(scheduler, timesteps);
    return snr.clamp(Math.min(1, gamma), gamma).div(snr);
  });
}
