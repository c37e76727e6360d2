// Data parallel over processes on the training loop (src/training/loop.ts `distributed`, src/engine/distributed.ts):
// 2 processes on loopback, each computing 4 rows of a global batch of 8, end where 1 process with the whole batch
// ends (weights, EMA, losses), each rank starting from its own random weights (the loop gives them rank 0's); rank 0
// alone writes the log and checkpoints and calls finish. Killing a rank (SIGKILL) mid-training makes the other fail at
// once with the loop's message, keeping the last checkpoint, and rerunning (through the --nproc launcher) resumes
// both ranks from it to exactly the uninterrupted run's result; under the launcher the kill stops the job with a
// message naming the killed rank.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import { launch, nprocFlag, readTrainingLog, train } from "../../src/training/index.js";
import { runRanks } from "../engine/ranks.js";
import { loopOf, newJob, STEPS } from "./distributed-job.js";

const worker = fileURLToPath(new URL("./distributed-worker.js", import.meta.url));
const root = mkdtempSync(path.join(tmpdir(), "hdb-loop-distributed-"));
after(() => rmSync(root, { recursive: true, force: true }));
const env = { OMP_NUM_THREADS: "1", HDB_AUTO_THREADS: "0", HDB_DISTRIBUTED_TIMEOUT: "30" };

interface Result {
  parameters: number[][] | number[][][];
  ema: unknown[];
  losses: number[];
  error?: string;
}
const read = (out: string, rank: number): Result => JSON.parse(readFileSync(path.join(out, `rank${rank}.json`), "utf8")) as Result;
const checkpoints = (dir: string): string[] => readdirSync(dir).filter((name) => name.startsWith("checkpoint"));

/** The largest absolute difference between two equally shaped nested arrays of numbers. */
function maxDifference(a: unknown, b: unknown): number {
  if (typeof a === "number" && typeof b === "number") return Math.abs(a - b);
  assert.ok(Array.isArray(a) && Array.isArray(b) && a.length === b.length, "shapes differ");
  return Math.max(0, ...a.map((x, i) => maxDifference(x, (b as unknown[])[i])));
}

/**
 * Two processes sum their shards' gradients in another order than one process sums the whole batch's (the mean over 8
 * rows is a mean of two means over 4, and Gloo adds the ranks' parts), so float32 results agree to rounding, not bit
 * for bit. Measured after 20 steps: weights and EMA 1.5e-8, losses 8.9e-8 apart (float32 ulps). 1e-6 leaves room for
 * other orders of summation without hiding a wrong step: training on one shard alone moves the weights by 8e-2,
 * summing the ranks' gradients instead of averaging them by 3e-3.
 */
const TOLERANCE = 1e-6;

test("--nproc is read from the command line and taken out of the ranks' command", () => {
  assert.deepEqual(nprocFlag(["train-lidb", "--nproc", "2", "--steps", "5"]), { nproc: 2, rest: ["train-lidb", "--steps", "5"] });
  assert.deepEqual(nprocFlag(["--nproc=4", "x"]), { nproc: 4, rest: ["x"] });
  assert.equal(nprocFlag(["x"]), null);
  assert.throws(() => nprocFlag(["--nproc", "two"]), /--nproc needs a whole number of processes ≥ 1, got two/);
});

test("2 processes with 4 rows each end where 1 process with all 8 rows ends; a killed rank stops the job and a rerun resumes it", async (t) => {
  const alone = newJob(path.join(root, "alone"));
  await train(loopOf(alone));
  const reference = alone.result();

  const straight = { dir: path.join(root, "straight"), out: mkdtempSync(path.join(root, "out-")) };
  const ends = await runRanks(worker, [straight.dir, straight.out], { ranks: [0, 1], env });
  for (const end of ends) assert.equal(end.code, 0, `rank ${end.rank}: ${end.signal ?? ""} ${end.stderr}`);
  const [rank0, rank1] = [read(straight.out, 0), read(straight.out, 1)];
  assert.equal(rank0.error, undefined, rank0.error);
  assert.deepEqual(rank1, rank0, "every rank takes the same steps");
  const differences = { parameters: maxDifference(rank0.parameters, reference.parameters), ema: maxDifference(rank0.ema, reference.ema), losses: maxDifference(rank0.losses, reference.losses) };
  t.diagnostic(`2 processes vs 1: largest differences ${JSON.stringify(differences)}`);
  for (const [what, difference] of Object.entries(differences)) assert.ok(difference <= TOLERANCE, `${what} differ by ${difference}`);
  assert.ok(maxDifference(reference.parameters, newJob(path.join(root, "unused")).result().parameters) > 100 * TOLERANCE, "training moves the weights");
  // Rank 0 alone writes: one log line per step, the final checkpoint, the result.
  assert.deepEqual(readTrainingLog(path.join(straight.dir, "log.jsonl")).steps.map((line) => line.step), Array.from({ length: STEPS }, (_, i) => i + 1));
  assert.equal(readFileSync(path.join(straight.dir, "log.jsonl"), "utf8").trim().split("\n").length, STEPS + 2, "started, 20 steps, finished: once");
  assert.deepEqual(checkpoints(straight.dir), [`checkpoint-${STEPS}`]);
  assert.deepEqual(readdirSync(straight.out).filter((name) => name.startsWith("finished")), ["finished-rank0"]);

  // Rank 1 is killed before step 11: rank 0 fails that step at once with the loop's message; checkpoint-8 is kept.
  const killed = { dir: path.join(root, "killed"), out: mkdtempSync(path.join(root, "out-")) };
  const started = Date.now();
  const broken = await runRanks(worker, [killed.dir, killed.out, "--die-at", "11"], { ranks: [0, 1], env });
  assert.equal(broken[1]!.signal, "SIGKILL");
  assert.equal(broken[0]!.code, 1);
  assert.ok(Date.now() - started < 25_000, "the survivor fails before its 30 s timeout");
  assert.match(read(killed.out, 0).error!, /^fit: step 11 could not be shared with the other ranks; the last checkpoint is kept: rerun the same command to resume from it\. allreduce \(sum\) of \d+ tensors? failed on rank 0 of 2: /);
  assert.deepEqual(checkpoints(killed.dir), ["checkpoint-8"]);

  // The rerun, through the --nproc launcher: both ranks resume from checkpoint-8 and end exactly where the straight run ended.
  await launch({ nproc: 2, command: [process.execPath, worker, killed.dir, killed.out], env: { ...process.env, ...env } });
  assert.deepEqual(read(killed.out, 0), rank0);
  assert.deepEqual(read(killed.out, 1), rank0);
  assert.deepEqual(readTrainingLog(path.join(killed.dir, "log.jsonl")).events.map((e) => `${e.event}@${e.step}`), ["started@0", "resumed@8", "finished@20"]);
});

test("under the launcher, a killed rank stops the job with a message naming it", async () => {
  const dir = path.join(root, "launched");
  const out = mkdtempSync(path.join(root, "out-"));
  await assert.rejects(launch({ nproc: 2, command: [process.execPath, worker, dir, out, "--die-at", "3"], env: { ...process.env, ...env }, graceSeconds: 5 }),
    /^Error: the job stopped: rank 1 \(pid \d+\) was killed by SIGKILL; then rank 0 \(pid \d+\) (was killed by SIGTERM|exited with code 1)\. Rerun the same command to resume every rank from the last checkpoint\.$/);
  assert.ok(!existsSync(path.join(out, "finished-rank0")));
});
