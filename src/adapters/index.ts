/**
 * Adapters on the attention projections of Stable Diffusion's UNet and text encoder, laid out as peft's
 * tuners: lidb/ (Lightweight DreamBooth, paper §4.1: config, aux bases, layer, model, the ~100 KB file) and
 * lora/ (config, layer, model, the diffusers/kohya files), what both share (targets, the adapter set, merging)
 * and the exact LiDB → LoRA export every SD tool loads.
 */
export {
  MODEL_COMPONENTS, componentModel, linearLayers, selectAttentionTargets, targetShapes,
  type AdaptedModels, type LinearTarget, type ModelComponent, type TargetSelection, type TargetShape,
} from "./targets.js";
export { AdapterSet } from "./adapter-set.js";

// LiDB
export { LIDB_DEFAULTS, checkDimensions, lidbDimensions, type LidbDimensions, type LidbOptions, type LidbSeed } from "./lidb/config.js";
export { AUX_BASIS_VERSION, AuxBasisChecksum, auxBasisChecksum, buildAuxBases, seedText, type AuxBases } from "./lidb/aux-bases.js";
export { LidbLinear, type LidbLinearOptions } from "./lidb/layer.js";
export { LidbAdapters, injectLidb, lidbBTrainInit, warnIfNarrowLayers, type LidbFactors } from "./lidb/model.js";
export {
  LIDB_FORMAT, LIDB_FORMAT_VERSION, applyLidbFile, checkLidbCompatibility, describeBaseModel, hashWeights, loadLidbFile,
  readLidbFileInfo, saveLidbFile, targetsHash, writeLidbFile,
  type LidbBaseModel, type LidbCompatibility, type LidbContents, type LidbFile, type LidbFileInfo, type LidbWriteOptions,
} from "./lidb/file.js";

// LoRA
export { type LoraLayerWeights, type LoraOptions } from "./lora/config.js";
export { LoraLinear, type LoraLinearOptions } from "./lora/layer.js";
export { LoraAdapters, applyLora, injectLora } from "./lora/model.js";
export {
  LORA_FORMATS, applyLoraFile, readLoraFile, resolveLoraLayers, writeLoraFile,
  type LoraFile, type LoraFormat, type LoraWriteOptions,
} from "./lora/file.js";

// LiDB → LoRA, and applying files at generation
export { exportLidbFile, lidbToLoraLayers, type ExportOptions } from "./export.js";
export { applyAdapterFiles, parseWeightedFile, type AppliedAdapters, type WeightedFile } from "./apply.js";
