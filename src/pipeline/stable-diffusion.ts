/**
 * Text-to-image with Stable Diffusion 1.x/2.x: diffusers' StableDiffusionPipeline, step for step.
 *
 * prompt → CLIP tokenizer → CLIP text encoder (optional clip-skip) → [negative; positive] embeddings;
 * latents ~ N(0, I) drawn on the CPU from torch.Generator("cpu").manual_seed(seed)'s stream (so a seed gives
 * diffusers' image) × init_noise_sigma; for each timestep: UNet on the doubled batch, classifier-free
 * guidance uncond + g·(text − uncond), scheduler step; then the VAE decodes latents / scaling_factor and the
 * images are post-processed as diffusers does. Components are loaded from a diffusers folder, a Hugging Face
 * cache snapshot or a model id (src/models/loading).
 */
import path from "node:path";
import { cat, Generator, keep, noGrad, tensor, tidy, type DType, type Tensor } from "../engine/index.js";
import { CLIPTextModel } from "../models/clip/text-encoder.js";
import { CLIPTokenizer } from "../models/clip/tokenizer.js";
import { readComponentConfig } from "../models/loading/config.js";
import { resolvePretrained, type ResolveOptions } from "../models/loading/resolve.js";
import { randnTensor, schedulerFromConfig, type Scheduler } from "../models/schedulers/index.js";
import { UNet2DConditionModel } from "../models/unet/index.js";
import { AutoencoderKL } from "../models/vae/index.js";
import { tensorToImages, type RgbImage } from "./images.js";

export interface PipelineLoadOptions extends ResolveOptions {
  /** Compute dtype of the models (weights of another dtype are converted). Default float32. */
  dtype?: DType;
  device?: string;
}

export interface GenerateOptions {
  prompt: string | string[];
  negativePrompt?: string | string[];
  /** Classifier-free guidance scale; guidance is off at ≤ 1 (as in diffusers). Default 7.5. */
  guidanceScale?: number;
  /** Denoising steps. Default 50. */
  steps?: number;
  /** Default: unet.sample_size × VAE scale factor. Must be divisible by the VAE scale factor. */
  height?: number;
  width?: number;
  /** Images per prompt. Default 1. */
  imagesPerPrompt?: number;
  /** diffusers' `generator=torch.Generator("cpu").manual_seed(seed)`. Omitted: a random seed. */
  seed?: number | bigint;
  /** Scheduler class name or alias (euler, euler_a, ddim, dpm++2m, ...); default: the folder's. */
  scheduler?: string;
  /** Use Karras et al.'s sigma spacing (Euler, DPM-Solver++): diffusers' use_karras_sigmas=True. */
  karrasSigmas?: boolean;
  /** Skip the last N CLIP layers (diffusers' clip_skip). */
  clipSkip?: number;
  /** DDIM's eta. */
  eta?: number;
  /** Called after every step with (step index, total, timestep). */
  onStep?: (step: number, total: number, timestep: number) => void;
}

export interface GenerateResult {
  /** (N, 3, H, W) float32 in [-1, 1] (the decoded images before post-processing). */
  images: Tensor;
  /** Final latents (N, C, H/f, W/f). */
  latents: Tensor;
  /** 8-bit RGB images, as diffusers' output_type="pil" would hold. */
  rgb: RgbImage[];
  seed: number | bigint;
}

export class StableDiffusionPipeline {
  private constructor(
    readonly root: string,
    readonly tokenizer: CLIPTokenizer,
    readonly textEncoder: CLIPTextModel,
    readonly unet: UNet2DConditionModel,
    readonly vae: AutoencoderKL,
    private readonly schedulerConfig: Record<string, unknown>,
    readonly device: string,
  ) {}

  /** Loads every component of a pipeline folder, cache snapshot or model id. */
  static async fromPretrained(idOrPath: string, options: PipelineLoadOptions = {}): Promise<StableDiffusionPipeline> {
    const resolved = await resolvePretrained(idOrPath, options);
    if (resolved.kind !== "pipeline" || !resolved.modelIndex) {
      throw new Error(`${idOrPath} is a single model component, not a pipeline folder with model_index.json`);
    }
    const names = new Map(resolved.modelIndex.components.map((c) => [c.name, c]));
    for (const needed of ["tokenizer", "text_encoder", "unet", "vae", "scheduler"]) {
      if (!names.has(needed)) throw new Error(`${resolved.path}/model_index.json has no '${needed}' component`);
    }
    const dir = (name: string): string => path.join(resolved.path, name);
    const placement = { dtype: options.dtype ?? "float32", device: options.device ?? "cpu", variant: options.variant };
    return new StableDiffusionPipeline(
      resolved.path,
      CLIPTokenizer.fromFolder(dir("tokenizer")),
      CLIPTextModel.fromPretrained(dir("text_encoder"), placement),
      UNet2DConditionModel.fromPretrained(dir("unet"), placement),
      AutoencoderKL.fromPretrained(dir("vae"), placement),
      readComponentConfig(dir("scheduler"), "scheduler_config.json"),
      placement.device,
    );
  }

  /** 2^(number of VAE blocks − 1): pixels per latent (8 for Stable Diffusion). */
  get vaeScaleFactor(): number {
    return 2 ** (this.vae.config.block_out_channels.length - 1);
  }

  /** A fresh scheduler from the folder's config, optionally swapped to another class (diffusers' from_config). */
  makeScheduler(name?: string, overrides: Record<string, unknown> = {}): Scheduler {
    return schedulerFromConfig({ ...this.schedulerConfig, ...overrides }, name);
  }

  /**
   * Prompt embeddings as diffusers' encode_prompt: padded to the tokenizer's max length with truncation,
   * the text encoder's last hidden state (or the clip-skip layer through the final layer norm).
   */
  encodePrompt(prompts: string[], clipSkip?: number): Tensor {
    const { inputIds } = this.tokenizer.call(prompts, { padding: "max_length", maxLength: this.tokenizer.modelMaxLength, truncation: true });
    return noGrad(() => tidy(() => {
      const ids = tensorOfIds(inputIds, this.device);
      return this.textEncoder.encode(ids, clipSkip === undefined ? {} : { clipSkip });
    }));
  }

  generate(options: GenerateOptions): GenerateResult {
    const prompts = typeof options.prompt === "string" ? [options.prompt] : options.prompt;
    if (prompts.length === 0) throw new Error("generate: give at least one prompt");
    const perPrompt = options.imagesPerPrompt ?? 1;
    const guidance = options.guidanceScale ?? 7.5;
    const steps = options.steps ?? 50;
    const factor = this.vaeScaleFactor;
    const [sampleHeight, sampleWidth] = this.unet.sampleSize ?? [64, 64];
    const height = options.height ?? sampleHeight * factor;
    const width = options.width ?? sampleWidth * factor;
    if (height % factor !== 0 || width % factor !== 0) {
      throw new Error(`height and width must be divisible by ${factor}, got ${height}x${width}`);
    }
    if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
    const negatives = options.negativePrompt === undefined ? prompts.map(() => "")
      : typeof options.negativePrompt === "string" ? prompts.map(() => options.negativePrompt as string) : options.negativePrompt;
    if (negatives.length !== prompts.length) throw new Error(`${negatives.length} negative prompts for ${prompts.length} prompts`);
    const seed = options.seed ?? BigInt(Math.floor(Math.random() * 2 ** 53));
    const generator = new Generator("cpu", seed);
    const scheduler = this.makeScheduler(options.scheduler, options.karrasSigmas ? { use_karras_sigmas: true } : {});
    try {
      return noGrad(() => tidy(() => {
        const useGuidance = guidance > 1;
        const repeat = (list: string[]): string[] => list.flatMap((p) => Array<string>(perPrompt).fill(p));
        const promptEmbeds = this.encodePrompt(repeat(prompts), options.clipSkip);
        const embeddings = useGuidance ? cat([this.encodePrompt(repeat(negatives), options.clipSkip), promptEmbeds]) : promptEmbeds;
        scheduler.setTimesteps(steps, this.device);
        const shape = [prompts.length * perPrompt, this.unet.config.in_channels, height / factor, width / factor];
        let latents = keep(randnTensor(shape, { generator, device: this.device, dtype: promptEmbeds.dtype }).mul(scheduler.initNoiseSigma));
        const timesteps = scheduler.timestepList;
        timesteps.forEach((t, i) => {
          const next = tidy(() => {
            const doubled = useGuidance ? cat([latents, latents]) : latents;
            const modelInput = scheduler.scaleModelInput(doubled, t);
            let noise = this.unet.forward(modelInput, t, embeddings);
            if (useGuidance) {
              const [uncond, text] = noise.chunk(2) as [Tensor, Tensor];
              noise = uncond.add(text.sub(uncond).mul(guidance));
            }
            return scheduler.step(noise, t, latents, { generator, ...(options.eta === undefined ? {} : { eta: options.eta }) }).prevSample;
          });
          latents.dispose();
          latents = keep(next);
          options.onStep?.(i + 1, timesteps.length, t);
        });
        const images = this.decodeLatents(latents);
        latents.kept = false;
        return { images, latents, rgb: tensorToImages(images), seed };
      }));
    } finally {
      scheduler.dispose();
    }
  }

  /** VAE decode of diffusion latents: z = latents / scaling_factor (+ shift), as diffusers' pipeline. */
  decodeLatents(latents: Tensor): Tensor {
    return noGrad(() => tidy(() => {
      let z = latents.div(this.vae.scalingFactor);
      if (this.vae.shiftFactor !== null) z = z.add(this.vae.shiftFactor);
      return this.vae.decode(z);
    }));
  }

  dispose(): void {
    this.textEncoder.dispose();
    this.unet.dispose();
    this.vae.dispose();
  }
}

/** Token ids (rows of equal length) as an int64 tensor on `device`. */
function tensorOfIds(ids: number[][], device: string): Tensor {
  const values = BigInt64Array.from(ids.flat(), (v) => BigInt(v));
  return tidy(() => tensor(values, { shape: [ids.length, ids[0]?.length ?? 0], dtype: "int64" }).to(device));
}
