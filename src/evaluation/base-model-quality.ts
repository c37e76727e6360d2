/**
 * The base model's quality bars (issue 5), measured on generated images with the world's metric networks:
 *
 *   style fidelity   "a face <style phrase>" for each of the 30 styles: the prompt-fidelity network must name
 *                    the prompted style (bar: ≥ 80 %; `styleFollowsPrompt`: a plain photo may show any expression);
 *   attribute words  "a photo of a woman with long straight <colour> hair" / "a photo of a man with short
 *                    <colour> hair" for every hair colour: the network's hair colour must be the prompted one
 *                    (bar: ≥ 80 %);
 *   world faces      "a face": the images must look like faces of the world: the fidelity network calls them
 *                    plain photos, and their identity embeddings lie as close to real renders (nearest of a
 *                    gallery of renders of other identities) as real held-out renders do.
 *
 * Every prompt is one `generate` call with `imagesPerPrompt` images from one seed (DPM-Solver++ 2M).
 */
import { noGrad, tidy, type Tensor } from "../engine/index.js";
import { facePrompt } from "../miniworld/captions.js";
import { HAIR_COLOURS } from "../miniworld/identity.js";
import { renderFaces } from "../miniworld/render.js";
import { splitIds } from "../miniworld/splits.js";
import { STYLE_NAMES } from "../miniworld/styles.js";
import { imagesToTensor } from "../pipeline/images.js";
import type { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { PHOTO_LABEL, styleFollowsPrompt, type PromptFidelityNetwork } from "./fidelity-network.js";
import type { IdentityNetwork } from "./identity-network.js";

export interface QualityOptions {
  pipeline: StableDiffusionPipeline;
  identityNetwork: IdentityNetwork;
  fidelityNetwork: PromptFidelityNetwork;
  imagesPerPrompt: number;
  seed: number;
  steps: number;
  guidance: number;
  onPrompt?: (done: number, total: number, prompt: string) => void;
}

export interface QualityReport {
  styleAccuracy: number;
  styleImages: number;
  /** Accuracy per style name. */
  perStyle: Record<string, number>;
  hairColourAccuracy: number;
  hairColourImages: number;
  perHairColour: Record<string, number>;
  /** Fraction of "a face" images the fidelity network calls a plain photo (any expression: styleFollowsPrompt). */
  plainFaceRate: number;
  /** Mean nearest-gallery cosine of generated "a face" images, and of real held-out renders (the reference level). */
  nearestRealSimilarity: { generated: number; realRenders: number };
  settings: Omit<QualityOptions, "pipeline" | "identityNetwork" | "fidelityNetwork" | "onPrompt">;
}

const GALLERY_SIZE = 400;

export async function evaluateBaseModelQuality(options: QualityOptions): Promise<QualityReport> {
  const { pipeline, fidelityNetwork, imagesPerPrompt: n } = options;
  const styleJobs = STYLE_NAMES.map((style) => ({ prompt: facePrompt(style), expected: style as string }));
  const hairJobs = Object.keys(HAIR_COLOURS).flatMap((colour) => [
    { prompt: `a photo of a woman with long straight ${colour} hair`, expected: colour },
    { prompt: `a photo of a man with short ${colour} hair`, expected: colour },
  ]);
  const total = styleJobs.length + hairJobs.length + 1;
  let done = 0;
  const generate = (prompt: string): Tensor => {
    const result = pipeline.generate({ prompt, seed: options.seed, imagesPerPrompt: n, steps: options.steps, guidanceScale: options.guidance, scheduler: "dpm++2m" });
    result.latents.dispose();
    options.onPrompt?.(++done, total, prompt);
    return result.images;
  };
  const accuracy = (hits: number[]): number => hits.reduce((a, b) => a + b, 0) / Math.max(1, hits.length);

  const perStyle: Record<string, number> = {};
  const styleHits: number[] = [];
  for (const job of styleJobs) {
    const images = generate(job.prompt);
    const hits = fidelityNetwork.classify(images).styles.map((s) => Number(styleFollowsPrompt(s, job.expected)));
    images.dispose();
    perStyle[job.expected] = accuracy(hits);
    styleHits.push(...hits);
  }
  const perHairColour: Record<string, number[]> = {};
  const hairHits: number[] = [];
  for (const job of hairJobs) {
    const images = generate(job.prompt);
    const hits = fidelityNetwork.classify(images).hairColours.map((c) => Number(c === job.expected));
    images.dispose();
    (perHairColour[job.expected] ??= []).push(...hits);
    hairHits.push(...hits);
  }

  const faces = generate("a face");
  const plain = fidelityNetwork.classify(faces).styles.map((s) => Number(styleFollowsPrompt(s, PHOTO_LABEL)));
  const gallery = await renderFaces(splitIds("pretraining", GALLERY_SIZE).map((id) => ({ id, nuisanceSeed: 1 })));
  const real = await renderFaces(splitIds("held-out", n).map((id) => ({ id, nuisanceSeed: 2 })));
  const nearest = noGrad(() => tidy(() => {
    const galleryEmbeddings = options.identityNetwork.embed(imagesToTensor(gallery));
    const nearestOf = (images: Tensor): number => options.identityNetwork.embed(images).matmul(galleryEmbeddings.transpose(0, 1)).maxAlong(1).values.mean().item();
    return { generated: nearestOf(faces), realRenders: nearestOf(imagesToTensor(real)) };
  }));
  faces.dispose();
  const { seed, steps, guidance } = options;
  return {
    styleAccuracy: accuracy(styleHits), styleImages: styleHits.length, perStyle,
    hairColourAccuracy: accuracy(hairHits), hairColourImages: hairHits.length,
    perHairColour: Object.fromEntries(Object.entries(perHairColour).map(([c, hits]) => [c, accuracy(hits)])),
    plainFaceRate: accuracy(plain), nearestRealSimilarity: nearest,
    settings: { imagesPerPrompt: n, seed, steps, guidance },
  };
}
