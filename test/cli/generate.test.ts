// `hdb generate` end to end on the tiny SD1 pipeline: the PNG equals diffusers' image for the same seed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadSafetensors } from "../../src/engine/index.js";
import { loadImage } from "../../src/pipeline/images.js";

const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const generated = fileURLToPath(new URL("../../../test/fixtures/generated/", import.meta.url));
const run = (...args: string[]): ReturnType<typeof spawnSync> =>
  spawnSync(process.execPath, [hdb, ...args], { encoding: "utf8", timeout: 120_000 });

test("hdb generate writes diffusers' image for the same seed and prompt", async () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), "hdb-generate-")), "face.png");
  const child = run("generate", "--model", `${generated}tiny_sd/sd1`, "--prompt", "a sks face", "--steps", "6", "--seed", "0", "--out", out);
  assert.equal(child.status, 0, String(child.stderr));
  assert.match(String(child.stderr), /denoising \[#+\] 7\/7/);
  const image = await loadImage(out);
  const expected = loadSafetensors(`${generated}txt2img/txt2img.safetensors`, { names: ["sd1_pndm_s0.pixels"] }).tensors.get("sd1_pndm_s0.pixels")!;
  assert.deepEqual(image.data, expected.bytes());
});

test("a batch goes to a folder with generation.json recording the seed", () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), "hdb-generate-")), "batch");
  const child = run("generate", "--model", `${generated}tiny_sd/sd2`, "--prompt", "a statue", "--steps", "2", "--batch", "2",
    "--scheduler", "euler_a", "--seed", "5", "--out", out);
  assert.equal(child.status, 0, String(child.stderr));
  assert.deepEqual(readdirSync(out).sort(), ["0.png", "1.png", "generation.json"]);
  const record = JSON.parse(readFileSync(path.join(out, "generation.json"), "utf8")) as { seed: string; scheduler: string };
  assert.equal(record.seed, "5");
  assert.equal(record.scheduler, "euler_a");
});

test("bad arguments fail with a message naming the problem and write nothing", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "hdb-generate-"));
  const out = path.join(dir, "x.png");
  const cases: [string[], RegExp][] = [
    [["generate", "--prompt", "x", "--out", out], /--model is required/],
    [["generate", "--model", `${generated}tiny_sd/sd1`, "--out", out], /--prompt is required/],
    [["generate", "--model", `${generated}tiny_sd/sd1`, "--prompt", "x", "--out", out, "--steps", "0"], /^hdb: --steps must be a positive integer, got '0'$/m],
    [["generate", "--model", `${generated}tiny_sd/sd1`, "--prompt", "x", "--out", out, "--seed=1.5"], /^hdb: --seed must be an integer in \[-9223372036854775808, 18446744073709551615\] \(PyTorch's manual_seed range\), got '1\.5'$/m],
    [["generate", "--model", `${generated}tiny_sd/sd1`, "--prompt", "x", "--out", out, "--dtype", "int8"], /--dtype must be one of/],
    [["generate", "--model", path.join(dir, "missing"), "--prompt", "x", "--out", out], /missing/],
    [["frobnicate"], /unknown command 'frobnicate'/],
  ];
  for (const [args, message] of cases) {
    const child = run(...args);
    assert.notEqual(child.status, 0, args.join(" "));
    assert.match(String(child.stderr), message);
  }
  assert.equal(existsSync(out), false);
});
