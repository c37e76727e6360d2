/** DINOv2 (transformers' Dinov2Model), its config and its image processor (transformers' BitImageProcessor). */
export {
  DINOV2_CONFIG_DEFAULTS, Dinov2ConfigError, dinov2Config, dinov2ConfigSchema, parseDinov2Config, type Dinov2Config,
} from "./config.js";
export {
  Dinov2Attention, Dinov2Embeddings, Dinov2Encoder, Dinov2Layer, Dinov2LayerScale, Dinov2MLP, Dinov2Model, Dinov2PatchEmbeddings,
  Dinov2SelfAttention, Dinov2SelfOutput, Dinov2SwiGLUFFN,
  type Dinov2ForwardOptions, type Dinov2FromPretrainedOptions, type Dinov2ModelOutput,
} from "./dinov2.js";
export { BitImageProcessor } from "./image-processor.js";
