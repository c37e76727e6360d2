/**
 * Uploaded photos made safe before anything else reads them: the format is sniffed from the bytes (PNG, JPEG or
 * WebP; the declared content type and file name are never trusted), the size is bounded in bytes (by the
 * multipart limits) and in pixels (read from the header before any decoding, so a decompression bomb is refused
 * without being expanded, and enforced again by sharp's limitInputPixels while decoding), and the image is decoded
 * and re-encoded as a fresh PNG: EXIF orientation applied, alpha flattened, at most `maxSide` pixels a side, no
 * metadata kept (sharp writes none unless asked: no EXIF, GPS, ICC, XMP or comments survive).
 */
import sharp from "sharp";

export interface UploadLimits {
  /** Largest width × height accepted (default 25 megapixels). */
  maxPixels: number;
  /** The re-encoded photo's longest side (default 1024): larger photos are scaled down. */
  maxSide: number;
  /** Smallest side accepted (default 32). */
  minSide: number;
}

export const DEFAULT_UPLOAD_LIMITS: UploadLimits = { maxPixels: 25_000_000, maxSide: 1024, minSide: 32 };

/** A refused upload: `statusCode` is the HTTP answer (413 too large, 415 not an image, 422 undecodable). */
export class UploadError extends Error {
  override name = "UploadError";
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}

type Sniffed = "png" | "jpeg" | "webp";

/** The image format the bytes begin with, or null. */
export function sniffImage(bytes: Uint8Array): Sniffed | null {
  const starts = (signature: number[], at = 0): boolean => bytes.length >= at + signature.length && signature.every((b, i) => bytes[at + i] === b);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "png";
  if (starts([0xff, 0xd8, 0xff])) return "jpeg";
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return "webp";
  return null;
}

export interface CleanPhoto {
  png: Buffer;
  width: number;
  height: number;
  /** The format the upload was (sniffed). */
  format: Sniffed;
}

/** Checks, decodes and re-encodes one uploaded photo (`label` names it in errors: "photo 1"). */
export async function cleanPhoto(bytes: Buffer, label: string, limits: UploadLimits = DEFAULT_UPLOAD_LIMITS): Promise<CleanPhoto> {
  if (bytes.length === 0) throw new UploadError(400, `${label} is empty`);
  const format = sniffImage(bytes);
  if (format === null) throw new UploadError(415, `${label} is not a PNG, JPEG or WebP image (the format is read from its bytes, not from its declared type)`);
  const options = { limitInputPixels: limits.maxPixels, failOn: "error" as const, animated: false };
  let meta: sharp.Metadata;
  try {
    meta = await sharp(bytes, options).metadata();
  } catch (error) {
    throw new UploadError(422, `${label} cannot be read as ${format.toUpperCase()}: ${(error as Error).message}`);
  }
  if (meta.format !== format) throw new UploadError(415, `${label} starts like ${format.toUpperCase()} but decodes as ${meta.format ?? "nothing"}`);
  const { width, height } = meta;
  if (!width || !height) throw new UploadError(422, `${label} has no size`);
  if (width * height > limits.maxPixels) throw new UploadError(413, `${label} is ${width}×${height} = ${width * height} pixels; at most ${limits.maxPixels} are accepted`);
  if (Math.min(width, height) < limits.minSide) throw new UploadError(422, `${label} is ${width}×${height}; each side must be at least ${limits.minSide} pixels`);
  if ((meta.pages ?? 1) > 1) throw new UploadError(422, `${label} is animated (${meta.pages} frames); give a still photo`);
  try {
    const { data, info } = await sharp(bytes, options)
      .rotate()
      .resize({ width: limits.maxSide, height: limits.maxSide, fit: "inside", withoutEnlargement: true })
      .flatten({ background: "#ffffff" })
      .toColourspace("srgb")
      .png()
      .toBuffer({ resolveWithObject: true });
    return { png: data, width: info.width, height: info.height, format };
  } catch (error) {
    throw new UploadError(422, `${label} cannot be decoded: ${(error as Error).message}`);
  }
}
