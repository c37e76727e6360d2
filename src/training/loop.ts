/**
 * The one resumable training loop (nanoGPT's train.py is the model: the whole loop on one screen).
 *
 * It trains a queue of jobs (job.ts), up to `jobsPerStep` at once: one for a model (a base-model stage, a metric
 * network, next the hypernetwork), many for DreamBooth's identities, whose samples share one forward and
 * backward pass. Each step: seed every running job's generator from (stream, seed, step), let the trainer run
 * the forward and backward (`step`: the gradients land in each job's parameters), then for each job clip, step
 * its optimiser, schedule and EMA, log a JSONL line, checkpoint every `checkpointEvery` steps, and when it has
 * taken its steps hand it to `finish` (which saves its result) and start the next. A job found with a
 * checkpoint resumes from it (checkpoint.ts), bit for bit where an uninterrupted run would be.
 *
 * Data parallel over processes (`distributed`, engine/distributed.ts): every rank runs this loop on the same jobs,
 * and each step's global batch is shared out. Every rank seeds the job's generator alike (the per-step seed is
 * not the rank's), so the step draws the whole global batch's randomness alike and computes its `shard`'s rows
 * of it, `shardRange(globalBatch, shard)`; the loop then averages the gradients and the losses across the ranks
 * before the update, so N ranks with batch B take the steps one process with batch N·B takes (to float summation
 * order). Rank 0 alone writes checkpoints and the log, validates and saves results, and reports progress; every
 * rank resumes from the same (rank 0's) checkpoint folder, and a run that starts afresh starts from rank 0's
 * weights.
 */
import path from "node:path";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { averageGradients, broadcastParameters, noGrad, tensor, type ProcessGroup } from "../engine/index.js";
import type { GradScaler } from "../engine/optim/index.js";
import { removeStaleTemporaries } from "../util/atomic.js";
import { streamId } from "../util/hash.js";
import type { ProgressReporter } from "../util/progress.js";
import { latestCheckpoint, removeCheckpoints, resumeJob, saveCheckpoint } from "./checkpoint.js";
import { NonFiniteStepError, type TrainingJob } from "./job.js";
import { TrainingLog } from "./log.js";

export interface LoopHooks {
  /** Told the steps done over all jobs and the loss as the loop starts and after every step; the CLI draws bars. */
  progress?: ProgressReporter;
  /** Informational lines (resuming, checkpoints, finished jobs). */
  log?: (line: string) => void;
  /** Stop after this many steps of this call, leaving the folders as a kill at that point would (tests). */
  stopAfterSteps?: number;
}

/** The part of each step's global batch this process computes: rank `rank` of `worldSize` (0 of 1 alone). */
export interface Shard {
  rank: number;
  worldSize: number;
}

/** Rows [start, end) of a global batch of `size` that `shard` computes: equal contiguous parts. */
export function shardRange(size: number, shard: Shard): [number, number] {
  if (size % shard.worldSize !== 0) throw new Error(`a global batch of ${size} does not split into ${shard.worldSize} equal shards`);
  const per = size / shard.worldSize;
  return [shard.rank * per, (shard.rank + 1) * per];
}

export interface TrainingLoop<J extends TrainingJob> {
  /** Names the progress bar and, unless `stream` is given, the per-step random stream ("vae", "identity-network"). */
  label: string;
  /** Names the per-step random stream (default: the label). */
  stream?: string;
  /** The jobs, in order; an async iterable makes each one only when a slot frees (DreamBooth's thousands). */
  jobs: readonly J[] | AsyncIterable<J>;
  /** Steps of all jobs together, for the progress bar (default: the sum over an array of jobs). */
  totalSteps?: number;
  /** Jobs trained together in one step (default 1). */
  jobsPerStep?: number;
  /** Checkpoint each running job every N of its steps (0: never). */
  checkpointEvery: number;
  /** Resume jobs from their checkpoints (default true); when false, a job with one is an error. */
  resume?: boolean;
  /** Checkpoint each job at its last step and keep it (a later stage starts from it); else remove them when done. */
  keepFinalCheckpoint?: boolean;
  /** The JSONL log (log.ts), if any. */
  logFile?: string;
  /** fp16 loss scaling, shared by the jobs of a step. */
  scaler?: GradScaler | null;
  /** Data parallel over processes (see the file comment); absent: this process alone. */
  distributed?: ProcessGroup;
  /**
   * Forward and backward for the running jobs on the shard's rows of the global batch (drawing from their generators);
   * returns each one's loss (its mean over the shard).
   */
  step: (jobs: readonly J[], shard: Shard) => number[];
  /** After a job's step (validation images), and once it has taken all its steps (save its result); rank 0 only. */
  afterStep?: (job: J) => void | Promise<void>;
  finish?: (job: J) => void | Promise<void>;
  /** Named parts of the job's last loss, added to its log line (the hypernetwork's diffusion and weight terms). */
  logTerms?: (job: J) => Record<string, number>;
  hooks?: LoopHooks;
}

export interface LoopResult {
  /** True when `stopAfterSteps` ended the call before every job finished. */
  stopped: boolean;
  /** Loop steps taken by this call. */
  taken: number;
}

export async function train<J extends TrainingJob>(loop: TrainingLoop<J>): Promise<LoopResult> {
  const { label, checkpointEvery, distributed = null } = loop;
  if (!Number.isInteger(checkpointEvery) || checkpointEvery < 0) throw new Error(`${label}: checkpointEvery must be an integer ≥ 0, got ${checkpointEvery}`);
  const lead = distributed === null || distributed.rank === 0;  // writes checkpoints, the log and results
  const hooks: LoopHooks = lead ? loop.hooks ?? {} : { stopAfterSteps: loop.hooks?.stopAfterSteps };
  const stream = streamId(loop.stream ?? label);
  const log = loop.logFile === undefined || !lead ? null : new TrainingLog(loop.logFile);
  const pending = Symbol.asyncIterator in loop.jobs ? loop.jobs[Symbol.asyncIterator]() : arrayIterator(loop.jobs);
  const total = loop.totalSteps ?? (Array.isArray(loop.jobs) ? (loop.jobs as readonly J[]).reduce((sum, job) => sum + job.steps, 0) : 0);
  const running: J[] = [];
  let more = true;
  let done = 0;
  let resumed = 0;
  let taken = 0;
  hooks.progress?.({ label, done, total, start: 0 });
  while (more || running.length > 0) {
    while (more && running.length < (loop.jobsPerStep ?? 1)) {
      const next = await pending.next();
      if (next.done) {
        more = false;
        break;
      }
      const job = next.value;
      const from = start(job, loop, hooks, log);
      done += from;
      resumed += from;
      if (job.done) await complete(job, loop, lead, log);
      else running.push(job);
    }
    if (running.length === 0) continue;
    if (hooks.stopAfterSteps !== undefined && taken >= hooks.stopAfterSteps) return { stopped: true, taken };
    const started = performance.now();
    const losses = stepJobs(running, stream, loop.step, loop.scaler ?? null, distributed);
    const seconds = (performance.now() - started) / 1000;
    for (const [i, job] of running.entries()) {
      job.seconds += seconds;
      log?.write({ job: job.name, step: job.step, loss: losses[i]!, lr: job.learningRate, seconds, ...(loop.logTerms ? { terms: loop.logTerms(job) } : {}) });
    }
    taken += 1;
    done += running.length;
    for (const job of [...running]) {
      if (lead) await loop.afterStep?.(job);
      if (job.done) {
        running.splice(running.indexOf(job), 1);
        await complete(job, loop, lead, log);
      } else if (lead && checkpointEvery > 0 && job.step % checkpointEvery === 0) saveCheckpoint(job);
    }
    const one = running.length === 1 ? running[0]! : null;
    hooks.progress?.({ label, done, total, start: resumed, ...(one ? { loss: one.recentLoss(50) } : { note: `${running.length} jobs` }) });
    if (taken % 10 === 0) await yieldToEventLoop();
  }
  return { stopped: false, taken };
}

/**
 * One optimisation step of the running jobs, the heart of the loop (also what a test or a caller that drives
 * its own schedule takes): seed each job's generator for its step, run the trainer's forward and backward on this
 * rank's shard, average gradients and losses across the ranks, and update each job with its loss (a non-finite
 * loss stops training, keeping the last checkpoint).
 */
export function stepJobs<J extends TrainingJob>(
  jobs: readonly J[], stream: number, step: (jobs: readonly J[], shard: Shard) => number[], scaler: GradScaler | null,
  distributed: ProcessGroup | null = null,
): number[] {
  for (const job of jobs) job.seedStep(stream);
  let losses = step(jobs, distributed ?? { rank: 0, worldSize: 1 });
  if (losses.length !== jobs.length) throw new Error(`the step returned ${losses.length} losses for ${jobs.length} jobs`);
  if (distributed !== null) losses = averageAcrossRanks(jobs, losses, distributed);
  for (const [i, job] of jobs.entries()) {
    const loss = losses[i]!;
    try {
      if (!Number.isFinite(loss)) throw new NonFiniteStepError(`${job.name}: the loss is ${loss} at step ${job.step + 1}`);
      job.update(loss, scaler);
    } catch (error) {
      if (error instanceof NonFiniteStepError) throw new NonFiniteStepError(`${error.message}; training stopped: ${afterDivergence(job)}`);
      throw error;
    }
  }
  scaler?.update();
  return losses;
}

/**
 * What is left after a job's step went non-finite, and what to do. Every checkpoint holds finite weights (the job
 * refuses non-finite ones before the loop saves), but the steps are seeded by their number and a resume must keep
 * the settings, so resuming would replay the same divergence: the way on is a lower learning rate from the start.
 */
function afterDivergence(job: TrainingJob): string {
  const folder = latestCheckpoint(job.dir);
  return folder === null
    ? "no checkpoint was saved; train again with a lower learning rate"
    : `the last checkpoint, ${folder}, holds finite weights, but a resume would replay the same steps: delete ${job.dir} and train again with a lower learning rate`;
}

/**
 * The gradients of the jobs' parameters and the jobs' losses averaged across the ranks, so that every rank updates
 * with the global batch's gradient and records (and checks) the same loss. A rank that died fails this step here.
 */
function averageAcrossRanks(jobs: readonly TrainingJob[], losses: number[], group: ProcessGroup): number[] {
  try {
    averageGradients(jobs.flatMap((job) => job.options.parameters), group);
    using mean = tensor(losses, { dtype: "float64" });
    group.allReduce([mean], "mean");
    return mean.toArray() as number[];
  } catch (error) {
    throw new Error(`${jobs.map((job) => job.name).join(", ")}: step ${jobs[0]!.step + 1} could not be shared with the other ranks; ` +
      `the last checkpoint is kept: rerun the same command to resume from it. ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Resumes a job from its checkpoint (when there is one and resuming is allowed), or, distributed, gives a fresh one
 * rank 0's weights; returns the step it is at.
 */
function start<J extends TrainingJob>(job: J, loop: TrainingLoop<J>, hooks: LoopHooks, log: TrainingLog | null): number {
  // A kill mid-write leaves the atomic write's temporary file; the lead rank clears those of dead writers.
  if (!loop.distributed || loop.distributed.rank === 0) {
    for (const folder of [job.dir, path.dirname(job.dir)]) {
      for (const name of removeStaleTemporaries(folder)) hooks.log?.(`${job.name}: removed ${path.join(folder, name)}, left by a killed write`);
    }
  }
  if (loop.resume === false && latestCheckpoint(job.dir) !== null) {
    throw new Error(`${job.dir} holds a checkpoint of ${job.name}: resume it, or choose another folder`);
  }
  const folder = resumeJob(job);
  if (folder === null && loop.distributed) {
    // By name, so every rank sends the same list; loaded back, as `tensors` may give copies of the trained state.
    const state = job.options.tensors();
    broadcastParameters([...[...state.keys()].sort().map((name) => state.get(name)!), ...(job.options.ema?.shadow ?? [])], loop.distributed);
    noGrad(() => job.options.load(state));
  }
  if (folder !== null) hooks.log?.(`${job.name}: resuming from ${folder} (step ${job.step} of ${job.steps})`);
  log?.write({ job: job.name, event: folder !== null ? "resumed" : "started", step: job.step });
  return job.step;
}

/** A job that has taken its steps: final checkpoint (when kept), its result, then its checkpoints removed (rank 0). */
async function complete<J extends TrainingJob>(job: J, loop: TrainingLoop<J>, lead: boolean, log: TrainingLog | null): Promise<void> {
  if (!lead) return;
  if (loop.keepFinalCheckpoint && latestCheckpoint(job.dir) !== path.join(job.dir, `checkpoint-${job.step}`)) saveCheckpoint(job);
  await loop.finish?.(job);
  if (!loop.keepFinalCheckpoint) removeCheckpoints(job.dir);
  log?.write({ job: job.name, event: "finished", step: job.step, loss: job.recentLoss() });
}

async function* arrayIterator<J>(jobs: Iterable<J>): AsyncIterator<J> {
  yield* jobs;
}
