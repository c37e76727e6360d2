/**
 * Face alignment from 68 landmarks: where to cut a square out of the photo, and the cut (on the engine).
 *
 * A square in the photo is given by its centre c and two half-side vectors x (to the right edge) and y (to the
 * bottom edge), y = x rotated by 90°: any rotation and scale, so the eyes come out level.
 *
 *  - celebaHqSquare: the CelebA-HQ crop (Karras et al. 2018, "Progressive Growing of GANs", appendix C), as FFHQ's
 *    dataset script also computes it from the 68 iBUG landmarks: e = mean of the eye centres, e′ = right eye − left
 *    eye, m′ = mouth-corner midpoint − e; x = e′ − rot90(m′), normalised, × max(2·|e′|, 1.8·|m′|); c = e + 0.1·m′.
 *    The face fills the middle of the square with hair and chin around it: the framing Stable Diffusion
 *    personalisation (and the paper's CelebA-HQ training set) sees.
 *  - descriptorChip: what the descriptor network sees: the eyes levelled, then the landmarks' bounding box grown
 *    by 20 % (face-api's FaceLandmarks.align default, minBoxPadding 0.2) made square around its centre.
 *
 * warpSquare cuts such a square to size × size pixels with one affine sampling grid (aten::affine_grid_generator,
 * aten::grid_sampler_2d, bicubic, reflection outside the photo as FFHQ pads), after an antialiased bilinear shrink
 * of the photo (aten::_upsample_bilinear2d_aa) when the square is more than 1.5× larger than the output, so small
 * crops of big photos do not alias.
 */
import { op } from "../engine/dispatch.js";
import { tensor } from "../engine/creation.js";
import { tidy } from "../engine/lifetime.js";
import { call, type Tensor } from "../engine/tensor.js";

export interface Point {
  x: number;
  y: number;
}

/** A square in the photo: centre and half-side vectors along its width (x) and height (y). */
export interface Square {
  centre: Point;
  x: Point;
  y: Point;
}

const mean = (points: readonly Point[]): Point => ({
  x: points.reduce((s, p) => s + p.x, 0) / points.length,
  y: points.reduce((s, p) => s + p.y, 0) / points.length,
});
const length = (p: Point): number => Math.hypot(p.x, p.y);

function checkLandmarks(landmarks: readonly Point[]): void {
  if (landmarks.length !== 68) throw new Error(`face alignment needs the 68 iBUG landmarks, got ${landmarks.length} points`);
}

/** The eye centres (the mean of each eye's six points; "left" is the one on the left of the photo). */
export function eyeCentres(landmarks: readonly Point[]): { left: Point; right: Point } {
  checkLandmarks(landmarks);
  return { left: mean(landmarks.slice(36, 42)), right: mean(landmarks.slice(42, 48)) };
}

/** The CelebA-HQ / FFHQ crop square of a face. */
export function celebaHqSquare(landmarks: readonly Point[]): Square {
  const { left, right } = eyeCentres(landmarks);
  const eyeAvg = { x: (left.x + right.x) / 2, y: (left.y + right.y) / 2 };
  const eyeToEye = { x: right.x - left.x, y: right.y - left.y };
  const mouthLeft = landmarks[48]!;
  const mouthRight = landmarks[54]!;
  const mouthAvg = { x: (mouthLeft.x + mouthRight.x) / 2, y: (mouthLeft.y + mouthRight.y) / 2 };
  const eyeToMouth = { x: mouthAvg.x - eyeAvg.x, y: mouthAvg.y - eyeAvg.y };
  // x = e′ − flipud(m′)·[−1, 1] = (e′x + m′y, e′y − m′x)
  let x = { x: eyeToEye.x + eyeToMouth.y, y: eyeToEye.y - eyeToMouth.x };
  const norm = length(x);
  if (!(norm > 0)) throw new Error("face alignment: the eyes and mouth landmarks coincide");
  const scale = Math.max(length(eyeToEye) * 2.0, length(eyeToMouth) * 1.8);
  x = { x: (x.x / norm) * scale, y: (x.y / norm) * scale };
  return { centre: { x: eyeAvg.x + 0.1 * eyeToMouth.x, y: eyeAvg.y + 0.1 * eyeToMouth.y }, x, y: { x: -x.y, y: x.x } };
}

/** The descriptor's square: eyes level, the landmarks' box grown by 20 %, made square around its centre. */
export function descriptorChip(landmarks: readonly Point[]): Square {
  const { left, right } = eyeCentres(landmarks);
  const angle = Math.atan2(right.y - left.y, right.x - left.x);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  // Landmarks in the eye-levelled frame (rotated by −angle about the origin).
  const rotated = landmarks.map((p) => ({ x: p.x * cos + p.y * sin, y: -p.x * sin + p.y * cos }));
  const xs = rotated.map((p) => p.x);
  const ys = rotated.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const half = (Math.max(x1 - x0, y1 - y0) * 1.2) / 2;
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  return {
    centre: { x: cx * cos - cy * sin, y: cx * sin + cy * cos },
    x: { x: half * cos, y: half * sin },
    y: { x: -half * sin, y: half * cos },
  };
}

/** The side of a square in the photo's pixels. */
export function squareSide(square: Square): number {
  return 2 * length(square.x);
}

const affineGridOp = op("aten::affine_grid_generator");
const gridSamplerOp = op("aten::grid_sampler_2d");
const bilinearAaOp = op("aten::_upsample_bilinear2d_aa");
const BICUBIC = 2;
const REFLECTION = 2;

/**
 * The square cut out of a uint8 (H, W, 3) photo at size × size: uint8 (size, size, 3). Coordinates are in pixel
 * units with pixel i covering [i, i + 1) (the landmarks' convention).
 */
export function warpSquare(pixels: Tensor, square: Square, size: number): Tensor {
  if (pixels.ndim !== 3 || pixels.size(2) !== 3) throw new Error(`warpSquare: expected (H, W, 3) pixels, got [${pixels.shape.join(", ")}]`);
  if (!Number.isInteger(size) || size < 1) throw new Error(`warpSquare: size must be a positive integer, got ${size}`);
  const [height, width] = pixels.shape as [number, number, number];
  const { centre: c, x, y } = square;
  // Output normalised (u, v) in [−1, 1] → photo point c + u·x + v·y → input normalised coordinates (align_corners false).
  const theta = [
    [(2 * x.x) / width, (2 * y.x) / width, (2 * c.x) / width - 1],
    [(2 * x.y) / height, (2 * y.y) / height, (2 * c.y) / height - 1],
  ];
  return tidy(() => {
    let image = pixels.permute(2, 0, 1).unsqueeze(0).to("float32");
    const shrink = size / squareSide(square);
    if (shrink < 1 / 1.5) {
      // Normalised coordinates do not depend on the resolution, so theta holds for the shrunk photo too.
      const h = Math.max(1, Math.round(height * shrink));
      const w = Math.max(1, Math.round(width * shrink));
      image = call(bilinearAaOp, image, [h, w], false, null, null);
    }
    const grid = call(affineGridOp, tensor([theta], { dtype: "float32" }), [1, 3, size, size], false);
    const out = call(gridSamplerOp, image, grid, BICUBIC, REFLECTION, false);
    return out.squeeze(0).permute(1, 2, 0).round().clamp(0, 255).to("uint8").contiguous();
  });
}
