// Many identities at once (building the hypernetwork's dataset) on the tiny SD1 pipeline:
//  - batched training gives each identity the result of training it alone with the same seed;
//  - a run killed mid-way and resumed gives the files of an uninterrupted run, and loses only what was in
//    flight (finished identities are skipped, in-flight ones continue from their checkpoint).
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { loadSafetensors, type Tensor } from "../../src/engine/index.js";
import { resolveConfig } from "../../src/dreambooth/config.js";
import type { IdentityRun } from "../../src/dreambooth/identity.js";
import { readManifest, type ManifestEntry } from "../../src/dreambooth/manifest.js";
import { DreamBoothTrainer, trainDreamBooth } from "../../src/dreambooth/trainer.js";
import { temporaryDir, tinyConfig, writeIdentities } from "./helpers.js";

/** The batched-vs-alone bound on factor differences (the runs differ only in batched kernels' rounding). */
const TOLERANCE = 1e-6;

function maxDifference(a: Tensor, b: Tensor): number {
  using difference = a.sub(b);
  using magnitude = difference.abs();
  using worst = magnitude.max();
  return worst.item();
}

test("three identities trained in one batch each end where training alone ends (same seeds)", async (t) => {
  const root = temporaryDir("train-batched");
  const identities = await writeIdentities(root, 3, 2);
  const steps = 6;
  // Prior preservation: each identity's block of the batch holds a photo and a class image, with its own
  // timesteps, noise and (per-sample) factors.
  const classDir = path.join(root, "class");
  await writeIdentities(classDir, 2);
  const config = resolveConfig(tinyConfig(path.join(root, "out"), identities, {
    identitiesPerBatch: 3, learningRate: 1e-3, withPriorPreservation: true, classDataDir: path.join(classDir, "id0"),
    numClassImages: 1, snrGamma: 5,
  }));
  const trainer = await DreamBoothTrainer.open(config);
  const runs: IdentityRun[] = [];
  try {
    for (const identity of identities) runs.push(await trainer.startIdentity(identity));
    for (let step = 0; step < steps; step++) trainer.trainStep(runs);
    let worst = 0;
    for (const [i, identity] of identities.entries()) {
      const alone = await trainer.startIdentity(identity);
      runs.push(alone);
      for (let step = 0; step < steps; step++) trainer.trainStep([alone]);
      for (const name of ["a_train", "b_train"]) worst = Math.max(worst, maxDifference(alone.factors.get(name)!, runs[i]!.factors.get(name)!));
      alone.losses.forEach((loss, step) => assert.ok(Math.abs(loss - runs[i]!.losses[step]!) <= 1e-5 * loss, `${identity.id} step ${step}: loss ${loss} alone vs ${runs[i]!.losses[step]} batched`));
      // Another identity's factors really differ: the comparison is not trivially satisfied.
      if (i > 0) assert.ok(maxDifference(alone.factors.get("a_train")!, runs[0]!.factors.get("a_train")!) > 1e-4);
    }
    t.diagnostic(`largest factor difference batched vs alone after ${steps} steps: ${worst.toExponential(2)} (bound ${TOLERANCE})`);
    assert.ok(worst <= TOLERANCE, `batched and solo factors differ by ${worst}`);
  } finally {
    trainer.dispose();
  }
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
  assert.ok(existsSync(path.join(resumed, "checkpoints", "id2.safetensors")), "the in-flight identity has a checkpoint");
  await assert.rejects(trainDreamBooth(tinyConfig(resumed, identities, options)), /already holds a training run/);
  await assert.rejects(trainDreamBooth(tinyConfig(resumed, identities, { ...options, learningRate: 2e-2, resumeFromCheckpoint: true })), /settings differ.*learningRate/);

  const steps: string[] = [];
  const log: string[] = [];
  const result = await trainDreamBooth(tinyConfig(resumed, identities, { ...options, resumeFromCheckpoint: true }), {
    onStep: (report) => steps.push(...report.identities.map((r) => `${r.id}@${r.step}`)), log: (line) => log.push(line),
  });
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
