/**
 * Stable Diffusion's models: CLIP tokenizer and text encoder, UNet, VAE, noise schedulers, and loading
 * diffusers/transformers checkpoints; the image encoders (CLIP's vision tower, DINOv2, ViT) and their image processors.
 */
export * from "./clip/tokenizer.js";
export * from "./schedulers/index.js";
export * from "./loading/index.js";
export {
  CLIPTextModel, CLIPTextModelWithProjection, type CLIPTextModelOutput, type CLIPTextEncodeOptions,
  type CLIPTextForwardOptions, type FromPretrainedOptions as CLIPFromPretrainedOptions,
} from "./clip/text-encoder.js";
export {
  CLIPVisionModel, CLIPVisionModelWithProjection, type CLIPVisionForwardOptions, type CLIPVisionFromPretrainedOptions,
  type CLIPVisionModelOutput, type CLIPVisionModelWithProjectionOutput,
} from "./clip/vision-encoder.js";
export {
  CLIP_VISION_CONFIG_DEFAULTS, CLIPVisionConfigError, clipVisionConfig, parseCLIPVisionConfig, type CLIPVisionConfig,
} from "./clip/vision-config.js";
export {
  CLIPImageProcessor, ImageProcessorConfigError, parseImageProcessorConfig, type ImageProcessorConfig, type RgbInput,
} from "./clip/image-processor.js";
export * from "./dinov2/index.js";
export * from "./vit/index.js";
export * from "./unet/index.js";
export * from "./vae/index.js";
