/**
 * The HyperNetwork's frozen image encoder (HyperDreamBooth §4.2: "ViT encoder … image features f, computed
 * once"): a CLIP vision tower (the paper's ViT-H/14; ViT-L/14 works the same) or DINOv2, loaded from a folder
 * or a Hugging Face id with its image processor, read at one hidden layer (config.encoder_layer: −1 the last,
 * −2 the penultimate, CLIP's usual choice for features). It is referenced by id or path in the HyperNetwork's
 * config, never copied into it (prior-art mistake 4).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { cat, noGrad, tidy, type Tensor } from "../engine/index.js";
import { CLIPImageProcessor } from "../models/clip/image-processor.js";
import { CLIPVisionModel, CLIPVisionModelWithProjection } from "../models/clip/vision-encoder.js";
import { BitImageProcessor } from "../models/dinov2/image-processor.js";
import { Dinov2Model } from "../models/dinov2/dinov2.js";
import { resolveComponentFolder } from "../models/loading/index.js";
import { loadImage } from "../pipeline/images.js";
import type { FeatureEncoder } from "./train.js";

type VisionModel = CLIPVisionModel | CLIPVisionModelWithProjection | Dinov2Model;

export interface VisionEncoderOptions {
  /** Which hidden state: −1 the last, −2 the one before (default −2). */
  layer?: number;
  device?: string;
  /** Photos per forward pass (default 16). */
  batchSize?: number;
}

export class VisionFeatureEncoder implements FeatureEncoder {
  private constructor(
    /** The id or folder as given (recorded in the HyperNetwork's config). */
    readonly id: string,
    readonly model: VisionModel,
    readonly processor: CLIPImageProcessor,
    readonly layer: number,
    readonly device: string,
    readonly batchSize: number,
  ) {}

  get hiddenSize(): number {
    return this.model.config.hidden_size;
  }

  /**
   * Loads the encoder named by `idOrPath`: a transformers folder (or a hub id, or a diffusers pipeline's
   * image_encoder/) whose config.json says clip_vision_model, clip (the vision tower of a full CLIP) or dinov2.
   */
  static async fromPretrained(idOrPath: string, options: VisionEncoderOptions = {}): Promise<VisionFeatureEncoder> {
    const layer = options.layer ?? -2;
    if (!Number.isInteger(layer) || layer > -1) throw new RangeError(`encoder layer must be a negative integer (−1 the last hidden state), got ${layer}`);
    const dir = await resolveComponentFolder(idOrPath, "image encoder", {});
    const configFile = path.join(dir, "config.json");
    const config = JSON.parse(readFileSync(configFile, "utf8")) as { model_type?: string; architectures?: string[] };
    const placement = options.device === undefined ? {} : { device: options.device };
    let model: VisionModel;
    let processor: CLIPImageProcessor;
    if (config.model_type === "dinov2") {
      model = Dinov2Model.fromFolder(dir, placement);
      processor = existsSync(path.join(dir, "preprocessor_config.json")) ? BitImageProcessor.fromFolder(dir) : new BitImageProcessor();
    } else if (config.model_type === "clip_vision_model" || config.model_type === "clip") {
      const withProjection = config.architectures?.some((a) => a.includes("WithProjection")) ?? false;
      model = withProjection ? CLIPVisionModelWithProjection.fromFolder(dir, placement) : CLIPVisionModel.fromFolder(dir, placement);
      processor = existsSync(path.join(dir, "preprocessor_config.json")) ? CLIPImageProcessor.fromFolder(dir) : new CLIPImageProcessor();
    } else {
      throw new Error(`${configFile}: model_type ${JSON.stringify(config.model_type)} is not an image encoder this project reads (clip_vision_model, clip, dinov2)`);
    }
    model.requiresGrad_(false);
    model.eval();
    const layers = model.config.num_hidden_layers + 1;
    if (-layer > layers) {
      model.dispose();
      throw new RangeError(`encoder layer ${layer}: ${idOrPath} has ${layers} hidden states (−1 … −${layers})`);
    }
    return new VisionFeatureEncoder(idOrPath, model, processor, layer, options.device ?? "cpu", options.batchSize ?? 16);
  }

  /** Photos (files) → (N, tokens, hidden) features on the CPU, float32, in batches. */
  async encode(files: readonly string[]): Promise<Tensor> {
    const parts: Tensor[] = [];
    try {
      for (let start = 0; start < files.length; start += this.batchSize) {
        const images = await Promise.all(files.slice(start, start + this.batchSize).map((file) => loadImage(file)));
        parts.push(noGrad(() => tidy(() => {
          const pixels = this.processor.preprocess(images).to(this.device);
          const output = this.model.forward(pixels, { outputHiddenStates: true });
          return output.hiddenStates!.at(this.layer)!.float().cpu();
        })));
      }
      return tidy(() => cat(parts, 0));
    } finally {
      for (const part of parts) part.dispose();
    }
  }

  dispose(): void {
    this.model.dispose();
  }
}
