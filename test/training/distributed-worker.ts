// One rank of test/training/distributed.test.ts: trains the shared regression job on the training loop, data parallel
// over the launch's process group, and writes <out>/rank<r>.json (weights, EMA, losses, or the error).
//   node distributed-worker.js <checkpoint dir> <out> [--die-at <step>]   (rank 1 SIGKILLs itself before that step)
import { writeFileSync } from "node:fs";
import path from "node:path";
import { initProcessGroup } from "../../src/engine/index.js";
import { train } from "../../src/training/index.js";
import { loopOf, newJob } from "./distributed-job.js";

const [dir, out, flag, value] = process.argv.slice(2);
const dieAt = flag === "--die-at" ? Number(value) : undefined;
const rank = Number(process.env["RANK"]);
const write = (result: unknown): void => writeFileSync(path.join(out!, `rank${rank}.json`), JSON.stringify(result));

try {
  const group = initProcessGroup();
  const job = newJob(dir!, 1000 * rank);
  await train(loopOf(job, group, {
    step: (jobs, shard) => {
      if (rank === 1 && jobs[0]!.step + 1 === dieAt) process.kill(process.pid, "SIGKILL");
      return jobs.map((j) => j.loss(shard));
    },
    finish: () => writeFileSync(path.join(out!, `finished-rank${rank}`), ""),
  }));
  write(job.result());
  group.destroy();
} catch (error) {
  write({ error: (error as Error).message });
  process.exitCode = 1;
}
