/**
 * The face preprocessing step (src/faces/) on real photos (face-api's demo group photos, downscaled to keep the
 * test fast): the CelebA-HQ crop puts the eyes level at the place the framing defines (checked by detecting the
 * face again in the crop), EXIF orientation is honoured, and a photo without a face, with a face too small, or a
 * face index that does not exist gives an error naming the photo and what was found.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import sharp from "sharp";
import { eyeCentres, FaceAnalyzer, preprocessFacePhoto, readPhoto, type Photo } from "../../src/faces/index.js";
import { demoPhoto } from "./face-api-oracle.js";

const dir = mkdtempSync(join(tmpdir(), "hdb-faces-"));
const analyzer = new FaceAnalyzer({ cacheDir: join(dir, "cache") });
after(() => {
  analyzer.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** A demo photo downscaled to `width` px as a JPEG (optionally stored turned, with the EXIF tag that turns it back). */
async function photoFile(n: number, width: number, name: string, orientation?: 6 | 8): Promise<string> {
  const file = join(dir, name);
  let image = sharp(demoPhoto(n)).rotate().resize(width);
  // Orientation 6 means "turn 90° clockwise to view": store the pixels turned 90° anticlockwise.
  if (orientation) image = sharp(await image.toBuffer()).rotate(orientation === 6 ? 270 : 90).withMetadata({ orientation });
  await image.jpeg({ quality: 95 }).toFile(file);
  return file;
}

test("CelebA-HQ crops of a tilted photo: eyes level, centred, at the framing's scale (the face detected again in the crop)", async () => {
  // The group photo turned by 15°, so crops that are not rotated upright would show the eyes 15° off level.
  const file = join(dir, "tilted.jpg");
  await sharp(await sharp(demoPhoto(6)).rotate().resize(960).toBuffer()).rotate(15, { background: "#808080" }).jpeg({ quality: 95 }).toFile(file);
  const size = 256;
  for (const face of [0, 1, 2, 3]) {
    const crop = await preprocessFacePhoto(file, analyzer, { size, face });
    assert.deepEqual(crop.pixels.shape, [size, size, 3]);
    assert.equal(crop.face?.index, face);
    assert.equal(crop.face?.found, 4);
    const again: Photo = { file: `${file} crop ${face}`, width: size, height: size, pixels: crop.pixels };
    const faces = analyzer.detect(again);
    assert.equal(faces.length >= 1, true, `face ${face}: no face in its own crop`);
    const main = faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
    const { left, right } = eyeCentres(main.landmarks);
    const tilt = (Math.atan2(right.y - left.y, right.x - left.x) * 180) / Math.PI;
    const mid = { x: (left.x + right.x) / 2, y: (left.y + right.y) / 2 };
    const eyeDistance = Math.hypot(right.x - left.x, right.y - left.y);
    // The framing: eye midpoint on the vertical centre line, eye distance ≤ side/4 (= side/4 when the eyes set the scale).
    assert.ok(Math.abs(tilt) < 4, `face ${face}: eyes tilted by ${tilt.toFixed(1)}°`);
    assert.ok(Math.abs(mid.x - size / 2) < size * 0.04, `face ${face}: eye midpoint at x = ${mid.x.toFixed(1)}, not near ${size / 2}`);
    assert.ok(mid.y > size * 0.3 && mid.y < size * 0.5, `face ${face}: eye midpoint at y = ${mid.y.toFixed(1)}`);
    assert.ok(eyeDistance > size * 0.17 && eyeDistance < size * 0.28, `face ${face}: eyes ${eyeDistance.toFixed(1)} px apart in a ${size} px crop`);
    crop.pixels.dispose();
  }
});

test("EXIF orientation is honoured: a photo stored turned gives the same upright photo, faces and crop", async () => {
  const upright = await photoFile(1, 960, "upright.jpg");
  const turned = await photoFile(1, 960, "turned.jpg", 6);
  const raw = await sharp(turned).metadata();
  assert.equal(raw.orientation, 6);
  const a = await readPhoto(upright);
  const b = await readPhoto(turned);
  assert.deepEqual([b.width, b.height], [a.width, a.height], "the turned file reads at the upright size");
  assert.equal(b.orientation, 6);
  a.pixels.dispose();
  b.pixels.dispose();
  const cropA = await preprocessFacePhoto(upright, analyzer, { size: 128 });
  const cropB = await preprocessFacePhoto(turned, analyzer, { size: 128 });
  assert.equal(cropB.face?.found, cropA.face?.found);
  assert.ok(Math.abs(cropB.face!.box.x - cropA.face!.box.x) < 4 && Math.abs(cropB.face!.box.y - cropA.face!.box.y) < 4,
    `boxes ${JSON.stringify(cropA.face!.box)} vs ${JSON.stringify(cropB.face!.box)}`);
  const diff = cropA.pixels.to("float32").sub(cropB.pixels.to("float32")).abs().mean().item();
  assert.ok(diff < 6, `the crops differ by ${diff.toFixed(2)} per 8-bit channel on average`);
  cropA.pixels.dispose();
  cropB.pixels.dispose();
});

test("no face, a face too small, a face that is not there: errors naming the photo and what was found", async () => {
  const empty = join(dir, "wall.png");
  // A real photo's background: the top-left corner of sample5 (stairs and railing, no one there).
  await sharp(demoPhoto(5)).rotate().extract({ left: 0, top: 0, width: 360, height: 300 }).png().toFile(empty);
  await assert.rejects(preprocessFacePhoto(empty, analyzer), (e: Error) => e.message.includes("wall.png") && /no face found/.test(e.message));

  const small = await photoFile(5, 480, "far.jpg");
  await assert.rejects(preprocessFacePhoto(small, analyzer, { size: 512 }), (e: Error) =>
    e.message.includes("far.jpg") && /too small: its crop would be \d+ px wide in the photo \(eyes \d+ px apart\); at least 128 px/.test(e.message));
  const accepted = await preprocessFacePhoto(small, analyzer, { size: 512, minCropSide: 16 });
  assert.deepEqual(accepted.pixels.shape, [512, 512, 3]);
  accepted.pixels.dispose();

  await assert.rejects(preprocessFacePhoto(small, analyzer, { size: 64, face: 7 }), (e: Error) =>
    e.message.includes("far.jpg") && /there is no face #7: 5 found, counted from 0 left to right: #0 /.test(e.message));

  // The mini-world's framing: no detection, the photo only resized.
  const none = await preprocessFacePhoto(empty, analyzer, { framing: "none", size: 64 });
  assert.equal(none.face, undefined);
  assert.deepEqual(none.pixels.shape, [64, 64, 3]);
  assert.deepEqual(none.photoSize, { width: 360, height: 300 });
  none.pixels.dispose();
});
