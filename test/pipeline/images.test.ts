// Tensor ⇄ image conversion equals diffusers' VaeImageProcessor; PNG files round-trip; grids; bad input.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadSafetensors, tidy } from "../../src/engine/index.js";
import { imageGrid, imagesToTensor, loadImage, savePng, tensorToImages } from "../../src/pipeline/images.js";

const fixture = fileURLToPath(new URL("../../../test/fixtures/generated/images/images.safetensors", import.meta.url));

test("tensorToImages equals diffusers' postprocess to the byte (clamp, round half to even)", () => tidy(() => {
  const { tensors } = loadSafetensors(fixture);
  const images = tensorToImages(tensors.get("decoded")!);
  const expected = tensors.get("pixels")!.bytes();
  const actual = new Uint8Array(images.flatMap((image) => [...image.data]));
  assert.equal(images.length, 2);
  assert.deepEqual({ w: images[0]!.width, h: images[0]!.height }, { w: 7, h: 5 });
  assert.deepEqual(actual, expected);
}));

test("imagesToTensor equals diffusers' preprocess", () => tidy(() => {
  const { tensors } = loadSafetensors(fixture);
  const images = tensorToImages(tensors.get("decoded")!);
  const back = imagesToTensor(images);
  const diff = back.sub(tensors.get("preprocessed")!).abs().max().item();
  assert.ok(diff <= 1e-6, `max difference ${diff}`);
}));

test("savePng writes atomically and loadImage reads the same pixels; resize covers and crops", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "hdb-images-"));
  const image = { width: 4, height: 3, data: Uint8Array.from({ length: 36 }, (_, i) => i * 7) };
  const file = path.join(dir, "a.png");
  await savePng(file, image);
  assert.deepEqual(readdirSync(dir), ["a.png"]);
  const read = await loadImage(file);
  assert.deepEqual(read, image);
  const resized = await loadImage(file, { width: 2, height: 2 });
  assert.deepEqual([resized.width, resized.height, resized.data.length], [2, 2, 12]);
});

test("bad input: wrong tensor shape, wrong byte count, unreadable file, unwritable path", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "hdb-images-"));
  tidy(() => {
    const { tensors } = loadSafetensors(fixture);
    assert.throws(() => tensorToImages(tensors.get("decoded")!.select(0, 0)), /\(N, 3, H, W\)/);
  });
  assert.throws(() => imagesToTensor([{ width: 2, height: 2, data: new Uint8Array(5) }]), /needs 12 bytes, got 5/);
  writeFileSync(path.join(dir, "junk.png"), "not an image");
  await assert.rejects(loadImage(path.join(dir, "junk.png")), /cannot read image .*junk\.png/);
  await assert.rejects(savePng(path.join(dir, "missing-folder", "x.png"), { width: 1, height: 1, data: new Uint8Array(3) }), /cannot write PNG/);
  assert.deepEqual(readdirSync(dir), ["junk.png"]);
});

test("imageGrid places images row-major and fills gaps white", () => {
  const red = { width: 1, height: 1, data: Uint8Array.from([255, 0, 0]) };
  const blue = { width: 1, height: 1, data: Uint8Array.from([0, 0, 255]) };
  const grid = imageGrid([red, blue, red], 2);
  assert.deepEqual([grid.width, grid.height], [2, 2]);
  assert.deepEqual([...grid.data], [255, 0, 0, 0, 0, 255, 255, 0, 0, 255, 255, 255]);
});
