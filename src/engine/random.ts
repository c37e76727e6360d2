/**
 * Random number generators: libtorch's own, so a seed gives exactly PyTorch's numbers.
 *
 * `manualSeed(s)` is torch.manual_seed(s) (default CPU generator and every CUDA device's). A `Generator` is
 * a private stream (torch.Generator(device).manual_seed(s)) that never touches the global one.
 */
import { native } from "./native/addon.js";
import { Tensor } from "./tensor.js";

/**
 * A seed as PyTorch's manual_seed takes it: any integer in [-2^63, 2^64 − 1], a negative one taken modulo 2^64
 * (torch.manual_seed(-1) seeds 2^64 − 1), returned as the uint64 the generator is seeded with (what
 * torch.initial_seed() reports). Anything else is refused: the addon would otherwise keep a BigInt's low 64 bits,
 * so 2^64 would silently be seed 0.
 */
export function torchSeed(seed: number | bigint): bigint {
  if (typeof seed === "number" && !Number.isSafeInteger(seed)) {
    throw new RangeError(`a seed must be an integer (a BigInt beyond 2^53), got ${seed}`);
  }
  const value = BigInt(seed);
  if (value < -(2n ** 63n) || value >= 2n ** 64n) {
    throw new RangeError(`a seed must be in PyTorch's manual_seed range [-2^63, 2^64 − 1], got ${value}`);
  }
  return BigInt.asUintN(64, value);
}

export function manualSeed(seed: number | bigint): void {
  native.manualSeed(torchSeed(seed));
}

export class Generator {
  readonly id: number;

  constructor(readonly device: string = "cpu", seed: number | bigint = 67280421310721n) {
    this.id = native.generatorNew(device, torchSeed(seed));
  }

  manualSeed(seed: number | bigint): this {
    native.generatorSetSeed(this.id, torchSeed(seed));
    return this;
  }

  /** The generator's full state as a uint8 tensor (to save in a checkpoint). */
  getState(): Tensor {
    return new Tensor(native.generatorGetState(this.id));
  }

  setState(state: Tensor): void {
    native.generatorSetState(this.id, state.handle);
  }
}

/** State of the default CPU generator (torch.get_rng_state). */
export function getRngState(): Tensor {
  return new Tensor(native.generatorGetState(-1));
}

export function setRngState(state: Tensor): void {
  native.generatorSetState(-1, state.handle);
}
