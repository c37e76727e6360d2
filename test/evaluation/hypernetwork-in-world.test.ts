// The HyperNetwork study end to end at toy size on the bundled mini-world model and metric networks: a weight set
// of 2 hypernetwork-split identities (a few DreamBooth steps), a HyperNetwork trained for a few steps on a tiny
// CLIP vision encoder, then the study on 2 held-out identities: per-identity DreamBooth, predictions at s rounds
// and at 1 round, the weight error, the prediction time, the personalisation study and the bar, in report.json
// and report.md. The numbers are not judged here (toy training); their presence, shape and consistency are.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { trainDreamBooth } from "../../src/dreambooth/trainer.js";
import { PromptFidelityNetwork } from "../../src/evaluation/fidelity-network.js";
import { evaluateHyperNetworkInWorld, relativeCoreError } from "../../src/evaluation/hypernetwork-in-world.js";
import { IdentityNetwork } from "../../src/evaluation/identity-network.js";
import { VisionFeatureEncoder } from "../../src/hypernetwork/encoder.js";
import { trainHyperNetwork } from "../../src/hypernetwork/train.js";
import { renderFace } from "../../src/miniworld/render.js";
import { savePng } from "../../src/pipeline/images.js";
import { generated, temporaryDir } from "../dreambooth/helpers.js";

const repository = fileURLToPath(new URL("../../../", import.meta.url));
const model = path.join(repository, "models", "miniworld", "base");
const metrics = path.join(repository, "models", "miniworld", "metrics");
const DREAMBOOTH = { steps: 3, learningRate: 1e-2, lidbA: 32, lidbB: 16, rank: 1, seed: 0, identitiesPerBatch: 2 };

test("the HyperNetwork study writes its table, weight errors, timings and bar", { timeout: 300_000 }, async () => {
  const root = temporaryDir("hypernet-study");
  const photos = [];
  mkdirSync(path.join(root, "photos"));
  for (const id of [50000, 50001]) {
    const file = path.join(root, "photos", `${id}.png`);
    await savePng(file, await renderFace(id, { nuisanceSeed: 1 }));
    photos.push({ id: String(id), images: [file] });
  }
  const set = path.join(root, "set");
  await trainDreamBooth({ adapter: "lidb", pretrainedModel: model, outputDir: set, identities: photos, maxTrainSteps: 3, lidbA: 32, lidbB: 16, identitiesPerBatch: 2 });
  const encoder = await VisionFeatureEncoder.fromPretrained(path.join(generated, "vision", "models", "clip_projection"));
  let hyper: string;
  try {
    hyper = (await trainHyperNetwork({
      weightSet: set, outputDir: path.join(root, "hn"), encoder, network: { hidden_size: 16, num_heads: 2, head_dim: 8, rounds: 2 },
      settings: { steps: 2, batchSize: 2, learningRate: 1e-3, weightDecay: 0, warmupSteps: 1, weightLoss: 1, checkpointEvery: 10, seed: 0 },
    })).dir;
  } finally {
    encoder.dispose();
  }
  const identityNetwork = IdentityNetwork.load(path.join(metrics, "identity"));
  const fidelityNetwork = PromptFidelityNetwork.load(path.join(metrics, "fidelity"));
  const out = path.join(root, "study");
  try {
    const report = await evaluateHyperNetworkInWorld({
      modelDir: model, identityNetwork, fidelityNetwork, outDir: out, identities: [60000, 60001], prompts: [[], ["pencil-sketch"]], seeds: [0],
      generation: { steps: 2, guidance: 5 }, referenceNuisanceSeed: 1, dreambooth: DREAMBOOTH,
      variants: [{ name: "hyper", dir: hyper }, { name: "hyper-1", dir: hyper, rounds: 1 }],
    });
    assert.deepEqual(Object.keys(report.study.overall.identity).sort(), ["base", "dreambooth", "hyper", "hyper-1", "world"]);
    assert.equal(report.study.rows.length, 2);
    for (const name of ["hyper", "hyper-1"]) {
      assert.ok(Number.isFinite(report.weightError[name]!.mean) && report.weightError[name]!.mean > 0, `${name}: weight error ${JSON.stringify(report.weightError[name])}`);
      assert.ok(report.secondsPerPhoto[name]! > 0);
      assert.equal(typeof report.bar[name]!.met, "boolean");
      assert.ok(existsSync(path.join(out, name, "60001.lidb.safetensors")));
    }
    // 1 round and 2 rounds predict different weights; the error is the one relativeCoreError gives.
    assert.notEqual(report.weightError["hyper"]!.mean, report.weightError["hyper-1"]!.mean);
    const recomputed = [60000, 60001].map((id) => relativeCoreError(path.join(out, "hyper", `${id}.lidb.safetensors`), path.join(out, "dreambooth", `${id}.lidb.safetensors`)));
    assert.ok(Math.abs(report.weightError["hyper"]!.mean - (recomputed[0]! + recomputed[1]!) / 2) < 1e-9);
    // A file against itself: zero error.
    assert.equal(relativeCoreError(path.join(out, "dreambooth", "60000.lidb.safetensors"), path.join(out, "dreambooth", "60000.lidb.safetensors")), 0);
    const markdown = readFileSync(path.join(out, "report.md"), "utf8");
    assert.match(markdown, /\| \*\*all\*\* \|/);
    assert.match(markdown, /\| hyper-1 \| [\d.]+ ± [\d.]+ \| [\d.]+ \|/);
    assert.ok(existsSync(path.join(out, "contact-sheet.png")));
  } finally {
    identityNetwork.dispose();
    fidelityNetwork.dispose();
  }
});
