/**
 * The library's one-call functions, mirroring the command line (HyperDreamBooth §4.2–4.3 end to end):
 *
 *   personalize(photos, out, options)  ≙ hdb personalize   one photo → a LiDB file with its rank-relaxed part
 *   generate(options)                   ≙ hdb generate      a model, any LiDB/LoRA files, a prompt → images
 *   exportLora(file, out, { format })   ≙ hdb export        a LiDB or personalised file → one standard LoRA
 *   bundled                             the mini-world model, HyperNetwork and sample face this package ships
 *
 * Each loads what it needs and frees it before returning; for many calls on one model, use the classes they
 * wrap (Personalizer, StableDiffusionPipeline with adapters.applyAdapterFiles).
 */
import path from "node:path";
import { applyAdapterFiles, exportLidbFile, type LoraFormat, type WeightedFile } from "../adapters/index.js";
import type { DType } from "../engine/index.js";
import { bundledMiniworldDir } from "../miniworld/base-model/recipe.js";
import type { RgbImage } from "../pipeline/images.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";

export { personalize, Personalizer, type Personalization, type PersonalizerOptions } from "../personalize/index.js";

/** The bundled mini-world: its base model, HyperNetwork and a sample face of a held-out identity (absolute paths). */
export const bundled = {
  model: path.join(bundledMiniworldDir(), "base"),
  hypernetwork: path.join(bundledMiniworldDir(), "hypernetwork"),
  sampleFace: path.join(bundledMiniworldDir(), "..", "..", "samples", "faces", "60000-n1.png"),
} as const;

export interface GenerateCallOptions {
  /** A diffusers folder, HF cache path or model id (hub downloads need `allowDownload`). */
  model: string;
  prompt: string;
  negativePrompt?: string;
  /** LiDB or personalised files, each a path or { path, weight } (weight multiplies its ΔW; default 1). */
  lidb?: (string | WeightedFile)[];
  /** Standard LoRA files (diffusers or kohya layout), as `lidb`. */
  lora?: (string | WeightedFile)[];
  seed?: number | bigint;
  steps?: number;
  guidance?: number;
  width?: number;
  height?: number;
  /** Images for the prompt (default 1). */
  images?: number;
  /** A diffusers scheduler class name (default the folder's). */
  scheduler?: string;
  device?: string;
  dtype?: DType;
  allowDownload?: boolean;
}

/** `hdb generate` as a function: the images (8-bit RGB) and the seed used. */
export async function generate(options: GenerateCallOptions): Promise<{ images: RgbImage[]; seed: number | bigint }> {
  const weighted = (files: (string | WeightedFile)[] | undefined): WeightedFile[] =>
    (files ?? []).map((f) => (typeof f === "string" ? { path: f, weight: 1 } : f));
  const pipeline = await StableDiffusionPipeline.fromPretrained(options.model, {
    ...(options.device === undefined ? {} : { device: options.device }), ...(options.dtype === undefined ? {} : { dtype: options.dtype }),
    allowDownload: options.allowDownload ?? false,
  });
  try {
    const applied = applyAdapterFiles({ unet: pipeline.unet, textEncoder: pipeline.textEncoder }, { lidb: weighted(options.lidb), lora: weighted(options.lora) });
    try {
      const result = pipeline.generate({
        prompt: options.prompt, negativePrompt: options.negativePrompt, steps: options.steps, guidanceScale: options.guidance,
        seed: options.seed, width: options.width, height: options.height,
        imagesPerPrompt: options.images ?? 1, scheduler: options.scheduler,
      });
      result.images.dispose();
      result.latents.dispose();
      return { images: result.rgb, seed: result.seed };
    } finally {
      applied.dispose();
    }
  } finally {
    pipeline.dispose();
  }
}

/** `hdb export` as a function: a LiDB file (with its rank-relaxed part, if any) as ONE standard LoRA, exactly; its bytes. */
export function exportLora(file: string, out: string, options: { format: LoraFormat }): number {
  if (path.resolve(out) === path.resolve(file)) throw new Error(`exportLora: the output ${out} is the input file; give another path`);
  return exportLidbFile(file, out, options);
}
