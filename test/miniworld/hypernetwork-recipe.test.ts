// The bundled HyperNetwork's recipe at toy size on the bundled mini-world model: its variants (the weight loss, the
// diffusion loss alone, distillation from the pre-optimised weights, distillation from the base model prompted with a
// full description of each person of the split) train at equal steps, the study measures them and the 1-round reading, the better one is
// bundled with recipe.json saying which and why, and the bundle loads and predicts. Then the personalisation study
// (rank-relaxed fine-tuning vs its ablations, DreamBooth and the base model, with its tuning and times) on that bundle.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { trainDreamBooth } from "../../src/dreambooth/trainer.js";
import { PromptFidelityNetwork } from "../../src/evaluation/fidelity-network.js";
import { IdentityNetwork } from "../../src/evaluation/identity-network.js";
import { loadHyperNetwork } from "../../src/hypernetwork/file.js";
import { buildHyperNetwork } from "../../src/miniworld/hypernetwork/recipe.js";
import { evaluatePersonalizationInWorld } from "../../src/evaluation/personalize-in-world.js";
import { splitIds } from "../../src/miniworld/splits.js";
import { renderFace } from "../../src/miniworld/render.js";
import { savePng } from "../../src/pipeline/images.js";
import { generated, temporaryDir } from "../dreambooth/helpers.js";

const repository = fileURLToPath(new URL("../../../", import.meta.url));
const model = path.join(repository, "models", "miniworld", "base");
const metrics = path.join(repository, "models", "miniworld", "metrics");
let bundle = "";

test("the hypernetwork recipe trains its variants, measures them and bundles the best one", { timeout: 300_000 }, async () => {
  const root = temporaryDir("hypernet-recipe");
  mkdirSync(path.join(root, "photos"));
  const identities = [];
  for (const id of [50000, 50001]) {
    const file = path.join(root, "photos", `${id}.png`);
    await savePng(file, await renderFace(id, { nuisanceSeed: 1 }));
    identities.push({ id: String(id), images: [file] });
  }
  const weightSet = path.join(root, "set");
  await trainDreamBooth({ adapter: "lidb", pretrainedModel: model, outputDir: weightSet, identities, maxTrainSteps: 3, lidbA: 32, lidbB: 16, identitiesPerBatch: 2 });
  const identityNetwork = IdentityNetwork.load(path.join(metrics, "identity"));
  const fidelityNetwork = PromptFidelityNetwork.load(path.join(metrics, "fidelity"));
  const outDir = path.join(root, "bundle");
  const lines: string[] = [];
  try {
    const { report, chosen } = await buildHyperNetwork({
      modelDir: model, weightSet, encoder: path.join(generated, "vision", "models", "clip_projection"), workDir: path.join(root, "work"), outDir,
      reportDir: path.join(root, "report"), identityNetwork, fidelityNetwork, prompts: [[]], command: ["hdb", "miniworld", "hypernetwork", "(test)"],
      overrides: { steps: 2, batchSize: 2, identities: 2, seeds: 1, inferenceSteps: 2, dreamboothSteps: 2, describedPeople: 3, network: { hidden_size: 16, num_heads: 2, head_dim: 8, rounds: 2 } },
      log: (line) => lines.push(line),
    });
    assert.deepEqual(report.variants.map((v) => v.name), ["hyper", "hyper-diffusion-only", "hyper-teacher", "hyper-described", "hyper-1-round"]);
    assert.ok(["hyper", "hyper-diffusion-only", "hyper-teacher", "hyper-described"].includes(chosen));
    // The described variant's people: the first 3 of the hypernetwork split, two photos each, rendered once.
    const people = readdirSync(path.join(root, "work", "people")).sort();
    assert.deepEqual(people, ["50000-n1.png", "50000-n2.png", "50001-n1.png", "50001-n2.png", "50002-n1.png", "50002-n2.png"]);
    assert.ok(lines.some((line) => /^hypernetwork recipe: rendering 6 photos of 3 people/.test(line)), lines.join("\n"));
    const recipe = JSON.parse(readFileSync(path.join(outDir, "recipe.json"), "utf8")) as { chosen: string; why: string; variants: Record<string, { target: string }>; provenance: { command: string; files: Record<string, string> } };
    assert.equal(recipe.chosen, chosen);
    assert.match(recipe.why, /overall identity similarity hyper -?[\d.]+, hyper-diffusion-only -?[\d.]+, hyper-teacher -?[\d.]+, hyper-described -?[\d.]+/);
    assert.equal(recipe.variants["hyper-teacher"]!.target, "teacher");
    assert.equal(recipe.variants["hyper-described"]!.target, "description");
    assert.ok(Object.keys(recipe.provenance.files).some((f) => f.endsWith("model.safetensors")));
    assert.ok(existsSync(path.join(root, "report", "report.md")));
    const { network } = loadHyperNetwork(outDir);
    assert.equal(network.config.rounds, 2);
    assert.ok(existsSync(network.config.encoder), `the bundle's encoder resolves from its own folder: ${network.config.encoder}`);
    network.dispose();
    assert.ok(lines.some((line) => line.startsWith("hypernetwork recipe: bundled")), lines.join("\n"));
    bundle = outDir;
    // Run again (as after a kill during the study): the finished variants are reused, not retrained.
    const again: string[] = [];
    await buildHyperNetwork({
      modelDir: model, weightSet, encoder: path.join(generated, "vision", "models", "clip_projection"), workDir: path.join(root, "work"), outDir: path.join(root, "bundle-2"),
      reportDir: path.join(root, "report-2"), identityNetwork, fidelityNetwork, prompts: [[]], command: ["hdb", "miniworld", "hypernetwork", "(test)"], variants: ["hyper-teacher"],
      overrides: { steps: 2, batchSize: 2, identities: 2, seeds: 1, inferenceSteps: 2, dreamboothSteps: 2, network: { hidden_size: 16, num_heads: 2, head_dim: 8, rounds: 2 } },
      log: (line) => again.push(line),
    });
    assert.ok(again.some((line) => /^hypernetwork recipe: hyper-teacher is already trained with these settings/.test(line)), again.join("\n"));
    assert.ok(!again.some((line) => line.startsWith("hypernetwork recipe: training")), again.join("\n"));
  } finally {
    identityNetwork.dispose();
    fidelityNetwork.dispose();
  }
});

test("the personalisation study: tuning, ours vs Only Hyper, No Hyper, DreamBooth and base, times and the bar", { timeout: 300_000 }, async () => {
  assert.ok(bundle !== "", "the test above bundles a HyperNetwork");
  const root = temporaryDir("personalize-study");
  const identityNetwork = IdentityNetwork.load(path.join(metrics, "identity"));
  const fidelityNetwork = PromptFidelityNetwork.load(path.join(metrics, "fidelity"));
  try {
    const heldOut = splitIds("held-out", 4);
    const report = await evaluatePersonalizationInWorld({
      modelDir: model, hypernetwork: bundle, identityNetwork, fidelityNetwork, outDir: root, identities: heldOut.slice(0, 2), prompts: [[]], seeds: [0],
      generation: { steps: 2, guidance: 5 }, referenceNuisanceSeed: 1, settings: { steps: 2 },
      tuning: { identities: heldOut.slice(2), ranks: [1, 2], learningRates: [1e-3], seeds: [0] },
      dreambooth: { steps: [2, 3], probeSteps: 2, learningRate: 1e-2, lidbA: 32, lidbB: 16, rank: 1, seed: 0, identitiesPerBatch: 2 },
    });
    assert.equal(report.tuning.length, 2);
    assert.ok([1, 2].includes(report.chosen.rank));
    assert.deepEqual(Object.keys(report.study.overall.styleAccuracy), ["ours", "only-hyper", "no-hyper", "dreambooth-2", "dreambooth-3", "base"]);
    for (const key of ["ours.total", "ours.fineTune", "ours.predict", "only-hyper", "no-hyper", "dreambooth-3.batched", "dreambooth-3.alone"]) {
      assert.ok(Number.isFinite(report.seconds[key]) && report.seconds[key]! > 0, `seconds of ${key}: ${report.seconds[key]}`);
    }
    assert.equal(report.bar.dreamboothMethod, "dreambooth-3");
    assert.ok(existsSync(path.join(root, "report.md")) && existsSync(path.join(root, "contact-sheet.png")));
    assert.match(readFileSync(path.join(root, "report.md"), "utf8"), /## Bar \(against dreambooth-3\)/);
    assert.ok(existsSync(path.join(root, "no-hyper", `${heldOut[0]}.lora.safetensors`)), "No Hyper results are LoRA files");
    // The DreamBooth runs' batched time is kept beside them, so that a rerun finding them done reports it unchanged.
    const timing = JSON.parse(readFileSync(path.join(root, "dreambooth-3", "timing.json"), "utf8")) as { secondsPerIdentity: number };
    assert.equal(timing.secondsPerIdentity, report.seconds["dreambooth-3.batched"]);
  } finally {
    identityNetwork.dispose();
    fidelityNetwork.dispose();
  }
});
