/** Optimisers, learning-rate schedules, loss scaling and optimiser checkpoints (torch.optim, torch.amp). */
export {
  Optimizer, type BaseHyperParameters, type HyperParameterValue, type OptimizerStateDict, type ParamGroup,
  type ParamGroupInput, type ParameterState,
} from "./optimizer.js";
export { Adam, AdamW, type AdamHyperParameters } from "./adamw.js";
export { SGD, type SGDHyperParameters } from "./sgd.js";
export {
  LRScheduler, constantSchedule, constantWithWarmupSchedule, linearSchedule, cosineSchedule, cosineWithRestartsSchedule,
  getScheduler, type LrLambda, type LRSchedulerState, type SchedulerName, type WarmupOptions, type DecayOptions,
} from "./lr-scheduler.js";
export { GradScaler, type GradScalerOptions, type GradScalerState } from "./grad-scaler.js";
export { saveOptimizerState, loadOptimizerState } from "./checkpoint.js";
export { ExponentialMovingAverage } from "./ema.js";
