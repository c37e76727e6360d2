/**
 * DiagonalGaussianDistribution: the VAE encoder's posterior q(z | x), a Gaussian with a diagonal covariance,
 * as diffusers' `models/autoencoders/vae.py` defines it (same operations in the same order).
 *
 * The encoder (after quant_conv) outputs 2·latent_channels channels: the first half is the mean, the second
 * the log-variance, clamped to [-30, 20] so that exp() neither underflows to a zero std nor overflows.
 *
 * Lifetime: the distribution takes ownership of `parameters`; its tensors belong to the tidy scope (or code)
 * that created it, like any tensor. A class instance is not a tensor container `tidy` looks into, so return
 * its tensors (e.g. `sample()`) from a tidy rather than the distribution itself, or call `dispose()` when done.
 */
import { tidy, zeros, zerosLike, type Generator, type Tensor } from "../../engine/index.js";
import { randnTensor } from "../schedulers/index.js";

export class DiagonalGaussianDistribution {
  /** The encoder output this was built from: (batch, 2·latent_channels, height, width). */
  readonly parameters: Tensor;
  readonly mean: Tensor;
  /** log σ², clamped to [-30, 20]. */
  readonly logvar: Tensor;
  /** σ = exp(logvar / 2) (zeros when deterministic). */
  readonly std: Tensor;
  /** σ² = exp(logvar) (zeros when deterministic). */
  readonly var: Tensor;

  /** `deterministic`: a point mass at the mean (std and var are zeros, kl and nll are 0). */
  constructor(parameters: Tensor, readonly deterministic = false) {
    if (parameters.ndim < 2 || parameters.size(1) % 2 !== 0) {
      throw new Error(`DiagonalGaussianDistribution: parameters need an even channel dim 1, got shape [${parameters.shape.join(", ")}]`);
    }
    this.parameters = parameters;
    const [mean, logvar] = parameters.chunk(2, 1) as [Tensor, Tensor];
    this.mean = mean;
    this.logvar = logvar.clamp(-30.0, 20.0);
    logvar.dispose();
    if (deterministic) {
      this.std = zerosLike(this.mean, { dtype: parameters.dtype, device: parameters.device });
      this.var = this.std.alias();
    } else {
      using halfLogvar = this.logvar.mul(0.5);
      this.std = halfLogvar.exp();
      this.var = this.logvar.exp();
    }
  }

  /**
   * mean + std · ε with ε ~ N(0, I) drawn as diffusers' `randn_tensor` draws it (a CPU generator draws on the
   * CPU; one generator per batch item for a list), in the parameters' dtype: with the same seed the sample
   * equals diffusers' `posterior.sample(generator=torch.Generator("cpu").manual_seed(seed))`.
   */
  sample(options: { generator?: Generator | readonly Generator[] } = {}): Tensor {
    using noise = randnTensor(this.mean.shape, { generator: options.generator, device: this.parameters.device, dtype: this.parameters.dtype });
    using scaled = this.std.mul(noise);
    return this.mean.add(scaled);
  }

  /** The most likely latent: the mean (a new handle on it, the caller's to dispose). */
  mode(): Tensor {
    return this.mean.alias();
  }

  /**
   * KL(self ‖ other) summed over (channel, height, width), one value per batch item; against N(0, I) when
   * `other` is omitted (the VAE's training regulariser).
   */
  kl(other?: DiagonalGaussianDistribution): Tensor {
    if (this.deterministic) return zeros([1]);
    return tidy(() => {
      const terms = other === undefined
        ? this.mean.pow(2).add(this.var).sub(1.0).sub(this.logvar)
        : this.mean.sub(other.mean).pow(2).div(other.var).add(this.var.div(other.var)).sub(1.0).sub(this.logvar).add(other.logvar);
      return terms.sum([1, 2, 3]).mul(0.5);
    });
  }

  /** Negative log-likelihood of `sample` under this distribution, summed over `dims`. */
  nll(sample: Tensor, dims: number[] = [1, 2, 3]): Tensor {
    if (this.deterministic) return zeros([1]);
    return tidy(() => {
      const squaredError = sample.sub(this.mean).pow(2).div(this.var);
      return this.logvar.add(Math.log(2.0 * Math.PI)).add(squaredError).sum(dims).mul(0.5);
    });
  }

  /** Frees the distribution's tensors, `parameters` included. */
  dispose(): void {
    for (const tensor of [this.mean, this.logvar, this.std, this.var, this.parameters]) tensor.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
