// The device queue (src/server/queue.ts) without the engine: places in line, the bound, cancelling, and a worker
// thread that dies in the middle of a job — the job fails with the reason, a fresh worker takes the next one.
import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import type { GenerateSpec } from "../../src/server/protocol.js";
import { DeviceQueue, QueueFullError } from "../../src/server/queue.js";

const job = (id: string, prompt = "a face"): GenerateSpec => ({
  kind: "generate", jobId: id, outDir: "/nonexistent", lidb: null, weight: 1, prompt, negativePrompt: "", seed: 0, steps: 1, guidance: 1, images: 1,
});

test("a worker that dies fails its job with the reason and is replaced; places in line, the bound and cancelling", async () => {
  const queue = new DeviceQueue({ engine: { model: "-", hypernetwork: "-", device: "cpu" }, maxWaiting: 2, workerUrl: new URL("./fixtures/crash-worker.js", import.meta.url) });
  const events: string[] = [];
  for (const name of ["started", "done", "failed"]) queue.on(name, (id: string, extra: unknown) => events.push(`${name} ${id}${name === "failed" ? `: ${String(extra)}` : ""}`));
  try {
    // Before the worker is ready everything waits, in order, up to the bound.
    assert.equal(queue.enqueue(job("a", "crash")), 1);
    assert.equal(queue.enqueue(job("b")), 2);
    assert.throws(() => queue.enqueue(job("c")), QueueFullError);
    assert.equal(queue.enqueue(job("c"), { force: true }), 3, "jobs accepted before a restart skip the bound");
    assert.equal(queue.cancel("c"), true);
    assert.equal(queue.cancel("c"), false);
    assert.deepEqual(queue.waiting, ["a", "b"]);
    queue.start();
    while (!events.includes("done b")) await once(queue, "done");
    assert.deepEqual(events, ["started a", "failed a: the engine worker stopped (exit code 3) while running this job", "started b", "done b"]);
    assert.equal(queue.ready, 1, "a fresh worker took over");
    assert.equal(queue.position("b"), null);
  } finally {
    await queue.close();
  }
});
