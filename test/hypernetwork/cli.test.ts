// The real commands on the tiny pipeline (litgpt-style): hdb train-hypernet on a DreamBooth weight set with a tiny
// CLIP vision encoder (the oracle's transformers-layout folder) writes the network, the JSONL log with both loss
// terms, the loss page and validation sheets; hdb predict turns a photo into a LiDB file that hdb generate uses;
// `--nproc 2` (two data-parallel processes on loopback, Gloo) ends where one process with the same global batch ends;
// bad flags name the problem.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadSafetensors } from "../../src/engine/index.js";
import { readLidbFileInfo } from "../../src/adapters/lidb/file.js";
import { trainDreamBooth } from "../../src/dreambooth/trainer.js";
import { readTrainingLog } from "../../src/training/index.js";
import { generated, temporaryDir, tinyConfig, tinySd1, writeIdentities } from "../dreambooth/helpers.js";

const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const child = spawnSync(process.execPath, [hdb, ...args], { encoding: "utf8", timeout: 240_000, env: { ...process.env, OMP_NUM_THREADS: "1" } });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
};
const encoder = path.join(generated, "vision", "models", "clip_projection");
let weightSet = "";
let rootDir = "";

test("hdb train-hypernet, then hdb predict and hdb generate with the prediction", { timeout: 300_000 }, async () => {
  const root = temporaryDir("cli-hypernet");
  const identities = await writeIdentities(path.join(root, "faces"), 4);
  const set = path.join(root, "set");
  [weightSet, rootDir] = [set, root];
  await trainDreamBooth(tinyConfig(set, identities, { maxTrainSteps: 10, identitiesPerBatch: 4 }));
  const out = path.join(root, "hn");
  const trained = run("train-hypernet", "--weight-set", set, "--encoder", encoder, "--output-dir", out, "--steps", "6", "--batch-size", "2",
    "--hidden-size", "16", "--warmup-steps", "1", "--checkpoint-every", "3", "--validation-photos", path.join(root, "faces", "id0"), "--validation-every", "3", "--threads", "1");
  assert.equal(trained.status, 0, trained.stderr);
  assert.match(trained.stdout, /done in .* → .*hypernetwork/);
  assert.match(trained.stderr, /hypernetwork \[#+\] 6\/6/);
  for (const file of ["hypernetwork/config.json", "hypernetwork/model.safetensors", "hypernetwork/lidb_space.json", "losses.html", "validation/step-000003.png", "validation/step-000006.png"]) {
    assert.ok(existsSync(path.join(out, file)), `${file} is missing`);
  }
  const log = readTrainingLog(path.join(out, "train-log.jsonl"));
  assert.equal(log.steps.length, 6);
  assert.ok(log.steps.every((line) => line.terms !== undefined && Number.isFinite(line.terms["diffusion"]) && Number.isFinite(line.terms["weight"])), "both terms are logged");
  assert.match(readFileSync(path.join(out, "losses.html"), "utf8"), /hypernetwork: diffusion/);
  const config = JSON.parse(readFileSync(path.join(out, "hypernetwork", "config.json"), "utf8")) as { encoder: string };
  assert.match(config.encoder, /^\.\.\/.*clip_projection$/, "a local encoder is referenced relative to the network's folder");

  const lidb = path.join(root, "me.lidb.safetensors");
  const predicted = run("predict", "--hypernetwork", path.join(out, "hypernetwork"), "--image", path.join(root, "faces", "id2", "photo-0.png"), "--out", lidb, "--threads", "1");
  assert.equal(predicted.status, 0, predicted.stderr);
  assert.match(predicted.stdout, /1 prediction in [\d.]+ s/);
  assert.equal(readLidbFileInfo(lidb).basisChecksum, readLidbFileInfo(path.join(set, "id2.lidb.safetensors")).basisChecksum);
  const image = path.join(root, "me.png");
  const generatedImage = run("generate", "--model", tinySd1, "--lidb", lidb, "--prompt", "a sks face", "--steps", "2", "--out", image, "--threads", "1");
  assert.equal(generatedImage.status, 0, generatedImage.stderr);
  assert.ok(existsSync(image));

  const folder = run("predict", "--hypernetwork", path.join(out, "hypernetwork"), "--images", path.join(root, "faces", "id3"), "--out-dir", path.join(root, "many"), "--threads", "1");
  assert.equal(folder.status, 0, folder.stderr);
  assert.ok(existsSync(path.join(root, "many", "photo-0.lidb.safetensors")));
});

/**
 * Two ranks each differentiate 2 of the 4 photos of a step, times 2, and average (Gloo); one process sums all 4.
 * The sums run in another order, so the weights agree to float32 rounding, not bit for bit: measured after 4 steps,
 * at most 4.3e-7 apart. Adam hardly sees a gradient's scale, so a missing factor 2 shows in the logged losses (half),
 * which must agree to 1e-4 relative; a rank training on its shard alone moves the weights far past the tolerance.
 */
const TOLERANCE = 1e-5;

test("hdb train-hypernet --nproc 2 ends where one process with the same global batch ends", { timeout: 300_000 }, (t) => {
  assert.ok(weightSet !== "", "the first test makes the weight set");
  const common = ["--weight-set", weightSet, "--encoder", encoder, "--steps", "4", "--batch-size", "4", "--hidden-size", "16", "--warmup-steps", "1",
    "--learning-rate", "1e-2", "--checkpoint-every", "2", "--threads", "1"];
  const alone = run("train-hypernet", ...common, "--output-dir", path.join(rootDir, "hn-1"));
  assert.equal(alone.status, 0, alone.stderr);
  const two = run("train-hypernet", ...common, "--output-dir", path.join(rootDir, "hn-2"), "--nproc", "2");
  assert.equal(two.status, 0, two.stderr);
  assert.equal(two.stdout.match(/done in/g)?.length, 1, "rank 0 alone reports");
  assert.match(two.stderr, /rank 0 of 2 \(gloo\), 2 photos per rank per step/);
  const weights = (dir: string): Map<string, Float32Array> =>
    new Map([...loadSafetensors(path.join(dir, "hypernetwork", "model.safetensors")).tensors].map(([k, v]) => [k, v.data() as Float32Array]));
  const [one, both] = [weights(path.join(rootDir, "hn-1")), weights(path.join(rootDir, "hn-2"))];
  let largest = 0;
  for (const [name, values] of one) {
    const other = both.get(name)!;
    for (const [i, v] of values.entries()) largest = Math.max(largest, Math.abs(v - other[i]!));
  }
  t.diagnostic(`2 processes vs 1 after 4 steps: weights differ by up to ${largest}`);
  assert.ok(largest <= TOLERANCE, `2 processes vs 1: the weights differ by up to ${largest}`);
  const logs = [readTrainingLog(path.join(rootDir, "hn-1", "train-log.jsonl")), readTrainingLog(path.join(rootDir, "hn-2", "train-log.jsonl"))];
  assert.equal(logs[1]!.steps.length, 4, "one log line per step, from rank 0");
  for (const [i, line] of logs[0]!.steps.entries()) assert.ok(Math.abs(line.loss - logs[1]!.steps[i]!.loss) <= 1e-4 * Math.abs(line.loss), `step ${i + 1}'s loss`);
  assert.equal(run("train-hypernet", ...common, "--output-dir", path.join(rootDir, "hn-3"), "--nproc", "3").status, 1, "4 photos do not split over 3");
});

test("bad hypernetwork flags fail naming the problem", () => {
  const cases: [string[], RegExp][] = [
    [["predict", "--hypernetwork", "x", "--image", "a.png"], /--image needs --out/],
    [["predict", "--hypernetwork", "x"], /give either --image <photo> with --out, or --images <folder> with --out-dir/],
    [["predict", "--hypernetwork", "x", "--image", "/nonexistent.png", "--out", "y"], /--image: no such file '\/nonexistent\.png'/],
    [["train-hypernet", "--encoder", encoder, "--output-dir", "o"], /--weight-set is required/],
    [["train-hypernet", "--weight-set", "s", "--encoder", encoder, "--output-dir", "o", "--encoder-layer", "0"], /--encoder-layer/],
    [["train-hypernet", "--weigth-set", "s"], /unknown.*--weigth-set.*--weight-set/],
  ];
  for (const [args, pattern] of cases) {
    const result = run(...args);
    assert.notEqual(result.status, 0, args.join(" "));
    assert.match(result.stderr, pattern, args.join(" "));
  }
});
