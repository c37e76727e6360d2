/**
 * Images in and out of the pipeline: tensors in [-1, 1] (N, 3, H, W) ⇄ 8-bit RGB files.
 *
 * The arithmetic runs in libtorch with the exact steps of diffusers' VaeImageProcessor
 * (postprocess: x/2 + 0.5, clamp to [0, 1], ×255, round half to even, uint8; preprocess: /255, ×2 − 1), so a
 * decoded tensor becomes the same PNG bytes diffusers would write. Encoding and decoding of the file formats
 * is sharp's (libvips); writes are atomic (temporary file, then rename).
 */
import { renameSync, rmSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { fromBytes, noGrad, tidy, type Tensor } from "../engine/index.js";

/** An 8-bit RGB image, row-major, 3 bytes per pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** (N, 3, H, W) floats in [-1, 1] → N RGB images (diffusers' postprocess, bit for bit). */
export function tensorToImages(images: Tensor): RgbImage[] {
  if (images.ndim !== 4 || images.size(1) !== 3) {
    throw new Error(`expected images shaped (N, 3, H, W), got [${images.shape.join(", ")}]`);
  }
  const [count, , height, width] = images.shape as [number, number, number, number];
  const bytes = noGrad(() => tidy(() => images.float().div(2).add(0.5).clamp(0, 1).permute(0, 2, 3, 1)
    .mul(255).round().to("uint8").contiguous().bytes()));
  const perImage = height * width * 3;
  return Array.from({ length: count }, (_, i) => ({ width, height, data: bytes.subarray(i * perImage, (i + 1) * perImage) }));
}

/** RGB images of one size → (N, 3, H, W) float32 in [-1, 1] (diffusers' preprocess without resizing). */
export function imagesToTensor(images: RgbImage[]): Tensor {
  const first = images[0];
  if (!first) throw new Error("imagesToTensor needs at least one image");
  for (const image of images) {
    if (image.width !== first.width || image.height !== first.height) {
      throw new Error(`all images must have one size: ${first.width}x${first.height} vs ${image.width}x${image.height}`);
    }
    if (image.data.length !== image.width * image.height * 3) {
      throw new Error(`an RGB image of ${image.width}x${image.height} needs ${image.width * image.height * 3} bytes, got ${image.data.length}`);
    }
  }
  const all = new Uint8Array(images.length * first.data.length);
  images.forEach((image, i) => all.set(image.data, i * first.data.length));
  return tidy(() => pixelsToTensor(fromBytes(all, "uint8", [images.length, first.height, first.width, 3])));
}

/** uint8 (N, H, W, 3) pixels → (N, 3, H, W) float32 in [-1, 1]: diffusers' preprocess (÷255, ×2 − 1). */
export function pixelsToTensor(pixels: Tensor): Tensor {
  return pixels.permute(0, 3, 1, 2).float().div(255).mul(2).sub(1).contiguous();
}

/** Rows `indices` (int64) of a uint8 (N, H, W, 3) image set → (B, 3, H, W) float32 in [-1, 1], as imagesToTensor. */
export function imageBatch(images: Tensor, indices: Tensor): Tensor {
  return tidy(() => pixelsToTensor(images.indexSelect(0, indices)));
}

/** Writes a PNG atomically: a crash never leaves a partial file at `file`. */
export async function savePng(file: string, image: RgbImage): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(tmp);
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write PNG ${file}: ${(error as Error).message}`);
  }
}

/**
 * Reads an image file (PNG, JPEG, WebP, ...) as 8-bit RGB, optionally resized (cover + centre crop, Lanczos)
 * to width × height. Alpha is flattened onto white, EXIF orientation applied.
 */
export async function loadImage(file: string, size?: { width: number; height: number }): Promise<RgbImage> {
  let pipeline = sharp(file).rotate().flatten({ background: "#ffffff" }).removeAlpha().toColourspace("srgb");
  if (size) pipeline = pipeline.resize(size.width, size.height, { fit: "cover", position: "centre", kernel: "lanczos3" });
  try {
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (error) {
    throw new Error(`cannot read image ${file}: ${(error as Error).message}`);
  }
}

/** Lays images out in a grid (row-major), as a single RGB image; gaps filled white. */
export function imageGrid(images: RgbImage[], columns: number): RgbImage {
  const first = images[0];
  if (!first) throw new Error("imageGrid needs at least one image");
  const rows = Math.ceil(images.length / columns);
  const width = first.width * columns;
  const height = first.height * rows;
  const data = new Uint8Array(width * height * 3).fill(255);
  images.forEach((image, i) => {
    const x0 = (i % columns) * first.width;
    const y0 = Math.floor(i / columns) * first.height;
    for (let y = 0; y < image.height; y++) {
      data.set(image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3), ((y0 + y) * width + x0) * 3);
    }
  });
  return { width, height, data };
}
