// A restart loses no accepted job (issue 19): `hdb serve` is killed with SIGKILL in the middle of a personalisation
// (a generation waiting behind it), started again on the same data folder, and both jobs complete; the model's files
// are whole, and the personalisation's tensors are bit for bit those of an uninterrupted `hdb personalize` run with
// the same settings (the job ran again from its stored, re-encoded photo, not from a torn state).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { generate, json, personalize, repoRoot, safetensorsHeader, sampleFace, startServe, temporaryDir, waitForJob, type Job } from "./helpers.js";

/** The tensors' bytes of a .safetensors file, by name (the metadata, which names paths, left out). */
function tensorBytes(bytes: Buffer): Map<string, Buffer> {
  const header = safetensorsHeader(bytes);
  const start = 8 + Number(bytes.readBigUInt64LE(0));
  return new Map(Object.entries(header).filter(([k]) => k !== "__metadata__").map(([k, v]) => [k, bytes.subarray(start + v.data_offsets[0], start + v.data_offsets[1])]));
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

test("kill -9 mid-personalisation: after a restart the job and the one queued behind it complete, files whole", { timeout: 240_000 }, async () => {
  const data = temporaryDir("serve-restart");
  const steps = 150;
  let server = await startServe(data);
  try {
    const job = await personalize(server.url, [sampleFace], { steps: String(steps), seed: "1" });
    assert.equal(job.status, 202);
    const behind = await generate(server.url, { prompt: "a face as an oil painting", seed: 5, steps: 8 });
    assert.equal(behind.status, 202);
    // Wait until the fine-tuning is well under way, then kill the server outright.
    for (const until = Date.now() + 120_000; ;) {
      const { body } = await json<Job>(`${server.url}/jobs/${job.body.id}`);
      if (body.progress && body.progress.done >= 10) break;
      assert.ok(body.status === "queued" || body.status === "running", `job ${body.status}: ${body.error}`);
      assert.ok(Date.now() < until, "the personalisation never got going");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await server.kill9();
    const db = new Database(path.join(data, "hdb.sqlite"), { readonly: true });
    const rows = db.prepare("SELECT id, status FROM jobs ORDER BY seq").all() as { id: string; status: string }[];
    db.close();
    assert.deepEqual(rows, [{ id: job.body.id, status: "running" }, { id: behind.body.id, status: "queued" }], "the kill landed mid-job");

    server = await startServe(data);
    const done = await waitForJob(server.url, job.body.id);
    assert.equal(done.status, "succeeded", done.error ?? "");
    assert.equal(done.attempts, 2, "run again after the restart");
    const generation = await waitForJob(server.url, behind.body.id);
    assert.equal(generation.status, "succeeded", generation.error ?? "");
    assert.equal((await fetch(`${server.url}/jobs/${behind.body.id}/images/0`)).status, 200);

    const modelId = (done.result as { modelId: string }).modelId;
    const modelDir = path.join(data, "models", modelId);
    assert.deepEqual(readdirSync(modelDir).sort(), ["person.kohya.safetensors", "person.lidb.safetensors", "personalize.json", "pytorch_lora_weights.safetensors", "reference.png"]);
    const served = Buffer.from(await (await fetch(`${server.url}/models/${modelId}/lidb`)).arrayBuffer());
    assert.equal(served.length, statSync(path.join(modelDir, "person.lidb.safetensors")).size);
    for (const name of ["person.kohya.safetensors", "pytorch_lora_weights.safetensors"]) safetensorsHeader(readFileSync(path.join(modelDir, name)));
    assert.deepEqual(readdirSync(path.join(data, "staging")), []);
    assert.deepEqual(readdirSync(path.join(data, "inputs")), [], "inputs are removed once the model is published");
    assert.deepEqual(walk(data).filter((f) => f.endsWith(".tmp")), [], "no half-written file anywhere");

    // The same person, uninterrupted, through the CLI: the same tensors, bit for bit.
    const out = temporaryDir("serve-restart-cli");
    const cli = spawnSync(process.execPath, [path.join(repoRoot, "dist", "src", "cli", "hdb.js"), "personalize", "--image", sampleFace, "--out", out, "--steps", String(steps), "--seed", "1", "--threads", "1", "--json"], {
      cwd: repoRoot, encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1", HDB_AUTO_THREADS: "0" }, timeout: 120_000,
    });
    assert.equal(cli.status, 0, cli.stderr);
    const expected = tensorBytes(readFileSync(path.join(out, "person.lidb.safetensors")));
    const actual = tensorBytes(served);
    assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
    for (const [name, bytes] of expected) assert.ok(actual.get(name)!.equals(bytes), `${name} differs from the uninterrupted run`);
    rmSync(out, { recursive: true, force: true });
  } finally {
    await server.stop();
    rmSync(data, { recursive: true, force: true });
  }
});
