/**
 * Lightweight DreamBooth (paper §4.1): LiDB and LoRA adapters on the attention projections of Stable
 * Diffusion's UNet and text encoder, their injection, merging, the ~100 KB LiDB file, and export to the LoRA
 * files every SD tool loads (diffusers/peft and kohya/A1111 keys).
 */
export {
  AUX_BASIS_VERSION, AuxBasisChecksum, auxBasisChecksum, buildAuxBases, seedText,
  type AuxBases, type LidbDimensions, type LidbSeed,
} from "./aux-bases.js";
export { LidbLinear, type LidbLinearOptions } from "./lidb-linear.js";
export { LoraLinear, type LoraLinearOptions } from "./lora-linear.js";
export {
  MODEL_COMPONENTS, componentModel, linearLayers, selectAttentionTargets, targetShapes,
  type AdaptedModels, type LinearTarget, type ModelComponent, type TargetSelection, type TargetShape,
} from "./targets.js";
export {
  LIDB_DEFAULTS, LidbAdapters, LoraAdapters, applyLora, injectLidb, injectLora, lidbBTrainInit, warnIfNarrowLayers,
  type LidbFactors, type LidbOptions, type LoraLayerWeights, type LoraOptions,
} from "./inject.js";
export {
  LIDB_FORMAT, LIDB_FORMAT_VERSION, applyLidbFile, checkLidbCompatibility, describeBaseModel, hashWeights, loadLidbFile,
  readLidbFileInfo, saveLidbFile, targetsHash, writeLidbFile,
  type LidbBaseModel, type LidbCompatibility, type LidbContents, type LidbFile, type LidbFileInfo, type LidbWriteOptions,
} from "./file.js";
export {
  LORA_FORMATS, applyLoraFile, readLoraFile, resolveLoraLayers, writeLoraFile,
  type LoraFile, type LoraFormat, type LoraWriteOptions,
} from "./lora-file.js";
export { exportLidbFile, lidbToLoraLayers, type ExportOptions } from "./export.js";
export * as training from "./training/index.js";
