// The mini-world's image encoder (src/miniworld/hypernetwork/encoder.ts) at toy size, through the real recipe:
// its data are pretraining identities (the checks' held-out ones), its pixels are CLIPImageProcessor's bit for bit,
// the CLIP loss falls over 30 steps, a run stopped after a checkpoint resumes to the very same weights, the saved
// folder loads with CLIPVisionModelWithProjection / CLIPImageProcessor (and as the HyperNetwork's encoder), and
// bad settings and flags fail naming them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { eye, fromBytes, full, noGrad, setNumThreads, tidy } from "../../src/engine/index.js";
import { VisionFeatureEncoder } from "../../src/hypernetwork/encoder.js";
import { planSamples } from "../../src/miniworld/base-model/dataset.js";
import {
  captionVariants, clipLoss, ContrastiveCLIP, ENCODER_PREPROCESSOR_CONFIG, LOGIT_SCALE_INIT, LOGIT_SCALE_MAX, pixelValues, trainEncoder, type EncoderRecord, type EncoderTrainingOptions,
} from "../../src/miniworld/hypernetwork/encoder.js";
import { retrievalRequests } from "../../src/miniworld/hypernetwork/encoder-evaluation.js";
import { renderFace } from "../../src/miniworld/render.js";
import { splitOf } from "../../src/miniworld/splits.js";
import { CLIPImageProcessor, parseImageProcessorConfig } from "../../src/models/clip/image-processor.js";
import { clipTextConfig } from "../../src/models/clip/text-config.js";
import { clipVisionConfig } from "../../src/models/clip/vision-config.js";
import { CLIPVisionModelWithProjection } from "../../src/models/clip/vision-encoder.js";
import { savePng } from "../../src/pipeline/images.js";
import { readTrainingLog } from "../../src/training/index.js";
import { skipOutsideCI } from "../prerequisites.js";

setNumThreads(1);
const root = mkdtempSync(path.join(tmpdir(), "miniworld-encoder-"));
after(() => rmSync(root, { recursive: true, force: true }));
const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const python = fileURLToPath(new URL("../../../.venv/bin/python", import.meta.url));
const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

const TINY_VISION = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, projection_dim: 16 };
const TINY_TEXT = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2 };
const run = (name: string, extra: Partial<EncoderTrainingOptions> = {}): EncoderTrainingOptions => ({
  outDir: path.join(root, name), workDir: path.join(root, `${name}-work`), vision: TINY_VISION, text: TINY_TEXT, datasetSize: 32, batchSize: 16,
  steps: 30, warmupSteps: 3, learningRate: 3e-3, checkpointEvery: 100, threads: 1, seed: 1, evaluation: { identities: 8, retrievalImages: 16 },
  command: ["test", name], ...extra,
});

/** Every tensor of a saved image tower, as float32 values. */
const savedWeights = (dir: string): Map<string, Float32Array> => tidy(() => {
  using model = CLIPVisionModelWithProjection.fromFolder(dir);
  return new Map([...model.stateDict()].map(([key, value]) => [key, value.data() as Float32Array]));
});

test("data: the base model's plan over pretraining identities; the checks' renders are held-out ones", () => {
  const samples = planSamples(32, 1);
  assert.ok(samples.every((s) => splitOf(s.id) === "pretraining"));
  assert.equal(new Set(samples.map((s) => s.id)).size, 32);
  const captions = captionVariants(samples, 3, 1);
  assert.equal(captions.length, 96);
  assert.deepEqual(captions.slice(0, 32), samples.map((s) => s.caption), "the first captions are the base model's");
  assert.ok(captions.slice(32).filter((c, i) => c !== samples[i % 32]!.caption).length > 32, "the others name other attributes");
  const retrieval = retrievalRequests(16, 1);
  assert.ok(retrieval.every((r) => splitOf(r.request.id) === "held-out"));
  assert.deepEqual(retrievalRequests(16, 1), retrieval);
  assert.ok(retrieval.some((r) => (r.request.style as string[]).length > 0), "the retrieval renders carry styles, as the training set does");
});

test("pixel values are CLIPImageProcessor's, bit for bit; the loss and the temperature are CLIP's", async () => {
  const faces = await Promise.all([60_000, 60_001].map((id) => renderFace(id, { nuisanceSeed: 3 })));
  tidy(() => {
    const expected = new CLIPImageProcessor({ ...ENCODER_PREPROCESSOR_CONFIG }).preprocess(faces);
    const bytes = new Uint8Array(2 * 64 * 64 * 3);
    faces.forEach((face, i) => bytes.set(face.data, i * face.data.length));
    const actual = pixelValues(fromBytes(bytes, "uint8", [2, 64, 64, 3]), parseImageProcessorConfig({ ...ENCODER_PREPROCESSOR_CONFIG }));
    assert.deepEqual(actual.shape, [2, 3, 64, 64]);
    assert.deepEqual(actual.data(), expected.data());
    assert.ok(actual.min().item() >= -1 && actual.max().item() <= 1, "mean and std 0.5 map pixels to [-1, 1]");
    // Matching pairs cost almost nothing at temperature 0.07; mismatched ones cost ≈ 2/0.07.
    const embeds = eye(4);
    const scale = full([], LOGIT_SCALE_INIT);
    const matched = clipLoss(embeds, embeds, scale).item();
    const mismatched = clipLoss(embeds, embeds.flip(0), scale).item();
    assert.ok(matched < 1e-4 && mismatched > 10, `matched ${matched}, mismatched ${mismatched}`);
  });
  using model = new ContrastiveCLIP(clipVisionConfig({ ...TINY_VISION, image_size: 64, patch_size: 8 }), clipTextConfig({ ...TINY_TEXT, vocab_size: 10, eos_token_id: 9 }));
  assert.ok(Math.abs(model.logitScale.item() - Math.log(1 / 0.07)) < 1e-6, "logit_scale starts at ln(1/0.07)");
  noGrad(() => model.logitScale.fill_(7));
  model.clampLogitScale();
  assert.ok(Math.abs(model.logitScale.item() - LOGIT_SCALE_MAX) < 1e-6, "clamped at ln 100");
});

test("30 steps lower the CLIP loss; the saved image tower loads with transformers' classes and as the HyperNetwork's encoder", async () => {
  const options = run("trained");
  const result = await trainEncoder(options);
  assert.equal(result.finished, true);
  assert.equal(result.losses.length, 30);
  const [first, last] = [mean(result.losses.slice(0, 5)), mean(result.losses.slice(-5))];
  console.log(`encoder: loss ${first.toFixed(3)} → ${last.toFixed(3)} (ln 16 = ${Math.log(16).toFixed(3)})`);
  // Measured 3.79 → 2.42 (−36 %; seeded, one thread); the bar leaves room for other libtorch builds: −25 %.
  assert.ok(last < 0.75 * first, `loss ${first} → ${last}: not 25 % lower`);
  assert.deepEqual(readdirSync(options.outDir).sort(), ["config.json", "model.safetensors", "preprocessor_config.json", "training.json"]);
  assert.ok(!existsSync(path.join(options.workDir, "checkpoints")), "checkpoints are removed once the encoder is saved");

  const config = JSON.parse(readFileSync(path.join(options.outDir, "config.json"), "utf8")) as Record<string, unknown>;
  assert.equal(config.model_type, "clip_vision_model");
  assert.deepEqual(config.architectures, ["CLIPVisionModelWithProjection"]);
  const record = JSON.parse(readFileSync(path.join(options.outDir, "training.json"), "utf8")) as EncoderRecord;
  assert.equal(record.steps, 30);
  assert.equal(record.provenance.command, "test trained");
  assert.ok(Object.keys(record.provenance.files).some((f) => f.endsWith("model.safetensors")));
  for (const variant of [record.evaluation.trained, record.evaluation.untrained]) {
    for (const value of Object.values(variant)) assert.ok(value >= 0 && value <= 1, JSON.stringify(variant));
  }
  console.log(`encoder: held-out checks ${JSON.stringify(record.evaluation)}`);
  assert.ok(record.logitScale > 1 && record.logitScale <= 100);

  using model = await CLIPVisionModelWithProjection.fromPretrained(options.outDir);
  const processor = await CLIPImageProcessor.fromPretrained(options.outDir);
  assert.deepEqual(processor.config.crop_size, { height: 64, width: 64 });
  const face = await renderFace(60_010, { nuisanceSeed: 4, size: 96 });
  tidy(() => {
    const pixels = processor.preprocess(face);
    assert.deepEqual(pixels.shape, [1, 3, 64, 64], "a 96-px photo is brought to 64 px");
    const output = model.forward(pixels, { outputHiddenStates: true });
    assert.deepEqual(output.imageEmbeds.shape, [1, 16]);
    assert.deepEqual(output.hiddenStates!.at(-2)!.shape, [1, 65, 32]);
  });
  const photo = path.join(root, "photo.png");
  await savePng(photo, face);
  // transformers itself (the .venv oracle) loads the folder, its strictly typed config included (a float field
  // written as `1` is refused by transformers ≥ 5), and embeds the photo as ours does.
  if (!skipOutsideCI(existsSync(python) ? false : "no .venv")) {
    const script = [
      "import json, sys, torch", "torch.set_num_threads(1)", "from PIL import Image", "from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection",
      "model = CLIPVisionModelWithProjection.from_pretrained(sys.argv[1]).eval()", "processor = CLIPImageProcessor.from_pretrained(sys.argv[1])",
      "pixels = processor(images=Image.open(sys.argv[2]).convert('RGB'), return_tensors='pt').pixel_values",
      "with torch.no_grad(): print(json.dumps(model(pixel_values=pixels).image_embeds[0].tolist()))",
    ].join("\n");
    const child = spawnSync(python, ["-c", script, options.outDir, photo], { encoding: "utf8", timeout: 120_000 });
    assert.equal(child.status, 0, child.stderr);
    const theirs = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as number[];
    const ours = tidy(() => Array.from(model.forward(processor.preprocess(face)).imageEmbeds.data() as Float32Array));
    const error = Math.max(...ours.map((v, i) => Math.abs(v - theirs[i]!))) / Math.max(...theirs.map(Math.abs));
    // Measured 1.3e-5: float sums in another order (transformers' attention kernel is not ours); the 1e-5 parity of
    // the module itself is test/models' on random weights. This checks that the folder loads as the same model.
    assert.ok(error <= 1e-4, `image embeddings differ from transformers' by ${error} of their largest`);
  }
  const encoder = await VisionFeatureEncoder.fromPretrained(options.outDir);
  try {
    using features = await encoder.encode([photo]);
    assert.deepEqual(features.shape, [1, 65, 32]);
  } finally {
    encoder.dispose();
  }
  await assert.rejects(trainEncoder(options), /holds a finished encoder \(training\.json\)/);
});

test("a run stopped after a checkpoint resumes to the same losses and weights as an uninterrupted one", async () => {
  const settings = { steps: 7, checkpointEvery: 3 };
  const straight = await trainEncoder(run("straight", settings));
  const interrupted = run("resumed", settings);
  const first = await trainEncoder({ ...interrupted, stopAfterSteps: 5 });
  assert.equal(first.finished, false);
  assert.equal(first.record, null);
  assert.deepEqual(readdirSync(path.join(interrupted.workDir, "checkpoints")), ["checkpoint-3"]);
  assert.ok(!existsSync(interrupted.outDir), "nothing is saved before the end");
  await assert.rejects(trainEncoder({ ...interrupted, learningRate: 1e-3 }), /settings differ from this run's in learningRate \(saved 0\.003, now 0\.001\)/);
  const lines: string[] = [];
  const resumed = await trainEncoder({ ...interrupted, log: (line) => lines.push(line) });
  assert.equal(resumed.finished, true);
  assert.ok(lines.some((line) => /^miniworld-encoder: resuming from .*checkpoint-3 \(step 3 of 7\)$/.test(line)), lines.join("\n"));
  const logged = readTrainingLog(path.join(interrupted.workDir, "miniworld-encoder.log.jsonl"));
  assert.deepEqual(logged.events.map((e) => `${e.event}@${e.step}`), ["started@0", "resumed@3", "finished@7"]);
  assert.deepEqual(resumed.losses, straight.losses);
  assert.deepEqual(resumed.record!.evaluation.trained, straight.record!.evaluation.trained);
  const expected = savedWeights(path.join(root, "straight"));
  const actual = savedWeights(interrupted.outDir);
  assert.deepEqual([...actual.keys()], [...expected.keys()]);
  for (const [key, values] of expected) assert.deepEqual(actual.get(key), values, key);
});

test("bad settings are refused before anything is rendered", async () => {
  const bad = run("never");
  await assert.rejects(trainEncoder({ ...bad, batchSize: 64 }), /batchSize must be an integer in \[2, datasetSize = 32\].*got 64/);
  await assert.rejects(trainEncoder({ ...bad, vision: { ...TINY_VISION, image_size: 32 } }), /vision\.image_size must be 64/);
  await assert.rejects(trainEncoder({ ...bad, vision: { ...TINY_VISION, num_attention_heads: 3 } }), /hidden_size.*multiple of num_attention_heads \(3\)/);
  await assert.rejects(trainEncoder({ ...bad, evaluation: { identities: 1 } }), /evaluation\.identities must be an integer in \[2, 1000\], got 1/);
  await assert.rejects(trainEncoder({ ...bad, datasetSize: 50_001 }), /datasetSize must be an integer in \[2, 50000\]/);
  assert.ok(!existsSync(bad.workDir));
  mkdirSync(bad.outDir, { recursive: true });
  writeFileSync(path.join(bad.outDir, "training.json"), "{}");
  await assert.rejects(trainEncoder(bad), /holds a finished encoder/);
});

test("hdb miniworld encoder: bad flags fail with one line naming the flag", () => {
  const cases: [string[], RegExp][] = [
    [["--steps", "0"], /--steps must be a positive integer, got '0'/],
    [["--out", "x", "--batch-size", "many"], /--batch-size must be an integer ≥ 2, got 'many'/],
    [["--out", "x", "--stepz", "3"], /unknown flag --stepz \(did you mean --steps\?\)/],
    [["--out", "x", "--learning-rate", "0"], /--learning-rate must be a number > 0, got '0'/],
    [["--steps", "3"], /--out is required/],
    [["--out", "x", "--batch-size", "64", "--dataset-size", "32"], /--batch-size 64 must be at most --dataset-size 32/],
  ];
  for (const [args, message] of cases) {
    const child = spawnSync(process.execPath, [hdb, "miniworld", "encoder", ...args], { encoding: "utf8", timeout: 60_000 });
    assert.equal(child.status, 1, `${args.join(" ")}: ${child.stderr}`);
    assert.match(child.stderr, message);
    assert.equal(child.stderr.trim().split("\n").length, 1, child.stderr);
  }
  const help = spawnSync(process.execPath, [hdb, "miniworld", "encoder", "--help"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(help.status, 0);
  for (const flag of ["--out", "--work", "--steps", "--batch-size", "--dataset-size", "--threads"]) assert.ok(help.stdout.includes(flag), flag);
});
