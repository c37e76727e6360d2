/** Stable Diffusion's VAE: diffusers' AutoencoderKL, its encoder, decoder, blocks and posterior. */
export {
  AutoencoderKL, renameDeprecatedAttentionKey, type AutoencoderKLForwardOptions, type AutoencoderKLFromPretrainedOptions,
} from "./autoencoder-kl.js";
export {
  AUTOENCODER_KL_DEFAULTS, AutoencoderKLConfigError, resolveAutoencoderKLConfig, type AutoencoderKLConfig,
  type DownEncoderBlockType, type UpDecoderBlockType,
} from "./config.js";
export { Decoder, UpDecoderBlock2D, type DecoderOptions, type UpDecoderBlock2DOptions } from "./decoder.js";
export { DownEncoderBlock2D, Encoder, type DownEncoderBlock2DOptions, type EncoderOptions } from "./encoder.js";
export { DiagonalGaussianDistribution } from "./gaussian.js";
export { UNetMidBlock2D, type UNetMidBlock2DOptions } from "./mid-block.js";
