/**
 * Whether the mini-world's image encoder (encoder.ts) learned something the HyperNetwork can use, measured on
 * HELD-OUT identities only (never seen by its pretraining, nor by the base model or the hypernetwork):
 *
 *  - identity: `identities` held-out people × 2 photos (nuisance seeds 1 and 2: pose, light, expression, clothes,
 *    backdrop differ), the ROC-AUC of "same person vs different people" scored by the cosine of two photos'
 *    embeddings, over every pair (src/evaluation/metrics.ts's exact Mann–Whitney AUC; chance 0.5). Two
 *    embeddings: CLIP's image_embeds (the projected class token), and the mean over tokens of the penultimate
 *    hidden state, which is what the HyperNetwork reads (HyperDreamBooth §4.2: the ViT's features; CLIP features
 *    are usually taken one layer before the last).
 *  - caption retrieval (CLIP's zero-shot test in miniature, Radford et al. 2021 §3.1): `retrievalImages`
 *    held-out renders drawn as the base model's training set draws them (style mix, nuisance, caption), each
 *    image's caption found among all of theirs by cosine (top-1; chance 1/N), and the reverse.
 *
 * The identity metric network (src/evaluation/identity-network.ts) is deliberately not used: the encoder must stay
 * independent of the metric the method is judged with, and this check needs only the encoder itself.
 */
import { cat, fromBytes, noGrad, tidy, type Tensor } from "../../engine/index.js";
import { cosineSimilarityMatrix, rocAuc } from "../../evaluation/metrics.js";
import { drawStyles, IMAGE_SIZE } from "../base-model/dataset.js";
import { caption } from "../captions.js";
import { Random } from "../random.js";
import { renderFaces, type RenderRequest } from "../render.js";
import { splitIds } from "../splits.js";

/** The two photos of each held-out identity in the identity check. */
export const IDENTITY_NUISANCE_SEEDS = [1, 2] as const;

export interface EncoderEvaluationSizes {
  /** Held-out identities of the identity check (2 photos each). */
  identities: number;
  /** Held-out renders (one identity each) of the caption-retrieval check. */
  retrievalImages: number;
}

export interface EncoderEvaluation {
  /** ROC-AUC of same vs different identity by the cosine of image_embeds (chance 0.5). */
  identityAuc: number;
  /** The same with the penultimate hidden state averaged over tokens (what the HyperNetwork reads). */
  featureIdentityAuc: number;
  /** Top-1 accuracy of image → its caption among all `retrievalImages` captions (chance 1/N). */
  imageToCaption: number;
  /** Top-1 accuracy of caption → its image. */
  captionToImage: number;
}

/** The held-out images and captions, rendered once and measured on any number of encoders. */
export interface EvaluationData {
  sizes: EncoderEvaluationSizes;
  /** uint8 (2·identities, 64, 64, 3): every identity's first photo, then every identity's second. */
  identityImages: Tensor;
  identityLabels: number[];
  /** uint8 (retrievalImages, 64, 64, 3) and their captions. */
  retrievalImages: Tensor;
  captions: string[];
  dispose(): void;
}

/** The retrieval check's renders: held-out ids from the first, drawn as base-model/dataset.ts's planSamples draws. */
export function retrievalRequests(count: number, seed: number): { request: RenderRequest; caption: string }[] {
  return splitIds("held-out", count).map((id, i) => {
    const r = Random.of("encoder-retrieval", seed, i);
    const nuisanceSeed = 1 + r.int(1_000_000);
    const styles = drawStyles(r);
    return { request: { id, nuisanceSeed, style: styles, size: IMAGE_SIZE }, caption: caption(id, styles, r.int(1_000_000), { nuisanceSeed }) };
  });
}

async function renderBatch(requests: readonly RenderRequest[]): Promise<Tensor> {
  const images = await renderFaces(requests);
  const perImage = IMAGE_SIZE * IMAGE_SIZE * 3;
  const bytes = new Uint8Array(images.length * perImage);
  images.forEach((image, i) => bytes.set(image.data, i * perImage));
  return fromBytes(bytes, "uint8", [images.length, IMAGE_SIZE, IMAGE_SIZE, 3]);
}

/** Renders the held-out images of both checks (a few seconds). */
export async function renderEvaluationData(sizes: EncoderEvaluationSizes, seed: number): Promise<EvaluationData> {
  const ids = splitIds("held-out", sizes.identities);
  const identityRequests = IDENTITY_NUISANCE_SEEDS.flatMap((nuisanceSeed) => ids.map((id) => ({ id, nuisanceSeed, size: IMAGE_SIZE })));
  const retrieval = retrievalRequests(sizes.retrievalImages, seed);
  const identityImages = await renderBatch(identityRequests);
  const retrievalImages = await renderBatch(retrieval.map((r) => r.request));
  return {
    sizes, identityImages, identityLabels: identityRequests.map((r) => r.id), retrievalImages, captions: retrieval.map((r) => r.caption),
    dispose: () => {
      identityImages.dispose();
      retrievalImages.dispose();
    },
  };
}

/** Images per forward pass of the evaluation. */
const CHUNK = 64;

/** Runs `embed` over the rows of `images` in chunks and concatenates the results (float32 CPU tensors). */
function inChunks(images: Tensor, embed: (rows: Tensor) => Tensor[]): Tensor[] {
  const parts: Tensor[][] = [];
  for (let start = 0; start < images.size(0); start += CHUNK) parts.push(tidy(() => embed(images.slice(0, start, Math.min(images.size(0), start + CHUNK)))));
  return tidy(() => parts[0]!.map((_, k) => cat(parts.map((p) => p[k]!), 0)));
}

/** ROC-AUC of same-vs-different label over every pair of rows, by cosine similarity. */
function pairAuc(embeddings: Tensor, labels: readonly number[]): number {
  const similarities = tidy(() => cosineSimilarityMatrix(embeddings, embeddings).data() as Float32Array);
  const n = labels.length;
  const scores: number[] = [];
  const positive: boolean[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      scores.push(similarities[i * n + j]!);
      positive.push(labels[i] === labels[j]);
    }
  }
  return rocAuc(scores, positive);
}

/** Fraction of rows whose largest entry is on the diagonal. */
function diagonalTop1(similarities: Tensor): number {
  const best = tidy(() => similarities.argmax(1).data() as BigInt64Array);
  let hits = 0;
  best.forEach((column, row) => (hits += Number(column) === row ? 1 : 0));
  return hits / best.length;
}

/**
 * What the checks need of an encoder (encoder.ts gives both towers of its contrastive model): 8-bit images
 * (N, 64, 64, 3) → [image_embeds (N, P), penultimate hidden state averaged over tokens (N, D)], and captions →
 * text embeddings (N, P). Called under noGrad, in chunks.
 */
export interface EncoderUnderTest {
  embedImages(images: Tensor): [Tensor, Tensor];
  embedCaptions(captions: readonly string[]): Tensor;
}

/** Both checks on one encoder. */
export function evaluateEncoder(encoder: EncoderUnderTest, data: EvaluationData): EncoderEvaluation {
  return noGrad(() => {
    const [embeds, features] = inChunks(data.identityImages, (rows) => encoder.embedImages(rows));
    const identityAuc = pairAuc(embeds!, data.identityLabels);
    const featureIdentityAuc = pairAuc(features!, data.identityLabels);
    const [imageEmbeds] = inChunks(data.retrievalImages, (rows) => [encoder.embedImages(rows)[0]]);
    const textEmbeds = tidy(() => encoder.embedCaptions(data.captions));
    const [imageToCaption, captionToImage] = tidy(() => {
      const similarities = cosineSimilarityMatrix(imageEmbeds!, textEmbeds);
      return [diagonalTop1(similarities), diagonalTop1(similarities.mT())];
    });
    for (const t of [embeds!, features!, imageEmbeds!, textEmbeds]) t.dispose();
    return { identityAuc, featureIdentityAuc, imageToCaption, captionToImage };
  });
}
