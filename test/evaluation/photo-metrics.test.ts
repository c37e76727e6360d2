// HyperDreamBooth §5's metrics at Stable Diffusion scale (src/evaluation/photo-metrics/, `hdb score`), against the
// oracle of test/oracle/fixtures_photo_metrics.py: tiny random ViTModel (DINO) and full CLIPModel (CLIP-I, CLIP-T) in
// real Hugging Face folder layouts, scored on PNG test images. The scorer's DINO, CLIP-I and CLIP-T equal the
// oracle's cosines within 1e-5 when the oracle resizes as we do (torch's uint8 antialiased resize; measured worst:
// 1.1e-16), and within 5e-3 of transformers' own PIL pipeline (measured worst: 2.7e-3, DINO of a downscaled image
// through a random tiny ViT). Features themselves (CLS, image_embeds, text_embeds) within 1e-5 (measured: 0, one
// thread). A DINO folder without preprocessor_config.json gets dino-vits16's settings. Face Rec on the
// face-api demo photos: a photo against itself ≈ 1, another person lower, a blank image no face (null) with the
// detection rate beside the mean. The CLI on the tiny folders, and its bad-input lines.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { tidy, type Tensor } from "../../src/engine/index.js";
import {
  ClipImageMetric, ClipTextMetric, cosineSimilarity, DinoMetric, PhotoScorer, removeIdentifier, summarizePhotoScores, type PhotoScores,
} from "../../src/evaluation/photo-metrics/index.js";
import { readPhoto } from "../../src/faces/index.js";
import { demoPhoto } from "../faces/face-api-oracle.js";
import { expected, imageFile, meta, modelDir, ref } from "../models/photo-metrics-fixtures.js";

const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "hdb-photo-metrics-"));
const env = { ...process.env, HDB_FACE_CACHE: join(dir, "face-cache") };
process.env["HDB_FACE_CACHE"] = env.HDB_FACE_CACHE;
after(() => {
  for (const t of expected.values()) t.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** The oracle's images, in its order; "reference" is the reference photo (scored against itself too). */
const images = meta.images.map(imageFile);
const person = join(dir, "person.jpg");
const otherPerson = join(dir, "other-person.jpg");
const blank = join(dir, "blank.png");
before(async () => {
  await sharp(demoPhoto(1)).rotate().resize(640).jpeg({ quality: 95 }).toFile(person);
  await sharp(demoPhoto(6)).rotate().resize(960).jpeg({ quality: 95 }).toFile(otherPerson);
  await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toFile(blank);
});

function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape, "shapes differ");
  return tidy(() => a.float().sub(b.float()).abs().max().item());
}

function near(t: TestContext, label: string, actual: number | null, reference: number, bar: number): number {
  assert.ok(actual !== null, `${label}: not measured`);
  const error = Math.abs(actual - reference);
  t.diagnostic(`${label}: ${actual.toFixed(6)} vs ${reference.toFixed(6)} (error ${error.toExponential(2)})`);
  assert.ok(error <= bar, `${label}: ${actual} differs from ${reference} by ${error} (bar ${bar})`);
  return error;
}

test("the identifier is removed from the prompt as the paper compares it (CLIP-T)", () => {
  assert.equal(removeIdentifier("a sks face as a pencil sketch", "sks"), "a face as a pencil sketch");
  assert.equal(removeIdentifier("Sks face, smiling", "sks"), "face, smiling");
  assert.equal(removeIdentifier("a photo of sks person on a beach with sks", "sks"), "a photo of person on a beach with");
  assert.equal(removeIdentifier("a [V] face", "[V]"), "a face");
  assert.equal(removeIdentifier("a sksy face", "sks"), "a sksy face", "whole words only");
  assert.equal(removeIdentifier("a  face", "sks"), "a face");
  assert.throws(() => removeIdentifier("a sks face", " "), /identifier .* is empty/);
});

test("each metric's features equal transformers' (DINO CLS, CLIP image_embeds, CLIP text_embeds)", async (t) => {
  const dino = DinoMetric.fromFolder(modelDir("dino"));
  const clipImage = ClipImageMetric.fromFolder(modelDir("clip"));
  const clipText = ClipTextMetric.fromFolder(modelDir("clip"));
  let worst = 0;
  for (const name of meta.images) {
    const photo = await readPhoto(imageFile(name));
    tidy(() => {
      assert.equal(maxAbsDiff(photo.pixels, ref(`image/${name}`)), 0, `${name}: the PNG reads as the oracle read it`);
      const cls = dino.features([photo.pixels]);
      const embeds = clipImage.embeddings([photo.pixels]);
      for (const [label, ours, theirs] of [["DINO CLS", cls, `dino/${name}/cls/torch_aa`], ["CLIP image_embeds", embeds, `clip/${name}/image_embeds/torch_aa`]] as const) {
        const error = maxAbsDiff(ours, ref(theirs));
        t.diagnostic(`${name} ${label}: max abs error ${error.toExponential(2)}`);
        assert.ok(error <= 1e-5, `${name} ${label}: ${error}`);
        worst = Math.max(worst, error);
      }
    });
    photo.pixels.dispose();
  }
  const ids = clipText.tokenizer.call([meta.text_prompt], { padding: "max_length", truncation: true, maxLength: 77 }).inputIds[0];
  assert.deepEqual(ids, meta.clip_text.ids, "the prompt's token ids");
  tidy(() => {
    const error = maxAbsDiff(clipText.embeddings(meta.text_prompt), ref("clip/text/text_embeds"));
    t.diagnostic(`text_embeds: max abs error ${error.toExponential(2)}`);
    assert.ok(error <= 1e-5);
    worst = Math.max(worst, error);
  });
  t.diagnostic(`worst feature error: ${worst.toExponential(2)} (bar 1e-5)`);
  for (const m of [dino, clipImage, clipText]) m.dispose();
});

test("a DINO folder without preprocessor_config.json gets dino-vits16's settings at the model's size", async () => {
  const bare = join(dir, "dino-bare");
  mkdirSync(bare);
  for (const file of ["config.json", "model.safetensors"]) writeFileSync(join(bare, file), readFileSync(join(modelDir("dino"), file)));
  const fallback = DinoMetric.fromFolder(bare);
  const configured = DinoMetric.fromFolder(modelDir("dino"));
  assert.deepEqual(fallback.processor.config, configured.processor.config, "the fixture's config is dino-vits16's at 64 px");
  assert.deepEqual(fallback.processor.config.size, { height: 64, width: 64 });
  const photo = await readPhoto(imageFile("other"));
  tidy(() => assert.equal(maxAbsDiff(fallback.features([photo.pixels]), configured.features([photo.pixels])), 0));
  photo.pixels.dispose();
  fallback.dispose();
  configured.dispose();
});

test("the scorer's DINO, CLIP-I and CLIP-T equal the oracle's cosines", async (t) => {
  const scorer = PhotoScorer.fromFolders({ dino: modelDir("dino"), clip: modelDir("clip"), faces: false });
  assert.deepEqual(scorer.metrics, ["dino", "clipI", "clipT"]);
  const { scores, summary } = await scorer.scoreAll(imageFile("reference"), images, meta.prompt);
  scorer.dispose();
  let exact = 0;
  let pil = 0;
  scores.forEach((s, i) => {
    const name = meta.images[i]!;
    assert.equal(s.image, images[i]);
    assert.equal(s.clipText, meta.text_prompt, "CLIP-T compares with the prompt without the identifier");
    assert.equal(s.faceRec, null);
    assert.equal(s.faceDetected, null, "Face Rec off");
    for (const metric of ["dino", "clipI", "clipT"] as const) {
      exact = Math.max(exact, near(t, `${name} ${metric} (oracle resized as we resize)`, s[metric], meta.cosines.torch_aa[name]![metric], 1e-5));
      pil = Math.max(pil, near(t, `${name} ${metric} (transformers' PIL pipeline)`, s[metric], meta.cosines.transformers[name]![metric], 5e-3));
    }
  });
  t.diagnostic(`worst cosine error: ${exact.toExponential(2)} against the same resize, ${pil.toExponential(2)} against PIL's`);
  assert.ok(Math.abs(scores[0]!.dino! - 1) < 1e-6 && Math.abs(scores[0]!.clipI! - 1) < 1e-6, "the reference against itself");
  assert.ok(scores[1]!.dino! > scores[2]!.dino!, "a near copy of the reference is closer than another image");
  assert.equal(summary.images, 4);
  assert.equal(summary.faceRec, undefined);
  const mean = (metric: "dino" | "clipI" | "clipT"): number => scores.reduce((a, s) => a + s[metric]!, 0) / scores.length;
  for (const metric of ["dino", "clipI", "clipT"] as const) {
    assert.ok(Math.abs(summary[metric]!.mean! - mean(metric)) < 1e-12);
    assert.equal(summary[metric]!.count, 4);
  }
});

test("Face Rec on real photos: the same photo ≈ 1, another person lower, a blank image has no face (null) and counts in the detection rate", async () => {
  const scorer = PhotoScorer.fromFolders({ dino: modelDir("dino") });
  assert.deepEqual(scorer.metrics, ["faceRec", "dino"]);
  const { scores, summary } = await scorer.scoreAll(person, [person, otherPerson, blank]);
  const [same, other, none] = scores as [PhotoScores, PhotoScores, PhotoScores];
  assert.equal(same.faceDetected, true);
  assert.ok(same.faceRec! > 0.999, `the photo against itself: ${same.faceRec}`);
  assert.equal(other.faceDetected, true);
  assert.ok(other.faceRec! < same.faceRec! - 0.05, `another person: ${other.faceRec} vs ${same.faceRec}`);
  assert.equal(none.faceDetected, false);
  assert.equal(none.faceRec, null, "no face: no score");
  assert.ok(none.dino !== null, "the other metrics still score the image");
  assert.equal(summary.faceRec!.detected, 2);
  assert.ok(Math.abs(summary.faceRec!.detectionRate - 2 / 3) < 1e-12);
  assert.equal(summary.faceRec!.count, 2);
  assert.ok(Math.abs(summary.faceRec!.mean! - (same.faceRec! + other.faceRec!) / 2) < 1e-12, "the mean is over the images with a face");
  await assert.rejects(scorer.setReference(blank), (e: Error) => e.message.startsWith(`reference photo ${blank}: no face found`));
  // The failed reference left the previous one in place.
  assert.ok((await scorer.score(person)).faceRec! > 0.999);
  scorer.dispose();
  const empty = summarizePhotoScores([none], ["faceRec"]);
  assert.deepEqual(empty.faceRec, { mean: null, count: 0, detected: 0, detectionRate: 0 });
});

test("cosineSimilarity: orientation, scale and zero vectors", () => {
  tidy(() => {
    const a = ref("clip/text/text_embeds");
    assert.ok(Math.abs(cosineSimilarity(a, a.mul(3)) - 1) < 1e-12);
    assert.ok(Math.abs(cosineSimilarity(a, a.neg()) + 1) < 1e-12);
    assert.equal(cosineSimilarity(a, a.mul(0)), 0);
    assert.throws(() => cosineSimilarity(a, a.slice(1, 0, 3)), /features of different sizes \(24 and 3\)/);
  });
});

const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const child = spawnSync(process.execPath, [hdb, "score", ...args], { encoding: "utf8", timeout: 300_000, env });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
};

test("hdb score on the tiny folders: the table, the JSON (equal to the scorer's), Face Rec's no-face row and detection rate", async () => {
  const out = join(dir, "scores", "scores.json");
  mkdirSync(join(dir, "scores"));
  const result = run("--reference", person, "--prompt", meta.prompt, "--dino", modelDir("dino"), "--clip", modelDir("clip"), "--out", out, person, blank);
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stdout.trim().split("\n");
  assert.match(lines[0]!, /^image\s+Face Rec\s+DINO\s+CLIP-I\s+CLIP-T$/);
  assert.match(lines[1]!, new RegExp(`^${person.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s+1\\.0000\\s+1\\.0000\\s+1\\.0000\\s+-?0\\.\\d{4}$`));
  assert.match(lines[2]!, /\s+no face\s+-?[01]\.\d{4}\s+-?[01]\.\d{4}\s+-?0\.\d{4}$/);
  assert.match(lines[3]!, /^mean\s+1\.0000\s/);
  assert.match(result.stdout, /faces detected in 1 of 2 images \(50\.0 %\); the Face Rec mean is over those/);
  const written = JSON.parse(readFileSync(out, "utf8")) as {
    prompt: string; clipText: string; identifier: string; scores: PhotoScores[]; summary: { faceRec: { detectionRate: number; mean: number } };
    provenance: { command: string; files: Record<string, string> };
  };
  assert.equal(written.prompt, meta.prompt);
  assert.equal(written.clipText, meta.text_prompt);
  assert.equal(written.identifier, "sks");
  assert.deepEqual(written.scores.map((s) => s.faceDetected), [true, false]);
  assert.equal(written.scores[1]!.faceRec, null);
  assert.equal(written.summary.faceRec.detectionRate, 0.5);
  assert.match(written.provenance.command, /^hdb score /);
  assert.equal(Object.keys(written.provenance.files).length, 2, "the images are hashed");
  const scorer = PhotoScorer.fromFolders({ dino: modelDir("dino"), clip: modelDir("clip") });
  const direct = await scorer.scoreAll(person, [person, blank], meta.prompt);
  scorer.dispose();
  assert.deepEqual(written.scores, direct.scores, "the CLI writes what the scorer computes");

  const dinoOnly = run("--reference", imageFile("reference"), "--dino", modelDir("dino"), "--no-face-rec", ...images.slice(1));
  assert.equal(dinoOnly.status, 0, dinoOnly.stderr);
  assert.match(dinoOnly.stdout, /^image\s+DINO\n/);
  assert.doesNotMatch(dinoOnly.stdout, /Face Rec|CLIP|faces detected/);
  const similarRow = dinoOnly.stdout.split("\n").find((l) => l.startsWith(imageFile("similar")))!;
  assert.equal(Number(similarRow.trim().split(/\s+/).at(-1)), Number(meta.cosines.torch_aa["similar"]!.dino.toFixed(4)));
});

test("hdb score: bad input is one line naming the flag or the file, exit 1", () => {
  const notModel = join(dir, "not-a-model");
  mkdirSync(notModel);
  writeFileSync(join(notModel, "config.json"), "{}");
  const missing = join(dir, "missing.png");
  const cases: [string[], RegExp][] = [
    [[person], /^hdb: --reference is required/],
    [["--reference", person], /^hdb: usage: hdb score .* \(no images given\)/],
    [["--reference", missing, person], new RegExp(`^hdb: --reference: ${missing.replace(/[.]/g, "\\.")}: no such image file`)],
    [["--reference", person, "--no-face-rec", "--dino", modelDir("dino"), missing], new RegExp(`^hdb: ${missing.replace(/[.]/g, "\\.")}: no such image file`)],
    [["--reference", person, "--clip", modelDir("clip"), person], /^hdb: --prompt is required with --clip/],
    [["--reference", person, "--dino", join(dir, "nowhere"), person], /^hdb: --dino: .*nowhere is not a folder/],
    [["--reference", person, "--dino", modelDir("clip"), "--no-face-rec", person], new RegExp(`^hdb: DINO model \\(${modelDir("clip").replace(/[.]/g, "\\.")}\\): .*model_type must be "vit"`)],
    [["--reference", person, "--dino", notModel, "--no-face-rec", person], /^hdb: DINO model \(.*not-a-model\): .*(safetensors|weights)/],
    [["--reference", person, "--clip", modelDir("dino"), "--prompt", "a sks face", "--no-face-rec", person], /^hdb: CLIP model \(.*dino\): /],
    [["--reference", person, "--no-face-rec", person], /^hdb: nothing to measure/],
    [["--reference", person, "--faces", dir, "--no-face-rec", person], /^hdb: give --faces or --no-face-rec, not both/],
    [["--reference", blank, "--dino", modelDir("dino"), person], new RegExp(`^hdb: reference photo ${blank.replace(/[.]/g, "\\.")}: no face found`)],
    [["--reference", person, "--min-confidence", "2", person], /^hdb: --min-confidence must be a number > 0 and ≤ 0\.99|^hdb: --min-confidence must be/],
  ];
  for (const [args, message] of cases) {
    const result = run(...args);
    assert.equal(result.status, 1, `${args.join(" ")}: ${result.stderr}`);
    assert.equal(result.stderr.trim().split("\n").length, 1, `${args.join(" ")}: one line, got ${result.stderr}`);
    assert.match(result.stderr, message, args.join(" "));
  }
});
