/**
 * Real photos in: face detection, 68 landmarks, CelebA-HQ alignment and crop, and the Face Rec metric, on the
 * networks of src/models/faces/.
 */
export { readPhoto, type Photo } from "./photo.js";
export { FACE_DETECTORS, FaceAnalyzer, type AnalyzerOptions, type DetectedFace, type FaceDetectorName } from "./analyzer.js";
export { celebaHqSquare, descriptorChip, eyeCentres, squareSide, warpSquare, type Point, type Square } from "./align.js";
export {
  chooseFace, cropFace, facesLeftToRight, FRAMINGS, preprocessFacePhoto, type CropOptions, type FaceCrop, type Framing,
} from "./preprocess.js";
export { facesOverlaySvg, saveFacesPreview } from "./preview.js";
export { descriptorSimilarity } from "./metric.js";
