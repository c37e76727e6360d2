/**
 * The HyperNetwork (HyperDreamBooth §4.2) as a package entry, `hyperdreambooth/hypernetwork`: one photo → LiDB
 * factors in one forward pass; its folder, its predictions as LiDB files, its training.
 */
export { hyperNetworkConfig, valuesPerLayer, type HyperNetworkConfig, type HyperNetworkConfigInput } from "./config.js";
export { VisionFeatureEncoder, type VisionEncoderOptions } from "./encoder.js";
export { HyperNetwork, type PredictedFactors } from "./hypernetwork.js";
export { lidbSpaceOf, loadHyperNetwork, saveHyperNetwork, writePrediction, type LidbSpace } from "./file.js";
export { predictLidbFiles, type Prediction } from "./predict.js";
export {
  trainHyperNetwork, type FeatureEncoder, type HyperNetworkTrainingOptions, type HyperNetworkTrainingResult, type HyperNetworkTrainingSettings,
  type ValidationOptions,
} from "./train.js";
