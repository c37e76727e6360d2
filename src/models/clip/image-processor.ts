/**
 * Images → pixel values for the vision encoders: transformers 5.23's CLIPImageProcessor (image_processing_clip.py
 * and its PIL backend, image_processing_pil_clip.py; DINOv2's BitImageProcessor, image_processing_pil_bit.py, is
 * the same pipeline with the same defaults, see src/models/dinov2/image-processor.ts), read from a
 * preprocessor_config.json:
 *
 *  1. resize: the shortest edge to `size.shortest_edge`, the other to int(shortest_edge · long / short)
 *     (transformers' get_resize_output_image_size), or to `size.height` × `size.width`, with bicubic resampling;
 *  2. center crop to `crop_size` (top = (H − h) // 2, left = (W − w) // 2; zero padding where the image is smaller);
 *  3. rescale: float64(pixel) · rescale_factor, then float32 (transformers' rescale);
 *  4. normalize: (x − mean) / std in float32, per channel.
 *
 * Steps 2–4 are transformers' arithmetic, bit for bit. The resize is ATen's antialiased bicubic on 8-bit images
 * (`_upsample_bicubic2d_aa`, what torch.nn.functional.interpolate(mode="bicubic", antialias=True) runs on uint8),
 * which uses PIL's kernel (a = −0.5, support widened by the downscale factor) and PIL's fixed-point, two-pass
 * 8-bit arithmetic. It is not PIL's code: on the test photos (down- and upscaled to 224 and 256) the two differ by
 * at most 1 level of 8 bits, in under 0.5% of the values, i.e. ≤ 1/255/std after normalization
 * (test/models/clip-vision-encoder.test.ts and dinov2.test.ts assert this against transformers' PIL processors,
 * and that the output equals, bit for bit, transformers' pipeline with torch's uint8 antialiased resize).
 * sharp's (libvips') cubic resize, measured once on a synthetic image while choosing, was further off (5 levels
 * downscaling, 45 upscaling), so it is not used. An image already at the target size is not resampled (as PIL).
 *
 * Input images are 8-bit RGB: a uint8 tensor [H, W, 3] or { width, height, data } (src/pipeline/images.ts's
 * RgbImage, e.g. from its loadImage, which applies EXIF orientation and flattens alpha: transformers'
 * do_convert_rgb). Output: float32 pixel_values [N, 3, H, W] on the CPU.
 */
import { join } from "node:path";
import { z } from "zod";
import { fromBytes, tensor } from "../../engine/creation.js";
import { op } from "../../engine/dispatch.js";
import { pad, stack } from "../../engine/functional.js";
import { tidy } from "../../engine/lifetime.js";
import { call, type Tensor } from "../../engine/tensor.js";
import { parseWithSchema, positiveInt, supported, unsupportedUnless } from "../../util/schema.js";
import { readComponentConfig } from "../loading/config.js";
import { PREPROCESSOR_CONFIG } from "../loading/files.js";
import { resolveComponentFolder, type ResolveOptions } from "../loading/resolve.js";

/** A preprocessor_config.json that this port cannot follow: the message names the file, the key and the value. */
export class ImageProcessorConfigError extends Error {
  override name = "ImageProcessorConfigError";
}

/** An 8-bit RGB image: a uint8 tensor [H, W, 3], or row-major bytes (3 per pixel) with its size. */
export type RgbInput = Tensor | { width: number; height: number; data: Uint8Array };

/** The processor classes whose preprocessing is this pipeline (transformers' names, with their legacy aliases). */
export const SUPPORTED_IMAGE_PROCESSORS = [
  "CLIPImageProcessor", "CLIPImageProcessorFast", "CLIPImageProcessorPil", "CLIPFeatureExtractor",
  "BitImageProcessor", "BitImageProcessorFast", "BitImageProcessorPil",
] as const;

/** OPENAI_CLIP_MEAN and OPENAI_CLIP_STD (transformers' image_utils.py), the defaults of both processors. */
const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

const side = positiveInt();
const PER_CHANNEL = "a number or a list of 3 numbers (one per channel)";
const perChannel = (fallback: number[]) => z.union([z.number(), z.array(z.number(), { error: PER_CHANNEL }).length(3, { error: PER_CHANNEL })], { error: PER_CHANNEL })
  .transform((value) => (typeof value === "number" ? [value, value, value] : value))
  .default(fallback);

/** `size`: {shortest_edge} or {height, width}; legacy forms: an int (the shortest edge here) or [height, width]. */
const sizeSchema = z.union([
  z.strictObject({ shortest_edge: side }),
  z.strictObject({ height: side, width: side }),
  side.transform((n) => ({ shortest_edge: n })),
  z.tuple([side, side]).transform(([height, width]) => ({ height, width })),
], { error: "{\"shortest_edge\": n} or {\"height\": h, \"width\": w} (or a positive integer)" });

/** `crop_size`: {height, width}; legacy forms: an int (a square) or [height, width]. */
const cropSchema = z.union([
  z.strictObject({ height: side, width: side }),
  side.transform((n) => ({ height: n, width: n })),
  z.tuple([side, side]).transform(([height, width]) => ({ height, width })),
], { error: "{\"height\": h, \"width\": w} (or a positive integer)" });

const flag = (fallback: boolean) => z.boolean({ error: "true or false" }).default(fallback);

/** preprocessor_config.json's fields with transformers 5.23's CLIPImageProcessor defaults. */
export const imageProcessorConfigSchema = z.object({
  image_processor_type: supported(SUPPORTED_IMAGE_PROCESSORS).optional(),
  feature_extractor_type: supported(SUPPORTED_IMAGE_PROCESSORS).optional(),
  do_resize: flag(true),
  size: sizeSchema.default({ shortest_edge: 224 }),
  /** PIL's resampling filter: 3 is BICUBIC, the only one both processors use. */
  resample: supported([3], "3 (bicubic)").default(3),
  do_center_crop: flag(true),
  crop_size: cropSchema.default({ height: 224, width: 224 }),
  do_rescale: flag(true),
  rescale_factor: z.number({ error: "a number" }).default(1 / 255),
  do_normalize: flag(true),
  image_mean: perChannel(OPENAI_CLIP_MEAN),
  image_std: perChannel(OPENAI_CLIP_STD),
  /** Inputs here are RGB already (see the file comment). */
  do_convert_rgb: z.boolean({ error: "true or false" }).nullable().optional(),
  do_pad: z.unknown().refine((value) => value === undefined || value === null || value === false, unsupportedUnless("false")).optional(),
}).transform(({ image_processor_type: _type, feature_extractor_type: _legacyType, do_convert_rgb: _rgb, do_pad: _pad, ...config }) => config);

export type ImageProcessorConfig = z.output<typeof imageProcessorConfigSchema>;

/** The validated settings from a parsed preprocessor_config.json; `source` names the file in errors. */
export function parseImageProcessorConfig(raw: Record<string, unknown>, source = PREPROCESSOR_CONFIG): ImageProcessorConfig {
  return parseWithSchema(imageProcessorConfigSchema, raw, { source, error: ImageProcessorConfigError });
}

const bicubicAntialiased = op("aten::_upsample_bicubic2d_aa");

/** transformers' get_resize_output_image_size with default_to_square false: [height, width]. */
export function resizedSize(height: number, width: number, size: ImageProcessorConfig["size"]): [number, number] {
  if (!("shortest_edge" in size)) return [size.height, size.width];
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newShort = size.shortest_edge;
  const newLong = Math.trunc((newShort * long) / short);
  return width <= height ? [newLong, newShort] : [newShort, newLong];
}

/** transformers' CLIPImageProcessor (PIL backend): see the file comment for the steps and how exact each is. */
export class CLIPImageProcessor {
  readonly config: ImageProcessorConfig;

  constructor(config: Partial<z.input<typeof imageProcessorConfigSchema>> = {}) {
    this.config = parseImageProcessorConfig({ ...config }, new.target.name);
  }

  /** [N, 3, H, W] float32 pixel values for one image or several (of any sizes, as long as the results stack). */
  preprocess(images: RgbInput | readonly RgbInput[]): Tensor {
    const list = Array.isArray(images) ? (images as readonly RgbInput[]) : [images as RgbInput];
    if (list.length === 0) throw new RangeError(`${this.constructor.name}: no images to preprocess`);
    return tidy(() => {
      const processed = list.map((image, i) => this.processOne(toChannelsFirst(image, i)));
      const [first] = processed;
      const mismatch = processed.find((p) => p.size(1) !== first!.size(1) || p.size(2) !== first!.size(2));
      if (mismatch) {
        throw new RangeError(`${this.constructor.name}: processed images differ in size ([${first!.shape.join(", ")}] vs [${mismatch.shape.join(", ")}]); enable do_center_crop or give images of one size`);
      }
      return stack(processed, 0);
    });
  }

  /** uint8 [3, H, W] → float32 [3, h, w]. */
  private processOne(pixels: Tensor): Tensor {
    const c = this.config;
    let image = pixels;
    if (c.do_resize) image = resize(image, resizedSize(image.size(1), image.size(2), c.size));
    if (c.do_center_crop) image = centerCrop(image, c.crop_size.height, c.crop_size.width);
    let values = c.do_rescale ? image.to("float64").mul(c.rescale_factor).to("float32") : image.to("float32");
    if (c.do_normalize) {
      const mean = tensor(c.image_mean, { dtype: "float32" }).view(3, 1, 1);
      const std = tensor(c.image_std, { dtype: "float32" }).view(3, 1, 1);
      values = values.sub(mean).div(std);
    }
    return values;
  }

  /**
   * The processor of a folder or hub repository (and `subfolder`: "feature_extractor" of a diffusers pipeline),
   * from its preprocessor_config.json, as transformers' `from_pretrained`.
   */
  static async fromPretrained<T extends CLIPImageProcessor>(this: new (config: ImageProcessorConfig) => T, idOrPath: string, options: ResolveOptions = {}): Promise<T> {
    const dir = await resolveComponentFolder(idOrPath, this.name, options);
    return new this(readProcessorConfig(dir));
  }

  /** `fromPretrained` for a folder already on disk (synchronous). */
  static fromFolder<T extends CLIPImageProcessor>(this: new (config: ImageProcessorConfig) => T, dir: string): T {
    return new this(readProcessorConfig(dir));
  }
}

function readProcessorConfig(dir: string): ImageProcessorConfig {
  return parseImageProcessorConfig(readComponentConfig(dir, PREPROCESSOR_CONFIG), join(dir, PREPROCESSOR_CONFIG));
}

/** An RGB input as uint8 [3, H, W] (checked; `index` names the image in errors). Shared with ViTImageProcessor. */
export function toChannelsFirst(image: RgbInput, index: number): Tensor {
  if ("data" in image && !("handle" in image)) {
    const { width, height, data } = image;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || data.length !== width * height * 3) {
      throw new RangeError(`image ${index}: an RGB image of ${width}x${height} needs ${width * height * 3} bytes, got ${data.length}`);
    }
    return fromBytes(data, "uint8", [height, width, 3]).permute(2, 0, 1);
  }
  const t = image as Tensor;
  if (t.dtype !== "uint8" || t.ndim !== 3 || t.size(2) !== 3) {
    throw new RangeError(`image ${index}: expected an 8-bit RGB image, a uint8 tensor [height, width, 3], got ${t.dtype} [${t.shape.join(", ")}]`);
  }
  return t.to("cpu").permute(2, 0, 1);
}

/** Bicubic, antialiased, on 8 bits (see the file comment); no resampling when the size is already right. */
function resize(image: Tensor, [height, width]: [number, number]): Tensor {
  if (image.size(1) === height && image.size(2) === width) return image;
  const batched = image.unsqueeze(0).contiguous();
  return call(bicubicAntialiased, batched, [height, width], false, null, null).squeeze(0);
}

/** transformers' center_crop: zero padding where the image is smaller than the crop, then the centred window. */
function centerCrop(image: Tensor, cropHeight: number, cropWidth: number): Tensor {
  const [height, width] = [image.size(1), image.size(2)];
  let top = Math.floor((height - cropHeight) / 2);
  let left = Math.floor((width - cropWidth) / 2);
  let padded = image;
  if (top < 0 || left < 0 || top + cropHeight > height || left + cropWidth > width) {
    const newHeight = Math.max(cropHeight, height);
    const newWidth = Math.max(cropWidth, width);
    const topPad = Math.ceil((newHeight - height) / 2);
    const leftPad = Math.ceil((newWidth - width) / 2);
    padded = pad(image, [leftPad, newWidth - width - leftPad, topPad, newHeight - height - topPad]);
    top += topPad;
    left += leftPad;
  }
  return padded.slice(1, Math.max(0, top), top + cropHeight).slice(2, Math.max(0, left), left + cropWidth);
}
