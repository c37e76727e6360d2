/**
 * The CLIP-I metric of HyperDreamBooth §5 (after DreamBooth): the cosine similarity of the CLIP image embeddings
 * (CLIPVisionModelWithProjection's image_embeds) of a generated image and the reference photo. CLIP-T (clip-text.ts)
 * reuses the same image embeddings.
 *
 * The folder is a transformers CLIP folder: a full CLIPModel as openai/clip-vit-large-patch14 ships it (config.json
 * with text_config and vision_config, model.safetensors, preprocessor_config.json, tokenizer files), or a
 * CLIPVisionModelWithProjection folder with its preprocessor_config.json.
 */
import { tidy } from "../../engine/lifetime.js";
import type { Device, Tensor } from "../../engine/tensor.js";
import { CLIPImageProcessor, type RgbInput } from "../../models/clip/image-processor.js";
import { CLIPVisionModelWithProjection } from "../../models/clip/vision-encoder.js";

/** CLIP image embeddings of images: the vision tower with its projection and its processor, loaded once. */
export class ClipImageMetric {
  private constructor(readonly model: CLIPVisionModelWithProjection, readonly processor: CLIPImageProcessor, readonly device: Device) {}

  static fromFolder(dir: string, options: { device?: Device } = {}): ClipImageMetric {
    const device = options.device ?? "cpu";
    const model = CLIPVisionModelWithProjection.fromFolder(dir, { device });
    try {
      return new ClipImageMetric(model, CLIPImageProcessor.fromFolder(dir), device);
    } catch (error) {
      model.dispose();
      throw error;
    }
  }

  /** [N, projection_dim] float32 image_embeds (on the CPU), one row per image. */
  embeddings(images: readonly RgbInput[]): Tensor {
    return tidy(() => {
      const pixels = this.processor.preprocess(images).to(this.device);
      return this.model.forward(pixels).imageEmbeds.to({ dtype: "float32", device: "cpu" }).contiguous();
    });
  }

  dispose(): void {
    this.model.dispose();
  }
}
