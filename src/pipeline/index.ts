/** What turns models into images: txt2img, RGB images and their files, writing diffusers folders (`hyperdreambooth/pipeline`). */
export {
  NonFiniteLatentsError, StableDiffusionPipeline, type GenerateOptions, type GenerateResult, type GenerationSize, type PipelineLoadOptions,
} from "./stable-diffusion.js";
export { imageBatch, imageGrid, imagesToTensor, loadImage, pixelsToTensor, savePng, tensorToImages, type RgbImage } from "./images.js";
export {
  copyTokenizer, DIFFUSERS_VERSION, saveCLIPTextModel, saveDiffusersModel, saveSchedulerConfig, TRANSFORMERS_VERSION, writeModelIndex,
  type SaveComponentOptions,
} from "./save-pretrained.js";
