/**
 * Loading real checkpoints: finding a model (local diffusers folder, Hugging Face cache, optional download),
 * reading its model_index.json and configs, and loading safetensors weights (single, variant or sharded).
 */
export { ModelLoadingError } from "./errors.js";
export { readComponentConfig, readJsonObject, type JsonRecord } from "./config.js";
export {
  addVariant, componentVariant, findWeightFiles, loadPretrainedStateDict, loadPretrainedWeights, weightFileCandidates,
  type LoadedWeights, type LoadPretrainedOptions, type WeightFiles,
} from "./weights.js";
export {
  IGNORED_COMPONENTS, parseModelIndex, pipelineComponent, readModelIndex, SUPPORTED_COMPONENT_CLASSES,
  type ComponentKind, type ModelIndex, type PipelineComponent,
} from "./model-index.js";
export {
  listLocalFiles, missingLocalFiles, PREPROCESSOR_CONFIG, selectComponentFiles, selectPipelineFiles, selectWeightFiles, TOKENIZER_FILES,
  type FileSelection,
} from "./files.js";
export {
  cachedRepoOf, findSnapshot, hubCacheDir, hubOffline, isCommitHash, isRepoId, repoFolderName,
  type CachedSnapshot, type Environment,
} from "./hub-cache.js";
export {
  downloadPipeline, huggingFaceHubClient,
  type DownloadOptions, type DownloadResult, type HubClient, type HubClientOptions,
} from "./download.js";
export { resolveComponentFolder, resolvePretrained, type ResolvedModel, type ResolveOptions } from "./resolve.js";
