/** Stable Diffusion's UNet2DConditionModel (diffusers 0.42.1), its blocks and its config. */
export {
  UNet2DConditionModel, type FromPretrainedOptions as UNetFromPretrainedOptions, type Timestep as UNetTimestep,
  type UNetForwardOptions,
} from "./unet-2d-condition.js";
export {
  DOWN_BLOCK_TYPES, UP_BLOCK_TYPES, UNET_2D_CONDITION_DEFAULTS, UNet2DConditionConfigError, planUNetBlocks,
  resolveUNet2DConditionConfig, type TransformerLayers, type UNet2DConditionConfig, type UNetBlockPlan,
  type UNetDownBlockType, type UNetMidBlockType, type UNetUpBlockType,
} from "./config.js";
export {
  CrossAttnDownBlock2D, CrossAttnUpBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D,
  type CrossAttnDownBlockOptions, type CrossAttnUpBlockOptions, type DownBlockOptions, type DownBlockOutput,
  type MidBlockOptions, type UNetDownBlock, type UNetUpBlock, type UpBlockOptions,
} from "./unet-blocks.js";
