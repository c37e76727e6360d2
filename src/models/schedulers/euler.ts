/**
 * Euler: the first-order (Euler) solver of the probability-flow ODE in the sigma parametrisation of
 * "Elucidating the Design Space of Diffusion-Based Generative Models" (Karras et al., 2022, algorithm 2),
 * as diffusers' EulerDiscreteScheduler.
 *
 * The latent is x = x_0 + sigma * noise, so the model input is scaled by 1 / sqrt(sigma^2 + 1)
 * (`scaleModelInput`) and the initial noise has standard deviation `initNoiseSigma` ~ sigma_max. Each step
 * moves along the derivative (x - x_0) / sigma from sigma_i to sigma_{i+1}. `use_karras_sigmas` spaces the
 * sigmas with Karras's rho = 7 schedule (denser near sigma_min) instead of interpolating the training ones;
 * `s_churn` (default 0) adds Karras's stochastic churn.
 */
import { tidy, type Device, type Tensor } from "../../engine/index.js";
import { type StepOptions, type StepOutput, type Timestep } from "./base.js";
import { type EulerAncestralConfig, type EulerConfig } from "./config.js";
import {
  float32Tensor, interpOnIndex, karrasSigmas, logFloat32, npArange, npLinspace, randnTensor, rint, sigmaToT, trainingSigmas,
} from "./numeric.js";
import { SigmaScheduler } from "./sigma.js";

export interface EulerStepOptions extends StepOptions {
  /** Karras's stochasticity S_churn (0: the deterministic ODE solver). */
  sChurn?: number;
  sTmin?: number;
  sTmax?: number;
  sNoise?: number;
}

/** The Euler schedulers' float32 inference timesteps (before Karras), descending. */
export function eulerTimesteps(config: EulerConfig | EulerAncestralConfig, num: number): number[] {
  const n = config.num_train_timesteps;
  switch (config.timestep_spacing) {
    case "linspace":
      return npLinspace(0, n - 1, num).map(Math.fround).reverse();
    case "leading": {
      const ratio = Math.floor(n / num);
      return Array.from({ length: num }, (_, i) => i * ratio).reverse().map((t) => Math.fround(Math.fround(t) + config.steps_offset));
    }
    case "trailing":
      return npArange(n, 0, -(n / num)).map((t) => Math.fround(Math.fround(rint(t)) - 1));
  }
}

export class EulerDiscreteScheduler extends SigmaScheduler<EulerConfig> {
  readonly className = "EulerDiscreteScheduler";

  constructor(config: EulerConfig) {
    super(config);
    if (config.rescale_betas_zero_snr) this.capTerminalAlpha();
  }

  get initNoiseSigma(): number {
    return this.noiseSigma();
  }

  setTimesteps(numInferenceSteps: number, device?: Device): void {
    this.checkSteps(numInferenceSteps);
    this.numInferenceSteps = numInferenceSteps;
    const config = this.config;
    let timesteps = eulerTimesteps(config, numInferenceSteps);
    const trainSigmas = trainingSigmas(this.alphasCumprod);
    let sigmas = interpOnIndex(timesteps, trainSigmas);
    if (config.use_karras_sigmas) {
      const logSigmas = Array.from(trainSigmas, logFloat32);
      sigmas = karrasSigmas(config.sigma_min ?? sigmas[sigmas.length - 1]!, config.sigma_max ?? sigmas[0]!, numInferenceSteps);
      timesteps = sigmas.map((s) => sigmaToT(s, logSigmas));
    }
    const last = config.final_sigmas_type === "sigma_min" ? trainSigmas[0]! : 0;
    this.setSigmaSchedule(float32Tensor(timesteps, device), [...sigmas, last]);
  }

  /** x / sqrt(sigma^2 + 1): the input scaling that keeps the model's input at unit variance. */
  override scaleModelInput(sample: Tensor, timestep: Timestep): Tensor {
    const index = this.currentIndex(timestep, "scaleModelInput");
    return tidy(() => sample.div(this.sigmas.select(0, index).pow(2).add(1).pow(0.5)));
  }

  step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, options: EulerStepOptions = {}): StepOutput {
    const index = this.currentIndex(timestep, "step");
    const { sChurn = 0, sTmin = 0, sTmax = Infinity, sNoise = 1 } = options;
    const result = tidy(() => {
      let x = sample.to("float32");
      const sigma = this.sigmas.select(0, index);
      const sigmaValue = this.sigmaList[index]!;
      const gamma = sTmin <= sigmaValue && sigmaValue <= sTmax ? Math.min(sChurn / (this.sigmaList.length - 1), 2 ** 0.5 - 1) : 0.0;
      const sigmaHat = sigma.mul(gamma + 1);
      if (gamma > 0) {
        const noise = randnTensor(modelOutput.shape, { generator: options.generator, device: modelOutput.device, dtype: modelOutput.dtype });
        const eps = noise.mul(sNoise);
        x = x.add(eps.mul(sigmaHat.pow(2).sub(sigma.pow(2)).pow(0.5)));
      }
      let predOriginalSample: Tensor;
      if (this.config.prediction_type === "epsilon") {
        predOriginalSample = x.sub(sigmaHat.mul(modelOutput));
      } else if (this.config.prediction_type === "v_prediction") {
        const c = sigma.neg().div(sigma.pow(2).add(1).pow(0.5));
        predOriginalSample = modelOutput.mul(c).add(x.div(sigma.pow(2).add(1)));
      } else {
        predOriginalSample = modelOutput.alias();
      }
      const derivative = x.sub(predOriginalSample).div(sigmaHat);
      const dt = this.sigmas.select(0, index + 1).sub(sigmaHat);
      const prevSample = x.add(derivative.mul(dt)).to(modelOutput.dtype);
      return { prevSample, predOriginalSample };
    });
    this.advance();
    return result;
  }

  /** Forward process in the sigma parametrisation: x_0 + sigma_t * noise. */
  override addNoise(originalSamples: Tensor, noise: Tensor, timesteps: Tensor | readonly number[]): Tensor {
    return tidy(() => originalSamples.add(noise.mul(this.sigmasFor(originalSamples, timesteps))));
  }
}
