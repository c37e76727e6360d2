/**
 * Stable Diffusion's models: CLIP tokenizer and text encoder, UNet, VAE, noise schedulers, and loading
 * diffusers/transformers checkpoints.
 */
export * from "./clip/tokenizer.js";
export * from "./schedulers/index.js";
export * from "./loading/index.js";
export {
  CLIPTextModel, CLIPTextModelWithProjection, type CLIPTextModelOutput, type CLIPTextEncodeOptions,
  type CLIPTextForwardOptions, type FromPretrainedOptions as CLIPFromPretrainedOptions,
} from "./clip/text-encoder.js";
export * from "./unet/index.js";
export * from "./vae/index.js";
