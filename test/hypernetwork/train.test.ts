// The HyperNetwork on the tiny SD1 pipeline: a weight set of 4 identities made by DreamBooth, then training on
// the one loop: the gauge-free weight loss falls, a run stopped and resumed ends bit-identical, the folder saves
// and loads, and a prediction is a LiDB file that changes generation. Also the module's own contract: shapes,
// θ_0 = the LiDB initialisation, rounds that refine.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { Generator, interpolate, loadSafetensors, noGrad, randn, stack, tensor, tidy, zerosLike, type Tensor } from "../../src/engine/index.js";
import { applyLidbFile, readLidbFileInfo } from "../../src/adapters/lidb/file.js";
import { lidbBTrainInit } from "../../src/adapters/lidb/model.js";
import { trainDreamBooth } from "../../src/dreambooth/trainer.js";
import { hyperNetworkConfig } from "../../src/hypernetwork/config.js";
import { loadHyperNetwork } from "../../src/hypernetwork/file.js";
import { HyperNetwork } from "../../src/hypernetwork/hypernetwork.js";
import { predictLidbFiles } from "../../src/hypernetwork/predict.js";
import { trainHyperNetwork, type FeatureEncoder, type HyperNetworkTrainingSettings } from "../../src/hypernetwork/train.js";
import { loadImage } from "../../src/pipeline/images.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";
import { temporaryDir, tinyConfig, tinySd1, writeIdentities } from "../dreambooth/helpers.js";

/**
 * The simplest real encoder: each photo's 8×8 patches of its 32×32 pixels as 16 tokens of 192 values (a ViT's
 * patch embedding without the learned projection). Enough to tell the tiny world's faces apart.
 */
const patchEncoder: FeatureEncoder = {
  id: "patches-8x8", hiddenSize: 192,
  async encode(files) {
    const images = await Promise.all(files.map((file) => loadImage(file)));
    return tidy(() => stack(images.map((image) => {
      const pixels = tensor(Float32Array.from(image.data, (v) => v / 127.5 - 1), { shape: [image.height, image.width, 3] });
      const size = 32;
      const resized = interpolate(pixels.permute(2, 0, 1).unsqueeze(0), { size: [size, size], mode: "bilinear" }).squeeze(0);
      return resized.reshape(3, 4, 8, 4, 8).permute(1, 3, 0, 2, 4).reshape(16, 192);
    })));
  },
};

const root = temporaryDir("hypernet");
const SETTINGS: HyperNetworkTrainingSettings = {
  steps: 60, batchSize: 2, learningRate: 1e-2, weightDecay: 0, warmupSteps: 5, weightLoss: 10, checkpointEvery: 20, seed: 3,
};
const NETWORK = { hidden_size: 32, num_layers: 2, num_heads: 2, head_dim: 16, rounds: 2 };
let weightSet = "";

test("a weight set from DreamBooth, then training: the weight loss falls and the folder saves and loads", { timeout: 300_000 }, async (t) => {
  const identities = await writeIdentities(path.join(root, "faces"), 4);
  weightSet = path.join(root, "set");
  await trainDreamBooth(tinyConfig(weightSet, identities, { maxTrainSteps: 30, identitiesPerBatch: 4 }));
  const out = path.join(root, "straight");
  const result = await trainHyperNetwork({ weightSet, outputDir: out, encoder: patchEncoder, network: NETWORK, settings: SETTINGS });
  assert.ok(result.finished);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = mean(result.terms.slice(0, 10).map((x) => x.weight));
  const last = mean(result.terms.slice(-10).map((x) => x.weight));
  t.diagnostic(`weight loss (relative) first 10 steps ${first.toFixed(4)}, last 10 ${last.toFixed(4)}; diffusion ${mean(result.terms.slice(-10).map((x) => x.diffusion)).toFixed(4)}`);
  assert.ok(last < 0.5 * first, `the weight loss must fall: ${first} → ${last}`);
  const config = JSON.parse(readFileSync(path.join(result.dir, "config.json"), "utf8")) as { encoder: string; layers: string[]; training: { steps: number } };
  assert.equal(config.encoder, "patches-8x8", "the encoder is referenced, not copied");
  assert.equal(config.training.steps, 60);
  const { network, space } = loadHyperNetwork(result.dir);
  assert.equal(space.targets.length, config.layers.length);
  network.dispose();
  assert.ok(!existsSync(path.join(out, "checkpoints")), "checkpoints are removed once the network is saved");
});

test("a hypernetwork run stopped and resumed ends bit-identical to an uninterrupted one", { timeout: 300_000 }, async () => {
  assert.ok(weightSet !== "", "the test above makes the weight set");
  const out = path.join(root, "resumed");
  const first = await trainHyperNetwork({ weightSet, outputDir: out, encoder: patchEncoder, network: NETWORK, settings: SETTINGS, hooks: { stopAfterSteps: 25 } });
  assert.equal(first.finished, false);
  const lines: string[] = [];
  const second = await trainHyperNetwork({ weightSet, outputDir: out, encoder: patchEncoder, network: NETWORK, settings: SETTINGS, hooks: { log: (l) => lines.push(l) } });
  assert.ok(lines.some((l) => /hypernetwork: resuming from .*checkpoint-20 \(step 20 of 60\)/.test(l)), lines.join("\n"));
  const weights = (dir: string): Map<string, Uint8Array> => new Map([...loadSafetensors(path.join(dir, "model.safetensors")).tensors].map(([k, v]) => [k, v.bytes()]));
  assert.deepEqual(weights(second.dir), weights(path.join(root, "straight", "hypernetwork")));
  await assert.rejects(trainHyperNetwork({ weightSet, outputDir: path.join(root, "other"), encoder: patchEncoder, network: NETWORK, settings: { ...SETTINGS, batchSize: 9 } }),
    /set: 4 people, fewer than the batch size 9/);
});

test("target 'teacher': the diffusion term distils the pre-optimised weights' predictions and falls; zero when student = teacher", { timeout: 300_000 }, async (t) => {
  assert.ok(weightSet !== "", "the first test makes the weight set");
  const result = await trainHyperNetwork({
    weightSet, outputDir: path.join(root, "teacher"), encoder: patchEncoder, network: NETWORK, settings: { ...SETTINGS, weightLoss: 0, target: "teacher", steps: 40 },
  });
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = mean(result.terms.slice(0, 8).map((x) => x.diffusion));
  const last = mean(result.terms.slice(-8).map((x) => x.diffusion));
  t.diagnostic(`distillation loss first 8 steps ${first.toExponential(3)}, last 8 ${last.toExponential(3)} (weight loss, not trained on: ${mean(result.terms.slice(-8).map((x) => x.weight)).toFixed(3)})`);
  assert.ok(last < 0.5 * first, `the distillation loss must fall: ${first} → ${last}`);
  // The noise target's loss of the same network is far larger: it holds ε's variance, which the teacher's does not.
  const noise = await trainHyperNetwork({ weightSet, outputDir: path.join(root, "teacher-noise"), encoder: patchEncoder, network: NETWORK, settings: { ...SETTINGS, weightLoss: 0, steps: 8 } });
  assert.ok(mean(noise.terms.map((x) => x.diffusion)) > 10 * first, `noise-target loss ${mean(noise.terms.map((x) => x.diffusion))} vs distillation ${first}`);

  // Student = teacher: the same factors give the same prediction, so the loss is exactly 0.
  const { DreamBoothTrainer } = await import("../../src/dreambooth/trainer.js");
  const { resolveConfig } = await import("../../src/dreambooth/config.js");
  const { loadLidbFile } = await import("../../src/adapters/lidb/file.js");
  const identities = [{ id: "id1", images: [path.join(root, "faces", "id1", "photo-0.png")] }];
  const session = await DreamBoothTrainer.open(resolveConfig(tinyConfig(path.join(root, "teacher-check"), identities, { lidbA: 16, lidbB: 16 })), {}, { manifest: false });
  const run = await session.startIdentity(identities[0]!);
  const { factors } = loadLidbFile(path.join(weightSet, "id1.lidb.safetensors"));
  try {
    const teacher = new Map([["a_train", factors.aTrain], ["b_train", factors.bTrain]]);
    const generator = new Generator("cpu", 11);
    const same = noGrad(() => session.batchLosses([teacher], [run.draw(session.shared, false, generator)], false, 1, [teacher]));
    assert.deepEqual(same, [0]);
    const other = noGrad(() => session.batchLosses([run.factors], [run.draw(session.shared, false, generator)], false, 1, [teacher]));
    assert.ok(other[0]! > 0, "an untrained student differs from the teacher");
  } finally {
    factors.aTrain.dispose();
    factors.bTrain.dispose();
    session.release(run);
    session.dispose();
  }
});

test("target 'description': people given directly, the base model under each one's description is the target; the loss falls; 0 when the description is the instance prompt", { timeout: 300_000 }, async (t) => {
  assert.ok(weightSet !== "", "the first test makes the weight set");
  // 6 people of 2 photos: the network reads the first, the diffusion term denoises the second.
  const people = await writeIdentities(path.join(root, "people"), 6, 2);
  const descriptions = ["a red face", "a blue face", "a green face", "a dark face", "a pale face", "a round face"];
  const photos = { inputs: people.map((p) => p.images[0]!), targets: people.map((p) => p.images[1]!), descriptions };
  const settings = { ...SETTINGS, weightLoss: 0, target: "description" as const, steps: 40 };
  const result = await trainHyperNetwork({ weightSet, outputDir: path.join(root, "described"), encoder: patchEncoder, network: NETWORK, settings, photos });
  assert.ok(result.finished);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = mean(result.terms.slice(0, 8).map((x) => x.diffusion));
  const last = mean(result.terms.slice(-8).map((x) => x.diffusion));
  t.diagnostic(`description distillation loss first 8 steps ${first.toExponential(3)}, last 8 ${last.toExponential(3)}`);
  assert.ok(last < 0.5 * first, `the description distillation loss must fall: ${first} → ${last}`);
  assert.ok(result.terms.every((x) => Number.isNaN(x.weight)), "no pre-optimised weights: the weight term is not measured");

  // People given directly have no pre-optimised weights: the weight loss and the 'teacher' target are refused.
  await assert.rejects(trainHyperNetwork({ weightSet, outputDir: path.join(root, "described-bad"), encoder: patchEncoder, network: NETWORK, settings: { ...settings, weightLoss: 1 }, photos }),
    /the weight loss must be 0 \(got β = 1\)/);
  await assert.rejects(trainHyperNetwork({ weightSet, outputDir: path.join(root, "described-bad"), encoder: patchEncoder, network: NETWORK, settings: { ...settings, target: "teacher" }, photos }),
    /no pre-optimised weights to distil from/);
  await assert.rejects(trainHyperNetwork({ weightSet, outputDir: path.join(root, "described-bad"), encoder: patchEncoder, network: NETWORK, settings, photos: { ...photos, descriptions: descriptions.slice(1) } }),
    /6 input photos but 5 descriptions/);
  await assert.rejects(trainHyperNetwork({ weightSet, outputDir: path.join(root, "described-bad"), encoder: patchEncoder, network: NETWORK, settings }),
    /target 'description' needs people given with their descriptions/);

  // Known answer: with zero factors and the instance prompt itself as the description, student and teacher are one
  // model on one prompt, so the loss is exactly 0; another description gives a positive loss.
  const { DreamBoothTrainer } = await import("../../src/dreambooth/trainer.js");
  const { resolveConfig } = await import("../../src/dreambooth/config.js");
  const session = await DreamBoothTrainer.open(resolveConfig(tinyConfig(path.join(root, "described-check"), people.slice(0, 1), { lidbA: 16, lidbB: 16 })), {}, { manifest: false });
  const run = await session.startIdentity(people[0]!);
  try {
    const zero = new Map([...run.factors].map(([k, v]) => [k, zerosLike(v)]));
    const generator = new Generator("cpu", 5);
    const same = noGrad(() => session.batchLosses([zero], [run.draw(session.shared, false, generator)], false, 1, { prompts: ["a sks face"] }));
    assert.deepEqual(same, [0]);
    const other = noGrad(() => session.batchLosses([zero], [run.draw(session.shared, false, generator)], false, 1, { prompts: ["a red face"] }));
    assert.ok(other[0]! > 0, "another prompt gives another prediction");
    for (const v of zero.values()) v.dispose();
  } finally {
    session.release(run);
    session.dispose();
  }
});

test("a prediction is a LiDB file in the weight set's space that changes generation", { timeout: 300_000 }, async () => {
  const dir = path.join(root, "straight", "hypernetwork");
  const { network, space } = loadHyperNetwork(dir);
  const photo = path.join(root, "faces", "id1", "photo-0.png");
  const file = path.join(root, "id1.predicted.lidb.safetensors");
  try {
    const [prediction] = await predictLidbFiles(network, space, patchEncoder, [photo], [file]);
    assert.ok(prediction!.bytes > 1000);
  } finally {
    network.dispose();
  }
  const info = readLidbFileInfo(file);
  const trained = readLidbFileInfo(path.join(weightSet, "id1.lidb.safetensors"));
  assert.equal(info.basisChecksum, trained.basisChecksum, "the same aux bases as the weight set");
  assert.deepEqual(info.targets, trained.targets);
  assert.equal((info.training as { method: string }).method, "hypernetwork");
  const pipeline = await StableDiffusionPipeline.fromPretrained(tinySd1);
  try {
    const generate = (): Float32Array => tidy(() => {
      const result = pipeline.generate({ prompt: "a sks face", steps: 3, seed: 5 });
      result.latents.dispose();
      return result.images.data() as Float32Array;
    });
    const base = generate();
    const { adapters } = applyLidbFile({ unet: pipeline.unet, textEncoder: pipeline.textEncoder }, file);
    const personalised = generate();
    adapters.dispose();
    const difference = base.reduce((worst, v, i) => Math.max(worst, Math.abs(v - personalised[i]!)), 0);
    assert.ok(difference > 1e-3, `generation with the predicted file equals the base model's (max |Δ| ${difference})`);
  } finally {
    pipeline.dispose();
  }
});

test("HyperNetwork: θ_0 is the LiDB initialisation, each round adds a small step, shapes and bad input", () => {
  const layers = ["unet.a.to_q", "unet.a.to_k", "text_encoder.b.q_proj"];
  const network = new HyperNetwork(hyperNetworkConfig({ layers, lidb_a: 4, lidb_b: 3, encoder: "x", encoder_hidden_size: 8, hidden_size: 16, num_heads: 2, head_dim: 8, rounds: 3 }));
  try {
    noGrad(() => tidy(() => {
      const features = randn([2, 5, 8]);
      const thetas = network.refine(features, 3);
      assert.deepEqual(thetas.map((x) => x.shape), [[2, 3, 7], [2, 3, 7], [2, 3, 7]]);
      const initial: Tensor = stack(layers.map((name) => tensor(Float32Array.from([0, 0, 0, 0, ...lidbBTrainInit("0", name, { a: 4, b: 3, rank: 1 })]))));
      // The head starts at N(0, 1e-3): the first round stays near θ_0, and rounds move on from there.
      assert.ok(thetas[0]!.sub(initial).abs().max().item() < 0.05);
      assert.ok(thetas[2]!.sub(thetas[0]!).abs().max().item() > 0);
      const { aTrain, bTrain } = network.split(thetas[2]!);
      assert.deepEqual([aTrain.shape, bTrain.shape], [[2, 3, 4, 1], [2, 3, 1, 3]]);
      assert.throws(() => network.forward(randn([2, 5, 9])), /features must be \(B, T, 8\), got \[2, 5, 9\]/);
      assert.throws(() => network.refine(features, 0), /rounds must be a positive integer, got 0/);
    }));
    assert.throws(() => hyperNetworkConfig({ layers: [], lidb_a: 4, lidb_b: 3, encoder: "x", encoder_hidden_size: 8 }, "h/config.json"), /h\/config\.json: layers must be a non-empty list of layer names/);
  } finally {
    network.dispose();
  }
});
