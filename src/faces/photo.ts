/**
 * Reading a photo as people bring it: any format sharp (libvips) decodes, turned upright by its EXIF orientation
 * (sharp's rotate() with no angle), alpha flattened onto white, sRGB, 8 bits per channel, kept at full size.
 */
import sharp from "sharp";
import { fromBytes } from "../engine/creation.js";
import type { Tensor } from "../engine/tensor.js";

/** An upright photo: its file, its size and its pixels as a uint8 (H, W, 3) tensor. */
export interface Photo {
  readonly file: string;
  readonly width: number;
  readonly height: number;
  /** uint8 (H, W, 3), RGB. The caller disposes it (or the Photo, with disposePhoto). */
  readonly pixels: Tensor;
  /** The EXIF orientation tag the file had (1 = already upright; absent = none). */
  readonly orientation?: number;
}

/** Reads a photo upright (EXIF orientation applied); the error names the file. */
export async function readPhoto(file: string): Promise<Photo> {
  try {
    const image = sharp(file, { failOn: "error" });
    const { orientation } = await image.metadata();
    const { data, info } = await image.rotate().flatten({ background: "#ffffff" }).removeAlpha().toColourspace("srgb")
      .raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    const pixels = fromBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), "uint8", [info.height, info.width, 3]);
    return { file, width: info.width, height: info.height, pixels, ...(orientation === undefined ? {} : { orientation }) };
  } catch (error) {
    throw new Error(`cannot read photo ${file}: ${(error as Error).message}`);
  }
}
