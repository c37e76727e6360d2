/**
 * Adam and AdamW (torch.optim.Adam / AdamW), replicating the op sequence of PyTorch's single-tensor
 * implementation (torch/optim/adam.py, `_single_tensor_adam`, non-capturable path) so that updates are
 * the same to the last bit on CPU: lerp_ for the first moment, mul_ + addcmul_ for the second, bias
 * corrections computed in double precision on the host, then one addcdiv_.
 *
 * AdamW is Adam with decoupled weight decay (Loshchilov & Hutter): the parameter shrinks by lr·wd directly
 * instead of the decay being added to the gradient, which is what PyTorch's AdamW now is as well.
 */
import { zerosLike } from "../creation.js";
import { op } from "../dispatch.js";
import { call, Tensor } from "../tensor.js";
import { Optimizer, type ParamGroup, type ParamGroupInput } from "./optimizer.js";

export interface AdamHyperParameters {
  lr: number;
  /** Decay rates of the first and second moment averages. */
  betas: readonly [number, number];
  /** Added to the denominator for numerical stability. */
  eps: number;
  weightDecay: number;
  /** Use the maximum of past second moments (Reddi et al., "On the Convergence of Adam and Beyond"). */
  amsgrad: boolean;
  /** Maximise the objective instead of minimising it. */
  maximize: boolean;
  /** Decay weights directly (AdamW) instead of adding weightDecay·param to the gradient (Adam). */
  decoupledWeightDecay: boolean;
}

const maximumOp = op("aten::maximum");

export class Adam extends Optimizer<AdamHyperParameters> {
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput<AdamHyperParameters>>, options: Partial<AdamHyperParameters> = {}) {
    super(params, {
      lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, decoupledWeightDecay: false,
      ...options,
    });
  }

  protected override validate(group: ParamGroup<AdamHyperParameters>): void {
    super.validate(group);
    const [beta1, beta2] = group.betas;
    if (!(group.eps >= 0)) throw new RangeError(`invalid epsilon value: ${group.eps}`);
    if (!(beta1 >= 0 && beta1 < 1)) throw new RangeError(`invalid beta parameter at index 0: ${beta1}`);
    if (!(beta2 >= 0 && beta2 < 1)) throw new RangeError(`invalid beta parameter at index 1: ${beta2}`);
    if (!(group.weightDecay >= 0)) throw new RangeError(`invalid weightDecay value: ${group.weightDecay}`);
  }

  protected updateGroup(group: ParamGroup<AdamHyperParameters>): void {
    const { lr, eps, weightDecay, amsgrad, maximize, decoupledWeightDecay } = group;
    const [beta1, beta2] = group.betas;
    for (const param of group.params) {
      const rawGrad = param.grad;
      if (!rawGrad) continue;
      const state = this.stateOf(param);
      if (state["step"] === undefined) {
        state["step"] = 0;
        state["exp_avg"] = this.keepState(zerosLike(param));
        state["exp_avg_sq"] = this.keepState(zerosLike(param));
        if (amsgrad) state["max_exp_avg_sq"] = this.keepState(zerosLike(param));
      }
      const expAvg = state["exp_avg"] as Tensor;
      const expAvgSq = state["exp_avg_sq"] as Tensor;
      let grad = maximize ? rawGrad.neg() : rawGrad;

      const step = (state["step"] as number) + 1;
      state["step"] = step;

      if (weightDecay !== 0) {
        if (decoupledWeightDecay) param.mul_(1 - lr * weightDecay);
        else grad = grad.add(param, weightDecay);
      }

      expAvg.lerp_(grad, 1 - beta1);
      expAvgSq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);

      const biasCorrection1 = 1 - beta1 ** step;
      const biasCorrection2 = 1 - beta2 ** step;
      const stepSize = lr / biasCorrection1;
      const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);

      let secondMoment = expAvgSq;
      if (amsgrad) {
        const maxExpAvgSq = state["max_exp_avg_sq"] as Tensor;
        maxExpAvgSq.copy_(call(maximumOp, maxExpAvgSq, expAvgSq));
        secondMoment = maxExpAvgSq;
      }
      const denominator = secondMoment.sqrt().div(biasCorrection2Sqrt).add_(eps);
      param.addcdiv_(expAvg, denominator, -stepSize);
    }
  }
}

/** Adam with decoupled weight decay; PyTorch's defaults (lr 1e-3, betas 0.9/0.999, eps 1e-8, weightDecay 0.01). */
export class AdamW extends Adam {
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput<AdamHyperParameters>>, options: Partial<AdamHyperParameters> = {}) {
    super(params, { weightDecay: 1e-2, ...options, decoupledWeightDecay: true });
  }
}
