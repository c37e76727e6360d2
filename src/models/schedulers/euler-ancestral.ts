/**
 * Euler ancestral: Euler steps of the sigma-parametrised reverse process with ancestral sampling (Karras et
 * al., 2022; the "euler_a" sampler of k-diffusion), as diffusers' EulerAncestralDiscreteScheduler.
 *
 * Each step goes deterministically down to sigma_down and then adds fresh noise of standard deviation sigma_up,
 * where sigma_down^2 + sigma_up^2 = sigma_{i+1}^2: the marginals match the ODE's, but the path is stochastic, so
 * results depend on the generator and do not converge as the step count grows.
 */
import { tidy, type Device, type Tensor } from "../../engine/index.js";
import { type StepOptions, type StepOutput, type Timestep } from "./base.js";
import { type EulerAncestralConfig } from "./config.js";
import { eulerTimesteps } from "./euler.js";
import { float32Tensor, interpOnIndex, randnTensor, trainingSigmas } from "./numeric.js";
import { SigmaScheduler } from "./sigma.js";

export class EulerAncestralDiscreteScheduler extends SigmaScheduler<EulerAncestralConfig> {
  readonly className = "EulerAncestralDiscreteScheduler";

  constructor(config: EulerAncestralConfig) {
    super(config);
    if (config.rescale_betas_zero_snr) this.capTerminalAlpha();
  }

  get initNoiseSigma(): number {
    return this.noiseSigma();
  }

  setTimesteps(numInferenceSteps: number, device?: Device): void {
    this.checkSteps(numInferenceSteps);
    this.numInferenceSteps = numInferenceSteps;
    const timesteps = eulerTimesteps(this.config, numInferenceSteps);
    const sigmas = interpOnIndex(timesteps, trainingSigmas(this.alphasCumprod));
    this.setSigmaSchedule(float32Tensor(timesteps, device), [...sigmas, 0.0]);
  }

  /** x / sqrt(sigma^2 + 1): the input scaling that keeps the model's input at unit variance. */
  override scaleModelInput(sample: Tensor, timestep: Timestep): Tensor {
    const index = this.currentIndex(timestep, "scaleModelInput");
    return tidy(() => sample.div(this.sigmas.select(0, index).pow(2).add(1).pow(0.5)));
  }

  step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, options: StepOptions = {}): StepOutput {
    const index = this.currentIndex(timestep, "step");
    const result = tidy(() => {
      const sigma = this.sigmas.select(0, index);
      const x = sample.to("float32");
      let predOriginalSample: Tensor;
      if (this.config.prediction_type === "epsilon") {
        predOriginalSample = x.sub(sigma.mul(modelOutput));
      } else {
        const c = sigma.neg().div(sigma.pow(2).add(1).pow(0.5));
        predOriginalSample = modelOutput.mul(c).add(x.div(sigma.pow(2).add(1)));
      }
      const sigmaFrom = this.sigmas.select(0, index);
      const sigmaTo = this.sigmas.select(0, index + 1);
      const sigmaUp = sigmaTo.pow(2).mul(sigmaFrom.pow(2).sub(sigmaTo.pow(2))).div(sigmaFrom.pow(2)).pow(0.5);
      const sigmaDown = sigmaTo.pow(2).sub(sigmaUp.pow(2)).pow(0.5);
      const derivative = x.sub(predOriginalSample).div(sigma);
      const dt = sigmaDown.sub(sigma);
      let prevSample = x.add(derivative.mul(dt));
      const noise = randnTensor(modelOutput.shape, { generator: options.generator, device: modelOutput.device, dtype: modelOutput.dtype });
      prevSample = prevSample.add(noise.mul(sigmaUp)).to(modelOutput.dtype);
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
