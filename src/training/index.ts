/**
 * Training: the one resumable loop every trainer runs (loop.ts), its jobs (job.ts), its checkpoint layout
 * (checkpoint.ts) and log (log.ts), the `--nproc` launcher of data-parallel runs (launch.ts), and the one diffusion
 * loss (diffusion-loss.ts).
 */
export { shardRange, stepJobs, train, type LoopHooks, type LoopResult, type Shard, type TrainingLoop } from "./loop.js";
export { freePort, launch, launchIfRequested, nprocFlag, type LaunchOptions } from "./launch.js";
export { TrainingJob, lossRecords, type JobOptions } from "./job.js";
export {
  CHECKPOINT_FORMAT, EARLIER_LAYOUT_COMMIT, differingSettings, latestCheckpoint, readCheckpointState, readCheckpointTensors, removeCheckpoints, resumeJob, saveCheckpoint,
  type CheckpointState,
} from "./checkpoint.js";
export { TrainingLog, readTrainingLog, type EventLine, type LogLine, type StepLine } from "./log.js";
export { writeLossPage } from "./loss-page.js";
export { diffusionLoss, diffusionTarget, snrWeights, type DiffusionLosses, type DiffusionLossOptions, type SnrWeighting } from "./diffusion-loss.js";
