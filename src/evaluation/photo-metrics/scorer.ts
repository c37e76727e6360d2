/**
 * The four metrics of HyperDreamBooth §5 on real photos and Stable Diffusion images, as one scorer: Face Rec
 * (face-rec.ts), DINO (dino.ts), CLIP-I (clip-image.ts) and CLIP-T (clip-text.ts). It loads the metrics whose
 * folders it is given (each a Hugging Face checkpoint folder: facebook/dino-vits16, openai/clip-vit-large-patch14;
 * Face Rec's networks ship with the package), computes the reference photo's features once, and scores each
 * (image, prompt) against them:
 *
 *   faceRec  cos(face descriptor of the image's largest face, of the reference's); null when no face is found
 *   dino     cos(DINO CLS(image), DINO CLS(reference))
 *   clipI    cos(CLIP image_embeds(image), CLIP image_embeds(reference))
 *   clipT    cos(CLIP image_embeds(image), CLIP text_embeds(prompt without the identifier))
 *
 * A metric that was not loaded is null for every image and absent from the summary. The summary gives each
 * metric's mean over the images; Face Rec's over the images with a face, beside the detection rate.
 * (The mini-world's own roles of these metrics are src/evaluation/harness/scoring.ts.)
 */
import type { Device, Tensor } from "../../engine/tensor.js";
import { readPhoto, type Photo } from "../../faces/index.js";
import { ClipImageMetric } from "./clip-image.js";
import { ClipTextMetric, removeIdentifier } from "./clip-text.js";
import { cosineSimilarity } from "./cosine.js";
import { DinoMetric } from "./dino.js";
import { FaceRecMetric } from "./face-rec.js";

export const PHOTO_METRICS = ["faceRec", "dino", "clipI", "clipT"] as const;
export type PhotoMetricName = (typeof PHOTO_METRICS)[number];

export interface PhotoScorerOptions {
  /** A ViTModel folder (facebook/dino-vits16): DINO. */
  dino?: string;
  /** A CLIP folder (full CLIPModel with tokenizer and preprocessor, openai/clip-vit-large-patch14): CLIP-I and CLIP-T. */
  clip?: string;
  /** Face Rec: true (default) with the installed face-api networks, a folder of face-api models, or false (off). */
  faces?: boolean | string;
  /** The face detector's score threshold (default 0.5). */
  faceMinConfidence?: number;
  /** Where DINO and CLIP run (default the CPU); the face networks run on the CPU. */
  device?: Device;
}

/** One image's scores; null where a metric was not loaded (or, for Face Rec, no face was found). */
export interface PhotoScores {
  image: string;
  faceRec: number | null;
  /** Whether a face was found (null when Face Rec is off). */
  faceDetected: boolean | null;
  dino: number | null;
  clipI: number | null;
  clipT: number | null;
  /** The text CLIP-T compared the image with (the prompt without the identifier); null without CLIP. */
  clipText: string | null;
}

export interface MetricMean {
  /** The mean over the images scored (null when none was). */
  mean: number | null;
  /** How many images it averages. */
  count: number;
}

export interface PhotoScoreSummary {
  images: number;
  faceRec?: MetricMean & { detected: number; detectionRate: number };
  dino?: MetricMean;
  clipI?: MetricMean;
  clipT?: MetricMean;
}

/** The reference photo's features. */
interface Reference {
  file: string;
  face?: Tensor;
  dino?: Tensor;
  clip?: Tensor;
}

/** The §5 metrics, loaded once, scoring images against one reference photo at a time. */
export class PhotoScorer {
  private reference: Reference | null = null;
  private readonly textEmbeddings = new Map<string, Tensor>();

  private constructor(
    readonly dino: DinoMetric | null,
    readonly clipImage: ClipImageMetric | null,
    readonly clipText: ClipTextMetric | null,
    readonly faceRec: FaceRecMetric | null,
  ) {}

  /** Loads the metrics whose folders are given; an error names the metric and the folder. */
  static fromFolders(options: PhotoScorerOptions): PhotoScorer {
    const device = options.device ?? "cpu";
    const loaded: { dispose(): void }[] = [];
    const load = <T extends { dispose(): void }>(what: string, dir: string, make: () => T): T => {
      try {
        const metric = make();
        loaded.push(metric);
        return metric;
      } catch (error) {
        for (const metric of loaded) metric.dispose();
        throw new Error(`${what} (${dir}): ${(error as Error).message}`, { cause: error });
      }
    };
    const dino = options.dino === undefined ? null : load("DINO model", options.dino, () => DinoMetric.fromFolder(options.dino!, { device }));
    const clipImage = options.clip === undefined ? null : load("CLIP model", options.clip, () => ClipImageMetric.fromFolder(options.clip!, { device }));
    const clipText = options.clip === undefined ? null : load("CLIP model", options.clip, () => ClipTextMetric.fromFolder(options.clip!, { device }));
    const faces = options.faces ?? true;
    const faceRec = faces === false ? null : new FaceRecMetric({
      ...(typeof faces === "string" ? { modelDir: faces } : {}),
      ...(options.faceMinConfidence === undefined ? {} : { minConfidence: options.faceMinConfidence }),
    });
    return new PhotoScorer(dino, clipImage, clipText, faceRec);
  }

  /** The metrics this scorer computes. */
  get metrics(): PhotoMetricName[] {
    return PHOTO_METRICS.filter((m) => (m === "faceRec" ? this.faceRec : m === "dino" ? this.dino : this.clipImage) !== null);
  }

  /**
   * Sets the reference photo (a file or an already read photo) and computes its features. With Face Rec on, the
   * reference must show a face: the error names the photo.
   */
  async setReference(photo: string | Photo): Promise<void> {
    const read = typeof photo === "string" ? await readPhoto(photo) : photo;
    try {
      const reference: Reference = { file: read.file };
      try {
        if (this.faceRec) {
          const described = this.faceRec.describeLargest(read);
          if (!described) {
            throw new Error(`reference photo ${read.file}: no face found (${this.faceRec.analyzer.detectorLabel}); Face Rec needs the reference's face`);
          }
          reference.face = described.descriptor;
        }
        if (this.dino) reference.dino = this.dino.features([read.pixels]);
        if (this.clipImage) reference.clip = this.clipImage.embeddings([read.pixels]);
      } catch (error) {
        disposeReference(reference);
        throw error;
      }
      if (this.reference) disposeReference(this.reference);
      this.reference = reference;
    } finally {
      if (typeof photo === "string") read.pixels.dispose();
    }
  }

  /** The text CLIP-T uses for a prompt: the prompt without the identifier word. */
  static clipTextOf(prompt: string, identifier: string): string {
    return removeIdentifier(prompt, identifier);
  }

  /** Scores one image (a file or an already read photo) against the reference for its prompt. */
  async score(image: string | Photo, prompt?: string, identifier = "sks"): Promise<PhotoScores> {
    const reference = this.reference;
    if (!reference) throw new Error("PhotoScorer: no reference photo (call setReference first)");
    if (this.clipText && prompt === undefined) throw new Error("PhotoScorer: CLIP-T needs the image's prompt");
    const read = typeof image === "string" ? await readPhoto(image) : image;
    try {
      const scores: PhotoScores = { image: read.file, faceRec: null, faceDetected: null, dino: null, clipI: null, clipT: null, clipText: null };
      if (this.faceRec) {
        const described = this.faceRec.describeLargest(read);
        scores.faceDetected = described !== null;
        if (described) {
          scores.faceRec = this.faceRec.similarity(described.descriptor, reference.face!);
          described.descriptor.dispose();
        }
      }
      if (this.dino) {
        using features = this.dino.features([read.pixels]);
        scores.dino = cosineSimilarity(features, reference.dino!);
      }
      if (this.clipImage && this.clipText) {
        using embeds = this.clipImage.embeddings([read.pixels]);
        scores.clipI = cosineSimilarity(embeds, reference.clip!);
        const text = removeIdentifier(prompt!, identifier);
        scores.clipText = text;
        scores.clipT = cosineSimilarity(embeds, this.textEmbedding(text));
      }
      return scores;
    } finally {
      if (typeof image === "string") read.pixels.dispose();
    }
  }

  /** The reference, then every image scored for the same prompt, with the summary. */
  async scoreAll(reference: string | Photo, images: readonly (string | Photo)[], prompt?: string, identifier = "sks"): Promise<{ scores: PhotoScores[]; summary: PhotoScoreSummary }> {
    await this.setReference(reference);
    const scores: PhotoScores[] = [];
    for (const image of images) scores.push(await this.score(image, prompt, identifier));
    return { scores, summary: summarizePhotoScores(scores, this.metrics) };
  }

  private textEmbedding(text: string): Tensor {
    let embeds = this.textEmbeddings.get(text);
    if (!embeds) {
      embeds = this.clipText!.embeddings(text);
      this.textEmbeddings.set(text, embeds);
    }
    return embeds;
  }

  dispose(): void {
    if (this.reference) disposeReference(this.reference);
    this.reference = null;
    for (const embeds of this.textEmbeddings.values()) embeds.dispose();
    this.textEmbeddings.clear();
    this.dino?.dispose();
    this.clipImage?.dispose();
    this.clipText?.dispose();
    this.faceRec?.dispose();
  }
}

function disposeReference(reference: Reference): void {
  reference.face?.dispose();
  reference.dino?.dispose();
  reference.clip?.dispose();
}

/** Each measured metric's mean; Face Rec's over the images with a face, with the detection rate. */
export function summarizePhotoScores(scores: readonly PhotoScores[], metrics: readonly PhotoMetricName[]): PhotoScoreSummary {
  const meanOf = (values: number[]): MetricMean => ({ mean: values.length === 0 ? null : values.reduce((s, v) => s + v, 0) / values.length, count: values.length });
  const summary: PhotoScoreSummary = { images: scores.length };
  for (const metric of metrics) {
    const values = scores.map((s) => s[metric]).filter((v): v is number => v !== null);
    if (metric === "faceRec") {
      const detected = scores.filter((s) => s.faceDetected === true).length;
      summary.faceRec = { ...meanOf(values), detected, detectionRate: scores.length === 0 ? 0 : detected / scores.length };
    } else {
      summary[metric] = meanOf(values);
    }
  }
  return summary;
}
