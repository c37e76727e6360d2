/**
 * Stage 1 of the base model: the AutoencoderKL (64 × 64 × 3 ↔ 16 × 16 × 4), trained as SD's first stage
 * (Rombach et al. 2022, §3.1) minus the perceptual and adversarial terms, which these flat-shaded renders do
 * not need: L1 + L2 reconstruction of a posterior sample's decoding, plus a small KL term towards N(0, I).
 * Afterwards the latents' standard deviation over the training set gives `scaling_factor` (SD1.5's 0.18215
 * was found the same way), so the diffusion model sees unit-variance latents.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { arange, Generator, manualSeed, mseLoss, noGrad, randint, tidy, type Tensor } from "../../engine/index.js";
import { AdamW, cosineSchedule } from "../../engine/optim/index.js";
import { AutoencoderKL } from "../../models/vae/index.js";
import { saveDiffusersModel } from "../../pipeline/save-pretrained.js";
import { MINIWORLD_VAE_CONFIG, type BaseModelRecipe } from "./config.js";
import { imageBatch } from "../../pipeline/images.js";
import { writeJsonAtomic } from "../../util/atomic.js";
import type { ProgressReporter } from "../../util/progress.js";
import { hash32, streamId } from "../../util/hash.js";
import { runStage, type StageState } from "./stage.js";

export interface StageOptions {
  recipe: BaseModelRecipe;
  /** uint8 (N, 64, 64, 3) training images. */
  images: Tensor;
  workDir: string;
  /** Told each training loop's steps (the CLI draws bars from it). */
  progress?: ProgressReporter;
  log?: (line: string) => void;
  stopAfterSteps?: number;
  /**
   * Where the models train ("cpu", "cuda:0"). The data and every random draw stay on the CPU (drawn from the
   * per-step CPU generators, as diffusers' randn_tensor does) and each batch is moved, so a step takes the same
   * data on any device and the CPU numbers are those of a build without this option.
   */
  device?: string;
}

export interface VaeStageResult {
  /** The trained VAE as a diffusers folder (float32), with the measured scaling_factor. */
  dir: string;
  state: StageState;
  scalingFactor: number;
  finished: boolean;
}

export async function trainVae(options: StageOptions): Promise<VaeStageResult> {
  const { recipe, images } = options;
  const stageDir = path.join(options.workDir, "vae");
  const finalDir = path.join(stageDir, "final");
  const resultFile = path.join(finalDir, "result.json");
  if (existsSync(resultFile)) return JSON.parse(readFileSync(resultFile, "utf8")) as VaeStageResult;

  manualSeed(recipe.seed);
  const device = options.device ?? "cpu";
  const vae = new AutoencoderKL(MINIWORLD_VAE_CONFIG);
  vae.to(device).train();
  const parameters = vae.parameters();
  const r = recipe.vae;
  const optimizer = new AdamW(parameters, { lr: r.learningRate, weightDecay: 0 });
  const scheduler = cosineSchedule(optimizer, { warmupSteps: r.warmupSteps, totalSteps: r.steps });
  const count = images.shape[0]!;
  const { state, finished } = await runStage({
    name: "vae", stageDir, steps: r.steps, checkpointEvery: recipe.checkpointEvery, seed: recipe.seed,
    settings: { steps: r.steps, batchSize: r.batchSize, learningRate: r.learningRate, warmupSteps: r.warmupSteps, klWeight: r.klWeight, datasetSize: recipe.datasetSize },
    modules: { vae }, parameters, optimizer, scheduler, maxGradNorm: 1.0,
    step: (g) => tidy(() => {
      const x = imageBatch(images, randint(0, count, [r.batchSize], { generator: g })).to(device);
      const posterior = vae.encode(x);
      const reconstruction = vae.decode(posterior.sample({ generator: g }));
      const loss = reconstruction.sub(x).abs().mean().add(mseLoss(reconstruction, x)).add(posterior.kl().mean().mul(r.klWeight));
      loss.backward();
      return loss.item();
    }),
    ...(options.progress === undefined ? {} : { progress: options.progress }),
    ...(options.log === undefined ? {} : { log: options.log }),
    ...(options.stopAfterSteps === undefined ? {} : { stopAfterSteps: options.stopAfterSteps }),
  });
  if (!finished) {
    vae.dispose();
    return { dir: finalDir, state, scalingFactor: NaN, finished };
  }
  vae.eval();
  // Its own stream: the posterior samples that measure the latents' spread.
  const scalingFactor = 1 / latentStd(vae, images, new Generator("cpu", hash32(streamId("vae-scaling-factor"), recipe.seed)), device);
  saveDiffusersModel(finalDir, "AutoencoderKL", { ...MINIWORLD_VAE_CONFIG, scaling_factor: scalingFactor }, vae);
  vae.dispose();
  const result: VaeStageResult = { dir: finalDir, state, scalingFactor, finished };
  writeJsonAtomic(resultFile, result);
  return result;
}

/** Standard deviation of posterior samples over (up to) the first 2,048 training images. */
function latentStd(vae: AutoencoderKL, images: Tensor, generator: Generator, device: string): number {
  const count = Math.min(images.shape[0]!, 2048);
  let sum = 0;
  let sumOfSquares = 0;
  let n = 0;
  noGrad(() => {
    for (let start = 0; start < count; start += 128) {
      tidy(() => {
        const z = vae.encode(imageBatch(images, arange(start, Math.min(start + 128, count))).to(device)).sample({ generator });
        sum += z.sum().item();
        sumOfSquares += z.square().sum().item();
        n += z.numel;
      });
    }
  });
  return Math.sqrt(sumOfSquares / n - (sum / n) ** 2);
}
