/**
 * The one checkpoint layout of every trainer (base-model stages, metric networks, DreamBooth identities, and
 * next the hypernetwork and the fast fine-tuning):
 *
 *     <job dir>/checkpoint-<step>/
 *         model.safetensors       the trained tensors under their names (job.tensors()), plus "ema.<i>" shadows
 *         optimizer.safetensors   optimiser moments and the learning-rate schedule (engine/optim/checkpoint.ts)
 *         rng.safetensors         the default CPU generator's state (any draw a step makes outside its own
 *                                 per-step generator, e.g. dropout, resumes the same)
 *         state.json              format, job name, step, seed, settings fingerprint, every step's loss,
 *                                 seconds, EMA update count
 *
 * The folder is filled under `checkpoint-<step>.tmp/` and renamed when complete (util/atomic.ts), so a kill
 * mid-write leaves the previous checkpoint as the latest; older checkpoints are then removed. A resume checks
 * the format, the job's name and seed and every setting, and names what differs.
 */
import { existsSync, readdirSync, readFileSync, rmSync, rmdirSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { getRngState, loadSafetensors, noGrad, readSafetensorsHeader, saveSafetensors, setRngState, tidy, type Tensor } from "../engine/index.js";
import { loadOptimizerState, saveOptimizerState } from "../engine/optim/index.js";
import { writeDirectoryAtomic, writeJsonAtomic } from "../util/atomic.js";
import { addFieldIssue, finiteNumber, nonNegativeInt, parseWithSchema, whenFieldsValid } from "../util/schema.js";
import type { TrainingJob } from "./job.js";

export const CHECKPOINT_FORMAT = "hdb-training-checkpoint/1";

export interface CheckpointState {
  format: string;
  job: string;
  step: number;
  seed: number;
  settings: Record<string, unknown>;
  losses: number[];
  seconds: number;
  emaUpdates?: number;
}

/**
 * The commit whose trainers wrote the layouts this one replaced (per-step draws seeded differently, so a
 * resume from them could not continue the same run): named in the refusal, to finish such a folder with.
 */
export const EARLIER_LAYOUT_COMMIT = "4bcb161";

const CHECKPOINT_NAME = /^checkpoint-(\d+)$/;

/** Saves the job's state as `<dir>/checkpoint-<step>/` and removes older checkpoints (and leftovers of kills). */
export function saveCheckpoint(job: TrainingJob): void {
  const { dir, ema, optimizer, scheduler } = job.options;
  const state: CheckpointState = {
    format: CHECKPOINT_FORMAT, job: job.name, step: job.step, seed: job.options.seed, settings: job.options.settings,
    losses: job.losses, seconds: job.seconds, ...(ema ? { emaUpdates: ema.updates } : {}),
  };
  const tensors = job.options.tensors();
  ema?.shadow.forEach((t, i) => tensors.set(`ema.${i}`, t));
  const rng = getRngState();
  try {
    writeDirectoryAtomic(path.join(dir, `checkpoint-${job.step}`), (temporary) => {
      saveSafetensors(path.join(temporary, "model.safetensors"), tensors, { format: CHECKPOINT_FORMAT });
      saveOptimizerState(path.join(temporary, "optimizer.safetensors"), optimizer, scheduler ? { scheduler } : {});
      saveSafetensors(path.join(temporary, "rng.safetensors"), new Map([["cpu", rng]]));
      writeJsonAtomic(path.join(temporary, "state.json"), state);
    });
  } finally {
    rng.dispose();
  }
  for (const name of readdirSync(dir)) {
    const match = /^checkpoint-(\d+)(\.tmp)?$/.exec(name);
    if (match && (Number(match[1]) !== job.step || match[2] !== undefined)) rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

/** The newest complete checkpoint folder in `dir`, or null; refuses the layouts this one replaced. */
export function latestCheckpoint(dir: string): string | null {
  if (!existsSync(dir)) return null;
  const names = readdirSync(dir);
  const earlier = names.find((name) => /^step-\d+$/.test(name));
  if (earlier !== undefined) {
    throw new Error(`${path.join(dir, earlier)} is a checkpoint in the layout of an earlier version, whose steps drew other random numbers: ` +
      `delete ${dir} to train from the start, or finish the run with hdb at commit ${EARLIER_LAYOUT_COMMIT}`);
  }
  const steps = names.map((name) => CHECKPOINT_NAME.exec(name)).filter((m) => m !== null).map((m) => Number(m[1]));
  return steps.length === 0 ? null : path.join(dir, `checkpoint-${Math.max(...steps)}`);
}

/** A checkpoint's state.json, checked to be this layout's. */
export function readCheckpointState(folder: string): CheckpointState {
  const file = path.join(folder, "state.json");
  let state: Partial<CheckpointState>;
  try {
    state = JSON.parse(readFileSync(file, "utf8")) as Partial<CheckpointState>;
  } catch (error) {
    throw new Error(`${folder} is not a complete checkpoint (${(error as Error).message}): delete it to resume from an earlier one`);
  }
  if (state.format !== CHECKPOINT_FORMAT) {
    const earlier = existsSync(path.join(folder, "weights.safetensors")) ? " (the earlier base-model stage layout)" : "";
    throw new Error(`${folder} is not a ${CHECKPOINT_FORMAT} checkpoint${earlier}, whose steps drew other random numbers: ` +
      `delete it to train this stage from the start, or finish the run with hdb at commit ${EARLIER_LAYOUT_COMMIT}`);
  }
  // A damaged state.json (a step of "abc" resumed "from step NaN" and trained forever) is refused by key.
  return parseWithSchema(stateSchema, state, { source: file, error: CheckpointError });
}

/** A checkpoint that cannot be resumed from: the message names the file and the key or tensor. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** state.json as this layout writes it; every step has its loss. */
const stateSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  job: z.string({ error: "the job's name" }),
  step: nonNegativeInt(),
  seed: nonNegativeInt(),
  settings: z.record(z.string(), z.unknown(), { error: "an object of the run's settings" }),
  losses: z.array(finiteNumber("a finite number")),
  seconds: z.number({ error: "a number of seconds ≥ 0" }).nonnegative(),
  emaUpdates: nonNegativeInt().optional(),
}).superRefine((state, ctx) => {
  if (state.losses.length !== state.step) addFieldIssue(ctx, "losses", `${state.losses.length} entries`, `one loss per step (${state.step} at step ${state.step})`);
}, { when: whenFieldsValid });

/**
 * Refuses a checkpoint whose files do not hold what this job restores, before anything is loaded: every file
 * present, every trained tensor (and EMA shadow) there with this job's shape, the generator state present. Without
 * it a missing tensor surfaced as "Cannot read properties of undefined (reading 'handle')".
 */
function checkCheckpointFiles(folder: string, job: TrainingJob): void {
  for (const name of ["model.safetensors", "optimizer.safetensors", "rng.safetensors"]) {
    if (!existsSync(path.join(folder, name))) throw new CheckpointError(`${folder} has no ${name}: it is incomplete; delete it to train this job from the start`);
  }
  const modelFile = path.join(folder, "model.safetensors");
  const stored = readSafetensorsHeader(modelFile).entries;
  const expected = tidy(() => [
    ...[...job.options.tensors()].map(([name, t]) => [name, [...t.shape]] as const),
    ...(job.options.ema?.shadow ?? []).map((t, i) => [`ema.${i}`, [...t.shape]] as const),
  ]);
  const missing = expected.filter(([name]) => !stored.has(name)).map(([name]) => name);
  if (missing.length > 0) {
    throw new CheckpointError(`${modelFile}: tensor "${missing[0]}" is missing${missing.length > 1 ? ` (and ${missing.length - 1} more of the ${expected.length} this job restores)` : ""}; ` +
      "delete the checkpoint to train this job from the start");
  }
  for (const [name, shape] of expected) {
    const found = stored.get(name)!.shape;
    if (found.join() !== shape.join()) {
      throw new CheckpointError(`${modelFile}: tensor "${name}" is [${found.join(", ")}], this job's is [${shape.join(", ")}]; delete the checkpoint to train this job from the start`);
    }
  }
  const rngFile = path.join(folder, "rng.safetensors");
  if (!readSafetensorsHeader(rngFile).entries.has("cpu")) throw new CheckpointError(`${rngFile}: tensor "cpu" (the generator state) is missing`);
}

/**
 * Restores `job` from its newest checkpoint, if any: trained tensors, EMA, optimiser, schedule, default
 * generator, step and losses. Returns the checkpoint folder, or null when there is none. Throws, naming the setting, when
 * the checkpoint belongs to another job or other settings.
 */
export function resumeJob(job: TrainingJob): string | null {
  const folder = latestCheckpoint(job.dir);
  if (folder === null) return null;
  const state = readCheckpointState(folder);
  if (state.job !== job.name || state.seed !== job.options.seed) {
    throw new Error(`${folder} belongs to job '${state.job}' with seed ${state.seed}, not '${job.name}' with seed ${job.options.seed}`);
  }
  const differing = differingSettings(state.settings, job.options.settings);
  if (differing.length > 0) {
    throw new Error(`cannot resume from ${folder}: its settings differ from this run's in ${differing.join("; ")} ` +
      "(run with the saved settings, or use another folder)");
  }
  if (state.step > job.steps) throw new Error(`${folder} is at step ${state.step}, beyond this run's ${job.steps} steps`);
  checkCheckpointFiles(folder, job);
  const { ema } = job.options;
  const { tensors } = loadSafetensors(path.join(folder, "model.safetensors"), { finite: true });
  try {
    const own = new Map([...tensors].filter(([name]) => !name.startsWith("ema.")));
    noGrad(() => job.options.load(own));
    if (ema) {
      const shadow = ema.shadow.map((_, i) => tensors.get(`ema.${i}`));
      if (shadow.some((t) => t === undefined)) throw new Error(`${folder} holds no EMA weights, which this job keeps`);
      ema.load(shadow as Tensor[], state.emaUpdates ?? 0);
    }
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  const { scheduler } = job.options;
  loadOptimizerState(path.join(folder, "optimizer.safetensors"), job.options.optimizer, scheduler ? { scheduler } : {});
  const rng = loadSafetensors(path.join(folder, "rng.safetensors")).tensors;
  try {
    setRngState(rng.get("cpu")!);
  } finally {
    for (const t of rng.values()) t.dispose();
  }
  job.step = state.step;
  job.losses.splice(0, job.losses.length, ...state.losses);
  job.seconds = state.seconds;
  return folder;
}

/**
 * The trained tensors (and EMA shadows, "ema.<i>") of a job's newest checkpoint, with its state: where a later
 * stage starts from (the caller disposes the tensors). Reads the earlier base-model stage layout too
 * (weights.safetensors), since starting from weights needs none of the random streams.
 */
export function readCheckpointTensors(dir: string): { folder: string; step: number; emaUpdates: number; tensors: Map<string, Tensor> } | null {
  const folder = latestCheckpoint(dir);
  if (folder === null) return null;
  const earlier = path.join(folder, "weights.safetensors");
  if (existsSync(earlier)) {
    const state = JSON.parse(readFileSync(path.join(folder, "state.json"), "utf8")) as { step: number; emaUpdates?: number };
    return { folder, step: state.step, emaUpdates: state.emaUpdates ?? 0, tensors: loadSafetensors(earlier).tensors };
  }
  const state = readCheckpointState(folder);
  return { folder, step: state.step, emaUpdates: state.emaUpdates ?? 0, tensors: loadSafetensors(path.join(folder, "model.safetensors")).tensors };
}

/** Removes a job's checkpoints (after its result is saved), and its folder when that leaves it empty. */
export function removeCheckpoints(dir: string): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    if (/^checkpoint-\d+(\.tmp)?$/.test(name)) rmSync(path.join(dir, name), { recursive: true, force: true });
  }
  if (readdirSync(dir).length === 0) rmdirSync(dir);
}

/** Top-level settings whose JSON differs, each with the saved and the current value. */
export function differingSettings(saved: Record<string, unknown>, current: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(saved), ...Object.keys(current)]);
  return [...keys].filter((key) => JSON.stringify(saved[key]) !== JSON.stringify(current[key])).sort()
    .map((key) => `${key} (saved ${JSON.stringify(saved[key]) ?? "nothing"}, now ${JSON.stringify(current[key]) ?? "nothing"})`);
}
