/**
 * Saving and restoring optimizer state (and optionally its learning-rate schedule) as one safetensors file,
 * so that interrupted training resumes exactly where it stopped.
 *
 * Layout: every state tensor under "state.<parameterIndex>.<name>" (parameters numbered across groups in
 * order, as in PyTorch), and in the `__metadata__` strings:
 *   "format": "optimizer-state/1", "optimizer": the class name,
 *   "param_groups": JSON of each group's hyper-parameters and parameter indices,
 *   "state": JSON of the per-parameter numbers (step counts),
 *   "lr_scheduler": JSON of the schedule's state, when one is given.
 */
import { loadSafetensors, saveSafetensors } from "../safetensors/index.js";
import type { LRScheduler, LRSchedulerState } from "./lr-scheduler.js";
import type { BaseHyperParameters, Optimizer, OptimizerStateDict } from "./optimizer.js";

const FORMAT = "optimizer-state/1";

export function saveOptimizerState(path: string, optimizer: Optimizer<BaseHyperParameters>, options: { scheduler?: LRScheduler } = {}): void {
  const { tensors, meta } = optimizer.stateDict();
  const metadata: Record<string, string> = {
    format: FORMAT,
    optimizer: optimizer.constructor.name,
    param_groups: JSON.stringify(meta.paramGroups),
    state: JSON.stringify(meta.state),
  };
  if (options.scheduler) metadata["lr_scheduler"] = JSON.stringify(options.scheduler.stateDict());
  saveSafetensors(path, tensors, metadata);
}

/**
 * Restores state saved by `saveOptimizerState` into an optimizer of the same class over the same parameter
 * groups (and the schedule, if one is given and was saved).
 */
export function loadOptimizerState(path: string, optimizer: Optimizer<BaseHyperParameters>, options: { scheduler?: LRScheduler } = {}): void {
  const { tensors, metadata } = loadSafetensors(path);
  try {
    if (metadata["format"] !== FORMAT) throw new Error(`${path} is not an optimizer state file (format ${String(metadata["format"])})`);
    if (metadata["optimizer"] !== optimizer.constructor.name) {
      throw new Error(`${path} holds ${metadata["optimizer"]} state, which cannot be loaded into ${optimizer.constructor.name}`);
    }
    const meta = {
      paramGroups: JSON.parse(metadata["param_groups"] ?? "[]") as OptimizerStateDict["meta"]["paramGroups"],
      state: JSON.parse(metadata["state"] ?? "{}") as OptimizerStateDict["meta"]["state"],
    };
    optimizer.loadStateDict({ tensors, meta });
    if (options.scheduler) {
      const saved = metadata["lr_scheduler"];
      if (saved === undefined) throw new Error(`${path} holds no learning-rate schedule state`);
      options.scheduler.loadStateDict(JSON.parse(saved) as LRSchedulerState);
    }
  } finally {
    for (const tensor of tensors.values()) tensor.dispose();
  }
}
