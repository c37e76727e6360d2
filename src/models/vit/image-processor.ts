/**
 * Images → pixel values for ViT (the DINO metric of HyperDreamBooth §5 on facebook/dino-vits16): transformers
 * 5.23's ViTImageProcessor (image_processing_pil_vit.py on the PIL backend), read from a preprocessor_config.json:
 *
 *  1. resize to `size.height` × `size.width` (an integer `size` is a square: ViT's default_to_square), or the
 *     shortest edge to `size.shortest_edge`, with `resample` 2 = bilinear (ViT's default and dino-vits16's) or
 *     3 = bicubic;
 *  2. rescale: float64(pixel) · rescale_factor, then float32;
 *  3. normalize: (x − mean) / std in float32, per channel (defaults: IMAGENET_STANDARD_MEAN/STD, 0.5; dino-vits16
 *     sets ImageNet's 0.485… / 0.229…).
 *
 * Steps 2–3 are transformers' arithmetic, bit for bit. The resize is ATen's antialiased interpolation on 8-bit
 * images (`_upsample_bilinear2d_aa` / `_upsample_bicubic2d_aa` on uint8, what torch's interpolate(antialias=True)
 * runs), which follows PIL's kernels and PIL's fixed-point two-pass arithmetic without being PIL's code;
 * test/models/vit.test.ts measures the distance to PIL (at most 1 level of 8 bits, on a small share of the values)
 * and asserts equality with transformers' pipeline with torch's resize. An image already at the size is not
 * resampled (as PIL). Inputs: 8-bit RGB, a uint8 tensor [H, W, 3] or { width, height, data }; output: float32
 * pixel_values [N, 3, H, W] on the CPU. Unlike CLIP's processor there is no center crop.
 */
import { join } from "node:path";
import { z } from "zod";
import { tensor } from "../../engine/creation.js";
import { op } from "../../engine/dispatch.js";
import { stack } from "../../engine/functional.js";
import { tidy } from "../../engine/lifetime.js";
import { call, type Tensor } from "../../engine/tensor.js";
import { parseWithSchema, positiveInt, supported, unsupportedUnless } from "../../util/schema.js";
import { resizedSize, toChannelsFirst, type RgbInput } from "../clip/image-processor.js";
import { readComponentConfig } from "../loading/config.js";
import { PREPROCESSOR_CONFIG } from "../loading/files.js";
import { resolveComponentFolder, type ResolveOptions } from "../loading/resolve.js";

/** A preprocessor_config.json that this port cannot follow: the message names the file, the key and the value. */
export class ViTImageProcessorConfigError extends Error {
  override name = "ViTImageProcessorConfigError";
}

/** transformers' names of this processor (with the legacy feature extractor dino-vits16's config names). */
export const SUPPORTED_VIT_PROCESSORS = ["ViTImageProcessor", "ViTImageProcessorFast", "ViTImageProcessorPil", "ViTFeatureExtractor"] as const;

/** IMAGENET_STANDARD_MEAN and IMAGENET_STANDARD_STD (transformers' image_utils.py), ViT's defaults. */
const IMAGENET_STANDARD = [0.5, 0.5, 0.5];

const side = positiveInt();
const PER_CHANNEL = "a number or a list of 3 numbers (one per channel)";
const perChannel = (fallback: number[]) => z.union([z.number(), z.array(z.number(), { error: PER_CHANNEL }).length(3, { error: PER_CHANNEL })], { error: PER_CHANNEL })
  .transform((value) => (typeof value === "number" ? [value, value, value] : value))
  .default(fallback);

/** `size`: {height, width} or {shortest_edge}; legacy forms: an int (a square, ViT's default_to_square) or [height, width]. */
const sizeSchema = z.union([
  z.strictObject({ height: side, width: side }),
  z.strictObject({ shortest_edge: side }),
  side.transform((n) => ({ height: n, width: n })),
  z.tuple([side, side]).transform(([height, width]) => ({ height, width })),
], { error: "{\"height\": h, \"width\": w} or {\"shortest_edge\": n} (or a positive integer: a square)" });

const flag = (fallback: boolean) => z.boolean({ error: "true or false" }).default(fallback);
const absentOrFalse = z.unknown().refine((value) => value === undefined || value === null || value === false, unsupportedUnless("false (ViT's processor does not crop)")).optional();

/** preprocessor_config.json's fields with transformers 5.23's ViTImageProcessor defaults. */
export const vitImageProcessorConfigSchema = z.object({
  image_processor_type: supported(SUPPORTED_VIT_PROCESSORS).optional(),
  feature_extractor_type: supported(SUPPORTED_VIT_PROCESSORS).optional(),
  do_resize: flag(true),
  size: sizeSchema.default({ height: 224, width: 224 }),
  /** PIL's resampling filter: 2 is BILINEAR (ViT's default), 3 BICUBIC. */
  resample: supported([2, 3], "2 (bilinear) or 3 (bicubic)").default(2),
  do_rescale: flag(true),
  rescale_factor: z.number({ error: "a number" }).default(1 / 255),
  do_normalize: flag(true),
  image_mean: perChannel(IMAGENET_STANDARD),
  image_std: perChannel(IMAGENET_STANDARD),
  /** Inputs here are RGB already. */
  do_convert_rgb: z.boolean({ error: "true or false" }).nullable().optional(),
  do_center_crop: absentOrFalse,
  do_pad: z.unknown().refine((value) => value === undefined || value === null || value === false, unsupportedUnless("false")).optional(),
}).transform(({ image_processor_type: _type, feature_extractor_type: _legacyType, do_convert_rgb: _rgb, do_center_crop: _crop, do_pad: _pad, ...config }) => config);

export type ViTImageProcessorConfig = z.output<typeof vitImageProcessorConfigSchema>;

/** The validated settings from a parsed preprocessor_config.json; `source` names the file in errors. */
export function parseViTImageProcessorConfig(raw: Record<string, unknown>, source = PREPROCESSOR_CONFIG): ViTImageProcessorConfig {
  return parseWithSchema(vitImageProcessorConfigSchema, raw, { source, error: ViTImageProcessorConfigError });
}

const RESIZE_OPS = { 2: op("aten::_upsample_bilinear2d_aa"), 3: op("aten::_upsample_bicubic2d_aa") } as const;

/** transformers' ViTImageProcessor (PIL backend): see the file comment for the steps and how exact each is. */
export class ViTImageProcessor {
  readonly config: ViTImageProcessorConfig;

  constructor(config: Partial<z.input<typeof vitImageProcessorConfigSchema>> = {}) {
    this.config = parseViTImageProcessorConfig({ ...config }, "ViTImageProcessor");
  }

  /** [N, 3, H, W] float32 pixel values for one image or several (of any sizes, as long as the results stack). */
  preprocess(images: RgbInput | readonly RgbInput[]): Tensor {
    const list = Array.isArray(images) ? (images as readonly RgbInput[]) : [images as RgbInput];
    if (list.length === 0) throw new RangeError("ViTImageProcessor: no images to preprocess");
    return tidy(() => {
      const processed = list.map((image, i) => this.processOne(toChannelsFirst(image, i)));
      const [first] = processed;
      const mismatch = processed.find((p) => p.size(1) !== first!.size(1) || p.size(2) !== first!.size(2));
      if (mismatch) {
        throw new RangeError(`ViTImageProcessor: processed images differ in size ([${first!.shape.join(", ")}] vs [${mismatch.shape.join(", ")}]); resize to a fixed {height, width}`);
      }
      return stack(processed, 0);
    });
  }

  /** uint8 [3, H, W] → float32 [3, h, w]. */
  private processOne(pixels: Tensor): Tensor {
    const c = this.config;
    let image = pixels;
    if (c.do_resize) {
      const [height, width] = resizedSize(image.size(1), image.size(2), c.size);
      if (image.size(1) !== height || image.size(2) !== width) {
        const batched = image.unsqueeze(0).contiguous();
        image = call(RESIZE_OPS[c.resample], batched, [height, width], false, null, null).squeeze(0);
      }
    }
    let values = c.do_rescale ? image.to("float64").mul(c.rescale_factor).to("float32") : image.to("float32");
    if (c.do_normalize) {
      const mean = tensor(c.image_mean, { dtype: "float32" }).view(3, 1, 1);
      const std = tensor(c.image_std, { dtype: "float32" }).view(3, 1, 1);
      values = values.sub(mean).div(std);
    }
    return values;
  }

  /** The processor of a folder or hub repository (and `subfolder`), from its preprocessor_config.json. */
  static async fromPretrained(idOrPath: string, options: ResolveOptions = {}): Promise<ViTImageProcessor> {
    return ViTImageProcessor.fromFolder(await resolveComponentFolder(idOrPath, "ViTImageProcessor", options));
  }

  /** `fromPretrained` for a folder already on disk (synchronous). */
  static fromFolder(dir: string): ViTImageProcessor {
    return new ViTImageProcessor(parseViTImageProcessorConfig(readComponentConfig(dir, PREPROCESSOR_CONFIG), join(dir, PREPROCESSOR_CONFIG)));
  }
}
