/**
 * The preview `hdb faces detect` writes: the photo with each face's box, its index (left to right) and score,
 * and its 68 landmarks drawn on it. The marks are an SVG overlay composited by sharp (libvips), sized to the
 * photo so they stay visible on large photos; the PNG is written atomically (temporary file, then rename).
 */
import { renameSync, rmSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import type { DetectedFace } from "./analyzer.js";
import type { Photo } from "./photo.js";
import { facesLeftToRight } from "./preprocess.js";

/** The SVG overlay for faces on a width × height photo. */
export function facesOverlaySvg(width: number, height: number, faces: readonly DetectedFace[]): string {
  const stroke = Math.max(2, Math.round(Math.max(width, height) / 400));
  const font = Math.max(12, stroke * 8);
  const marks = facesLeftToRight(faces).map((f, i) => {
    const { x, y, width: w, height: h } = f.box;
    const points = f.landmarks.map((p) => `<circle cx="${p.x.toFixed(1)}" cy="${p.y.toFixed(1)}" r="${stroke}" fill="#ff3030"/>`).join("");
    return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="none" stroke="#30ff60" stroke-width="${stroke}"/>`
      + `<text x="${x.toFixed(1)}" y="${Math.max(font, y - stroke * 2).toFixed(1)}" font-family="sans-serif" font-size="${font}" fill="#30ff60" `
      + `stroke="#000" stroke-width="${Math.max(1, stroke / 2)}">#${i} ${f.score.toFixed(2)}</text>${points}`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${marks.join("")}</svg>`;
}

/** Writes the photo with its faces marked as a PNG (atomically), at most maxSide pixels on its long side. */
export async function saveFacesPreview(file: string, photo: Photo, faces: readonly DetectedFace[], maxSide = 1600): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const rgb = photo.pixels.contiguous().bytes();
    const marked = await sharp(rgb, { raw: { width: photo.width, height: photo.height, channels: 3 } })
      .composite([{ input: Buffer.from(facesOverlaySvg(photo.width, photo.height, faces)), top: 0, left: 0 }])
      .png().toBuffer();
    await sharp(marked).resize(maxSide, maxSide, { fit: "inside", withoutEnlargement: true }).png().toFile(tmp);
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write the faces preview ${file}: ${(error as Error).message}`);
  }
}
