/**
 * The one diffusion loss of every trainer: the base-model recipe, DreamBooth (HyperDreamBooth §4.1-4.2) and
 * what comes next (the hypernetwork's fine-tuning term, the rank-relaxed fast fine-tuning of §4.3).
 *
 *     loss = E w(t) ‖target − model(x_t, t, c)‖²  +  λ · E ‖target_prior − model(x_t', t', c_class)‖²
 *
 * (Rombach et al. 2022 eq. 2; DreamBooth eq. 2 with prior preservation), as diffusers' training scripts compute
 * it: per-sample mean squared error in float32, the target ε (epsilon prediction) or v = √ᾱ_t ε − √(1−ᾱ_t) x₀
 * (v-prediction), as the model's scheduler says, and optional per-sample weights w(t) on the instance term:
 *   - min-SNR-γ (Hang et al. 2023): min(SNR, γ)/SNR for ε, min(SNR, γ)/(SNR + 1) for v;
 *   - truncated min-SNR-γ (Salimans & Ho 2022 §4's weight 1 near pure noise, capped at γ): clamp(SNR, 1, γ)/SNR
 *     for ε (the base-model recipe's later phases).
 *
 * Groups: a batch may hold several independently trained things (identities), laid out group by group, each
 * group's block holding its B instance samples then, with prior preservation, its B class samples. The result
 * is one loss per group (each the mean over its own samples); their SUM is what is backpropagated, so each
 * group's parameters get exactly the gradient of its own loss, as if trained alone (a batch mean would scale
 * it by 1/N). One group with no prior preservation is the plain denoising loss.
 */
import { mseLoss, tidy, type Tensor } from "../engine/index.js";
import { minSnrWeights, truncatedMinSnrWeights, type DDPMScheduler } from "../models/schedulers/index.js";

export type SnrWeighting = { kind: "none" } | { kind: "min-snr"; gamma: number } | { kind: "truncated-min-snr"; gamma: number };

export interface DiffusionLossOptions {
  /** The training scheduler: its prediction_type and noise schedule. */
  scheduler: DDPMScheduler;
  /** Weights of the instance term (default none). */
  weighting?: SnrWeighting;
  /** Groups in the batch (default 1). */
  groups?: number;
  /** With prior preservation: each group's block also holds as many class samples, weighted by `weight`. */
  prior?: { weight: number } | null;
}

export interface DiffusionLosses {
  /** (G,) instance term + λ · prior term, per group: sum these for the backward pass. */
  total: Tensor;
  /** (G,) the instance term (weighted when asked). */
  instance: Tensor;
  /** (G,) the prior-preservation term, or null. */
  prior: Tensor | null;
}

/** The regression target for the scheduler's prediction type. */
export function diffusionTarget(scheduler: DDPMScheduler, latents: Tensor, noise: Tensor, timesteps: Tensor): Tensor {
  const type = scheduler.config.prediction_type;
  if (type === "epsilon") return noise.alias();
  if (type === "v_prediction") return scheduler.getVelocity(latents, noise, timesteps);
  throw new Error(`diffusion training supports prediction_type "epsilon" and "v_prediction", the scheduler has "${type}"`);
}

/** Per-sample weights w(t) of a weighting, or null for none. */
export function snrWeights(scheduler: DDPMScheduler, timesteps: Tensor, weighting: SnrWeighting): Tensor | null {
  if (weighting.kind === "none") return null;
  if (weighting.kind === "min-snr") return minSnrWeights(scheduler, timesteps, weighting.gamma);
  if (scheduler.config.prediction_type !== "epsilon") throw new Error(`truncated min-SNR weights are defined for epsilon prediction, the scheduler has "${scheduler.config.prediction_type}"`);
  return truncatedMinSnrWeights(scheduler, timesteps, weighting.gamma);
}

/**
 * Per-group losses of a batch laid out as the file comment says: `prediction` and `target` (S, C, H, W),
 * `timesteps` (S,), S = G · B · (2 with prior preservation, else 1).
 */
export function diffusionLoss(prediction: Tensor, target: Tensor, timesteps: Tensor, options: DiffusionLossOptions): DiffusionLosses {
  const groups = options.groups ?? 1;
  const kinds = options.prior ? 2 : 1;
  const samples = prediction.size(0);
  const perGroup = samples / (groups * kinds);
  if (!Number.isInteger(perGroup) || perGroup < 1 || target.size(0) !== samples || timesteps.size(0) !== samples) {
    throw new Error(`diffusionLoss: ${groups} group(s) × ${kinds} (instance${options.prior ? ", class" : ""}) need a multiple of ${groups * kinds} samples ` +
      `in prediction, target and timesteps alike; got ${samples}, ${target.size(0)}, ${timesteps.size(0)}`);
  }
  return tidy(() => {
    // (G, kinds, B) per-sample mean squared error, in float32 as diffusers computes it.
    const perSample = mseLoss(prediction.float(), target.float(), "none").mean([1, 2, 3]).view(groups, kinds, perGroup);
    let instance = perSample.select(1, 0);
    const weights = snrWeights(options.scheduler, timesteps.view(groups, kinds, perGroup).select(1, 0), options.weighting ?? { kind: "none" });
    if (weights) instance = instance.mul(weights.to(instance.device));
    const instanceLoss = instance.mean(1);
    if (!options.prior) return { total: instanceLoss.alias(), instance: instanceLoss, prior: null };
    const priorLoss = perSample.select(1, 1).mean(1);
    return { total: instanceLoss.add(priorLoss.mul(options.prior.weight)), instance: instanceLoss, prior: priorLoss };
  });
}
