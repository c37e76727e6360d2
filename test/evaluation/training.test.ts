// Training the metric networks on tiny settings: the data is deterministic and labelled as documented, the loss
// falls, the saved network loads, and a run killed after a checkpoint resumes to the very same weights.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { loadSafetensors, setNumThreads, tidy } from "../../src/engine/index.js";
import {
  evaluateFidelityNetwork, evaluateIdentityNetwork, fidelityExamples, HAIR_COLOUR_LABELS, identityTrainingRequests, IdentityNetwork,
  PromptFidelityNetwork, STYLE_LABELS, trainFidelityNetwork, trainIdentityNetwork, trainingIdentityIds,
  type FidelityTrainingOptions, type IdentityNetworkConfig, type IdentityTrainingOptions,
} from "../../src/evaluation/index.js";
import { identityFromId, WORLD_SEED } from "../../src/miniworld/identity.js";
import { nuisanceFor } from "../../src/miniworld/nuisance.js";
import { splitIds, splitOf } from "../../src/miniworld/splits.js";
import { styleByName } from "../../src/miniworld/styles.js";
import { readTrainingLog } from "../../src/training/index.js";

setNumThreads(1);
const root = mkdtempSync(path.join(tmpdir(), "metric-training-"));
after(() => rmSync(root, { recursive: true, force: true }));

const TINY: IdentityNetworkConfig = { sampleSize: 16, inChannels: 3, blockOutChannels: [8, 16], layersPerBlock: 1, normNumGroups: 4, stemStride: 2, featureDim: 16 };
const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

test("training data: distinct pretraining identities, seeded renders, balanced style classes, masked hair colours", () => {
  const ids = trainingIdentityIds(300, 5);
  assert.equal(new Set(ids).size, 300);
  assert.ok(ids.every((id) => splitOf(id) === "pretraining"));
  assert.deepEqual(trainingIdentityIds(300, 5), ids);
  assert.notDeepEqual(trainingIdentityIds(300, 6), ids);
  const requests = identityTrainingRequests(ids.slice(0, 100), 4, 0.5, 5);
  assert.equal(requests.length, 400);
  assert.ok(requests.every((r, i) => r.id === ids[Math.floor(i / 4)]));
  const styled = requests.filter((r) => r.style !== undefined).length;
  assert.ok(styled > 150 && styled < 250, `${styled} of 400 styled`);
  assert.deepEqual(identityTrainingRequests(ids.slice(0, 100), 4, 0.5, 5), requests);

  const examples = fidelityExamples(31 * 30, 2, splitIds("pretraining"), STYLE_LABELS, HAIR_COLOUR_LABELS);
  for (let c = 0; c < 31; c++) assert.equal(examples.filter((e) => e.requestedStyle === c).length, 30);
  const shows = { smile: "smiling", surprised: "surprised", angry: "angry", neutral: "photo", open: "photo" } as const;
  for (const e of examples) {
    const style = e.request.style as string | undefined;
    assert.equal(style ?? "photo", STYLE_LABELS[e.requestedStyle]);
    // A photo whose nuisance smiles (frowns, gasps) is labelled with the expression style it shows.
    const expression = nuisanceFor(e.request.id, e.request.nuisanceSeed, WORLD_SEED).expression;
    assert.equal(STYLE_LABELS[e.style], style ?? shows[expression]);
    const identity = identityFromId(e.request.id);
    const hidden = identity.hair.style === "bald" || (style !== undefined && (styleByName(style).hides ?? []).includes("hair colour"));
    assert.equal(e.hairColour, hidden ? -100 : HAIR_COLOUR_LABELS.indexOf(identity.hair.colour));
  }
  assert.ok(examples.some((e) => e.hairColour === -100) && examples.some((e) => e.hairColour >= 0));
  assert.ok(examples.some((e) => e.requestedStyle === 0 && e.style !== 0), "some photos show an expression style");
});

test("a short fidelity training run lowers the loss and saves a network that loads and evaluates", async () => {
  const outDir = path.join(root, "fidelity");
  const result = await trainFidelityNetwork({
    outDir, workDir: path.join(root, "fidelity-work"), network: TINY, imagesPerClass: 3, steps: 40, batchSize: 16,
    warmupSteps: 5, learningRate: 5e-3, checkpointEvery: 100, threads: 1, seed: 1,
  });
  assert.equal(result.finished, true);
  assert.equal(result.losses.length, 40);
  assert.ok(mean(result.losses.slice(-8)) < 0.8 * mean(result.losses.slice(0, 8)), `loss ${mean(result.losses.slice(0, 8))} → ${mean(result.losses.slice(-8))}`);
  assert.ok(!existsSync(path.join(root, "fidelity-work", "checkpoints")), "checkpoints are removed once the network is saved");
  using network = PromptFidelityNetwork.load(outDir);
  const evaluation = await evaluateFidelityNetwork(network, { identities: splitIds("held-out", 50), imagesPerClass: 1 });
  assert.equal(evaluation.images, 31);
  // Chance is 1/31 for the style and 1/15 for the hair colour; 40 steps on 3 images per class beat both (measured
  // 4/31 styles, 0.35 hair colours; the run is seeded and single-threaded, so these numbers are fixed).
  console.log(`fidelity: style accuracy ${evaluation.styleAccuracy}, hair colour ${evaluation.hairColourAccuracy}`);
  assert.ok(evaluation.styleAccuracy >= 3 / 31, `style accuracy ${evaluation.styleAccuracy} is not 3× chance (1/31)`);
  assert.ok(evaluation.hairColourAccuracy >= 3 / 15, `hair-colour accuracy ${evaluation.hairColourAccuracy} is not 3× chance (1/15)`);
  assert.equal(Object.values(evaluation.perStyleCount).reduce((a, b) => a + b, 0), 31);
  assert.ok(Object.keys(evaluation.perStyleAccuracy).every((label) => STYLE_LABELS.includes(label)));
});

test("bad settings are refused before anything is rendered", async () => {
  const base = { outDir: path.join(root, "never"), workDir: path.join(root, "never-work"), identities: 4, imagesPerIdentity: 1 };
  await assert.rejects(trainIdentityNetwork({ ...base, steps: 0 }), /steps must be a positive integer, got 0/);
  await assert.rejects(trainIdentityNetwork({ ...base, network: { normNumGroups: 5 } }), /block_out_channels 32 is not divisible by norm_num_groups 5/);
  await assert.rejects(trainFidelityNetwork({ ...base, dtype: "bfloat16" as "float16" }), /dtype must be "float16" or "float32"/);
  assert.ok(!existsSync(base.workDir));
});

const identityRun = (name: string, extra: Partial<IdentityTrainingOptions> = {}): IdentityTrainingOptions => ({
  outDir: path.join(root, name), workDir: path.join(root, `${name}-work`), network: TINY, identities: 12, imagesPerIdentity: 3,
  steps: 30, batchSize: 16, warmupSteps: 3, learningRate: 5e-3, margin: 0.1, scale: 10, checkpointEvery: 100, threads: 1, seed: 3,
  dtype: "float32", ...extra,
});

test("a short identity training run lowers the loss; the network evaluates on held-out identities", async () => {
  const result = await trainIdentityNetwork(identityRun("identity"));
  assert.equal(result.finished, true);
  assert.ok(mean(result.losses.slice(-6)) < 0.8 * mean(result.losses.slice(0, 6)), `loss ${mean(result.losses.slice(0, 6))} → ${mean(result.losses.slice(-6))}`);
  using network = IdentityNetwork.load(path.join(root, "identity"));
  const evaluation = await evaluateIdentityNetwork(network, { identities: splitIds("held-out", 6), styles: ["pencil-sketch", "wearing-a-red-hat"] });
  assert.equal(evaluation.identities, 6);
  assert.deepEqual(Object.keys(evaluation.perStyleAuc), ["pencil-sketch", "wearing-a-red-hat"]);
  // Chance is an AUC of 0.5; 30 steps on 12 identities reach 0.84 plain and 0.72 across styles (seeded, one thread).
  console.log(`identity: plain AUC ${evaluation.plainAuc}, cross-style ${evaluation.crossStyleAuc}`);
  assert.ok(evaluation.plainAuc >= 0.7, `plain AUC ${evaluation.plainAuc} < 0.7 (chance 0.5)`);
  assert.ok(evaluation.crossStyleAuc >= 0.6, `cross-style AUC ${evaluation.crossStyleAuc} < 0.6 (chance 0.5)`);
});

/** Every tensor of a saved network's weights, as float32 arrays. */
const savedWeights = (dir: string): Map<string, Float32Array> => tidy(() => {
  const { tensors } = loadSafetensors(path.join(dir, "model.safetensors"));
  const result = new Map([...tensors].map(([key, value]) => [key, value.data() as Float32Array]));
  for (const value of tensors.values()) value.dispose();
  return result;
});

test("an identity run killed after a checkpoint resumes to the same final weights as an uninterrupted run", async () => {
  const settings = { steps: 7, checkpointEvery: 3 };
  const straight = await trainIdentityNetwork(identityRun("straight", settings));
  assert.equal(straight.finished, true);

  const interrupted = identityRun("resumed", settings);
  const first = await trainIdentityNetwork({ ...interrupted, stopAfterSteps: 5 });
  assert.equal(first.finished, false);
  assert.equal(first.step, 5);
  assert.deepEqual(readdirSync(path.join(interrupted.workDir, "checkpoints")), ["checkpoint-3"]);
  assert.ok(!existsSync(interrupted.outDir), "nothing is saved before the end");
  await assert.rejects(trainIdentityNetwork({ ...interrupted, learningRate: 1e-3 }), /settings differ from this run's in learningRate \(saved 0\.005, now 0\.001\)/);

  const lines: string[] = [];
  const resumed = await trainIdentityNetwork({ ...interrupted, log: (line) => lines.push(line) });
  assert.equal(resumed.finished, true);
  assert.ok(lines.some((line) => /^identity-network: resuming from .*checkpoint-3 \(step 3 of 7\)$/.test(line)), lines.join("\n"));
  // The JSONL log holds every step once, the steps after the checkpoint twice (re-run after the resume): the last counts.
  const logged = readTrainingLog(path.join(interrupted.workDir, "identity-network.log.jsonl"));
  assert.deepEqual(logged.steps.map((line) => line.step).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(logged.events.map((e) => `${e.event}@${e.step}`), ["started@0", "resumed@3", "finished@7"]);
  assert.ok(lines.some((line) => line.startsWith("loaded 36 training images")), "the rendered set comes from the work folder's cache");
  assert.deepEqual(resumed.losses, straight.losses);
  const expected = savedWeights(path.join(root, "straight"));
  const actual = savedWeights(interrupted.outDir);
  assert.deepEqual([...actual.keys()], [...expected.keys()]);
  for (const [key, values] of expected) assert.deepEqual(actual.get(key), values, key);
});

test("a fidelity run (random flips included) resumes to the same final weights as an uninterrupted run", async () => {
  const run = (name: string): FidelityTrainingOptions => ({
    outDir: path.join(root, name), workDir: path.join(root, `${name}-work`), network: TINY, imagesPerClass: 1, steps: 5, batchSize: 8,
    checkpointEvery: 2, warmupSteps: 1, threads: 1, seed: 4, dtype: "float32", flipProbability: 0.5,
  });
  const straight = await trainFidelityNetwork(run("fidelity-straight"));
  const first = await trainFidelityNetwork({ ...run("fidelity-resumed"), stopAfterSteps: 3 });
  assert.equal(first.finished, false);
  const resumed = await trainFidelityNetwork(run("fidelity-resumed"));
  assert.deepEqual(resumed.losses, straight.losses);
  const expected = savedWeights(path.join(root, "fidelity-straight"));
  for (const [key, values] of savedWeights(path.join(root, "fidelity-resumed"))) assert.deepEqual(values, expected.get(key), key);
});
