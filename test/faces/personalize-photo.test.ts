/**
 * `hdb personalize` takes a raw photo: a real group photo (face-api's demo, EXIF-upright JPEG) goes in, the chosen
 * face is aligned and cropped at the model's resolution (kept in <out>/faces/, recorded in personalize.json) and
 * the fine-tuning runs on the crop (the tiny SD1 pipeline, No Hyper, a few steps); a photo without a face fails
 * with one line naming it; with --face-crop auto a small model (the mini-world's kind) takes its photos as they are
 * (and --face is then an error).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { tinySd1 } from "../dreambooth/helpers.js";
import { demoPhoto } from "./face-api-oracle.js";

const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const root = mkdtempSync(path.join(tmpdir(), "hdb-personalize-photo-"));
after(() => rmSync(root, { recursive: true, force: true }));
const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const child = spawnSync(process.execPath, [hdb, "personalize", "--model", tinySd1, "--no-hyper", "--steps", "2", "--rank", "1", "--threads", "1", ...args],
    { encoding: "utf8", timeout: 240_000, env: { ...process.env, OMP_NUM_THREADS: "1", HDB_FACE_CACHE: path.join(root, "cache") } });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
};

test("hdb personalize accepts a raw photo: the chosen face aligned and cropped at the model's resolution", { timeout: 300_000 }, async () => {
  const photo = path.join(root, "group.jpg");
  await sharp(demoPhoto(6)).rotate().resize(960).jpeg({ quality: 95 }).toFile(photo);
  const out = path.join(root, "me");
  const done = run("--image", photo, "--face-crop", "celeba-hq", "--face", "2", "--out", out, "--json");
  assert.equal(done.status, 0, done.stderr);
  const summary = JSON.parse(readFileSync(path.join(out, "personalize.json"), "utf8")) as {
    faceCrop: { framing: string; resolution: number; crops: { photo: string; crop: string; face: number; faces: number }[] };
  };
  assert.equal(summary.faceCrop.framing, "celeba-hq");
  assert.equal(summary.faceCrop.crops.length, 1);
  const [crop] = summary.faceCrop.crops;
  assert.deepEqual([crop!.photo, crop!.face, crop!.faces], [photo, 2, 4]);
  const meta = await sharp(crop!.crop).metadata();
  assert.deepEqual([meta.width, meta.height], [summary.faceCrop.resolution, summary.faceCrop.resolution]);
  assert.ok(existsSync(path.join(out, "person.lora.safetensors")));

  const wall = path.join(root, "wall.png");
  await sharp(demoPhoto(5)).rotate().extract({ left: 0, top: 0, width: 360, height: 300 }).png().toFile(wall);
  const failed = run("--image", wall, "--face-crop", "celeba-hq", "--out", path.join(root, "wall"));
  assert.notEqual(failed.status, 0);
  assert.match(failed.stderr, /wall\.png: no face found/);

  const auto = run("--image", wall, "--out", path.join(root, "auto"), "--json");
  assert.equal(auto.status, 0, auto.stderr);
  const autoSummary = JSON.parse(readFileSync(path.join(root, "auto", "personalize.json"), "utf8")) as { faceCrop: { framing: string; crops: unknown[] } };
  assert.deepEqual([autoSummary.faceCrop.framing, autoSummary.faceCrop.crops.length], ["none", 0]);
  const mixed = run("--image", wall, "--face", "1", "--out", path.join(root, "mixed"));
  assert.notEqual(mixed.status, 0);
  assert.match(mixed.stderr, /--face 1 picks a face to crop, but the photos are taken as they are \(--face-crop auto: the model trains at \d+ px\)/);
});
