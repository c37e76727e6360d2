/**
 * DPM-Solver++: "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models" (Lu et al.,
 * 2022), as diffusers' DPMSolverMultistepScheduler with algorithm_type "dpmsolver++" (or its SDE variant).
 *
 * It integrates the diffusion ODE exactly in its linear part and approximates the data prediction x_0 by a
 * polynomial in lambda = log(alpha_t / sigma_t) fitted to the last `solver_order` model outputs (multistep),
 * so solver_order 2 ("DPM++ 2M") gives good guided samples in 15-25 steps. `lower_order_final` drops to lower
 * orders in the last steps (stabler below 15 steps), `use_karras_sigmas` spaces steps as Karras et al. (2022),
 * and "sde-dpmsolver++" adds noise each step (needs a generator).
 */
import { tidy, type Device, type Tensor } from "../../engine/index.js";
import { type StepOptions, type StepOutput, type Timestep } from "./base.js";
import { type DPMSolverConfig } from "./config.js";
import {
  int64Tensor, interpOnIndex, karrasSigmas, logFloat32, npArange, npLinspace, randnTensor, rint, sigmaToT, trainingSigmas,
} from "./numeric.js";
import { SigmaScheduler } from "./sigma.js";

/** alpha_t = 1 / sqrt(sigma^2 + 1) and sigma_t = sigma * alpha_t (variance-preserving from sigma). */
function alphaSigma(sigma: Tensor): { alpha: Tensor; sigma: Tensor; lambda: Tensor } {
  const alpha = sigma.pow(2).add(1).pow(0.5).reciprocal().mul(1);
  const sigmaT = sigma.mul(alpha);
  return { alpha, sigma: sigmaT, lambda: alpha.log().sub(sigmaT.log()) };
}

export class DPMSolverMultistepScheduler extends SigmaScheduler<DPMSolverConfig> {
  readonly className = "DPMSolverMultistepScheduler";
  /** The last solver_order data predictions (oldest first; null until filled). */
  #modelOutputs: (Tensor | null)[];
  #lowerOrderNums = 0;

  constructor(config: DPMSolverConfig) {
    super(config);
    if (config.rescale_betas_zero_snr) this.capTerminalAlpha();
    this.#modelOutputs = new Array<Tensor | null>(config.solver_order).fill(null);
  }

  get initNoiseSigma(): number {
    return 1.0;
  }

  setTimesteps(numInferenceSteps: number, device?: Device): void {
    this.checkSteps(numInferenceSteps);
    const config = this.config;
    const n = config.num_train_timesteps;
    const lastTimestep = n - this.clippedIndex();
    let timesteps: number[];
    if (config.timestep_spacing === "linspace") {
      timesteps = npLinspace(0, lastTimestep - 1, numInferenceSteps + 1).map(rint).reverse().slice(0, -1);
    } else if (config.timestep_spacing === "leading") {
      const ratio = Math.floor(lastTimestep / (numInferenceSteps + 1));
      timesteps = Array.from({ length: numInferenceSteps + 1 }, (_, i) => i * ratio).reverse().slice(0, -1).map((t) => t + config.steps_offset);
    } else {
      timesteps = npArange(lastTimestep, 0, -(n / numInferenceSteps)).map((t) => rint(t) - 1);
    }
    const trainSigmas = trainingSigmas(this.alphasCumprod);
    let sigmas: number[];
    if (config.use_karras_sigmas) {
      const logSigmas = Array.from(trainSigmas, logFloat32);
      sigmas = karrasSigmas(trainSigmas[0]!, trainSigmas[trainSigmas.length - 1]!, numInferenceSteps);
      timesteps = sigmas.map((s) => sigmaToT(s, logSigmas));
      if (config.beta_schedule !== "squaredcos_cap_v2") timesteps = timesteps.map(rint);
    } else {
      sigmas = interpOnIndex(timesteps, trainSigmas);
    }
    const last = config.final_sigmas_type === "sigma_min" ? trainSigmas[0]! : 0;
    this.numInferenceSteps = timesteps.length;
    this.setSigmaSchedule(int64Tensor(timesteps, device), [...sigmas, last]);
    this.resetHistory();
  }

  step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, options: StepOptions = {}): StepOutput {
    const index = this.currentIndex(timestep, "step");
    const config = this.config;
    const steps = this.timestepList.length;
    const lowerOrderFinal = index === steps - 1
      && (config.euler_at_final || (config.lower_order_final && steps < 15) || config.final_sigmas_type === "zero");
    const lowerOrderSecond = index === steps - 2 && config.lower_order_final && steps < 15;

    const converted = this.own(tidy(() => this.convertModelOutput(modelOutput, sample, index)));
    this.release(this.#modelOutputs[0]);
    this.#modelOutputs = [...this.#modelOutputs.slice(1), converted];

    const prevSample = tidy(() => {
      const x = sample.to("float32");
      const noise = config.algorithm_type === "sde-dpmsolver++"
        ? randnTensor(converted.shape, { generator: options.generator, device: converted.device, dtype: "float32" })
        : null;
      let prev: Tensor;
      if (config.solver_order === 1 || this.#lowerOrderNums < 1 || lowerOrderFinal) prev = this.firstOrder(converted, x, noise, index);
      else if (config.solver_order === 2 || this.#lowerOrderNums < 2 || lowerOrderSecond) prev = this.secondOrder(x, noise, index);
      else prev = this.thirdOrder(x, noise, index);
      return prev.to(converted.dtype);
    });
    if (this.#lowerOrderNums < config.solver_order) this.#lowerOrderNums++;
    this.advance();
    return { prevSample };
  }

  /** Forward process: alpha_t x_0 + sigma_t noise at the timesteps' sigmas. */
  override addNoise(originalSamples: Tensor, noise: Tensor, timesteps: Tensor | readonly number[]): Tensor {
    return tidy(() => {
      const { alpha, sigma } = alphaSigma(this.sigmasFor(originalSamples, timesteps));
      return alpha.mul(originalSamples).add(sigma.mul(noise));
    });
  }

  override dispose(): void {
    this.resetHistory();
    super.dispose();
  }

  // ---- the solver ------------------------------------------------------------------------------------------

  /** DPM-Solver++ works with the data prediction x_0 whatever the model predicts. */
  private convertModelOutput(modelOutput: Tensor, sample: Tensor, index: number): Tensor {
    const type = this.config.prediction_type;
    if (type === "sample") return modelOutput.alias();
    const { alpha, sigma } = alphaSigma(this.sigmas.select(0, index));
    if (type === "epsilon") return sample.sub(sigma.mul(modelOutput)).div(alpha);
    return alpha.mul(sample).sub(sigma.mul(modelOutput));
  }

  private levels(index: number, back: number): { alpha: Tensor; sigma: Tensor; lambda: Tensor } {
    return alphaSigma(this.sigmas.select(0, index - back));
  }

  private isSde(): boolean {
    return this.config.algorithm_type === "sde-dpmsolver++";
  }

  /** sigma_t * sqrt(1 - exp(-2h)) * noise: the SDE variant's fresh noise. */
  private noiseTerm(sigmaT: Tensor, h: Tensor, noise: Tensor | null): Tensor {
    return sigmaT.mul(h.mul(-2).exp().rsub(1.0).sqrt()).mul(noise!);
  }

  private firstOrder(x0: Tensor, sample: Tensor, noise: Tensor | null, index: number): Tensor {
    const t = this.levels(index, -1);
    const s = this.levels(index, 0);
    const h = t.lambda.sub(s.lambda);
    if (!this.isSde()) {
      return t.sigma.div(s.sigma).mul(sample).sub(t.alpha.mul(h.neg().exp().sub(1.0)).mul(x0));
    }
    return t.sigma.div(s.sigma).mul(h.neg().exp()).mul(sample)
      .add(t.alpha.mul(h.mul(-2.0).exp().rsub(1)).mul(x0))
      .add(this.noiseTerm(t.sigma, h, noise));
  }

  private secondOrder(sample: Tensor, noise: Tensor | null, index: number): Tensor {
    const t = this.levels(index, -1);
    const s0 = this.levels(index, 0);
    const s1 = this.levels(index, 1);
    const outputs = this.#modelOutputs;
    const m0 = outputs[outputs.length - 1]!;
    const m1 = outputs[outputs.length - 2]!;
    const h = t.lambda.sub(s0.lambda);
    const h0 = s0.lambda.sub(s1.lambda);
    const r0 = h0.div(h);
    const d0 = m0;
    const d1 = r0.reciprocal().mul(1.0).mul(m0.sub(m1));
    const midpoint = this.config.solver_type === "midpoint";
    if (!this.isSde()) {
      const a = t.alpha.mul(h.neg().exp().sub(1.0));
      const x = t.sigma.div(s0.sigma).mul(sample).sub(a.mul(d0));
      if (midpoint) return x.sub(t.alpha.mul(h.neg().exp().sub(1.0)).mul(0.5).mul(d1));
      return x.add(t.alpha.mul(h.neg().exp().sub(1.0).div(h).add(1.0)).mul(d1));
    }
    const x = t.sigma.div(s0.sigma).mul(h.neg().exp()).mul(sample)
      .add(t.alpha.mul(h.mul(-2.0).exp().rsub(1)).mul(d0));
    const c1 = midpoint
      ? t.alpha.mul(h.mul(-2.0).exp().rsub(1)).mul(0.5)
      : t.alpha.mul(h.mul(-2.0).exp().rsub(1.0).div(h.mul(-2.0)).add(1.0));
    return x.add(c1.mul(d1)).add(this.noiseTerm(t.sigma, h, noise));
  }

  private thirdOrder(sample: Tensor, noise: Tensor | null, index: number): Tensor {
    const t = this.levels(index, -1);
    const s0 = this.levels(index, 0);
    const s1 = this.levels(index, 1);
    const s2 = this.levels(index, 2);
    const outputs = this.#modelOutputs;
    const [m0, m1, m2] = [outputs[outputs.length - 1]!, outputs[outputs.length - 2]!, outputs[outputs.length - 3]!];
    const h = t.lambda.sub(s0.lambda);
    const h0 = s0.lambda.sub(s1.lambda);
    const h1 = s1.lambda.sub(s2.lambda);
    const r0 = h0.div(h);
    const r1 = h1.div(h);
    const d10 = r0.reciprocal().mul(1.0).mul(m0.sub(m1));
    const d11 = r1.reciprocal().mul(1.0).mul(m1.sub(m2));
    const d1 = d10.add(r0.div(r0.add(r1)).mul(d10.sub(d11)));
    const d2 = r0.add(r1).reciprocal().mul(1.0).mul(d10.sub(d11));
    if (!this.isSde()) {
      const em1 = (): Tensor => h.neg().exp().sub(1.0);
      return t.sigma.div(s0.sigma).mul(sample)
        .sub(t.alpha.mul(em1()).mul(m0))
        .add(t.alpha.mul(em1().div(h).add(1.0)).mul(d1))
        .sub(t.alpha.mul(em1().add(h).div(h.pow(2)).sub(0.5)).mul(d2));
    }
    const e2 = (): Tensor => h.mul(-2.0).exp().rsub(1.0);
    return t.sigma.div(s0.sigma).mul(h.neg().exp()).mul(sample)
      .add(t.alpha.mul(e2()).mul(m0))
      .add(t.alpha.mul(e2().div(h.mul(-2.0)).add(1.0)).mul(d1))
      .add(t.alpha.mul(e2().sub(h.mul(2.0)).div(h.mul(2.0).pow(2)).sub(0.5)).mul(d2))
      .add(this.noiseTerm(t.sigma, h, noise));
  }

  /** searchsorted(flip(lambda_t), lambda_min_clipped): how many of the noisiest timesteps are cut off. */
  private clippedIndex(): number {
    const clip = Math.fround(this.config.lambda_min_clipped);
    if (clip === -Infinity) return 0;
    const lambdas = tidy(() => {
      const alphaT = this.alphasCumprod.sqrt();
      const sigmaT = this.alphasCumprod.rsub(1).sqrt();
      return Array.from(alphaT.log().sub(sigmaT.log()).data() as Float32Array).reverse();
    });
    let lo = 0;
    let hi = lambdas.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (lambdas[mid]! < clip) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private resetHistory(): void {
    for (const t of this.#modelOutputs) this.release(t);
    this.#modelOutputs = new Array<Tensor | null>(this.config.solver_order).fill(null);
    this.#lowerOrderNums = 0;
  }
}
