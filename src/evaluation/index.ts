/**
 * The mini-world's metric networks (issue 5): an identity network (the role of HyperDreamBooth's "Face Rec"
 * metric) and a prompt fidelity network (the role of CLIP-T), their training (resumable, deterministic), their
 * check on held-out identities, and the statistics the evaluation tables report.
 */
export { ConvEncoder, EncoderDownBlock, checkEncoderConfig, type ConvEncoderConfig } from "./backbone.js";
export {
  CosineMarginHead, DEFAULT_IDENTITY_NETWORK_CONFIG, IdentityNetwork, l2Normalize,
  type CosineMarginOptions, type IdentityNetworkConfig,
} from "./identity-network.js";
export {
  DEFAULT_FIDELITY_NETWORK_CONFIG, HAIR_COLOUR_LABELS, PHOTO_LABEL, PromptFidelityNetwork, STYLE_LABELS, styleFollowsPrompt, visibleStyle,
  type FidelityLogits, type FidelityPrediction, type PromptFidelityNetworkConfig,
} from "./fidelity-network.js";
export { CONFIG_FILE, MetricNetworkError, WEIGHTS_FILE, type WeightsDType } from "./network-files.js";
export {
  cosineSimilarityMatrix, meanConfidenceInterval, rocAuc, studentTCdf, studentTQuantile, type ConfidenceInterval,
} from "./metrics.js";
export {
  evaluateFidelityNetwork, evaluateIdentityNetwork,
  type FidelityEvaluation, type FidelityEvaluationOptions, type IdentityEvaluation, type IdentityEvaluationOptions,
} from "./evaluate.js";
export {
  IDENTITY_TRAINING_DEFAULTS, identityTrainingRequests, resolveIdentitySettings, trainIdentityNetwork, trainingIdentityIds,
  type IdentityTrainingOptions, type IdentityTrainingSettings,
} from "./training/identity.js";
export {
  FIDELITY_TRAINING_DEFAULTS, fidelityExamples, resolveFidelitySettings, trainFidelityNetwork,
  type FidelityExample, type FidelityTrainingOptions, type FidelityTrainingSettings,
} from "./training/fidelity.js";
export {
  checkCommonSettings, trainMetricNetwork,
  type CommonTrainingSettings, type MetricTrainingResult, type MetricTrainingSpec, type TrainingLocations,
} from "./training/run.js";
export { hairColourVisible, renderImageSet } from "./training/data.js";
export { imageBatch } from "../pipeline/images.js";
