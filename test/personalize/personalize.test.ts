// Personalisation (paper §4.3) on the tiny SD1 pipeline with a HyperNetwork trained here on a DreamBooth weight set
// and a tiny CLIP vision encoder: the real `hdb personalize` writes one LiDB file (prediction + rank-relaxed LoRA) whose
// LiDB part is exactly `hdb predict`'s, whose export is exactly one LoRA of rank 1 + r, and that `hdb generate` uses;
// the fine-tuning lowers the photo's DreamBooth loss below the prediction's alone; a person's result does not depend
// on who was personalised before in the process; the ablations (No Hyper, Only Hyper) run through the same entry.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadSafetensors, noGrad, tidy, type Tensor } from "../../src/engine/index.js";
import { applyLidbFile, loadLidbFile, readLidbFileInfo } from "../../src/adapters/lidb/file.js";
import { applyLoraFile } from "../../src/adapters/lora/file.js";
import { trainDreamBooth } from "../../src/dreambooth/trainer.js";
import { VisionFeatureEncoder } from "../../src/hypernetwork/encoder.js";
import { trainHyperNetwork } from "../../src/hypernetwork/train.js";
import { Personalizer } from "../../src/personalize/index.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";
import { generated, temporaryDir, tinyConfig, tinySd1, writeIdentities } from "../dreambooth/helpers.js";

const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const child = spawnSync(process.execPath, [hdb, ...args], { encoding: "utf8", timeout: 240_000, env: { ...process.env, OMP_NUM_THREADS: "1" } });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
};
const encoderDir = path.join(generated, "vision", "models", "clip_projection");
const root = temporaryDir("personalize");
let hypernetwork = "";
let faces = "";

const bytesOf = (file: string): Map<string, Uint8Array> => new Map([...loadSafetensors(file).tensors].map(([k, v]) => [k, v.bytes()]));

test("hdb personalize: one file with the prediction and the rank-relaxed part; exact export; hdb generate uses it", { timeout: 300_000 }, async () => {
  const identities = await writeIdentities(path.join(root, "faces"), 4);
  faces = path.join(root, "faces");
  const set = path.join(root, "set");
  await trainDreamBooth(tinyConfig(set, identities, { maxTrainSteps: 10, identitiesPerBatch: 4 }));
  const encoder = await VisionFeatureEncoder.fromPretrained(encoderDir);
  try {
    const trained = await trainHyperNetwork({
      weightSet: set, outputDir: path.join(root, "hn"), encoder, network: { hidden_size: 16, num_layers: 1, num_heads: 2, head_dim: 8, rounds: 2 },
      settings: { steps: 4, batchSize: 2, learningRate: 1e-2, weightDecay: 0, warmupSteps: 1, weightLoss: 1, checkpointEvery: 2, seed: 0 },
    });
    hypernetwork = trained.dir;
  } finally {
    encoder.dispose();
  }
  const photo = path.join(faces, "id2", "photo-0.png");
  const out = path.join(root, "me");
  const personalized = run("personalize", "--model", tinySd1, "--hypernetwork", hypernetwork, "--image", photo, "--out", out, "--steps", "4", "--rank", "2", "--threads", "1");
  assert.equal(personalized.status, 0, personalized.stderr);
  assert.match(personalized.stdout, /personalised in [\d.]+ s on 1 threads: encode [\d.]+ s, predict [\d.]+ s, merge [\d.]+ s, fine-tune [\d.]+ s \(4 steps\)/);
  const file = path.join(out, "person.lidb.safetensors");
  const info = readLidbFileInfo(file);
  assert.deepEqual(info.relaxed, { rank: 2, alpha: 2 });
  assert.equal(info.formatVersion, 2, "a file with a relaxed part is version 2");
  const summary = JSON.parse(readFileSync(path.join(out, "personalize.json"), "utf8")) as { times: Record<string, number>; exports: { format: string; bytes: number }[] };
  for (const phase of ["load", "encode", "predict", "merge", "fineTune", "save", "export", "total"]) assert.ok(Number.isFinite(summary.times[phase]), `time of ${phase}`);
  assert.deepEqual(summary.exports.map((e) => e.format), ["diffusers", "kohya"]);

  // The LiDB part is the prediction hdb predict makes from the same photo, bit for bit.
  const predicted = path.join(root, "predicted.lidb.safetensors");
  assert.equal(run("predict", "--hypernetwork", hypernetwork, "--image", photo, "--out", predicted, "--threads", "1").status, 0);
  const [ours, theirs] = [bytesOf(file), bytesOf(predicted)];
  assert.deepEqual(ours.get("lidb.a_train"), theirs.get("lidb.a_train"));
  assert.deepEqual(ours.get("lidb.b_train"), theirs.get("lidb.b_train"));

  // The export is one LoRA of rank 1 + 2 whose ΔW is the LiDB part's plus the relaxed part's, layer by layer.
  const pipeline = await StableDiffusionPipeline.fromPretrained(tinySd1);
  try {
    const models = { unet: pipeline.unet, textEncoder: pipeline.textEncoder };
    const applied = applyLidbFile(models, file);
    const exported = applyLoraFile(models, path.join(out, "pytorch_lora_weights.safetensors"), { name: "exported" });
    try {
      assert.ok(applied.relaxed, "the relaxed part is applied beside the LiDB part");
      let largest = 0;
      let magnitude = 0;
      for (const [target, lidb] of applied.adapters.entries()) {
        const one = exported.adapter(target.name);
        assert.equal(one.rank, 3);
        noGrad(() => tidy(() => {
          const sum: Tensor = lidb.deltaWeight().add(applied.relaxed!.adapter(target.name).deltaWeight());
          largest = Math.max(largest, one.deltaWeight().sub(sum).abs().max().item());
          magnitude = Math.max(magnitude, sum.abs().max().item());
        }));
      }
      assert.ok(magnitude > 0 && largest <= 1e-6 * Math.max(1, magnitude), `the export differs by ${largest} (ΔW up to ${magnitude})`);
    } finally {
      exported.dispose();
      applied.relaxed?.dispose();
      applied.adapters.dispose();
    }
  } finally {
    pipeline.dispose();
  }
  const image = path.join(root, "me.png");
  const generatedImage = run("generate", "--model", tinySd1, "--lidb", file, "--prompt", "a sks face", "--steps", "2", "--out", image, "--threads", "1");
  assert.equal(generatedImage.status, 0, generatedImage.stderr);
  assert.ok(existsSync(image));
});

test("the fine-tuning lowers the photo's loss below the prediction's; results do not depend on earlier people", { timeout: 300_000 }, async (t) => {
  assert.ok(hypernetwork !== "", "the test above trains the HyperNetwork");
  const [a, b] = [path.join(faces, "id1", "photo-0.png"), path.join(faces, "id3", "photo-0.png")];
  const personalizer = await Personalizer.open({ model: tinySd1, hypernetwork, settings: { steps: 30, rank: 2, learningRate: 1e-2 } });
  try {
    const first = await personalizer.personalize([a], path.join(root, "a1.lidb.safetensors"));
    await personalizer.personalize([b], path.join(root, "b.lidb.safetensors"));
    await personalizer.personalize([a], path.join(root, "a2.lidb.safetensors"));
    assert.deepEqual(bytesOf(path.join(root, "a2.lidb.safetensors")), bytesOf(path.join(root, "a1.lidb.safetensors")), "the same person again gives the same bits");

    // The DreamBooth loss of the photo, on the same fixed draws: prediction alone (the LoRA at its start, ΔW = 0) vs
    // prediction + the trained relaxed part.
    const { session } = personalizer;
    const probe = await session.startIdentity({ id: "probe", images: [a] });
    try {
      const predictedOnly = session.adapters.initialFactors();
      const trainedFile = loadLidbFile(first.file);
      const trained = new Map<string, Tensor>();
      for (const [layer, { down, up }] of trainedFile.relaxed!) trained.set(`${layer}.lora_A`, down).set(`${layer}.lora_B`, up);
      personalizer.merge(trainedFile.factors);
      const before = session.evaluate(probe, predictedOnly, { draws: 64 });
      const after = session.evaluate(probe, trained, { draws: 64 });
      personalizer.unmerge();
      t.diagnostic(`DreamBooth loss of the photo: prediction alone ${before.toFixed(5)}, after 30 relaxed steps ${after.toFixed(5)}; fine-tuning losses ${first.losses[0]!.toFixed(4)} → ${first.losses.at(-1)!.toFixed(4)}`);
      assert.ok(after < 0.9 * before, `the fine-tuning must lower the loss by ≥ 10 %: ${before} → ${after}`);
    } finally {
      session.release(probe);
    }
  } finally {
    personalizer.dispose();
  }
});

test("ablations through the same entry: No Hyper writes a LoRA that hdb generate takes, Only Hyper is the prediction", { timeout: 300_000 }, () => {
  assert.ok(hypernetwork !== "", "the first test trains the HyperNetwork");
  const photo = path.join(faces, "id0", "photo-0.png");
  const noHyper = run("personalize", "--model", tinySd1, "--no-hyper", "--image", photo, "--out", path.join(root, "no-hyper"), "--steps", "3", "--rank", "2", "--json", "--threads", "1");
  assert.equal(noHyper.status, 0, noHyper.stderr);
  const summary = JSON.parse(noHyper.stdout) as { kind: string; file: string };
  assert.equal(summary.kind, "lora");
  assert.equal(run("generate", "--model", tinySd1, "--lora", summary.file, "--prompt", "a sks face", "--steps", "2", "--out", path.join(root, "nh.png"), "--threads", "1").status, 0);
  const only = run("personalize", "--model", tinySd1, "--hypernetwork", hypernetwork, "--only-hyper", "--image", photo, "--out", path.join(root, "only"), "--threads", "1");
  assert.equal(only.status, 0, only.stderr);
  assert.equal(readLidbFileInfo(path.join(root, "only", "person.lidb.safetensors")).relaxed, null, "no relaxed part without fine-tuning");
  const both = run("personalize", "--model", tinySd1, "--no-hyper", "--only-hyper", "--image", photo, "--out", path.join(root, "x"));
  assert.notEqual(both.status, 0);
  assert.match(both.stderr, /--no-hyper and --only-hyper exclude each other/);
  const missing = run("personalize", "--model", tinySd1, "--hypernetwork", path.join(root, "nowhere"), "--image", photo, "--out", path.join(root, "y"));
  assert.match(missing.stderr, /--hypernetwork: .*nowhere holds no trained HyperNetwork \(config\.json\).*--no-hyper/);
  const onFile = run("personalize", "--model", tinySd1, "--no-hyper", "--image", photo, "--out", photo);
  assert.match(onFile.stderr, /--out .*photo-0\.png is a file; give the result folder/);
  // An earlier person's results are not replaced without --force (and nothing is touched when refused).
  const before = readFileSync(path.join(root, "only", "person.lidb.safetensors"));
  const again = run("personalize", "--model", tinySd1, "--hypernetwork", hypernetwork, "--only-hyper", "--image", photo, "--out", path.join(root, "only"), "--threads", "1");
  assert.equal(again.status, 1);
  assert.match(again.stderr, /--out .*only already holds results \(person\.lidb\.safetensors, .*personalize\.json\): pass --force to replace them/);
  assert.deepEqual(readFileSync(path.join(root, "only", "person.lidb.safetensors")), before);
  const forced = run("personalize", "--model", tinySd1, "--hypernetwork", hypernetwork, "--only-hyper", "--image", photo, "--out", path.join(root, "only"), "--force", "--threads", "1");
  assert.equal(forced.status, 0, forced.stderr);
});
