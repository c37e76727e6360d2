/**
 * The Face Rec metric of HyperDreamBooth §5: the cosine similarity of face-recognition descriptors (dlib's ResNet,
 * 128-d, src/faces) of the largest face in a generated image and in the reference photo, each described on its
 * aligned (eye-levelled) crop, as `hdb faces compare` does. A generated image in which the detector finds no face
 * is not an error: it has no score (null), and the summary reports the detection rate beside the mean over the
 * images with a face (stylised prompts often lose the face; averaging a zero in would mix the two).
 */
import { tidy } from "../../engine/lifetime.js";
import type { Tensor } from "../../engine/tensor.js";
import { descriptorSimilarity, FaceAnalyzer, type AnalyzerOptions, type DetectedFace, type Photo } from "../../faces/index.js";

/** The largest face of a photo and its descriptor [1, 128] (the caller disposes it). */
export interface DescribedFace {
  descriptor: Tensor;
  face: DetectedFace;
  /** How many faces the detector found. */
  found: number;
}

/** Face detection, landmarks and descriptors (the face networks loaded once). */
export class FaceRecMetric {
  readonly analyzer: FaceAnalyzer;

  /** `modelDir`: face-api's model/ folder (default: the installed package's). */
  constructor(options: AnalyzerOptions = {}) {
    this.analyzer = new FaceAnalyzer(options);
  }

  /** The largest face (box area) of the photo with its descriptor, or null when no face is found. */
  describeLargest(photo: Photo): DescribedFace | null {
    const faces = this.analyzer.detect(photo);
    if (faces.length === 0) return null;
    const face = faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
    return { descriptor: this.analyzer.describe(photo, [face]), face, found: faces.length };
  }

  /** Face Rec: the cosine of two descriptors [1, 128]. */
  similarity(a: Tensor, b: Tensor): number {
    return tidy(() => descriptorSimilarity(a, b).item());
  }

  dispose(): void {
    this.analyzer.dispose();
  }
}
