// The engine works inside a worker_threads Worker, and engine work there does not block the main thread.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Worker } from "node:worker_threads";

test("a Worker trains with the engine while the main event loop keeps ticking", async () => {
  const worker = new Worker(new URL("./fixtures/worker-job.js", import.meta.url), { workerData: { seconds: 1.5 } });
  let ticks = 0;
  const started = Date.now();
  const timer = setInterval(() => ticks++, 10);
  const result = await new Promise<{ loss0: number; loss1: number; tensorsAtEnd: number; threads: number }>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  clearInterval(timer);
  const elapsed = Date.now() - started;
  await worker.terminate();
  assert.ok(result.loss1 < result.loss0, `loss should fall in the worker: ${result.loss0} -> ${result.loss1}`);
  // The main thread is free: at least half of the 10 ms ticks it could have run did run.
  assert.ok(ticks >= (elapsed / 10) * 0.5, `main thread ticked ${ticks} times in ${elapsed} ms`);
});

test("several workers load the addon side by side, each with its own tensor table", async () => {
  const runs = [0, 1].map(() => new Worker(new URL("./fixtures/worker-job.js", import.meta.url), { workerData: { seconds: 0.3 } }));
  const results = await Promise.all(runs.map((w) => new Promise<{ tensorsAtEnd: number }>((resolve, reject) => {
    w.once("message", resolve);
    w.once("error", reject);
  })));
  await Promise.all(runs.map((w) => w.terminate()));
  for (const r of results) assert.ok(r.tensorsAtEnd < 50);
});
