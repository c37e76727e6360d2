/**
 * Random number generators: libtorch's own, so a seed gives exactly PyTorch's numbers.
 *
 * `manualSeed(s)` is torch.manual_seed(s) (default CPU generator and every CUDA device's). A `Generator` is
 * a private stream (torch.Generator(device).manual_seed(s)) that never touches the global one.
 */
import { native } from "./native/addon.js";
import { Tensor } from "./tensor.js";

export function manualSeed(seed: number | bigint): void {
  native.manualSeed(seed);
}

export class Generator {
  readonly id: number;

  constructor(readonly device: string = "cpu", seed: number | bigint = 67280421310721n) {
    this.id = native.generatorNew(device, seed);
  }

  manualSeed(seed: number | bigint): this {
    native.generatorSetSeed(this.id, seed);
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
