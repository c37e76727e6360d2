/**
 * Checkpoints of a training stage, so that `hdb miniworld build` resumes after a kill exactly where it stopped.
 *
 * A checkpoint is a folder `<stageDir>/checkpoint-<step>/` holding weights.safetensors (the trained tensors
 * under their names, plus EMA shadows), optimizer.safetensors (AdamW moments and the learning-rate schedule)
 * and state.json (step, loss history, EMA update count). It is written as `checkpoint-<step>.tmp/` and renamed
 * when complete (src/util/atomic.ts), so a kill mid-write leaves the previous checkpoint as the latest; older ones are then removed.
 * Every step draws its randomness from a generator seeded with (seed, step), so the run after a resume takes
 * the same steps as an uninterrupted one.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { loadSafetensors, saveSafetensors, type Tensor } from "../../engine/index.js";
import { loadOptimizerState, saveOptimizerState, type BaseHyperParameters, type LRScheduler, type Optimizer } from "../../engine/optim/index.js";
import { writeDirectoryAtomic, writeJsonAtomic } from "../../util/atomic.js";

export interface LossRecord {
  step: number;
  /** Mean training loss over the steps since the previous record. */
  loss: number;
}

export interface StageState {
  step: number;
  losses: LossRecord[];
  emaUpdates?: number;
  /** Seconds spent training so far (over all runs). */
  seconds: number;
  /** Loss sum and count of the steps since the last record (so a resumed run records the same means). */
  pendingLossSum?: number;
  pendingLossCount?: number;
}

export function saveStageCheckpoint(stageDir: string, state: StageState, tensors: Map<string, Tensor>, optimizer: Optimizer<BaseHyperParameters>, scheduler: LRScheduler): void {
  // Written as checkpoint-<step>.tmp/ first: a leftover of a kill is matched below and removed.
  writeDirectoryAtomic(path.join(stageDir, `checkpoint-${state.step}`), (tmp) => {
    saveSafetensors(path.join(tmp, "weights.safetensors"), tensors);
    saveOptimizerState(path.join(tmp, "optimizer.safetensors"), optimizer, { scheduler });
    writeJsonAtomic(path.join(tmp, "state.json"), state);
  });
  for (const name of readdirSync(stageDir)) {
    const match = /^checkpoint-(\d+)(\.tmp)?$/.exec(name);
    if (match && (Number(match[1]) < state.step || match[2] !== undefined)) rmSync(path.join(stageDir, name), { recursive: true, force: true });
  }
}

export interface LoadedCheckpoint {
  dir: string;
  state: StageState;
  /** The saved tensors; the caller copies them into its modules and disposes them. */
  tensors: Map<string, Tensor>;
}

/** The newest complete checkpoint of a stage (its optimizer state is loaded by `restoreOptimizer`), or null. */
export function latestStageCheckpoint(stageDir: string): LoadedCheckpoint | null {
  if (!existsSync(stageDir)) return null;
  const steps = readdirSync(stageDir).map((name) => /^checkpoint-(\d+)$/.exec(name)).filter((m) => m !== null).map((m) => Number(m[1]));
  if (steps.length === 0) return null;
  const dir = path.join(stageDir, `checkpoint-${Math.max(...steps)}`);
  let state: StageState;
  try {
    state = JSON.parse(readFileSync(path.join(dir, "state.json"), "utf8")) as StageState;
  } catch (error) {
    throw new Error(`checkpoint ${dir} has no readable state.json (${(error as Error).message}); delete the folder to resume from an earlier one`);
  }
  return { dir, state, tensors: loadSafetensors(path.join(dir, "weights.safetensors")).tensors };
}

export function restoreOptimizer(checkpoint: LoadedCheckpoint, optimizer: Optimizer<BaseHyperParameters>, scheduler: LRScheduler): void {
  loadOptimizerState(path.join(checkpoint.dir, "optimizer.safetensors"), optimizer, { scheduler });
}

/** `prefix.name` entries of a flat map (weights of one module) as a state dict for loadStateDict. */
export function withPrefix(tensors: Map<string, Tensor>, prefix: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, tensor] of tensors) if (name.startsWith(`${prefix}.`)) out.set(name.slice(prefix.length + 1), tensor);
  return out;
}
