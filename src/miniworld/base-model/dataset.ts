/**
 * The base model's training set: rendered faces of pretraining identities with captions.
 *
 * Sample i is identity i of the pretraining split (so the set covers 24,000 different people), a random photo
 * of them (nuisance seed), and a random style: none (35 %), one of the 30 styles (50 %) or two styles of
 * different kinds (15 %). Each sample carries two captions: the long one of captions.ts ("a photo of a man with
 * curly red hair, wearing sunglasses") and the short one users type ("a face wearing sunglasses"), so the
 * model knows both forms and "a sks face wearing sunglasses" is in distribution but for the identifier.
 * Everything is drawn from the seed; the pixels are cached in the work folder (one safetensors file).
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fromBytes, loadSafetensors, multinomial, randint, saveSafetensors, tensor, type Generator, type Tensor } from "../../engine/index.js";
import { caption, facePrompt } from "../captions.js";
import { identityFromId } from "../identity.js";
import { Random } from "../random.js";
import { renderFaces } from "../render.js";
import { splitIds } from "../splits.js";
import { STYLES, type StyleName } from "../styles.js";
import type { ImageSampling } from "./config.js";

export interface WorldSample {
  id: number;
  nuisanceSeed: number;
  styles: StyleName[];
  caption: string;
  shortCaption: string;
}

export const IMAGE_SIZE = 64;

/** Styles of a sample: none, one, or two of different kinds (also the image encoder's held-out retrieval check). */
export function drawStyles(r: Random): StyleName[] {
  const kind = r.weighted([[0, 35], [1, 50], [2, 15]] as const);
  if (kind === 0) return [];
  const first = r.pick(STYLES);
  if (kind === 1) return [first.name as StyleName];
  const second = r.pick(STYLES.filter((s) => s.kind !== first.kind));
  return [first.name as StyleName, second.name as StyleName];
}

/** The deterministic plan of `count` samples (pretraining identities only). */
export function planSamples(count: number, seed: number): WorldSample[] {
  const ids = splitIds("pretraining", Math.min(count, 50_000));
  return Array.from({ length: count }, (_, i) => {
    const r = Random.of("base-model-sample", seed, i);
    const id = ids[i % ids.length]!;
    const nuisanceSeed = 1 + r.int(1_000_000);
    const styles = drawStyles(r);
    return {
      id, nuisanceSeed, styles,
      caption: caption(id, styles, r.int(1_000_000), { nuisanceSeed }),
      shortCaption: facePrompt(styles),
    };
  });
}

/**
 * The samples' pixels as one uint8 tensor (N, 64, 64, 3), rendered once and cached as
 * `<workDir>/images-<count>-<seed>.safetensors` (written atomically by saveSafetensors).
 */
export async function renderDataset(samples: readonly WorldSample[], seed: number, workDir: string, onProgress?: (done: number, total: number) => void): Promise<Tensor> {
  const file = path.join(workDir, `images-${samples.length}-${seed}.safetensors`);
  if (existsSync(file)) {
    const { tensors } = loadSafetensors(file);
    const images = tensors.get("images");
    if (images && images.shape[0] === samples.length) return images;
    for (const tensor of tensors.values()) tensor.dispose();
    throw new Error(`${file} does not hold ${samples.length} images: delete it to render again`);
  }
  mkdirSync(workDir, { recursive: true });
  const bytesPerImage = IMAGE_SIZE * IMAGE_SIZE * 3;
  const pixels = new Uint8Array(samples.length * bytesPerImage);
  const chunk = 512;
  for (let start = 0; start < samples.length; start += chunk) {
    const part = samples.slice(start, start + chunk);
    const images = await renderFaces(part.map((s) => ({ id: s.id, nuisanceSeed: s.nuisanceSeed, style: s.styles, size: IMAGE_SIZE })));
    images.forEach((image, k) => pixels.set(image.data, (start + k) * bytesPerImage));
    onProgress?.(start + part.length, samples.length);
  }
  const images = fromBytes(pixels, "uint8", [samples.length, IMAGE_SIZE, IMAGE_SIZE, 3]);
  saveSafetensors(file, { images }, { seed: String(seed), count: String(samples.length) });
  return images;
}

/**
 * Sampling weights (for `multinomial`) 1 / (number of training images with that hair colour): every colour is
 * drawn equally often (`hair-colour-balanced` sampling: the decoder stage and diffusion phase 4).
 */
export function hairColourBalancedWeights(samples: readonly WorldSample[]): Tensor {
  const colours = samples.map((s) => identityFromId(s.id).hair.colour);
  const counts = new Map<string, number>();
  for (const c of colours) counts.set(c, (counts.get(c) ?? 0) + 1);
  return tensor(Float64Array.from(colours, (c) => 1 / counts.get(c)!));
}

/** Draws the rows of each training batch (int64 indices into `samples`) as a stage's `ImageSampling` says. */
export interface BatchSampler {
  draw(batchSize: number, generator: Generator): Tensor;
  dispose(): void;
}

export function batchSampler(samples: readonly WorldSample[], sampling: ImageSampling): BatchSampler {
  if (sampling === "uniform") return { draw: (batchSize, generator) => randint(0, samples.length, [batchSize], { generator }), dispose: () => {} };
  const weights = hairColourBalancedWeights(samples);
  return { draw: (batchSize, generator) => multinomial(weights, batchSize, { replacement: true, generator }), dispose: () => weights.dispose() };
}
