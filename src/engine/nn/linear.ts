/** Linear: y = x Wᵀ + b (torch.nn.Linear), with PyTorch's parameter names, layout and initialisation. */
import type { TensorOptions } from "../creation.js";
import { linear } from "../functional.js";
import type { Tensor } from "../tensor.js";
import { calculateFanInAndFanOut, kaimingUniform_, uniform_ } from "./init.js";
import { Module } from "./module.js";
import { Parameter } from "./parameter.js";

export interface LinearOptions extends Omit<TensorOptions, "requiresGrad"> {
  /** Whether to learn an additive bias (default true). */
  bias?: boolean;
}

export class Linear extends Module {
  /** (outFeatures, inFeatures), as in PyTorch, so checkpoints load without transposing. */
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, options: LinearOptions = {}) {
    super();
    const { bias = true, ...tensorOptions } = options;
    this.weight = this.registerParameter("weight", Parameter.empty([outFeatures, inFeatures], tensorOptions));
    this.bias = bias ? this.registerParameter("bias", Parameter.empty([outFeatures], tensorOptions)) : null;
    this.resetParameters();
  }

  /**
   * PyTorch's default: kaiming_uniform_(a=sqrt(5)) for the weight, which is U(-1/sqrt(in), 1/sqrt(in)),
   * and the same bound for the bias. The weight is drawn first, then the bias (the RNG order matters).
   */
  resetParameters(): void {
    kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const { fanIn } = calculateFanInAndFanOut(this.weight);
      const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
      uniform_(this.bias, -bound, bound);
    }
  }

  forward(input: Tensor): Tensor {
    return linear(input, this.weight, this.bias);
  }
}
