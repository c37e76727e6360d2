// Process groups on libtorch's c10d (src/engine/distributed.ts) across real processes on loopback: allreduce (sum and
// mean, several dtypes, a non-contiguous tensor, more than one bucket), broadcast into a parameter, barrier, the DDP
// gradient average; a rank killed mid-job makes the survivor's next collective fail at once with a message naming the
// operation and the rank; one that stops answering makes it fail at the group's timeout; a rank that never comes
// makes the rendezvous fail at the timeout; torchrun --no-python launches the same worker.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import { distributedEnvironment } from "../../src/engine/index.js";
import { freePort } from "../../src/training/launch.js";
import { skipOutsideCI } from "../prerequisites.js";
import { runRanks } from "./ranks.js";

const worker = fileURLToPath(new URL("./distributed-worker.js", import.meta.url));
const root = mkdtempSync(path.join(tmpdir(), "hdb-distributed-"));
after(() => rmSync(root, { recursive: true, force: true }));
const read = (dir: string, rank: number): Record<string, unknown> => JSON.parse(readFileSync(path.join(dir, `rank${rank}.json`), "utf8")) as Record<string, unknown>;

/** What every rank of the "collectives" scenario must see (ranks 0 and 1 contribute factors 1 and 2). */
function checkCollectives(dir: string): void {
  for (const rank of [0, 1]) {
    const r = read(dir, rank);
    assert.equal(r["message"], undefined, `rank ${rank} failed: ${String(r["message"])}`);
    assert.deepEqual([r["rank"], r["worldSize"], r["localRank"]], [rank, 2, rank]);
    assert.deepEqual(r["a"], [[3, 6, 9], [12, 15, 18]]);
    assert.deepEqual(r["b"], [10]);
    assert.deepEqual(r["c"], [[0, 9], [3, 12], [6, 15]]);
    assert.deepEqual(r["big"], [[3, 3], [6, 6]]);
    assert.deepEqual(r["mean"], [1.5, 3]);
    assert.deepEqual(r["p"], [1, 1], "rank 1's values");
    assert.equal(r["pRequiresGrad"], true);
    assert.deepEqual(r["w"], [1.5, 3]);
    assert.deepEqual(r["u"], [2], "zeros where a rank had no gradient");
    assert.equal(r["n"], true, "no gradient on any rank stays none");
  }
}

test("the launch environment is torchrun's, and an incomplete one is named", () => {
  assert.equal(distributedEnvironment({}), null);
  assert.deepEqual(distributedEnvironment({ RANK: "1", WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "29500", TORCHELASTIC_USE_AGENT_STORE: "True" }),
    { rank: 1, worldSize: 2, localRank: 1, masterAddr: "127.0.0.1", masterPort: 29500, agentStore: true });
  assert.throws(() => distributedEnvironment({ WORLD_SIZE: "2", RANK: "0" }), /WORLD_SIZE=2 is set but MASTER_ADDR, MASTER_PORT not/);
  assert.throws(() => distributedEnvironment({ WORLD_SIZE: "2", RANK: "2", MASTER_ADDR: "x", MASTER_PORT: "1" }), /RANK=2 is not below WORLD_SIZE=2/);
});

test("allreduce, broadcast, barrier and the gradient average across 2 processes", async () => {
  const dir = mkdtempSync(path.join(root, "collectives-"));
  const ends = await runRanks(worker, ["collectives", dir], { ranks: [0, 1] });
  for (const end of ends) assert.equal(end.code, 0, `rank ${end.rank}: ${end.signal ?? ""} ${end.stderr}`);
  checkCollectives(dir);
});

test("a rank killed mid-job makes the other's next collective fail at once, naming the operation and the rank", async () => {
  const dir = mkdtempSync(path.join(root, "die-"));
  const ends = await runRanks(worker, ["die", dir], { ranks: [0, 1], env: { HDB_DISTRIBUTED_TIMEOUT: "60" } });
  assert.equal(ends[1]!.signal, "SIGKILL");
  assert.equal(ends[0]!.code, 0, ends[0]!.stderr);
  const survivor = read(dir, 0);
  assert.equal(survivor["code"], "HDB_DISTRIBUTED");
  assert.match(String(survivor["message"]), /^allreduce \(sum\) of 1 tensor failed on rank 0 of 2: .*(another rank has died, or has not reached the same collective within the group's 60 s timeout\))$/s);
  assert.ok(Number(survivor["seconds"]) < 30, `it failed after ${String(survivor["seconds"])} s, not at once`);
});

test("a rank that stops answering makes the other's collective fail at the group's timeout", async () => {
  const dir = mkdtempSync(path.join(root, "stall-"));
  await runRanks(worker, ["stall", dir], { ranks: [0, 1], env: { HDB_DISTRIBUTED_TIMEOUT: "2" } });
  const survivor = read(dir, 0);
  assert.equal(survivor["code"], "HDB_DISTRIBUTED", String(survivor["message"]));
  assert.match(String(survivor["message"]), /^allreduce \(sum\) of 1 tensor failed on rank 0 of 2: .*within the group's 2 s timeout\)$/s);
  assert.ok(Number(survivor["seconds"]) >= 1.5 && Number(survivor["seconds"]) < 7, `it failed after ${String(survivor["seconds"])} s`);
});

test("a rank that never comes makes the rendezvous fail at the timeout", async () => {
  const dir = mkdtempSync(path.join(root, "alone-"));
  const ends = await runRanks(worker, ["collectives", dir], { ranks: [0], worldSize: 2, env: { HDB_DISTRIBUTED_TIMEOUT: "2" } });
  assert.equal(ends[0]!.code, 1);
  const r = read(dir, 0);
  assert.equal(r["code"], "HDB_DISTRIBUTED");
  assert.match(String(r["message"]), /^rank 0 of 2: the rendezvous at 127\.0\.0\.1:\d+ failed within the 2 s timeout: .*1\/2 clients joined/s);
});

const torchrun = fileURLToPath(new URL("../../../.venv/bin/torchrun", import.meta.url));
test("torchrun --no-python launches the ranks", { skip: skipOutsideCI(!existsSync(torchrun) && `${torchrun} is missing (scripts/setup.sh installs torch, which brings it)`) }, async () => {
  const dir = mkdtempSync(path.join(root, "torchrun-"));
  const result = spawnSync(torchrun, [
    "--no-python", "--nnodes", "1", "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", String(await freePort()),
    process.execPath, worker, "collectives", dir,
  ], { env: { ...process.env, OMP_NUM_THREADS: "1", HDB_AUTO_THREADS: "0", HDB_DISTRIBUTED_TIMEOUT: "30" }, encoding: "utf8", timeout: 180_000 });
  assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  checkCollectives(dir);
});
