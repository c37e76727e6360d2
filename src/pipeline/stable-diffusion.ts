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
import { allFinite, cat, checkDevice, dtypeBytes, Generator, keep, noGrad, tensor, tidy, type DType, type Tensor } from "../engine/index.js";
import { parseCLIPTextConfig } from "../models/clip/text-config.js";
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
  /** Told what diffusers logs as warnings (a prompt cut at the text encoder's 77 tokens); default: nothing. */
  onWarning?: (message: string) => void;
}

/** What generate() is asked to make, for estimating its memory before it starts. */
export interface GenerationSize {
  /** Default: the model's. */
  width?: number;
  height?: number;
  /** Images in the batch (prompts × images per prompt); default 1. */
  images?: number;
  /** Above 1 the UNet runs on a doubled batch (classifier-free guidance); default 7.5. */
  guidanceScale?: number;
}

/**
 * Live copies of the widest UNet activation at its peak (per latent position and channel of a level): a
 * transformer block holds the residual, the normed input, attention's q/k/v/out and GEGLU's 8×-wide hidden
 * state, and the down blocks' outputs wait for the up blocks' skip connections.
 */
const UNET_LIVE_COPIES = 20;
/**
 * The same for the VAE decoder at its widest level (input, group norm, SiLU, convolution output, residual, the
 * upsampled input, then the images' post-processing). Measured on the mini-world model (2 steps, 1 thread): peak
 * RSS above a 64 px run of 444 MiB at 512 px and 912 MiB at 768 px, against estimates of 512 and 1152 MiB.
 */
const VAE_LIVE_COPIES = 8;

export interface GenerateResult {
  /** (N, 3, H, W) float32 in [-1, 1] (the decoded images before post-processing). */
  images: Tensor;
  /** Final latents (N, C, H/f, W/f). */
  latents: Tensor;
  /** 8-bit RGB images, as diffusers' output_type="pil" would hold. */
  rgb: RgbImage[];
  seed: number | bigint;
}

/**
 * The denoising produced NaN or infinite values, at `step` of `total` (or in the VAE decode, step = total + 1):
 * saving would write black images. The message says where; a caller that knows what it applied (adapter
 * weights, guidance) adds the likely causes.
 */
export class NonFiniteLatentsError extends Error {
  override name = "NonFiniteLatentsError";
  constructor(readonly step: number, readonly total: number, readonly guidanceScale: number) {
    super(step > total
      ? `the decoded images hold NaN or infinite values though the latents were finite (the VAE's weights?)`
      : `the latents became NaN or infinite at denoising step ${step} of ${total} (guidance scale ${guidanceScale})`);
  }
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
    checkDevice(placement.device);
    const tokenizer = CLIPTokenizer.fromFolder(dir("tokenizer"));
    // Checked before any weight is read: an id past the embedding table fails deep inside aten::embedding otherwise.
    const textConfig = parseCLIPTextConfig(readComponentConfig(dir("text_encoder")), dir("text_encoder/config.json"));
    if (tokenizer.vocabSize > textConfig.vocab_size) {
      throw new Error(`${dir("tokenizer")} has ${tokenizer.vocabSize} token ids, but the text encoder's vocab_size (${dir("text_encoder/config.json")}) ` +
        `is ${textConfig.vocab_size}: ids from ${textConfig.vocab_size} on have no embedding (are the tokenizer and the text encoder from the same model?)`);
    }
    return new StableDiffusionPipeline(
      resolved.path,
      tokenizer,
      CLIPTextModel.fromPretrained(dir("text_encoder"), placement),
      UNet2DConditionModel.fromPretrained(dir("unet"), placement),
      AutoencoderKL.fromPretrained(dir("vae"), placement),
      readComponentConfig(dir("scheduler"), "scheduler_config.json"),
      placement.device,
    );
  }

  /**
   * A rough upper estimate of the activation memory generate() needs on top of the loaded weights, in bytes, from
   * the models' configs alone: the larger of the UNet's widest level (channels × positions at that level × the
   * batch, doubled under guidance) and the VAE decoder's (channels × pixels at each upsampled level × images),
   * times the live copies each keeps. Attention adds no N² term: libtorch's fused attention works in tiles.
   * It is what `hdb generate` checks sizes and batch against before any work.
   */
  estimateMemory(size: GenerationSize = {}): number {
    const factor = this.vaeScaleFactor;
    const [sampleHeight, sampleWidth] = this.unet.sampleSize ?? [64, 64];
    const height = size.height ?? sampleHeight * factor;
    const width = size.width ?? sampleWidth * factor;
    const images = size.images ?? 1;
    const latentPositions = (height / factor) * (width / factor);
    const unetBatch = images * ((size.guidanceScale ?? 7.5) > 1 ? 2 : 1);
    const unetWidest = Math.max(...this.unet.config.block_out_channels.map((c, level) => c * latentPositions / 4 ** level));
    // The decoder climbs from the deepest level; each level's input arrives upsampled with the previous level's channels.
    const decoder = [...this.vae.config.block_out_channels].reverse();
    const vaeWidest = Math.max(...decoder.map((c, level) => Math.max(c, decoder[level - 1] ?? c) * latentPositions * 4 ** level));
    const bytes = dtypeBytes[this.unet.parameters()[0]?.dtype ?? "float32"];
    return Math.max(unetWidest * unetBatch * UNET_LIVE_COPIES, vaeWidest * images * VAE_LIVE_COPIES) * bytes;
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
  encodePrompt(prompts: string[], clipSkip?: number, onWarning?: (message: string) => void): Tensor {
    const limit = this.tokenizer.modelMaxLength;
    if (onWarning && Number.isFinite(limit)) {
      for (const prompt of new Set(prompts)) {
        const ids = this.tokenizer.encode(prompt, { addSpecialTokens: false });
        // diffusers' wording: the prompt is cut to leave room for the start and end tokens.
        if (ids.length > limit - 2) {
          onWarning(`The following part of your input was truncated because CLIP can only handle sequences up to ${limit} tokens: ${JSON.stringify(this.tokenizer.decode(ids.slice(limit - 2)))}`);
        }
      }
    }
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
        const promptEmbeds = this.encodePrompt(repeat(prompts), options.clipSkip, options.onWarning);
        const embeddings = useGuidance ? cat([this.encodePrompt(repeat(negatives), options.clipSkip, options.onWarning), promptEmbeds]) : promptEmbeds;
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
          // One reduction per step: a diverging run stops where it diverged instead of decoding black images.
          if (!allFinite([latents])) {
            latents.dispose();
            throw new NonFiniteLatentsError(i + 1, timesteps.length, guidance);
          }
          options.onStep?.(i + 1, timesteps.length, t);
        });
        const images = this.decodeLatents(latents);
        if (!allFinite([images])) {
          latents.dispose();
          throw new NonFiniteLatentsError(timesteps.length + 1, timesteps.length, guidance);
        }
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
