// Scale-out (issue 19): `hdb serve --redis` puts jobs on a BullMQ queue in a real redis-server (Debian's, started
// here on loopback and stopped at the end) and two worker processes (`hdb serve --worker`) run them: two
// personalisations run side by side on different workers, a generation uses a person's LiDB file carried through
// Redis, a job that finishes while the API server is stopped is collected from Redis when it starts again, and a job
// whose worker is killed (kill -9) goes to the other worker once its lock lapses.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { test } from "node:test";
import { skipOutsideCI } from "../prerequisites.js";
import { generate, json, personalize, repoRoot, safetensorsHeader, sampleFace, startServe, temporaryDir, waitForJob, type Job } from "./helpers.js";

const REDIS = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((file) => existsSync(file));
const noRedis = REDIS ? false : "no redis-server (apt-get install redis-server)";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts a child and resolves once its output matches `ready`. */
async function startUntil(command: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; output: () => string; stop: () => Promise<void> }> {
  const child = spawn(command, args, { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not get ready in 60 s: ${output}`)), 60_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${command} exited early: ${output}`));
    });
  });
  return {
    child, output: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

test("BullMQ on a real redis-server: two worker processes share the jobs; a restart of the API server collects what finished; a killed worker's job goes to the other", { timeout: 240_000, skip: skipOutsideCI(noRedis) }, async () => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const redis = await startUntil(REDIS!, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], /Ready to accept connections/);
  const data = temporaryDir("serve-redis");
  const hdb = path.join(repoRoot, "dist", "src", "cli", "hdb.js");
  const env = { ...process.env, OMP_NUM_THREADS: "1", HDB_AUTO_THREADS: "0" };
  const workers: Awaited<ReturnType<typeof startUntil>>[] = [];
  let server: Awaited<ReturnType<typeof startServe>> | null = null;
  try {
    server = await startServe(data, ["--redis", url]);
    for (let i = 0; i < 2; i++) workers.push(await startUntil(process.execPath, [hdb, "serve", "--worker", "--redis", url, "--threads", "1", "--worker-lock", "5"], /worker ready/, env));
    for (const until = Date.now() + 30_000; (await json<{ devices: number }>(`${server.url}/health`)).body.devices < 2;) {
      assert.ok(Date.now() < until, "the API server never saw both workers");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    // Two personalisations at once: one worker each.
    const a = await personalize(server.url, [sampleFace], { steps: "60", seed: "1" });
    const b = await personalize(server.url, [sampleFace], { steps: "20", seed: "2" });
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    const [doneA, doneB] = await Promise.all([waitForJob(server.url, a.body.id), waitForJob(server.url, b.body.id)]);
    assert.equal(doneA.status, "succeeded", doneA.error ?? "");
    assert.equal(doneB.status, "succeeded", doneB.error ?? "");
    const runners = new Set([doneA, doneB].map((j) => (j.result as { runner: string }).runner));
    assert.equal(runners.size, 2, `both workers ran a job: ${[...runners].join(", ")}`);
    const modelA = (doneA.result as { modelId: string }).modelId;
    for (const kind of ["lidb", "lora-diffusers", "lora-kohya"]) {
      const response = await fetch(`${server.url}/models/${modelA}/${kind}`);
      assert.equal(response.status, 200);
      safetensorsHeader(new Uint8Array(await response.arrayBuffer()));
    }

    // A generation of that person: the LiDB file travels to a worker through Redis, the images come back.
    const g = await generate(server.url, { model: modelA, prompt: "a sks face as a pencil sketch", steps: 10, images: 2 });
    const doneG = await waitForJob(server.url, g.body.id);
    assert.equal(doneG.status, "succeeded", doneG.error ?? "");
    assert.equal((await fetch(`${server.url}/jobs/${g.body.id}/images/1`)).status, 200);

    // The API server stops while a worker runs a job, and starts again: the job is collected from Redis.
    const c = await personalize(server.url, [sampleFace], { steps: "80", seed: "3" });
    for (const until = Date.now() + 60_000; (await json<Job>(`${server.url}/jobs/${c.body.id}`)).body.status !== "running";) {
      assert.ok(Date.now() < until, "the job never started");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(await server.stop(), 0, server.stderr());
    // Let the worker finish it while no API server listens.
    for (const until = Date.now() + 120_000; !workers.some((w) => w.output().includes(`personalize ${c.body.id} done`));) {
      assert.ok(Date.now() < until, "no worker finished the job");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    server = await startServe(data, ["--redis", url]);
    const doneC = await waitForJob(server.url, c.body.id);
    assert.equal(doneC.status, "succeeded", doneC.error ?? "");
    assert.equal((await fetch(`${server.url}/models/${(doneC.result as { modelId: string }).modelId}/lidb`)).status, 200);

    // A worker killed (kill -9) in the middle of a job: its lock lapses and the other worker runs the job.
    const d = await personalize(server.url, [sampleFace], { steps: "150", seed: "4" });
    let victim = -1;
    for (const until = Date.now() + 60_000; victim < 0;) {
      victim = workers.findIndex((w) => w.output().includes(`personalize ${d.body.id} started`));
      assert.ok(Date.now() < until, "no worker started the job");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    workers[victim]!.child.kill("SIGKILL");
    await workers[victim]!.stop();
    const doneD = await waitForJob(server.url, d.body.id, 180_000);
    assert.equal(doneD.status, "succeeded", doneD.error ?? "");
    assert.ok(workers[1 - victim]!.output().includes(`personalize ${d.body.id} done`), "the surviving worker finished it");
    safetensorsHeader(new Uint8Array(await (await fetch(`${server.url}/models/${(doneD.result as { modelId: string }).modelId}/lidb`)).arrayBuffer()));
  } finally {
    await server?.stop();
    for (const worker of workers) await worker.stop();
    await redis.stop();
    rmSync(data, { recursive: true, force: true });
  }
});
