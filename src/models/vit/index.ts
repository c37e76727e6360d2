/** ViT (transformers' ViTModel, the DINO metric's facebook/dino-vits16), its config and its image processor. */
export { parseViTConfig, VIT_CONFIG_DEFAULTS, VIT_POOLER_ACTIVATIONS, ViTConfigError, vitConfig, vitConfigSchema, type ViTConfig } from "./config.js";
export {
  ViTAttention, ViTDense, ViTEmbeddings, ViTEncoder, ViTIntermediate, ViTLayer, ViTModel, ViTPatchEmbeddings, ViTPooler, ViTSelfAttention,
  type ViTForwardOptions, type ViTFromPretrainedOptions, type ViTModelOptions, type ViTModelOutput,
} from "./vit.js";
export {
  parseViTImageProcessorConfig, SUPPORTED_VIT_PROCESSORS, ViTImageProcessor, ViTImageProcessorConfigError, vitImageProcessorConfigSchema,
  type ViTImageProcessorConfig,
} from "./image-processor.js";
