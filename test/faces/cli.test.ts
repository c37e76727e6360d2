/**
 * `hdb faces detect|crop|compare` run as a user runs them (the compiled CLI in a child process) on a real group
 * photo: the preview PNG and faces.json, the aligned crops and crops.json, the similarity of a face with itself
 * and with another person, and a photo without a face failing with one line naming it; the same with
 * --detector tiny, and --input-size's errors.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import sharp from "sharp";
import { demoPhoto } from "./face-api-oracle.js";

const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "hdb-faces-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const run = (...args: string[]): ReturnType<typeof spawnSync> =>
  spawnSync(process.execPath, [hdb, "faces", ...args], { encoding: "utf8", timeout: 120_000, env: { ...process.env, HDB_FACE_CACHE: join(dir, "cache") } });

test("hdb faces detect, crop and compare on a real group photo", async () => {
  const group = join(dir, "group.jpg");
  await sharp(demoPhoto(6)).rotate().resize(960).jpeg({ quality: 95 }).toFile(group);

  const detect = run("detect", group, "--out", join(dir, "detect"), "--json");
  assert.equal(detect.status, 0, String(detect.stderr));
  const records = JSON.parse(String(detect.stdout)) as { photo: string; faces: { index: number; box: { x: number }; landmarks: number[][] }[] }[];
  assert.equal(records.length, 1);
  assert.equal(records[0]!.faces.length, 4);
  assert.ok(records[0]!.faces.every((f, i) => f.index === i && f.landmarks.length === 68));
  assert.ok(records[0]!.faces.every((f, i) => i === 0 || f.box.x > records[0]!.faces[i - 1]!.box.x), "faces are numbered left to right");
  const preview = await sharp(join(dir, "detect", "group-faces.png")).metadata();
  assert.deepEqual([preview.width, preview.height], [960, Math.round((960 * 1537) / 1920)]);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, "detect", "faces.json"), "utf8")), records);

  const crop = run("crop", group, "--all", "--size", "128", "--out", join(dir, "crops"));
  assert.equal(crop.status, 0, String(crop.stderr));
  for (const i of [0, 1, 2, 3]) {
    const meta = await sharp(join(dir, "crops", `group-${i}.png`)).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels], [128, 128, 3]);
  }
  const crops = JSON.parse(readFileSync(join(dir, "crops", "crops.json"), "utf8")) as { face: number; faces: number }[];
  assert.deepEqual(crops.map((c) => [c.face, c.faces]), [[0, 4], [1, 4], [2, 4], [3, 4]]);

  const one = run("crop", group, "--face", "2", "--size", "160", "--out", join(dir, "one"));
  assert.equal(one.status, 0, String(one.stderr));
  assert.match(String(one.stdout), /face #2 of 4/);

  const compare = run("compare", join(dir, "one", "group.png"), join(dir, "crops", "group-2.png"), join(dir, "crops", "group-0.png"), "--json");
  assert.equal(compare.status, 0, String(compare.stderr));
  const { similarity } = JSON.parse(String(compare.stdout)) as { similarity: number[][] };
  assert.ok(similarity[0]![1]! > 0.97, `one face cropped at two sizes: similarity ${similarity[0]![1]}`);
  assert.ok(similarity[0]![2]! < similarity[0]![1]! - 0.02, `two people: ${similarity[0]![2]} vs the same face ${similarity[0]![1]}`);

  // The Tiny Face Detector: the same four people (its boxes are wider; it may add an overlapping box), landmarks on each.
  const tiny = run("detect", group, "--detector", "tiny", "--input-size", "608", "--json");
  assert.equal(tiny.status, 0, String(tiny.stderr));
  const tinyFaces = (JSON.parse(String(tiny.stdout)) as { faces: { box: { x: number; width: number }; landmarks: number[][] }[] }[])[0]!.faces;
  assert.ok(tinyFaces.length >= 4 && tinyFaces.every((f) => f.landmarks.length === 68), `${tinyFaces.length} faces`);
  for (const ssdFace of records[0]!.faces) {
    const [cx] = ssdFace.landmarks[30]!; // the nose tip
    assert.ok(tinyFaces.some((f) => f.box.x <= cx! && cx! <= f.box.x + f.box.width), `no tiny box around the face at x ${cx}`);
  }
  const badSize = run("detect", group, "--detector", "tiny", "--input-size", "400");
  assert.notEqual(badSize.status, 0);
  assert.match(String(badSize.stderr), /--input-size must be a multiple of 32 \(320, 416, 608, …\), got 400/);
  const ssdSize = run("detect", group, "--input-size", "320");
  assert.notEqual(ssdSize.status, 0);
  assert.match(String(ssdSize.stderr), /--input-size is --detector tiny's setting/);
  const tinyCrop = run("crop", group, "--detector", "tiny", "--face", "1", "--size", "128", "--out", join(dir, "tiny"));
  assert.equal(tinyCrop.status, 0, String(tinyCrop.stderr));
  assert.match(String(tinyCrop.stdout), /face #1 of [45]/);

  const wall = join(dir, "wall.png");
  await sharp(demoPhoto(5)).rotate().extract({ left: 0, top: 0, width: 360, height: 300 }).png().toFile(wall);
  const failed = run("crop", wall, "--out", join(dir, "none"));
  assert.notEqual(failed.status, 0);
  assert.match(String(failed.stderr), /wall\.png: no face found \(SSD MobileNet V1 face detector, score threshold 0\.5\)/);
  const failedTiny = run("compare", wall, group, "--detector", "tiny");
  assert.notEqual(failedTiny.status, 0);
  assert.match(String(failedTiny.stderr), /wall\.png: no face found \(Tiny Face Detector at 416 px, score threshold 0\.5\)/);
  assert.equal(existsSync(join(dir, "none", "wall.png")), false);
});
