/**
 * Stable Diffusion's models: the CLIP tokenizer, the noise schedulers, and loading diffusers checkpoints.
 */
export * from "./clip/tokenizer.js";
export * from "./schedulers/index.js";
export * from "./loading/index.js";
