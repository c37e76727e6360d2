/**
 * Faces in a photo: detection (SSD MobileNet V1, or the faster Tiny Face Detector on request), 68 landmarks per
 * face, and descriptors (dlib's ResNet) on eye-levelled crops, with the networks of src/models/faces/ loaded once.
 *
 * Landmarks are found as face-api's pipeline finds them (globalApi/DetectFaceLandmarksTasks.ts): the detection box
 * cut out of the photo (here rounded to whole pixels and clipped to the photo), given to the landmark network, the
 * points shifted back by the box's corner.
 */
import { tidy } from "../engine/lifetime.js";
import type { Tensor } from "../engine/tensor.js";
import {
  FACE_DESCRIPTOR_SIZE, FaceLandmark68Net, FaceRecognitionNet, loadFaceApiWeights, SsdMobilenetV1, TINY_FACE_DETECTOR_INPUT_SIZE,
  TinyFaceDetector, type FaceBox,
} from "../models/faces/index.js";
import { descriptorChip, warpSquare, type Point } from "./align.js";
import type { Photo } from "./photo.js";

/** A face found in a photo. */
export interface DetectedFace {
  /** Detector score in (0, 1). */
  score: number;
  /** Box in the photo's pixels. */
  box: { x: number; y: number; width: number; height: number };
  /** The 68 landmarks (iBUG 300-W order) in the photo's pixels. */
  landmarks: Point[];
}

/** The face detectors: SSD MobileNet V1 (recall; the default) or face-api's Tiny Face Detector (speed). */
export const FACE_DETECTORS = ["ssd", "tiny"] as const;
export type FaceDetectorName = (typeof FACE_DETECTORS)[number];

export interface AnalyzerOptions {
  /** Which detector finds the faces (default "ssd"). */
  detector?: FaceDetectorName;
  /** Detector score threshold (default 0.5, face-api's; the Tiny Face Detector's scoreThreshold). */
  minConfidence?: number;
  /** The Tiny Face Detector's input size, a multiple of 32 (default 416, face-api's); SSD always runs at 512. */
  inputSize?: number;
  /** Where face-api's model/ folder is (default: the installed package's). */
  modelDir?: string;
  /** Where dequantised weights are cached (default: faceWeightCacheDir()). */
  cacheDir?: string;
}

/** The three face networks, loaded once and reused for many photos. */
export class FaceAnalyzer {
  readonly detector: FaceDetectorName;
  readonly minConfidence: number;
  /** The detector and its settings in words, for messages ("SSD MobileNet V1 face detector, score threshold 0.5"). */
  readonly detectorLabel: string;
  private readonly options: AnalyzerOptions;
  private ssd?: SsdMobilenetV1;
  private tiny?: TinyFaceDetector;
  private landmarker?: FaceLandmark68Net;
  private recognizer?: FaceRecognitionNet;

  constructor(options: AnalyzerOptions = {}) {
    this.options = options;
    this.detector = options.detector ?? "ssd";
    if (!FACE_DETECTORS.includes(this.detector)) throw new Error(`unknown face detector '${String(this.detector)}' (${FACE_DETECTORS.join(", ")})`);
    this.minConfidence = options.minConfidence ?? 0.5;
    const inputSize = options.inputSize ?? TINY_FACE_DETECTOR_INPUT_SIZE;
    if (options.inputSize !== undefined && this.detector !== "tiny") {
      throw new Error(`an input size (${options.inputSize}) is the Tiny Face Detector's setting; SSD MobileNet V1 always runs at 512 px`);
    }
    if (!Number.isInteger(inputSize) || inputSize <= 0 || inputSize % 32 !== 0) {
      throw new Error(`the Tiny Face Detector's input size must be a positive multiple of 32 (320, 416, 608, …), got ${inputSize}`);
    }
    this.detectorLabel = this.detector === "tiny"
      ? `Tiny Face Detector at ${inputSize} px, score threshold ${this.minConfidence}`
      : `SSD MobileNet V1 face detector, score threshold ${this.minConfidence}`;
  }

  private weights(model: Parameters<typeof loadFaceApiWeights>[0]): ReturnType<typeof loadFaceApiWeights> {
    const { modelDir, cacheDir } = this.options;
    return loadFaceApiWeights(model, { ...(modelDir ? { modelDir } : {}), ...(cacheDir ? { cacheDir } : {}) });
  }

  /** The detector's boxes of the photo's faces (no landmarks), best score first. */
  locate(photo: Photo): FaceBox[] {
    if (this.detector === "tiny") {
      this.tiny ??= new TinyFaceDetector(this.weights("tiny_face_detector_model"));
      return this.tiny.detect(photo.pixels, { scoreThreshold: this.minConfidence, inputSize: this.options.inputSize ?? TINY_FACE_DETECTOR_INPUT_SIZE });
    }
    this.ssd ??= new SsdMobilenetV1(this.weights("ssd_mobilenetv1_model"));
    return this.ssd.detect(photo.pixels, { minConfidence: this.minConfidence });
  }

  /** Every face in the photo with its landmarks, best detector score first. */
  detect(photo: Photo): DetectedFace[] {
    const boxes = this.locate(photo);
    this.landmarker ??= new FaceLandmark68Net(this.weights("face_landmark_68_model"));
    return boxes.flatMap((box) => {
      const crop = clippedBox(box, photo.width, photo.height);
      if (crop.width <= 0 || crop.height <= 0) return [];
      const points = tidy(() => {
        const pixels = photo.pixels.slice(0, crop.y, crop.y + crop.height).slice(1, crop.x, crop.x + crop.width);
        return Array.from(this.landmarker!.detect([pixels]).data() as Float32Array);
      });
      const landmarks = Array.from({ length: 68 }, (_, i) => ({ x: points[2 * i]! + crop.x, y: points[2 * i + 1]! + crop.y }));
      return [{ score: box.score, box: { x: box.x, y: box.y, width: box.width, height: box.height }, landmarks }];
    });
  }

  /**
   * The 128-d descriptors of faces (N, 128): each face cut out eye-levelled (descriptorChip) at 150 px and given to
   * dlib's network.
   */
  describe(photo: Photo, faces: readonly DetectedFace[]): Tensor {
    if (faces.length === 0) throw new Error(`${photo.file}: no faces to describe`);
    this.recognizer ??= new FaceRecognitionNet(this.weights("face_recognition_model"));
    return tidy(() => {
      const chips = faces.map((face) => warpSquare(photo.pixels, descriptorChip(face.landmarks), FACE_DESCRIPTOR_SIZE));
      return this.recognizer!.describe(chips);
    });
  }

  /** Descriptors of already aligned face images ((H, W, 3) pixel tensors, any size), as face-api computes them. */
  describeCrops(crops: readonly Tensor[]): Tensor {
    this.recognizer ??= new FaceRecognitionNet(this.weights("face_recognition_model"));
    return this.recognizer.describe(crops);
  }

  dispose(): void {
    this.ssd?.dispose();
    this.tiny?.dispose();
    this.landmarker?.dispose();
    this.recognizer?.dispose();
  }
}

/** The integer crop of a detection: its corners rounded to whole pixels, clipped to the photo. */
function clippedBox(box: FaceBox, width: number, height: number): { x: number; y: number; width: number; height: number } {
  const x = Math.max(0, Math.round(box.x));
  const y = Math.max(0, Math.round(box.y));
  const right = Math.min(width, Math.round(box.x + box.width));
  const bottom = Math.min(height, Math.round(box.y + box.height));
  return { x, y, width: right - x, height: bottom - y };
}
