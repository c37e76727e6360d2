/**
 * The tensor engine: libtorch through a native addon, with a PyTorch-like TypeScript API.
 * It knows nothing of diffusion.
 */
export { Tensor, type Device, type IndexSpec, type TensorOrScalar } from "./tensor.js";
export type { DType, TypedArray } from "./dtype.js";
export { dtypeBytes, isFloatingDType } from "./dtype.js";
export * from "./creation.js";
export * from "./functional.js";
export { allFinite, nonFiniteNames } from "./finite.js";
export * from "./autograd.js";
export { addBackwardGuard, withoutBackwardGuards } from "./backward-guards.js";
export * from "./random.js";
export * from "./runtime.js";
export { autocast } from "./amp.js";
export { tidy, keep, memory, type MemoryInfo } from "./lifetime.js";
export { op, Operator } from "./dispatch.js";
export * from "./safetensors/index.js";
export * as nn from "./nn/index.js";
export * as optim from "./optim/index.js";
export { Module, Parameter } from "./nn/index.js";
export {
  averageGradients, broadcastParameters, distributedEnvironment, initProcessGroup, DISTRIBUTED_TIMEOUT_SECONDS,
  type DistributedEnvironment, type ProcessGroup, type ProcessGroupOptions,
} from "./distributed.js";
