// Many identities at once (building the hypernetwork's dataset) on the tiny SD1 pipeline:
//  - batched training gives each identity the result of training it alone with the same seed;
//  - a run killed mid-way and resumed gives the files of an uninterrupted run, and loses only what was in
//    flight (finished identities are skipped, in-flight ones continue from their checkpoint).
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { loadSafetensors, type Tensor } from "../../src/engine/index.js";
import { readManifest, type ManifestEntry } from "../../src/dreambooth/manifest.js";
import { trainDreamBooth } from "../../src/dreambooth/trainer.js";
import { readTrainingLog } from "../../src/training/index.js";
import { temporaryDir, tinyConfig, writeIdentities } from "./helpers.js";

/**
 * The batched-vs-alone bound on factor differences. The runs differ only in batched kernels' rounding, but
 * Adam turns a rounding-level gradient difference on an element whose gradient is near zero into a visible
 * step (each step moves an element by up to the learning rate, 1e-3 here): 1e-4 is a tenth of one step, while
 * a wrong draw or a wrong sample-to-identity mapping moves factors by several steps (6 × 1e-3).
 */
const TOLERANCE = 1e-4;

function maxDifference(a: Tensor, b: Tensor): number {
  using difference = a.sub(b);
  using magnitude = difference.abs();
  using worst = magnitude.max();
  return worst.item();
}

test("three identities trained in one batch each end where training alone ends (same seeds)", async (t) => {
  const root = temporaryDir("train-batched");
  const identities = await writeIdentities(root, 3, 2);
  // Prior preservation: each identity's block of the batch holds a photo and a class image, with its own
  // timesteps, noise and (per-sample) factors.
  const classDir = path.join(root, "class");
  await writeIdentities(classDir, 2);
  const run = async (name: string, identitiesPerBatch: number): Promise<string> => {
    const out = path.join(root, name);
    await trainDreamBooth(tinyConfig(out, identities, {
      identitiesPerBatch, maxTrainSteps: 6, learningRate: 1e-3, withPriorPreservation: true, classDataDir: path.join(classDir, "id0"), numClassImages: 1, snrGamma: 5,
    }));
    return out;
  };
  const batched = await run("batched", 3);
  const alone = await run("alone", 1);
  const factors = (out: string, id: string): Map<string, Tensor> => loadSafetensors(path.join(out, `${id}.lidb.safetensors`)).tensors;
  const losses = (out: string, id: string): number[] => readTrainingLog(path.join(out, "train-log.jsonl")).steps.filter((line) => line.job === id).map((line) => line.loss);
  let worst = 0;
  for (const [i, { id }] of identities.entries()) {
    const [a, b] = [factors(alone, id), factors(batched, id)];
    for (const name of ["lidb.a_train", "lidb.b_train"]) worst = Math.max(worst, maxDifference(a.get(name)!, b.get(name)!));
    const [soloLosses, batchedLosses] = [losses(alone, id), losses(batched, id)];
    assert.equal(soloLosses.length, 6);
    soloLosses.forEach((loss, step) => assert.ok(Math.abs(loss - batchedLosses[step]!) <= 1e-5 * loss, `${id} step ${step}: loss ${loss} alone vs ${batchedLosses[step]} batched`));
    // Another identity's factors really differ: the comparison is not trivially satisfied.
    if (i > 0) assert.ok(maxDifference(a.get("lidb.a_train")!, factors(alone, identities[0]!.id).get("lidb.a_train")!) > 1e-4);
  }
  t.diagnostic(`largest factor difference batched vs alone after 6 steps: ${worst.toExponential(2)} (bound ${TOLERANCE})`);
  assert.ok(worst <= TOLERANCE, `batched and solo factors differ by ${worst}`);
});

test("a killed multi-identity run resumes to the files of an uninterrupted run", async (t) => {
  const root = temporaryDir("train-resume");
  const identities = await writeIdentities(root, 3);
  const options = { identitiesPerBatch: 2, maxTrainSteps: 6, checkpointingSteps: 2 };
  const reference = path.join(root, "uninterrupted");
  await trainDreamBooth(tinyConfig(reference, identities, options));

  // Killed after 8 batch steps: id0 and id1 finished at step 6; id2 ran steps 1-2 (checkpoint at 2).
  const resumed = path.join(root, "resumed");
  const killed = await trainDreamBooth(tinyConfig(resumed, identities, options), { stopAfterSteps: 8 });
  assert.equal(killed.stopped, true);
  assert.deepEqual(killed.manifest.identities.map((e) => e.id), ["id0", "id1"]);
  assert.ok(existsSync(path.join(resumed, "checkpoints", "id2", "checkpoint-2")), "the in-flight identity has a checkpoint");
  await assert.rejects(trainDreamBooth(tinyConfig(resumed, identities, options)), /already holds a training run/);
  await assert.rejects(trainDreamBooth(tinyConfig(resumed, identities, { ...options, learningRate: 2e-2, resumeFromCheckpoint: true })), /settings differ.*learningRate/);

  const log: string[] = [];
  const logFile = path.join(resumed, "train-log.jsonl");
  const before = readFileSync(logFile, "utf8").split("\n").filter((line) => line !== "").length;
  const result = await trainDreamBooth(tinyConfig(resumed, identities, { ...options, resumeFromCheckpoint: true }), { log: (line) => log.push(line) });
  const steps = readFileSync(logFile, "utf8").split("\n").filter((line) => line !== "").slice(before).map((line) => JSON.parse(line) as { job: string; step: number; event?: string })
    .filter((line) => line.event === undefined).map((line) => `${line.job}@${line.step}`);
  t.diagnostic(`resumed steps: ${steps.join(" ")}; ${log.join("; ")}`);
  assert.deepEqual(steps, ["id2@3", "id2@4", "id2@5", "id2@6"], "only the in-flight identity trains, from its checkpoint");
  assert.deepEqual(result.manifest.identities.map((e) => e.id), ["id0", "id1", "id2"]);
  assert.deepEqual(readdirSync(path.join(resumed, "checkpoints")), [], "checkpoints of finished identities are removed");
  for (const identity of identities) {
    const read = (dir: string): Uint8Array[] => {
      const { tensors } = loadSafetensors(path.join(dir, `${identity.id}.lidb.safetensors`));
      const bytes = ["lidb.a_train", "lidb.b_train"].map((key) => tensors.get(key)!.bytes());
      for (const tensor of tensors.values()) tensor.dispose();
      return bytes;
    };
    assert.deepEqual(read(resumed), read(reference), `${identity.id}: resumed and uninterrupted files differ`);
  }
  const summary = (entries: ManifestEntry[]): unknown[] => entries.map(({ id, file, finalLoss, steps: count, seed }) => ({ id, file, finalLoss, count, seed }));
  assert.deepEqual(summary(result.manifest.identities), summary(readManifest(reference)!.identities), "the manifests agree (losses restored from the checkpoint)");
});

test("DreamBooth-LoRA: each identity of a run starts from the same initial factors as a run of it alone", async () => {
  // LoRA trains one identity per batch, one after another. The initial factors were once kept as aliases of the
  // adapters' own parameters (float32 `.float()` is no copy), so every identity after the first started from the
  // factors the previous one last used: the second identity's file then differed from training it alone.
  const root = temporaryDir("train-lora-sequence");
  const identities = await writeIdentities(root, 2);
  const run = async (name: string, which: typeof identities): Promise<string> => {
    const out = path.join(root, name);
    await trainDreamBooth(tinyConfig(out, which, { adapter: "lora", rank: 2, maxTrainSteps: 3, learningRate: 1e-2 }));
    return out;
  };
  const both = await run("both", identities);
  const second = await run("second", [identities[1]!]);
  const bytes = (out: string): Map<string, Uint8Array> =>
    new Map([...loadSafetensors(path.join(out, `${identities[1]!.id}.lora.safetensors`)).tensors].map(([k, v]) => [k, v.bytes()]));
  assert.deepEqual(bytes(both), bytes(second));
});
