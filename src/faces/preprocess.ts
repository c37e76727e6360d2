/**
 * The face preprocessing step personalisation and evaluation share: a raw photo (phone photo, group photo, any
 * orientation) → one aligned square face crop in the framing the model was trained on.
 *
 * photo (EXIF orientation applied) → faces (the analyzer's detector) with 68 landmarks → the largest face (box area),
 * or the one `face` names (faces counted from 0, left to right in the photo) → the CelebA-HQ square from the eye
 * and mouth landmarks (align.ts) → size × size pixels. Framing "none" is the mini-world's: its renders are already
 * aligned crops, so the photo is only resized (cover, centre, Lanczos) and nothing is detected.
 *
 * Errors name the photo and what was found: no face (and the threshold), a face index out of range (with the
 * faces there are), or a face too small (its crop's side in the photo, the eye distance, and the minimum).
 */
import sharp from "sharp";
import { fromBytes } from "../engine/creation.js";
import type { Tensor } from "../engine/tensor.js";
import { celebaHqSquare, eyeCentres, squareSide, warpSquare, type Square } from "./align.js";
import type { DetectedFace, FaceAnalyzer } from "./analyzer.js";
import { readPhoto, type Photo } from "./photo.js";

export const FRAMINGS = ["celeba-hq", "none"] as const;
export type Framing = (typeof FRAMINGS)[number];

export interface CropOptions {
  /** "celeba-hq" (Stable Diffusion; default) or "none" (the mini-world: resize only). */
  framing?: Framing;
  /** Output side in pixels (default 512). */
  size?: number;
  /** Which face: its index counted left to right (default: the largest). */
  face?: number;
  /**
   * The smallest crop side in the photo's pixels that is accepted (default size / 4: at most 4× upscaling). A
   * smaller face would come out as a blur.
   */
  minCropSide?: number;
}

/** An aligned crop and how it was made. */
export interface FaceCrop {
  readonly file: string;
  /** uint8 (size, size, 3). The caller disposes it. */
  readonly pixels: Tensor;
  readonly size: number;
  readonly framing: Framing;
  /** The photo's upright size. */
  readonly photoSize: { width: number; height: number };
  /** The chosen face (absent for framing "none"), its index left to right, and how many faces were found. */
  readonly face?: DetectedFace & { index: number; found: number; square: Square };
}

/** Faces ordered left to right (by box centre), the order `face` indices count in. */
export function facesLeftToRight(faces: readonly DetectedFace[]): DetectedFace[] {
  return [...faces].sort((a, b) => a.box.x + a.box.width / 2 - (b.box.x + b.box.width / 2));
}

const describeBox = (f: DetectedFace, i: number): string =>
  `#${i} ${Math.round(f.box.width)}×${Math.round(f.box.height)} px at (${Math.round(f.box.x)}, ${Math.round(f.box.y)}), score ${f.score.toFixed(2)}`;

/** Picks the face a crop is made of; the error names the photo, the detector (detectorLabel) and the faces found. */
export function chooseFace(file: string, faces: readonly DetectedFace[], detectorLabel: string, index?: number): { face: DetectedFace; index: number } {
  if (faces.length === 0) throw new Error(`${file}: no face found (${detectorLabel})`);
  const ordered = facesLeftToRight(faces);
  if (index !== undefined) {
    if (!Number.isInteger(index) || index < 0 || index >= ordered.length) {
      throw new Error(`${file}: there is no face #${index}: ${ordered.length} found, counted from 0 left to right: ${ordered.map(describeBox).join("; ")}`);
    }
    return { face: ordered[index]!, index };
  }
  let best = 0;
  ordered.forEach((f, i) => {
    if (f.box.width * f.box.height > ordered[best]!.box.width * ordered[best]!.box.height) best = i;
  });
  return { face: ordered[best]!, index: best };
}

/** The aligned crop of one face of an already read photo. */
export function cropFace(photo: Photo, faces: readonly DetectedFace[], analyzer: Pick<FaceAnalyzer, "detectorLabel">, options: CropOptions = {}): FaceCrop {
  const size = options.size ?? 512;
  const minCropSide = options.minCropSide ?? size / 4;
  const { face, index } = chooseFace(photo.file, faces, analyzer.detectorLabel, options.face);
  const square = celebaHqSquare(face.landmarks);
  const side = squareSide(square);
  if (side < minCropSide) {
    const { left, right } = eyeCentres(face.landmarks);
    throw new Error(`${photo.file}: face ${describeBox(face, index)} is too small: its crop would be ${Math.round(side)} px wide in the photo `
      + `(eyes ${Math.round(Math.hypot(right.x - left.x, right.y - left.y))} px apart); at least ${Math.round(minCropSide)} px is needed for a `
      + `${size} px crop (a closer or larger photo, or --min-crop-side to accept it)`);
  }
  const pixels = warpSquare(photo.pixels, square, size);
  return {
    file: photo.file, pixels, size, framing: "celeba-hq", photoSize: { width: photo.width, height: photo.height },
    face: { ...face, index, found: faces.length, square },
  };
}

/** A photo file → its aligned face crop (detecting with `analyzer`), or for framing "none" the photo resized. */
export async function preprocessFacePhoto(file: string, analyzer: FaceAnalyzer, options: CropOptions = {}): Promise<FaceCrop> {
  const framing = options.framing ?? "celeba-hq";
  const size = options.size ?? 512;
  if (!(FRAMINGS as readonly string[]).includes(framing)) throw new Error(`unknown face framing '${framing}' (one of ${FRAMINGS.join(", ")})`);
  if (framing === "none") {
    try {
      const { data, info } = await sharp(file, { failOn: "error" }).rotate().flatten({ background: "#ffffff" }).removeAlpha().toColourspace("srgb")
        .resize(size, size, { fit: "cover", position: "centre", kernel: "lanczos3" }).raw().toBuffer({ resolveWithObject: true });
      const meta = await sharp(file).metadata();
      const turned = (meta.orientation ?? 1) >= 5;
      const pixels = fromBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), "uint8", [info.height, info.width, 3]);
      return { file, pixels, size, framing, photoSize: { width: turned ? meta.height : meta.width, height: turned ? meta.width : meta.height } };
    } catch (error) {
      throw new Error(`cannot read photo ${file}: ${(error as Error).message}`);
    }
  }
  const photo = await readPhoto(file);
  try {
    return cropFace(photo, analyzer.detect(photo), analyzer, options);
  } finally {
    photo.pixels.dispose();
  }
}
