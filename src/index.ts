/** hyperdreambooth: the public library API. */
export * as engine from "./engine/index.js";
export * as models from "./models/index.js";
export { StableDiffusionPipeline, type GenerateOptions, type GenerateResult, type PipelineLoadOptions } from "./pipeline/stable-diffusion.js";
export { loadImage, savePng, tensorToImages, imagesToTensor, imageGrid, type RgbImage } from "./pipeline/images.js";
export * as adapters from "./adapters/index.js";
export * as dreambooth from "./dreambooth/index.js";
export * as miniworld from "./miniworld/index.js";
export { bundled, exportLora, generate, personalize, Personalizer, type GenerateCallOptions, type Personalization, type PersonalizerOptions } from "./cli/library.js";
