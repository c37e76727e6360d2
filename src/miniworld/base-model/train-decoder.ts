/**
 * Stage 3 of the base model: fine-tune the VAE decoder with the encoder frozen, as Stability did for SD's
 * "ft-MSE" VAE. The latent space (the encoder, `scaling_factor`) stays exactly the one the UNet was trained on,
 * so the better decoder drops in; it only learns to draw sharper, truer-coloured images from the same latents.
 * Each step decodes posterior samples of training images (the cached posteriors) and minimises L1 + L2
 * against the pixels.
 *
 * With `decoderSampling: "hair-colour-balanced"` (the default recipe) every hair colour of the world is drawn
 * equally often. Drawn as the data falls, pink, green, purple and strawberry-blonde hair are 3–4 % of the images
 * each, and the decoder painted them as the common colours next to them (pink → platinum blonde, green → grey):
 * measured on held-out renders, reconstructions were classified right 0/8 times for pink and green. The
 * diffusion model can only ask for a colour that the decoder can draw, so all colours weigh the same here.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { manualSeed, mseLoss, randn, tidy } from "../../engine/index.js";
import { AdamW, cosineSchedule } from "../../engine/optim/index.js";
import { AutoencoderKL } from "../../models/vae/index.js";
import { saveDiffusersModel } from "../../pipeline/save-pretrained.js";
import { imageBatch } from "../../pipeline/images.js";
import { writeJsonAtomic } from "../../util/atomic.js";
import { batchSampler, type WorldSample } from "./dataset.js";
import { loadPosteriors } from "./posteriors.js";
import { runStage, type StageState } from "./stage.js";
import type { StageOptions } from "./train-vae.js";

export interface DecoderStageResult {
  /** The VAE with the fine-tuned decoder, as a diffusers folder (float32). */
  dir: string;
  state: StageState;
  finished: boolean;
}

export async function finetuneDecoder(options: StageOptions & { vaeDir: string; samples: readonly WorldSample[] }): Promise<DecoderStageResult> {
  const { recipe, images } = options;
  const stageDir = path.join(options.workDir, "vae-decoder");
  const finalDir = path.join(stageDir, "final");
  const resultFile = path.join(finalDir, "result.json");
  if (existsSync(resultFile)) return JSON.parse(readFileSync(resultFile, "utf8")) as DecoderStageResult;
  const log = options.log ?? (() => {});

  const device = options.device ?? "cpu";
  const posterior = loadPosteriors(options.vaeDir, images, options.workDir, recipe.seed, log, device);
  manualSeed(recipe.seed + 2);
  const vae = AutoencoderKL.fromPretrained(options.vaeDir, { device }).train();
  vae.requiresGrad_(false);
  vae.decoder.requiresGrad_(true);
  vae.postQuantConv?.requiresGrad_(true);
  const parameters = [...vae.decoder.parameters(), ...(vae.postQuantConv?.parameters() ?? [])];
  const r = recipe.vae;
  const optimizer = new AdamW(parameters, { lr: r.learningRate, weightDecay: 0 });
  const scheduler = cosineSchedule(optimizer, { warmupSteps: r.warmupSteps, totalSteps: r.decoderSteps });
  const count = images.shape[0]!;
  if (options.samples.length !== count) throw new Error(`vae-decoder: ${options.samples.length} samples planned for ${count} images`);
  const sampler = batchSampler(options.samples, r.decoderSampling);
  try {
    const { state, finished } = await runStage({
      name: "vae-decoder", stageDir, steps: r.decoderSteps, checkpointEvery: recipe.checkpointEvery, seed: recipe.seed,
      settings: { learningRate: r.learningRate, warmupSteps: r.warmupSteps, batchSize: r.batchSize, steps: r.decoderSteps, sampling: r.decoderSampling,
        datasetSize: recipe.datasetSize, vaeDir: path.relative(options.workDir, options.vaeDir) },
      modules: { vae }, parameters, optimizer, scheduler, maxGradNorm: 1.0,
      step: (g) => tidy(() => {
        const indices = sampler.draw(r.batchSize, g);
        const x = imageBatch(images, indices).to(device);
        const mean = posterior.mean.indexSelect(0, indices);
        const z = mean.add(posterior.std.indexSelect(0, indices).mul(randn(mean.shape, { generator: g })));
        const reconstruction = vae.decode(z.to(device));
        const loss = reconstruction.sub(x).abs().mean().add(mseLoss(reconstruction, x));
        loss.backward();
        return loss.item();
      }),
      ...(options.progress === undefined ? {} : { progress: options.progress }),
      log,
      ...(options.stopAfterSteps === undefined ? {} : { stopAfterSteps: options.stopAfterSteps }),
    });
    const result: DecoderStageResult = { dir: finalDir, state, finished };
    if (finished) {
      vae.eval();
      saveDiffusersModel(finalDir, "AutoencoderKL", { ...vae.config }, vae);
      writeJsonAtomic(resultFile, result);
    }
    return result;
  } finally {
    vae.dispose();
    sampler.dispose();
    posterior.mean.dispose();
    posterior.std.dispose();
  }
}
