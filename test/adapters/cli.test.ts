// `hdb inspect`, `hdb export` and `hdb generate --lidb/--lora` end to end on the tiny SD1 pipeline.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Generator, randn, setNumThreads, tidy } from "../../src/engine/index.js";
import { applyLidbFile, describeBaseModel, injectLidb, saveLidbFile } from "../../src/adapters/index.js";
import { loadImage } from "../../src/pipeline/images.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";

setNumThreads(1);
const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const generated = fileURLToPath(new URL("../../../test/fixtures/generated/", import.meta.url));
const sd1 = `${generated}tiny_sd/sd1`;
const work = mkdtempSync(path.join(tmpdir(), "hdb-lidb-cli-"));
after(() => rmSync(work, { recursive: true, force: true }));
const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync(process.execPath, [hdb, ...args], { encoding: "utf8", timeout: 120_000, env: { ...process.env, OMP_NUM_THREADS: "1" } });

/** A LiDB file with random factors for the tiny SD1 pipeline, and our own image for it (seed 3, 2 steps). */
async function fixture(): Promise<{ file: string; pixels: Uint8Array; basePixels: Uint8Array }> {
  const pipeline = await StableDiffusionPipeline.fromPretrained(sd1);
  const models = { unet: pipeline.unet, textEncoder: pipeline.textEncoder };
  const options = { prompt: "a sks face", steps: 2, seed: 3 };
  const basePixels = pipeline.generate(options).rgb[0]!.data;
  const lidb = injectLidb(models, { a: 16, b: 8, seed: 5 });
  const generator = new Generator("cpu", 6);
  tidy(() => lidb.setFactors({ aTrain: randn([56, 16, 1], { generator }).mul(0.5), bTrain: randn([56, 1, 8], { generator }).mul(0.5) }));
  const file = path.join(work, "face.lidb.safetensors");
  saveLidbFile(file, lidb, { baseModel: describeBaseModel(models, "tiny/sd1"), identifier: "sks", training: { steps: 7 } });
  lidb.dispose();
  const { adapters } = applyLidbFile(models, file);
  const pixels = pipeline.generate(options).rgb[0]!.data;
  adapters.dispose();
  pipeline.dispose();
  return { file, pixels, basePixels };
}
const made = fixture();

function maxPixelDifference(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

test("hdb inspect describes a LiDB file: base model, layers, sizes, identifier, training", async () => {
  const { file } = await made;
  const text = run("inspect", file);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /a LiDB file \(Lightweight DreamBooth weights, HyperDreamBooth §4\.1\)/);
  assert.match(text.stdout, /base model {5}tiny\/sd1 \(stable-diffusion-v1\)/);
  assert.match(text.stdout, /targets {8}56 layers: unet 48, text_encoder 8/);
  assert.match(text.stdout, /a=16, b=8, r=1: 1,344 trainable values \(float32\)/);
  assert.match(text.stdout, /identifier {5}sks/);
  assert.match(text.stdout, /training {7}\{"steps":7\}/);
  const json = run("inspect", file, "--json");
  const info = JSON.parse(json.stdout) as { kind: string; seed: string; targets: unknown[]; bytes: number };
  assert.equal(info.kind, "lidb");
  assert.equal(info.seed, "5");
  assert.equal(info.targets.length, 56);
  const notOurs = run("inspect", `${sd1}/unet/diffusion_pytorch_model.safetensors`);
  assert.equal(notOurs.status, 1);
  assert.match(notOurs.stderr, /is neither a LiDB file nor a LoRA file/);
});

test("hdb export writes both LoRA layouts, checks --model, and the LoRA applies through --lora", async () => {
  const { file, pixels, basePixels } = await made;
  const diffusers = path.join(work, "face.diffusers.safetensors");
  const kohya = path.join(work, "face.kohya.safetensors");
  const a = run("export", file, "--format", "diffusers", "--out", diffusers, "--model", sd1);
  assert.equal(a.status, 0, a.stderr);
  assert.match(a.stdout, /a diffusers LoRA of rank 1 on 56 layers \(112 tensors, float32\)/);
  const b = run("export", file, "--format", "kohya", "--out", kohya);
  assert.equal(b.status, 0, b.stderr);
  const inspected = run("inspect", kohya);
  assert.match(inspected.stdout, /a LoRA file \(kohya layout\)/);
  assert.match(inspected.stdout, /modelspec\.architecture stable-diffusion-v1\/lora/);
  const wrong = run("export", file, "--format", "kohya", "--out", path.join(work, "never.safetensors"), "--model", `${generated}tiny_sd/sd2`);
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /does not fit .*sd2: this LiDB file was made for tiny\/sd1 .*has no layer unet\.down_blocks\.0\.attentions\.1\./);
  assert.match(run("export", file, "--format", "a1111", "--out", kohya).stderr, /--format must be one of diffusers, kohya, got 'a1111'/);

  const generate = (out: string, ...adapters: string[]): void => {
    const child = run("generate", "--model", sd1, "--prompt", "a sks face", "--steps", "2", "--seed", "3", ...adapters, "--out", out);
    assert.equal(child.status, 0, child.stderr);
  };
  generate(path.join(work, "lidb.png"), "--lidb", file);
  generate(path.join(work, "kohya.png"), "--lora", kohya);
  generate(path.join(work, "zero.png"), "--lora", `${diffusers}:0`);
  const lidbImage = (await loadImage(path.join(work, "lidb.png"))).data;
  const kohyaImage = (await loadImage(path.join(work, "kohya.png"))).data;
  const zeroImage = (await loadImage(path.join(work, "zero.png"))).data;
  console.log(`hdb generate: --lidb vs in-process ${maxPixelDifference(lidbImage, pixels)}/255, --lora kohya vs --lidb ${maxPixelDifference(kohyaImage, lidbImage)}/255, LiDB effect ${maxPixelDifference(pixels, basePixels)}/255`);
  assert.ok(maxPixelDifference(pixels, basePixels) > 10, "the test LiDB must change the image");
  assert.ok(maxPixelDifference(lidbImage, pixels) <= 1);
  assert.ok(maxPixelDifference(kohyaImage, lidbImage) <= 1);
  assert.ok(maxPixelDifference(zeroImage, basePixels) <= 1, "a LoRA at weight 0 leaves the image unchanged");

  const folder = path.join(work, "batch");
  const child = run("generate", "--model", sd1, "--prompt", "a sks face", "--steps", "2", "--seed", "3", "--batch", "2",
    "--lidb", `${file}:0.5`, "--lora", diffusers, "--out", folder);
  assert.equal(child.status, 0, child.stderr);
  const record = JSON.parse(readFileSync(path.join(folder, "generation.json"), "utf8")) as { lidb: { path: string; weight: number }[]; lora: unknown[] };
  assert.deepEqual(record.lidb, [{ path: file, weight: 0.5 }]);
  assert.equal(record.lora.length, 1);
  const missing = run("generate", "--model", sd1, "--prompt", "x", "--lidb", path.join(work, "nope.safetensors"), "--out", path.join(work, "n.png"));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /--lidb: no such file .*nope\.safetensors/);
});
