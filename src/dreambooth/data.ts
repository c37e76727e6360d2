/**
 * The data of DreamBooth training: which photos belong to which identity, the photos as tensors, their VAE
 * posteriors, class images for prior preservation, and the random augmentations.
 *
 * Latent caching: diffusers' DreamBooth script encodes every batch with the VAE and samples
 * `latent_dist.sample() × scaling_factor` each step. Without augmentation the encoder's input never changes,
 * so here each image's posterior (mean and log-variance, the encoder's output) is computed once and a fresh
 * sample is drawn from it every step with the identity's generator: the same distribution of latents as
 * diffusers', without re-running the encoder. With augmentation (flip, random resized crop) the pixels
 * change every step, so the augmented images are encoded every step, as diffusers does.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { cat, interpolate, noGrad, tidy, type Tensor } from "../engine/index.js";
import type { AutoencoderKL } from "../models/vae/index.js";
import { imagesToTensor, loadImage, savePng } from "../pipeline/images.js";
import type { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { TrainingConfigError, type IdentitySpec } from "./config.js";

const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"]);

function isImage(file: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(file).toLowerCase());
}

function imagesIn(dir: string): string[] {
  return readdirSync(dir).filter((name) => !name.startsWith(".") && isImage(name)).sort().map((name) => path.join(dir, name));
}

/** One identity from a folder of its photos (or one photo); the id defaults to the folder's (or file's) name. */
export function identityFromPath(source: string, id?: string): IdentitySpec {
  if (!existsSync(source)) throw new TrainingConfigError(`instance data ${source} does not exist`);
  const images = statSync(source).isDirectory() ? imagesIn(source) : [source];
  if (images.length === 0) throw new TrainingConfigError(`${source} holds no images (${[...IMAGE_EXTENSIONS].join(", ")})`);
  return { id: id ?? path.basename(source, statSync(source).isDirectory() ? "" : path.extname(source)), images };
}

/**
 * Many identities: a folder whose sub-folders are identities (id = folder name) and whose loose images are
 * one-photo identities (id = file name without extension, as for a CelebA-HQ folder), or a JSON manifest:
 * `[{ "id": "...", "images": ["a.png", ...] | "image": "a.png", "seed"?: n }, ...]` (or `{ "identities": [...] }`),
 * paths relative to the manifest.
 */
export function identitiesFrom(source: string): IdentitySpec[] {
  if (!existsSync(source)) throw new TrainingConfigError(`identities source ${source} does not exist`);
  if (statSync(source).isFile()) return identitiesFromManifest(source);
  const identities: IdentitySpec[] = [];
  for (const name of readdirSync(source).sort()) {
    if (name.startsWith(".")) continue;
    const full = path.join(source, name);
    if (statSync(full).isDirectory()) {
      const images = imagesIn(full);
      if (images.length > 0) identities.push({ id: name, images });
    } else if (isImage(name)) {
      identities.push({ id: path.basename(name, path.extname(name)), images: [full] });
    }
  }
  if (identities.length === 0) throw new TrainingConfigError(`${source} holds no identities (sub-folders of images, or images)`);
  return identities;
}

function identitiesFromManifest(file: string): IdentitySpec[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new TrainingConfigError(`cannot read identities manifest ${file}: ${(error as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { identities?: unknown }).identities;
  if (!Array.isArray(list)) throw new TrainingConfigError(`${file} must hold a list of identities (or { "identities": [...] })`);
  const base = path.dirname(file);
  return list.map((entry: unknown, index) => {
    const item = entry as { id?: unknown; images?: unknown; image?: unknown; seed?: unknown };
    const images = Array.isArray(item.images) ? item.images : item.image === undefined ? [] : [item.image];
    if (typeof item.id !== "string" || images.length === 0 || !images.every((image) => typeof image === "string")) {
      throw new TrainingConfigError(`${file}: identity ${index} needs a string "id" and "image" or "images"`);
    }
    if (item.seed !== undefined && !Number.isSafeInteger(item.seed)) throw new TrainingConfigError(`${file}: identity '${item.id}' has a bad seed`);
    return {
      id: item.id, images: (images as string[]).map((image) => path.resolve(base, image)),
      ...(item.seed === undefined ? {} : { seed: item.seed as number }),
    };
  });
}

/** Photos as (n, 3, resolution, resolution) float32 in [-1, 1] (cover-resized and centre-cropped). */
export async function loadPixels(files: readonly string[], resolution: number): Promise<Tensor> {
  const images = [];
  for (const file of files) images.push(await loadImage(file, { width: resolution, height: resolution }));
  return imagesToTensor(images);
}

/**
 * The VAE posterior parameters (mean and log-variance stacked on channels, as the encoder outputs them) of
 * (n, 3, H, W) images, without autograd. The images are encoded together, so the same set gives the same bits.
 */
export function encodePosterior(vae: AutoencoderKL, pixels: Tensor): Tensor {
  const { device, dtype } = vae.parameters()[0]!;
  return noGrad(() => tidy(() => vae.encode(pixels.to({ device, dtype })).parameters.float()));
}

export interface AugmentOptions {
  /** Probability of a horizontal flip. */
  flip: number;
  /** Smallest area fraction of a random square crop (resized back to full size); null: no crop. */
  cropScale: number | null;
}

/** Uniform numbers each sample's augmentation consumes (drawn whether or not each augmentation is on). */
export const AUGMENT_DRAWS = 4;

/**
 * Random augmentation of (S, 3, H, W) images from per-sample uniforms `draws` (S, 4): u0 < flip → mirror;
 * a square crop of area fraction scale = cropScale + u1 (1 − cropScale) at position (u2, u3) of the free
 * range, resized back to H × W (bilinear). Pure function of its inputs, so a seeded generator replays it.
 */
export function augment(pixels: Tensor, draws: Tensor, options: AugmentOptions): Tensor {
  return tidy(() => {
    const [count, , height, width] = pixels.shape as [number, number, number, number];
    const u = draws.data() as Float32Array;
    const samples: Tensor[] = [];
    for (let i = 0; i < count; i++) {
      let image = pixels.narrow(0, i, 1);
      if (options.cropScale !== null) {
        const scale = options.cropScale + u[i * AUGMENT_DRAWS + 1]! * (1 - options.cropScale);
        const side = Math.max(1, Math.round(Math.sqrt(scale) * Math.min(height, width)));
        const top = Math.min(height - side, Math.floor(u[i * AUGMENT_DRAWS + 2]! * (height - side + 1)));
        const left = Math.min(width - side, Math.floor(u[i * AUGMENT_DRAWS + 3]! * (width - side + 1)));
        const crop = image.narrow(2, top, side).narrow(3, left, side);
        image = side === height && side === width ? crop : interpolate(crop, { size: [height, width], mode: "bilinear" });
      }
      if (u[i * AUGMENT_DRAWS]! < options.flip) image = image.flip(3);
      samples.push(image);
    }
    return cat(samples).contiguous();
  });
}

/**
 * Class images for prior preservation, as diffusers' DreamBooth script prepares them: the images already in
 * `dir`, topped up to `count` by generating `prompt` with the base model (saved as PNGs so a rerun reuses them).
 */
export async function prepareClassImages(
  pipeline: StableDiffusionPipeline, dir: string, prompt: string, count: number, resolution: number, seed: number,
  onImage?: (done: number, total: number) => void,
): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const existing = imagesIn(dir);
  for (let i = existing.length; i < count; i++) {
    const result = pipeline.generate({ prompt, steps: 25, seed: seed + i, height: resolution, width: resolution });
    const file = path.join(dir, `class-${String(i).padStart(5, "0")}.png`);
    await savePng(file, result.rgb[0]!);
    result.images.dispose();
    result.latents.dispose();
    onImage?.(i + 1 - existing.length, count - existing.length);
  }
  return imagesIn(dir).slice(0, count);
}
