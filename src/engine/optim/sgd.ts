/**
 * Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay (torch.optim.SGD),
 * replicating PyTorch's single-tensor implementation (torch/optim/sgd.py, `_single_tensor_sgd`) op for op.
 */
import type { Tensor } from "../tensor.js";
import { Optimizer, type ParamGroup, type ParamGroupInput } from "./optimizer.js";

export interface SGDHyperParameters {
  lr: number;
  momentum: number;
  /** Fraction of the new gradient held back from the momentum buffer (0: none). */
  dampening: number;
  /** L2 penalty: weightDecay·param is added to the gradient. */
  weightDecay: number;
  /** Nesterov momentum (Sutskever et al. 2013); needs momentum > 0 and no dampening. */
  nesterov: boolean;
  maximize: boolean;
}

export class SGD extends Optimizer<SGDHyperParameters> {
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput<SGDHyperParameters>>, options: Partial<SGDHyperParameters> = {}) {
    super(params, { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, ...options });
  }

  protected override validate(group: ParamGroup<SGDHyperParameters>): void {
    super.validate(group);
    if (!(group.momentum >= 0)) throw new RangeError(`invalid momentum value: ${group.momentum}`);
    if (!(group.weightDecay >= 0)) throw new RangeError(`invalid weightDecay value: ${group.weightDecay}`);
    if (group.nesterov && (group.momentum <= 0 || group.dampening !== 0)) {
      throw new RangeError("Nesterov momentum requires a momentum and zero dampening");
    }
  }

  protected updateGroup(group: ParamGroup<SGDHyperParameters>): void {
    const { lr, momentum, dampening, weightDecay, nesterov, maximize } = group;
    for (const param of group.params) {
      const rawGrad = param.grad;
      if (!rawGrad) continue;
      let grad = maximize ? rawGrad.neg() : rawGrad;
      if (weightDecay !== 0) grad = grad.add(param, weightDecay);
      if (momentum !== 0) {
        const state = this.stateOf(param);
        let buffer = state["momentum_buffer"] as Tensor | undefined;
        if (buffer === undefined) {
          buffer = this.keepState(grad.detach().clone());
          state["momentum_buffer"] = buffer;
        } else {
          buffer.mul_(momentum).add_(grad, 1 - dampening);
        }
        grad = nesterov ? grad.add(buffer, momentum) : buffer;
      }
      param.add_(grad, -lr);
    }
  }
}
