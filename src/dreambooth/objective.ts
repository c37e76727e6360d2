/**
 * The DreamBooth objective (Ruiz et al. 2023, eq. 2), as diffusers' train_dreambooth_lora.py computes it:
 *
 *     loss = E‖target − ε_θ(x_t, t, c)‖² + λ · E‖target_prior − ε_θ(x_t', t', c_class)‖²
 *
 * with target = ε (epsilon prediction) or v = √ᾱ_t ε − √(1−ᾱ_t) x_0 (v-prediction), as the model folder's
 * scheduler says, and optional min-SNR-γ weights (Hang et al. 2023) on the instance term:
 * min(SNR, γ)/SNR for ε, min(SNR, γ)/(SNR + 1) for v.
 *
 * Many identities in one batch: the batch is laid out identity by identity, each identity's block holding its
 * B instance samples then (with prior preservation) its B class samples. The result is one loss per identity
 * (each the mean over its own samples); their SUM is what is backpropagated, so each identity's factors get
 * exactly the gradient of its own loss, as if it were trained alone (a batch mean would scale it by 1/N).
 */
import { mseLoss, tidy, type Tensor } from "../engine/index.js";
import { minSnrWeights, type DDPMScheduler } from "../models/schedulers/index.js";

export interface ObjectiveOptions {
  /** The training scheduler: its prediction_type and noise schedule. */
  scheduler: DDPMScheduler;
  /** Identities in the batch. */
  identities: number;
  /** Instance samples per identity (B). */
  instancesPerIdentity: number;
  /** Whether each identity's block also holds B class samples (prior preservation). */
  withPriorPreservation: boolean;
  priorLossWeight: number;
  snrGamma: number | null;
}

export interface IdentityLosses {
  /** (N,) instance term + λ · prior term, per identity: sum these for the backward pass. */
  total: Tensor;
  /** (N,) the instance term (min-SNR weighted when enabled). */
  instance: Tensor;
  /** (N,) the prior-preservation term, or null. */
  prior: Tensor | null;
}

/** The regression target for the model's prediction type. */
export function trainingTarget(scheduler: DDPMScheduler, latents: Tensor, noise: Tensor, timesteps: Tensor): Tensor {
  const type = scheduler.config.prediction_type;
  if (type === "epsilon") return noise.alias();
  if (type === "v_prediction") return scheduler.getVelocity(latents, noise, timesteps);
  throw new Error(`DreamBooth training supports prediction_type "epsilon" and "v_prediction", the scheduler has "${type}"`);
}

/**
 * Per-identity DreamBooth losses of a batch laid out as described in the file comment: `prediction` and
 * `target` (S, C, H, W), `timesteps` (S,) with S = N · B · (2 with prior preservation, else 1).
 */
export function dreamboothLosses(prediction: Tensor, target: Tensor, timesteps: Tensor, options: ObjectiveOptions): IdentityLosses {
  const { identities, instancesPerIdentity: b, withPriorPreservation } = options;
  const groups = withPriorPreservation ? 2 : 1;
  const samples = identities * b * groups;
  if (prediction.size(0) !== samples || target.size(0) !== samples || timesteps.size(0) !== samples) {
    throw new Error(`dreamboothLosses: expected ${samples} samples (${identities} identities × ${b} × ${groups}), got prediction ${prediction.size(0)}, target ${target.size(0)}, timesteps ${timesteps.size(0)}`);
  }
  return tidy(() => {
    // (S,) per-sample mean squared error, in float32 as diffusers computes it.
    const perSample = mseLoss(prediction.float(), target.float(), "none").mean([1, 2, 3]).view(identities, groups, b);
    let instance = perSample.select(1, 0);
    if (options.snrGamma !== null) {
      const instanceTimesteps = timesteps.view(identities, groups, b).select(1, 0);
      instance = instance.mul(minSnrWeights(options.scheduler, instanceTimesteps, options.snrGamma));
    }
    const instanceLoss = instance.mean(1);
    if (!withPriorPreservation) return { total: instanceLoss.alias(), instance: instanceLoss, prior: null };
    const priorLoss = perSample.select(1, 1).mean(1);
    return { total: instanceLoss.add(priorLoss.mul(options.priorLossWeight)), instance: instanceLoss, prior: priorLoss };
  });
}
