/**
 * DreamBooth training of LiDB adapters (HyperDreamBooth §4.1) and of the DreamBooth-LoRA baseline, for one
 * identity or many at once (the per-identity weights the hypernetwork learns to predict, §4.2).
 */
export {
  defaultConfig, identitySeed, promptWithIdentifier, resolveConfig, runFingerprint, TrainingConfigError,
  type AdapterKind, type IdentitySpec, type MixedPrecision, type TrainingConfig, type TrainingConfigInput,
} from "./config.js";
export { augment, encodePosterior, identitiesFrom, identityFromPath, loadPixels, prepareClassImages, type AugmentOptions } from "./data.js";
export { IdentityRun, type IdentitySamples, type SharedData } from "./identity.js";
export { attachAdapters, type TrainingAdapters, type TrainingSummary } from "./adapters.js";
export { MANIFEST_FILE, MANIFEST_FORMAT, readManifest, writeManifest, type ManifestEntry, type RunManifest } from "./manifest.js";
export { DREAMBOOTH_STREAM, DreamBoothTrainer, trainDreamBooth, type TrainingHooks, type TrainingResult } from "./trainer.js";
