/** Parameter-free layers: activations, dropout and identity (torch.nn.SiLU, GELU, Dropout, Identity). */
import { dropout } from "../functional.js";
import type { Tensor } from "../tensor.js";
import { Module } from "./module.js";

/** x · sigmoid(x). */
export class SiLU extends Module {
  forward(input: Tensor): Tensor {
    return input.silu();
  }
}

/** Gaussian error linear unit, exact (erf) or with the tanh approximation. */
export class GELU extends Module {
  constructor(readonly approximate: "none" | "tanh" = "none") {
    super();
  }
  forward(input: Tensor): Tensor {
    return input.gelu(this.approximate);
  }
}

/**
 * Zeroes elements with probability p and scales the rest by 1/(1-p) in training mode; identity in eval
 * mode. The draws come from the default generator, so they match PyTorch's after the same manual seed.
 */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (p < 0 || p > 1) throw new RangeError(`Dropout: probability must be in [0, 1], got ${p}`);
  }
  forward(input: Tensor): Tensor {
    return dropout(input, this.p, this.training);
  }
}

/**
 * Returns its input. The result is a new handle on the same tensor (not the same object), so that every
 * forward returns a tensor its caller owns and may dispose without freeing the input.
 */
export class Identity extends Module {
  forward(input: Tensor): Tensor {
    return input.alias();
  }
}
