/**
 * DINOv2's image processor: transformers' BitImageProcessor (image_processing_pil_bit.py), which DINOv2's
 * checkpoints name in their preprocessor_config.json (facebook/dinov2-base: shortest edge 256, bicubic, center
 * crop 224, ImageNet mean and std). Its pipeline and defaults are CLIPImageProcessor's (transformers declares the
 * two with the same class attributes), so it is that class under BitImageProcessor's name; the resize's closeness
 * to PIL is stated in src/models/clip/image-processor.ts and measured by test/models/dinov2.test.ts.
 */
import { CLIPImageProcessor } from "../clip/image-processor.js";

/** transformers' BitImageProcessor (PIL backend): resize, center crop, rescale, normalize. */
export class BitImageProcessor extends CLIPImageProcessor {}
