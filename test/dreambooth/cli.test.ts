// `hdb train-lidb` and `hdb train-lora` end to end on the tiny SD1 pipeline (the real CLI in a child process):
// a folder of identities trained in one batch with checkpoints, validation images and a manifest; the LoRA
// baseline writing a diffusers LoRA file that loads; a run killed with SIGKILL and resumed ending with the
// file of an uninterrupted run; --seed and --basis-seed kept apart; and argument errors naming the problem.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadSafetensors } from "../../src/engine/index.js";
import { readLidbFileInfo } from "../../src/adapters/lidb/file.js";
import { readLoraFile } from "../../src/adapters/lora/file.js";
import type { RunManifest } from "../../src/dreambooth/manifest.js";
import { temporaryDir, tinySd1, writeFacePhotos, writeIdentities } from "./helpers.js";

const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const run = (...args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [hdb, ...args], { encoding: "utf8", timeout: 120_000 });
const tiny = ["--pretrained-model", tinySd1, "--lidb-a", "16", "--lidb-b", "16"];

test("hdb train-lidb trains a folder of identities in one batch: files, manifest, validation images", async () => {
  const root = temporaryDir("cli-lidb");
  await writeIdentities(path.join(root, "faces"), 2);
  const out = path.join(root, "out");
  const child = run("train-lidb", ...tiny, "--identities", path.join(root, "faces"), "--output-dir", out, "--identities-per-batch", "2",
    "--max-train-steps", "4", "--checkpointing-steps", "2", "--validation-prompt", "a [V] face", "--validation-steps", "2",
    "--validation-inference-steps", "2", "--identifier", "zwx");
  assert.equal(child.status, 0, String(child.stderr));
  assert.match(String(child.stderr), /train-lidb \[#+\] 8\/8/);
  assert.match(String(child.stdout), /trained 2\/2 identities/);
  const manifest = JSON.parse(readFileSync(path.join(out, "manifest.json"), "utf8")) as RunManifest;
  assert.deepEqual(manifest.identities.map((e) => [e.id, e.file, e.steps]), [["id0", "id0.lidb.safetensors", 4], ["id1", "id1.lidb.safetensors", 4]]);
  for (const entry of manifest.identities) {
    assert.ok(Number.isFinite(entry.finalLoss) && entry.finalLoss > 0);
    assert.match(entry.images[0]!, /photo-0\.png$/);
    const info = readLidbFileInfo(path.join(out, entry.file));
    assert.equal(info.identifier, "zwx");
    assert.deepEqual(info.dims, { a: 16, b: 16, rank: 1 });
    assert.equal(info.training?.["identity"], entry.id);
    assert.deepEqual(readdirSync(path.join(out, "validation", entry.id)), ["step-000002-0.png", "step-000004-0.png"]);
  }
  assert.deepEqual(readdirSync(path.join(out, "checkpoints")), []);
});

test("hdb train-lora writes a diffusers LoRA file for one identity", async () => {
  const root = temporaryDir("cli-lora");
  await writeFacePhotos(path.join(root, "me"), 0, 2);
  const out = path.join(root, "out");
  const child = run("train-lora", "--pretrained-model", tinySd1, "--instance-data-dir", path.join(root, "me"), "--output-dir", out,
    "--max-train-steps", "3", "--rank", "2", "--no-train-text-encoder");
  assert.equal(child.status, 0, String(child.stderr));
  const lora = readLoraFile(path.join(out, "me.lora.safetensors"));
  assert.equal(lora.format, "diffusers");
  const names = [...lora.layers.keys()];
  assert.ok(names.length > 0 && names.every((name) => name.startsWith("unet.")), "only UNet layers without the text encoder");
  for (const weights of lora.layers.values()) {
    assert.equal(weights.down.size(0), 2);
    weights.down.dispose();
    weights.up.dispose();
  }
});

test("a run killed with SIGKILL resumes from its checkpoint to the file of an uninterrupted run", async () => {
  const root = temporaryDir("cli-kill");
  await writeFacePhotos(path.join(root, "me"), 1);
  const args = (out: string): string[] => ["train-lidb", ...tiny, "--instance-data-dir", path.join(root, "me"), "--output-dir", out,
    "--max-train-steps", "40", "--checkpointing-steps", "5"];
  const reference = path.join(root, "reference");
  assert.equal(run(...args(reference)).status, 0);

  const out = path.join(root, "killed");
  const child = spawn(process.execPath, [hdb, ...args(out)], { stdio: "ignore" });
  const checkpoints = path.join(out, "checkpoints", "me");
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (existsSync(checkpoints) && readdirSync(checkpoints).some((name) => /^checkpoint-\d+$/.test(name))) {
        clearInterval(timer);
        child.kill("SIGKILL");
        resolve();
      }
    }, 5);
    child.on("exit", () => {
      clearInterval(timer);
      if (!child.killed) reject(new Error("the run finished before it could be killed"));
    });
  });
  await new Promise((resolve) => child.on("close", resolve));
  assert.equal(existsSync(path.join(out, "me.lidb.safetensors")), false, "killed in flight");
  const again = run(...args(out));
  assert.notEqual(again.status, 0);
  assert.match(String(again.stderr), /already holds a training run: resume it \(--resume-from-checkpoint\)/);
  const resumed = run(...args(out), "--resume-from-checkpoint", "latest");
  assert.equal(resumed.status, 0, String(resumed.stderr));
  assert.match(String(resumed.stderr), /me: resuming from .*checkpoint-(5|10|15|20|25|30|35) \(step \d+ of 40\)/);
  const factors = (dir: string): Uint8Array[] => {
    const { tensors } = loadSafetensors(path.join(dir, "me.lidb.safetensors"));
    const bytes = ["lidb.a_train", "lidb.b_train"].map((key) => tensors.get(key)!.bytes());
    for (const tensor of tensors.values()) tensor.dispose();
    return bytes;
  };
  assert.deepEqual(factors(out), factors(reference));
});

test("--seed seeds the training only: the aux bases come from --basis-seed, 0 unless given, and a resume must keep it", async () => {
  const root = temporaryDir("cli-basis-seed");
  await writeFacePhotos(path.join(root, "me"), 0);
  const args = (name: string, ...extra: string[]): string[] => ["train-lidb", ...tiny, "--instance-data-dir", path.join(root, "me"),
    "--output-dir", path.join(root, name), "--max-train-steps", "2", ...extra];
  const train = (name: string, ...extra: string[]): { info: ReturnType<typeof readLidbFileInfo>; loss: number } => {
    const child = run(...args(name, ...extra));
    assert.equal(child.status, 0, String(child.stderr));
    const manifest = JSON.parse(readFileSync(path.join(root, name, "manifest.json"), "utf8")) as RunManifest;
    return { info: readLidbFileInfo(path.join(root, name, "me.lidb.safetensors")), loss: manifest.identities[0]!.finalLoss };
  };
  const one = train("seed-1", "--seed", "1");
  const two = train("seed-2", "--seed", "2");
  const otherBasis = train("basis-1", "--seed", "1", "--basis-seed", "1");
  assert.notEqual(two.loss, one.loss, "another --seed draws other noise and timesteps");
  assert.deepEqual([one.info.seed, two.info.seed, otherBasis.info.seed], ["0", "0", "1"]);
  assert.equal(two.info.basisChecksum, one.info.basisChecksum, "the same bases whatever --seed is");
  assert.notEqual(otherBasis.info.basisChecksum, one.info.basisChecksum, "another --basis-seed, other bases");

  // Resuming with another basis seed is refused, naming it.
  const resumed = run(...args("basis-1", "--seed", "1", "--resume-from-checkpoint", "latest"));
  assert.notEqual(resumed.status, 0);
  assert.match(String(resumed.stderr), /cannot resume .*basis-1: settings differ from the saved run: basisSeed \(saved 1, now 0\)$/m);
  // A run saved before the basis seed was its own setting built its bases from --seed: that is its basis seed.
  const manifestFile = path.join(root, "seed-2", "manifest.json");
  const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as RunManifest;
  delete (manifest.settings as Record<string, unknown>)["basisSeed"];
  writeFileSync(manifestFile, JSON.stringify(manifest));
  assert.match(String(run(...args("seed-2", "--seed", "2", "--resume-from-checkpoint", "latest")).stderr), /settings differ from the saved run: basisSeed \(saved 2, now 0\)$/m);
  const old = run(...args("seed-2", "--seed", "2", "--basis-seed", "2", "--resume-from-checkpoint", "latest"));
  assert.equal(old.status, 0, String(old.stderr));
});

test("bad training arguments fail with a message naming the problem", () => {
  const root = temporaryDir("cli-errors");
  const out = path.join(root, "out");
  const cases: [string[], RegExp][] = [
    [["train-lidb", "--output-dir", out, "--instance-data-dir", root], /--pretrained-model is required/],
    [["train-lidb", "--pretrained-model", tinySd1, "--instance-data-dir", root], /--output-dir is required/],
    [["train-lidb", "--pretrained-model", tinySd1, "--output-dir", out], /exactly one of --instance-data-dir .* or --identities/],
    [["train-lidb", "--pretrained-model", tinySd1, "--output-dir", out, "--instance-data-dir", root], /holds no images/],
    [["train-lidb", "--pretrained-model", tinySd1, "--output-dir", out, "--instance-data-dir", path.join(root, "nope")], /does not exist/],
    [["train-lidb", "--pretrained-model", tinySd1, "--output-dir", out, "--identities", root, "--learning-rate", "fast"], /--learning-rate must be a number, got 'fast'/],
    [["train-lora", "--pretrained-model", tinySd1, "--output-dir", out, "--identities", root, "--identities-per-batch", "2"], /LoRA adapters train one identity per batch/],
    [["train-lidb", "--pretrained-model", tinySd1, "--output-dir", out, "--identities", root, "--resume-from-checkpoint", "checkpoint-5"], /takes "latest"/],
    [["train-lidb", "--pretrained-model", tinySd1, "--output-dir", out, "--identities", root, "--instance-prompt", "a face"], /instancePrompt must be a prompt containing "\[V\]" \(replaced by the identifier\), got "a face"/],
    [["train-lidb", "--pretrained-model", tinySd1, "--output-dir", out, "--identities", root, "--basis-seed", "-1"], /^hdb: --basis-seed must be an integer in \[0, 9007199254740991\], got '-1'$/m],
    [["train-lidb", "--pretrained-model", tinySd1, "--output-dir", out, "--identities", root, "--seed", "18446744073709551616"], /^hdb: --seed must be an integer in \[0, 9007199254740991\], got '18446744073709551616'$/m],
    [["train-lidb", "--pretrained-model", tinySd1, "--output-dir", out, "--identities", root, "--basis-seed=1.5"], /--basis-seed must be an integer in \[0, 9007199254740991\], got '1\.5'/],
    [["train-lidb", "--pretrained-model", tinySd1, "--output-dir", out, "--identities", root, "--mixed-precision", "fp8"], /--mixed-precision must be one of no, fp16, bf16, got 'fp8'/],
    [["train-lora", "--pretrained-model", tinySd1, "--output-dir", out, "--identities", root, "--basis-seed", "1"], /^hdb train-lora: unknown flag --basis-seed \(/m],
  ];
  return (async () => {
    await writeFacePhotos(path.join(root, "person"), 0);
    for (const [args, message] of cases) {
      const child = run(...args);
      assert.notEqual(child.status, 0, args.join(" "));
      assert.match(String(child.stderr), message, args.join(" "));
    }
  })();
});
