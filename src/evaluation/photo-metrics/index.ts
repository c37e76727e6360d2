/**
 * HyperDreamBooth §5's metrics at Stable Diffusion scale, on real photos: Face Rec, DINO, CLIP-I, CLIP-T, and the
 * scorer that loads the checkpoints (`hdb score`).
 */
export { ClipImageMetric } from "./clip-image.js";
export { ClipTextMetric, removeIdentifier } from "./clip-text.js";
export { cosineSimilarity } from "./cosine.js";
export { DinoMetric } from "./dino.js";
export { FaceRecMetric, type DescribedFace } from "./face-rec.js";
export {
  PHOTO_METRICS, PhotoScorer, summarizePhotoScores,
  type MetricMean, type PhotoMetricName, type PhotoScores, type PhotoScorerOptions, type PhotoScoreSummary,
} from "./scorer.js";
