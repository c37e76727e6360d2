// `hdb serve` (issue 19) as a client sees it, on the bundled mini-world model, over real HTTP on loopback: the
// OpenAPI document; three jobs queued at once with their places in line; a personalisation watched through its
// server-sent events (progress with ETA) to its model; EXIF stripped from an uploaded JPEG; generations from the
// person and from the base; the three downloads (LiDB, diffusers and kohya LoRA) whole and as recorded; list,
// cancel, delete; the /health p99 while the engine works (bench/results/server-health.json); the token, the
// loopback rule, CORS off, the rate limit and the queue bound.
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import sharp from "sharp";
import { measureHealthWhileBusy, recordHealthLatency } from "../../bench/server/health-latency.js";
import { generate, json, personalize, readEvents, safetensorsHeader, sampleFace, serveRefuses, startServe, temporaryDir, waitForJob, type Job } from "./helpers.js";

interface Model {
  id: string;
  name: string;
  files: Record<string, { url: string; bytes: number }>;
  photo: string;
}

test("hdb serve: queue, SSE progress, personalise, generate, download, list and delete on the bundled model", { timeout: 240_000 }, async () => {
  const data = temporaryDir("serve-api");
  const server = await startServe(data);
  const { url } = server;
  try {
    const health = await json<{ status: string; devices: number }>(`${url}/health`);
    assert.equal(health.status, 200);
    assert.equal(health.body.status, "ok");

    const openapi = await json<{ openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>> }>(`${url}/openapi.json`);
    assert.equal(openapi.status, 200);
    assert.match(openapi.body.openapi, /^3\./);
    for (const route of ["/personalizations", "/generations", "/jobs", "/jobs/{id}", "/jobs/{id}/events", "/jobs/{id}/images/{index}", "/models", "/models/{id}", "/models/{id}/{file}", "/health"]) {
      assert.ok(openapi.body.paths[route], `the OpenAPI document describes ${route}`);
    }
    const upload = openapi.body.paths["/personalizations"]!["post"]!.requestBody!.content["multipart/form-data"]!.schema.properties;
    assert.ok(upload["photo"] && upload["steps"], "the upload's fields are documented");

    // A JPEG carrying EXIF as the second person's first photo (of two): none of it may be kept.
    const secret = "SECRET-EXIF-OWNER-4711";
    const jpeg = await sharp(sampleFace).resize(96, 96).jpeg().withExif({ IFD0: { Artist: secret, Copyright: secret } }).toBuffer();
    assert.ok(jpeg.includes(secret), "the test photo carries the EXIF text");

    // Three jobs at once: one device, so they run one after another and the later ones wait with their place shown.
    const a = await personalize(url, [sampleFace], { steps: "30", name: "sample face" });
    const b = await personalize(url, [jpeg, sampleFace], { steps: "5", seed: "3" });
    const c = await generate(url, { model: "base", prompt: "a face as a pencil sketch", seed: 0, steps: 10 });
    for (const r of [a, b, c]) assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.deepEqual([a.body.position, b.body.position, c.body.position], [0, 1, 2], "places in line");
    assert.deepEqual([a.body.status, b.body.status, c.body.status], ["running", "queued", "queued"]);

    const [eventsA, eventsB] = await Promise.all([readEvents(url, a.body.id), readEvents(url, b.body.id)]);
    assert.equal(eventsA.at(-1)!.status, "succeeded", JSON.stringify(eventsA.at(-1)));
    const running = eventsA.filter((e) => e.status === "running" && e.progress !== null);
    assert.ok(running.length >= 2, `progress events were streamed (${running.length})`);
    assert.ok(running.some((e) => e.progress!.total === 30 && e.progress!.done > 0 && typeof e.progress!.etaSeconds === "number"), "progress carries the step count and an ETA");
    assert.equal(eventsB[0]!.status, "queued");
    assert.ok(eventsB[0]!.position! >= 1, "a waiting job's stream shows its place in line");
    assert.equal(eventsB.at(-1)!.status, "succeeded");
    const doneC = await waitForJob(url, c.body.id);
    assert.equal(doneC.status, "succeeded", doneC.error ?? "");

    // The model, its downloads: whole safetensors files of the sizes recorded; the LoRA layouts as their tools read them.
    const modelId = (eventsA.at(-1)!.result as { modelId: string }).modelId;
    const model = await json<Model>(`${url}/models/${modelId}`);
    assert.equal(model.status, 200);
    assert.equal(model.body.name, "sample face");
    const keys: Record<string, string[]> = {};
    for (const kind of ["lidb", "lora-diffusers", "lora-kohya"]) {
      const response = await fetch(`${url}${model.body.files[kind]!.url}`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-disposition") ?? "", /^attachment; filename="hdb-[0-9a-f]{8}\.[a-z-]+\.safetensors"$/);
      const bytes = new Uint8Array(await response.arrayBuffer());
      assert.equal(bytes.length, model.body.files[kind]!.bytes);
      keys[kind] = Object.keys(safetensorsHeader(bytes));
    }
    assert.ok(keys["lidb"]!.includes("lidb.a_train") && keys["lidb"]!.some((k) => k.startsWith("relaxed.")), "the LiDB file holds the prediction and the rank-relaxed part");
    assert.ok(keys["lora-diffusers"]!.some((k) => k.endsWith(".lora_A.weight")), "diffusers/peft layout");
    assert.ok(keys["lora-kohya"]!.some((k) => k.startsWith("lora_unet_") && k.endsWith(".lora_down.weight")), "kohya layout");

    // The reference photo of the JPEG upload: re-encoded as PNG, no EXIF, the secret nowhere in the bytes.
    const modelB = (eventsB.at(-1)!.result as { modelId: string }).modelId;
    const lidbB = Buffer.from(await (await fetch(`${url}/models/${modelB}/lidb`)).arrayBuffer());
    const training = JSON.parse((safetensorsHeader(lidbB)["__metadata__"] as unknown as Record<string, string>)["training"]!) as { photos: number; photo: string };
    assert.equal(training.photos, 2, "fine-tuned on both photos");
    assert.equal(training.photo, "photo-0.png", "no server path in the downloaded file");
    assert.ok(!lidbB.includes(data), "the data folder's path appears nowhere in the file");
    const photo = Buffer.from(await (await fetch(`${url}/models/${modelB}/photo`)).arrayBuffer());
    const meta = await sharp(photo).metadata();
    assert.equal(meta.format, "png");
    assert.equal(meta.exif, undefined);
    assert.ok(!photo.includes(secret), "no byte of the EXIF survives");

    // Generations: two images of the person; the person's image differs from the base model's at the same seed.
    const g = await generate(url, { model: modelId, prompt: "a face as a pencil sketch", seed: 0, steps: 10, images: 2 });
    assert.equal(g.status, 202);
    const doneG = await waitForJob(url, g.body.id);
    assert.equal(doneG.status, "succeeded", doneG.error ?? "");
    assert.deepEqual((doneG.result as { images: string[] }).images, ["0.png", "1.png"]);
    const image = async (id: string, index: number): Promise<Buffer> => {
      const response = await fetch(`${url}/jobs/${id}/images/${index}`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "image/png");
      return Buffer.from(await response.arrayBuffer());
    };
    const personal = await sharp(await image(g.body.id, 0)).raw().toBuffer({ resolveWithObject: true });
    const base = await sharp(await image(c.body.id, 0)).raw().toBuffer({ resolveWithObject: true });
    assert.equal(personal.info.width, 64);
    assert.notDeepEqual(personal.data, base.data, "the personalised model changes the image");
    assert.equal((await fetch(`${url}/jobs/${g.body.id}/images/2`)).status, 404);
    assert.equal((await generate(url, { model: "0".repeat(32), prompt: "a face" })).status, 404);

    // Lists, cancel, delete.
    const models = await json<Model[]>(`${url}/models`);
    assert.deepEqual(models.body.map((m) => m.id).sort(), [modelId, modelB].sort());
    const slow = await personalize(url, [sampleFace], { steps: "40", seed: "9" });
    const waiting = await generate(url, { prompt: "a face", steps: 5 });
    assert.equal(waiting.body.status, "queued");
    const cancelled = await json<{ outcome: string }>(`${url}/jobs/${waiting.body.id}`, { method: "DELETE" });
    assert.equal(cancelled.body.outcome, "cancelled");
    assert.equal((await json<Job>(`${url}/jobs/${waiting.body.id}`)).body.status, "cancelled");
    assert.equal((await waitForJob(url, slow.body.id)).status, "succeeded");
    const jobs = await json<Job[]>(`${url}/jobs?limit=3`);
    assert.equal(jobs.body.length, 3);
    assert.equal(jobs.body[0]!.id, waiting.body.id, "newest first");

    assert.equal((await json(`${url}/models/${modelB}`, { method: "DELETE" })).status, 200);
    assert.equal((await json(`${url}/models/${modelB}`)).status, 404);
    assert.equal((await fetch(`${url}/models/${modelB}/lidb`)).status, 404);
    assert.ok(!existsSync(path.join(data, "models", modelB)), "the model's folder is gone");
    assert.equal((await json(`${url}/jobs/${c.body.id}`, { method: "DELETE" })).status, 200);
    assert.equal((await fetch(`${url}/jobs/${c.body.id}/images/0`)).status, 404);
    assert.ok(!existsSync(path.join(data, "generations", c.body.id)));

    // The event loop stays free while the engine works: /health's latency during a personalisation and a generation.
    const busy = await measureHealthWhileBusy(url, { photo: sampleFace, steps: 120, genSteps: 40, images: 4 });
    recordHealthLatency(busy, ["node", "--test", "dist/test/server/api.test.js"]);
    assert.ok(busy.jobs.every((j) => j.status === "succeeded"), JSON.stringify(busy.jobs));
    assert.equal(busy.stats.errors, 0);
    assert.ok(busy.stats.requests >= 50, `${busy.stats.requests} requests`);
    // The target is 50 ms; the bound here leaves room for a loaded shared machine but fails if the engine ran on the loop.
    assert.ok(busy.stats.p99Ms < 250, `/health p99 ${busy.stats.p99Ms} ms while the engine works`);
    assert.deepEqual(readdirSync(path.join(data, "staging")), [], "nothing left in staging");
  } finally {
    assert.equal(await server.stop(), 0, server.stderr());
    rmSync(data, { recursive: true, force: true });
  }
});

test("hdb serve: a token beyond loopback, bearer checks, no CORS, the rate limit and the queue bound", { timeout: 120_000 }, async () => {
  const refused = await serveRefuses(["--host", "0.0.0.0", "--port", "0", "--data", temporaryDir("serve-refuse")]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /beyond loopback: give an API token/);
  assert.match((await serveRefuses(["--host", "0.0.0.0", "--token", "short"])).stderr, /at least 16 characters/);

  const data = temporaryDir("serve-token");
  const token = "t0ken-for-the-test-0123456789";
  const server = await startServe(data, ["--token", token, "--rate-limit", "12", "--max-queue", "1"]);
  const { url } = server;
  const auth = { authorization: `Bearer ${token}` };
  try {
    assert.equal((await fetch(`${url}/health`)).status, 200, "/health needs no token");
    const denied = await fetch(`${url}/jobs`);
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get("www-authenticate"), "Bearer");
    assert.equal((await fetch(`${url}/jobs`, { headers: { authorization: "Bearer wrong-token-wrong-token" } })).status, 401);
    const allowed = await fetch(`${url}/jobs`, { headers: { ...auth, origin: "https://evil.example" } });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get("access-control-allow-origin"), null, "no CORS headers");
    assert.equal((await fetch(`${url}/jobs`, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "GET" } })).status, 401);
    assert.equal((await fetch(`${url}/jobs?token=${token}`)).status, 200, "?token= for EventSource and links");

    // The queue bound: one job runs, one waits, the next is refused with 503 and Retry-After.
    const first = await personalize(url, [sampleFace], { steps: "60" }, auth);
    assert.equal(first.status, 202);
    assert.equal(first.body.status, "running");
    const second = await json<Job>(`${url}/generations`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ prompt: "a face", steps: 3 }) });
    assert.equal(second.status, 202);
    const third = await fetch(`${url}/generations`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ prompt: "a face", steps: 3 }) });
    assert.equal(third.status, 503);
    assert.equal(third.headers.get("retry-after"), "30");

    // The rate limit: 12 a minute per client, 429 beyond (the requests above count too).
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await fetch(`${url}/jobs/${first.body.id}`, { headers: auth })).status);
    assert.ok(statuses.includes(200) && statuses.at(-1) === 429, statuses.join(","));
  } finally {
    assert.equal(await server.stop(), 0, server.stderr());
    rmSync(data, { recursive: true, force: true });
  }
});
