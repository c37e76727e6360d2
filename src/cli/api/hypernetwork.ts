/**
 * The HyperNetwork (HyperDreamBooth §4.2) as a package entry, `hyperdreambooth/hypernetwork`: one photo → LiDB
 * factors in one forward pass; its folder, its predictions as LiDB files, its training. (The entry lives in the
 * public-API layer beside src/index.ts: the hypernetwork layer itself has no index module.)
 */
export { hyperNetworkConfig, valuesPerLayer, type HyperNetworkConfig, type HyperNetworkConfigInput } from "../../hypernetwork/config.js";
export { VisionFeatureEncoder, type VisionEncoderOptions } from "../../hypernetwork/encoder.js";
export { HyperNetwork, type PredictedFactors } from "../../hypernetwork/hypernetwork.js";
export { lidbSpaceOf, loadHyperNetwork, saveHyperNetwork, writePrediction, type LidbSpace } from "../../hypernetwork/file.js";
export { predictLidbFiles, type Prediction } from "../../hypernetwork/predict.js";
export {
  trainHyperNetwork, type FeatureEncoder, type HyperNetworkTrainingOptions, type HyperNetworkTrainingResult, type HyperNetworkTrainingSettings,
  type ValidationOptions,
} from "../../hypernetwork/train.js";
