// Bad input, non-finite numbers and limits (issue 14), end to end through `hdb`: each case fails with one line
// naming the problem and a non-zero exit, and loses nothing (inputs keep their bytes, no output is written).
// Seeds take exactly PyTorch's range; negative numbers get the flag's own range message; `hdb export` will not
// replace its input or an existing file without --force; NaN/Inf in adapter files and model weights are refused
// naming file and tensor; diverging generation and training stop naming the cause; sizes and batch are checked
// against a memory estimate; a shape mismatch, a missing CUDA, a short vocabulary and a long prompt say so briefly.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { exportLidbFile } from "../../src/adapters/index.js";
import { cat, loadSafetensors, saveSafetensors, setNumThreads, tensor, tidy } from "../../src/engine/index.js";
import { writeFacePhotos } from "../dreambooth/helpers.js";
import { sd1, snapshot, writeTinyLidb } from "./hostile-inputs.js";

setNumThreads(1);
const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), "hdb-bad-input-"));
after(() => rmSync(work, { recursive: true, force: true }));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}
const run = (...args: string[]): Run =>
  spawnSync(process.execPath, [hdb, ...args], { encoding: "utf8", timeout: 120_000, env: { ...process.env, OMP_NUM_THREADS: "1", HDB_AUTO_THREADS: "0" } });

/** Runs `hdb args`, which must fail with exactly one line on stderr matching `message` (no stack trace). */
function fails(args: string[], message: RegExp): string {
  const child = run(...args);
  const shown = `hdb ${args.join(" ")}\n${child.stderr}`;
  assert.equal(child.status, 1, shown);
  const lines = child.stderr.split("\n").filter((line) => line !== "" && !/^(denoising|train-lidb) \[/.test(line));
  assert.equal(lines.length, 1, `one line: ${shown}`);
  assert.match(lines[0]!, message, shown);
  return lines[0]!;
}



/** A copy of `file` whose tensor `name` has `value` at its first element (the header and metadata kept). */
function withValue(file: string, out: string, name: string, value: number): string {
  const { tensors, metadata } = loadSafetensors(file);
  tidy(() => {
    const original = tensors.get(name)!;
    const flat = original.float().flatten();
    const changed = cat([tensor([value]), flat.narrow(0, 1, flat.shape[0]! - 1)]).reshape(...original.shape).to(original.dtype);
    tensors.set(name, changed);
    saveSafetensors(out, tensors, metadata);
  });
  for (const t of tensors.values()) t.dispose();
  return out;
}

const lidbFile = path.join(work, "face.lidb.safetensors");
const ready = writeTinyLidb(lidbFile);

test("seeds: exactly PyTorch's manual_seed range, and the seed recorded is the seed used", async () => {
  await ready;
  const base = ["generate", "--model", sd1, "--prompt", "a face", "--steps", "2"];
  fails([...base, "--seed", "18446744073709551616", "--out", path.join(work, "never.png")],
    /^hdb: --seed must be an integer in \[-9223372036854775808, 18446744073709551615\] \(PyTorch's manual_seed range\), got '18446744073709551616'$/);
  fails([...base, "--seed", "-9223372036854775809", "--out", path.join(work, "never.png")], /PyTorch's manual_seed range/);
  // -1 is torch.manual_seed(-1): the generator gets 2^64 − 1, and that is what is recorded.
  const negative = run(...base, "--seed", "-1", "--batch", "2", "--out", path.join(work, "negative"));
  assert.equal(negative.status, 0, negative.stderr);
  assert.match(negative.stdout, /^seed 18446744073709551615 \(--seed -1, as torch\.manual_seed takes it\)/);
  const record = JSON.parse(readFileSync(path.join(work, "negative", "generation.json"), "utf8")) as { seed: string; seedGiven: string };
  assert.deepEqual([record.seed, record.seedGiven], ["18446744073709551615", "-1"]);
  const top = run(...base, "--seed", "18446744073709551615", "--batch", "2", "--out", path.join(work, "top"));
  assert.equal(top.status, 0, top.stderr);
  for (const image of ["0.png", "1.png"]) {
    assert.deepEqual(readFileSync(path.join(work, "top", image)), readFileSync(path.join(work, "negative", image)), image);
  }
  assert.equal(existsSync(path.join(work, "never.png")), false);
});

test("flags: negative numbers get the flag's own range message; a weight or a folder is named as the problem", async () => {
  await ready;
  const base = ["generate", "--model", sd1, "--prompt", "x", "--out", path.join(work, "never.png")];
  fails([...base, "--steps", "-1"], /^hdb: --steps must be a positive integer, got '-1'$/);
  fails([...base, "--guidance", "-5"], /^hdb: --guidance must be a number in \[0, 100\], got '-5'$/);
  fails([...base, "--guidance", "1e30"], /^hdb: --guidance must be a number in \[0, 100\], got '1e30'$/);
  fails([...base, "--lidb", "f:abc"], /^hdb: --lidb f:abc: the weight after the last ':' must be a finite number, got 'abc' \(and there is no file 'f'\)$/);
  fails([...base, "--lidb", `${lidbFile}:abc`], /^hdb: --lidb .*face\.lidb\.safetensors:abc: the weight after the last ':' must be a finite number, got 'abc'$/);
  fails([...base, "--lidb", work], /^hdb: --lidb: '.*hdb-bad-input-.*' is a folder; give a \.safetensors file$/);
  fails(["inspect", work], /^hdb: .*hdb-bad-input-[^:]*: is a folder, not a safetensors file$/);
  fails(["export", work, "--format", "kohya", "--out", path.join(work, "never.safetensors")], /^hdb: .*hdb-bad-input-[^:]*: is a folder, not a safetensors file$/);
  fails(["train-lidb", "--pretrained-model", sd1, "--output-dir", path.join(work, "never"), "--instance-data-dir", work, "--seed", "-1"],
    /^hdb: --seed must be an integer in \[0, 9007199254740991\], got '-1'$/);
  assert.equal(existsSync(path.join(work, "never.png")), false);
  assert.equal(existsSync(path.join(work, "never")), false);
});

test("hdb export never replaces its input, nor an existing file without --force", async () => {
  await ready;
  const before = readFileSync(lidbFile);
  fails(["export", lidbFile, "--format", "kohya", "--out", lidbFile], /^hdb: --out .* is the input file .*: the LoRA would replace the LiDB it is made from; choose another --out$/);
  const link = path.join(work, "link.safetensors");
  cpSync(lidbFile, path.join(work, "copy.safetensors"));
  spawnSync("ln", ["-s", lidbFile, link]);
  fails(["export", lidbFile, "--format", "kohya", "--out", link, "--force"], /is the input file/);
  assert.deepEqual(readFileSync(lidbFile), before, "the LiDB keeps its bytes");
  const out = path.join(work, "face.lora.safetensors");
  writeFileSync(out, "a file that was here first");
  fails(["export", lidbFile, "--format", "kohya", "--out", out], /^hdb: --out .*face\.lora\.safetensors exists: pass --force to replace it, or choose another path$/);
  assert.equal(readFileSync(out, "utf8"), "a file that was here first");
  fails(["export", lidbFile, "--format", "kohya", "--out", work, "--force"], /^hdb: --out .* is a folder; give the LoRA file's path/);
  const forced = run("export", lidbFile, "--format", "kohya", "--out", out, "--force");
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(forced.stdout, /a kohya LoRA of rank 1 on 56 layers/);
});

test("NaN and Inf in LiDB, LoRA and model files are refused naming the file and the tensor", async () => {
  await ready;
  const nanLidb = withValue(lidbFile, path.join(work, "nan.lidb.safetensors"), "lidb.a_train", NaN);
  const infLidb = withValue(lidbFile, path.join(work, "inf.lidb.safetensors"), "lidb.b_train", -Infinity);
  const lora = path.join(work, "good.lora.safetensors");
  exportLidbFile(lidbFile, lora, { format: "diffusers" });
  const loraKey = [...loadSafetensors(lora).tensors.keys()].find((k) => k.endsWith("lora_B.weight"))!;
  const infLora = withValue(lora, path.join(work, "inf.lora.safetensors"), loraKey, Infinity);
  const model = path.join(work, "nan-model");
  cpSync(sd1, model, { recursive: true });
  const unetFile = path.join(model, "unet", "diffusion_pytorch_model.safetensors");
  withValue(unetFile, unetFile, "conv_in.weight", NaN);
  const before = snapshot(work);
  const base = ["generate", "--model", sd1, "--prompt", "a sks face", "--steps", "2", "--seed", "0", "--out", path.join(work, "never.png")];
  fails([...base, "--lidb", nanLidb], /^hdb: .*nan\.lidb\.safetensors: tensor "lidb\.a_train": holds NaN or infinite values: the file is damaged or its weights diverged$/);
  fails([...base, "--lidb", infLidb], /^hdb: .*inf\.lidb\.safetensors: tensor "lidb\.b_train": holds NaN or infinite values/);
  fails([...base, "--lora", infLora], new RegExp(`^hdb: .*inf\\.lora\\.safetensors: tensor "${loraKey.replace(/\./g, "\\.")}": holds NaN or infinite values`));
  fails(["export", nanLidb, "--format", "kohya", "--out", path.join(work, "never.safetensors")], /nan\.lidb\.safetensors: tensor "lidb\.a_train": holds NaN or infinite values/);
  fails(["generate", "--model", model, "--prompt", "a face", "--steps", "2", "--out", path.join(work, "never.png")],
    /^hdb: .*nan-model\/unet\/diffusion_pytorch_model\.safetensors: tensor "conv_in\.weight": holds NaN or infinite values/);
  // Finite but absurd: a LiDB weight of 1e30 makes the latents infinite at the first step; nothing is written.
  fails([...base, "--lidb", `${lidbFile}:1e30`],
    /^hdb: the latents became NaN or infinite at denoising step 1 of 3 \(guidance scale 7\.5\): nothing was written; likely causes: the weight 1e\+30 of --lidb .*face\.lidb\.safetensors; /);
  assert.deepEqual(snapshot(work), before, "no file was written or changed");
});

test("training stops at a diverging step and writes no adapter; the last checkpoint holds finite weights", async () => {
  const photos = path.join(work, "photos");
  await writeFacePhotos(photos, 0);
  const out = path.join(work, "diverged");
  fails(["train-lidb", "--pretrained-model", sd1, "--instance-data-dir", photos, "--output-dir", out, "--lidb-a", "16", "--lidb-b", "16",
    "--max-train-steps", "4", "--checkpointing-steps", "1", "--learning-rate", "1e30"],
  /^hdb: photos: the loss is NaN at step 2; training stopped: the last checkpoint, .*checkpoint-1, holds finite weights, but a resume would replay the same steps: delete .* and train again with a lower learning rate$/);
  assert.deepEqual(readdirSync(out).filter((name) => name.endsWith(".safetensors")), [], "no LiDB file");
  const checkpoint = loadSafetensors(path.join(out, "checkpoints", "photos", "checkpoint-1", "model.safetensors"), { finite: true });
  for (const t of checkpoint.tensors.values()) t.dispose();
  // One step leaves finite weights (~1e30) whose loss is not: caught before the file is written.
  const once = path.join(work, "diverged-once");
  fails(["train-lidb", "--pretrained-model", sd1, "--instance-data-dir", photos, "--output-dir", once, "--lidb-a", "16", "--lidb-b", "16",
    "--max-train-steps", "1", "--learning-rate", "1e30"],
  /^hdb: photos: the weights after step 1 give a (NaN|infinite) loss \(the learning rate 1e\+30 diverged them\); no adapter file was written: train again with a lower learning rate$/);
  assert.deepEqual(readdirSync(once).filter((name) => name.endsWith(".safetensors")), [], "no LiDB file");
});

test("sizes and batch are checked against a memory estimate before any work, with --max-memory to override", async () => {
  const base = ["generate", "--model", sd1, "--prompt", "x", "--steps", "2"];
  fails([...base, "--width", "100000", "--height", "100000", "--out", path.join(work, "never.png")],
    /^hdb: 100000×100000 px × 1 image needs about [\d.]+ GiB for generation \(an estimate\), more than the [\d.]+ GiB free now: lower --width\/--height\/--batch, or raise --max-memory \(GiB\) to try anyway$/);
  fails([...base, "--batch", "100000", "--out", path.join(work, "never")], /^hdb: 32×32 px × 100000 images needs about [\d.]+ GiB/);
  fails([...base, "--max-memory", "0.001", "--out", path.join(work, "never.png")], /^hdb: 32×32 px × 1 image needs about 0\.00 GiB for generation \(an estimate\), more than --max-memory 0\.001 GiB/);
  const allowed = run(...base, "--width", "64", "--max-memory", "1", "--seed", "0", "--out", path.join(work, "wide.png"));
  assert.equal(allowed.status, 0, allowed.stderr);
  assert.doesNotMatch(allowed.stderr, /warning/, "twice the model's area is not warned about");
  // Far beyond the model's size fits in memory but is slow: said before the first step, with the ratio.
  const wide = run("generate", "--model", sd1, "--prompt", "x", "--steps", "1", "--width", "1024", "--seed", "0", "--out", path.join(work, "wider.png"));
  assert.equal(wide.status, 0, wide.stderr);
  assert.match(wide.stderr, /^warning: 1024×32 px is 32× the pixels of the model's 32×32: each denoising step takes at least 32× as long/m);
  assert.equal(existsSync(path.join(work, "never.png")) || existsSync(path.join(work, "never")), false);
});

test("a shape mismatch, a missing CUDA and a short vocabulary are one line each; a long prompt warns", async () => {
  const copy = (name: string, edit: (dir: string) => void): string => {
    const dir = path.join(work, name);
    cpSync(sd1, dir, { recursive: true });
    edit(dir);
    return dir;
  };
  const editConfig = (file: string, change: Record<string, unknown>): void =>
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")) as object, ...change }));
  const narrow = copy("narrow", (dir) => editConfig(path.join(dir, "unet", "config.json"), { cross_attention_dim: 16 }));
  fails(["generate", "--model", narrow, "--prompt", "x", "--out", path.join(work, "never.png")],
    /^hdb: cannot load .*narrow\/unet\/diffusion_pytorch_model\.safetensors into UNet2DConditionModel: shape mismatch for "[^"]+" in diffusion_pytorch_model\.safetensors: the module has \[32, 16\], the file has \[32, 32\]; .*; … \(\d+ shape mismatches in all: is config\.json the one these weights were saved with\?\)$/);
  fails(["generate", "--model", sd1, "--prompt", "x", "--device", "cuda:0", "--out", path.join(work, "never.png")],
    /^hdb: device cuda:0: this libtorch \(torch .*\) sees no CUDA GPU; on a machine with one, install PyTorch's CUDA build/);
  fails(["generate", "--model", sd1, "--prompt", "x", "--device", "gpu", "--out", path.join(work, "never.png")], /^hdb: device 'gpu' is not one of cpu, cuda, cuda:<index>, mps$/);
  const shortVocabulary = copy("short-vocabulary", (dir) => editConfig(path.join(dir, "text_encoder", "config.json"), { vocab_size: 1000 }));
  fails(["generate", "--model", shortVocabulary, "--prompt", "x", "--out", path.join(work, "never.png")],
    /^hdb: .*short-vocabulary\/tokenizer has 5014 token ids, but the text encoder's vocab_size \(.*config\.json\) is 1000: ids from 1000 on have no embedding/);
  const long = run("generate", "--model", sd1, "--prompt", "a photo of a face ".repeat(20), "--steps", "1", "--seed", "0", "--out", path.join(work, "long.png"));
  assert.equal(long.status, 0, long.stderr);
  assert.match(long.stderr, /^warning: The following part of your input was truncated because CLIP can only handle sequences up to 77 tokens: "a photo of a face a photo/m);
  assert.ok(!existsSync(path.join(work, "never.png")));
});
