/**
 * The DINO metric of HyperDreamBooth §5 (introduced by DreamBooth): the cosine similarity of the CLS tokens of a
 * self-supervised ViT (facebook/dino-vits16: transformers' ViTModel, last_hidden_state[:, 0] after the final
 * layernorm) of a generated image and the reference photo. Unlike CLIP-I it is not trained to ignore what text
 * does not describe, so it rewards images that keep the subject's distinctive appearance.
 *
 * The folder is a transformers ViTModel folder (config.json + model.safetensors) with its
 * preprocessor_config.json; without one, dino-vits16's published settings are used (bilinear resize to the
 * model's image_size, ImageNet mean and std).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tidy } from "../../engine/lifetime.js";
import type { Device, Tensor } from "../../engine/tensor.js";
import type { RgbInput } from "../../models/clip/image-processor.js";
import { PREPROCESSOR_CONFIG } from "../../models/loading/files.js";
import { ViTImageProcessor } from "../../models/vit/image-processor.js";
import { ViTModel } from "../../models/vit/vit.js";

/** facebook/dino-vits16's preprocessor_config.json, but for the size (the model's image_size). */
const DINO_VITS16_PROCESSOR = { resample: 2, image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225] } as const;

/** DINO features of images: the ViT and its processor, loaded once. */
export class DinoMetric {
  private constructor(readonly model: ViTModel, readonly processor: ViTImageProcessor, readonly device: Device) {}

  /** Loads a ViTModel folder (facebook/dino-vits16) and its processor. */
  static fromFolder(dir: string, options: { device?: Device } = {}): DinoMetric {
    const device = options.device ?? "cpu";
    const model = ViTModel.fromFolder(dir, { device });
    try {
      const [height, width] = typeof model.config.image_size === "number" ? [model.config.image_size, model.config.image_size] : model.config.image_size;
      const processor = existsSync(join(dir, PREPROCESSOR_CONFIG))
        ? ViTImageProcessor.fromFolder(dir)
        : new ViTImageProcessor({ ...DINO_VITS16_PROCESSOR, image_mean: [...DINO_VITS16_PROCESSOR.image_mean], image_std: [...DINO_VITS16_PROCESSOR.image_std], size: { height, width } });
      return new DinoMetric(model, processor, device);
    } catch (error) {
      model.dispose();
      throw error;
    }
  }

  /** [N, hidden_size] float32 CLS features (on the CPU), one row per image. */
  features(images: readonly RgbInput[]): Tensor {
    return tidy(() => {
      const pixels = this.processor.preprocess(images).to(this.device);
      const { lastHiddenState } = this.model.forward(pixels);
      return lastHiddenState.select(1, 0).to({ dtype: "float32", device: "cpu" }).contiguous();
    });
  }

  dispose(): void {
    this.model.dispose();
  }
}
