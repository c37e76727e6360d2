/**
 * Stage 2 of the base model: the UNet and the CLIP text encoder, trained together from scratch with SD's
 * denoising objective (Rombach et al. 2022, eq. 2; Ho et al. 2020): for a caption's embedding c, a latent
 * z₀ = scaling_factor · (a VAE posterior sample), t ~ U{0 … 999} and ε ~ N(0, I),
 *
 *     loss = ‖ε − ε_θ(√ᾱ_t z₀ + √(1 − ᾱ_t) ε, t, c)‖²
 *
 * SD1.5 reuses a frozen CLIP text encoder trained on 400M image–text pairs; no such encoder exists for this
 * world, so ours learns its words through the denoising loss (as Imagen's ablations and small text-to-image
 * models do). 10 % of captions are dropped to "" so the model also learns the unconditional prediction that
 * classifier-free guidance needs, and 10 % are the short form "a face <styles>". The VAE is frozen; each
 * image's posterior (mean, std) is computed once and a fresh latent is sampled from it every step. The
 * weights sampled from are an exponential moving average of the trained ones.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { keep, manualSeed, rand, randint, randn, tensor, tidy, where, type Tensor } from "../../engine/index.js";
import { AdamW, constantWithWarmupSchedule, cosineSchedule, ExponentialMovingAverage } from "../../engine/optim/index.js";
import { CLIPTextModel } from "../../models/clip/text-encoder.js";
import { clipTextConfig, type CLIPTextConfig } from "../../models/clip/text-config.js";
import { CLIPTokenizer } from "../../models/clip/tokenizer.js";
import { schedulerFromConfig } from "../../models/schedulers/index.js";
import { UNet2DConditionModel } from "../../models/unet/index.js";
import { saveCLIPTextModel, saveDiffusersModel } from "../../pipeline/save-pretrained.js";
import { diffusionLoss, latestCheckpoint, type SnrWeighting } from "../../training/index.js";
import { writeJsonAtomic } from "../../util/atomic.js";
import { writeVocabulary } from "../vocabulary.js";
import { MINIWORLD_NOISE_SCHEDULE, MINIWORLD_TEXT_ENCODER_CONFIG, MINIWORLD_UNET_CONFIG, type BaseModelRecipe, type ImageSampling } from "./config.js";
import { batchSampler, type WorldSample } from "./dataset.js";
import { loadPosteriors } from "./posteriors.js";
import { runStage, startFrom, type StageState } from "./stage.js";
import type { StageOptions } from "./train-vae.js";

/**
 * One phase of diffusion training. Phase 1 ("diffusion") follows SD: cosine schedule, plain ε-MSE, latents
 * sampled from the posterior. Phase 2 ("diffusion-2") continues from phase 1's last weights and EMA with a
 * constant rate, min-SNR-γ weights (Hang et al. 2023: the low-noise steps, whose error is mostly the
 * posterior's own noise, stop drowning the rest) and the posterior means as latents (the same reason).
 *
 * Phase 3 ("diffusion-3") continues phase 2 with other weights. Written as an error on the clean latent x₀,
 * ε-MSE is SNR(t) · ‖x₀ − x̂₀‖², and min-SNR-γ is min(SNR, γ) · ‖x₀ − x̂₀‖²: both give the steps near pure
 * noise (SNR ≈ 0.005 at t = 999) a few thousandths of the weight of the middle ones. Those are the steps where
 * only the caption can say what the picture holds (hair colour, scene, hat), so the model learned the faces
 * but hardly the words (measured: right vs shuffled captions changed the loss by 5 %). Phase 3 weighs x₀'s
 * error by min(max(SNR, 1), γ): Salimans & Ho 2022's truncated SNR (§4: weight 1 near pure noise) capped at
 * γ as in min-SNR; on the ε-MSE that is min(max(SNR, 1), γ) / SNR.
 *
 * Phase 4 ("diffusion-4") continues phase 3 with the same weights but draws every hair colour equally often.
 * As the data falls, pink, green, purple, blue and white hair are 3 % of the images each (identity.ts), and
 * after phase 3 "green hair" was drawn purple or blue 15 times in 16, "pink hair" white 12 in 16 (quality
 * report); the other words of the captions keep their frequencies, since every image carries a random style.
 */

export interface DiffusionPhase {
  name: "diffusion" | "diffusion-2" | "diffusion-3" | "diffusion-4";
  steps: number;
  learningRate: number;
  warmupSteps: number;
  schedule: "cosine" | "constant";
  /** The ε-MSE's per-sample weights (see above; src/training/diffusion-loss.ts). */
  weighting: SnrWeighting;
  latents: "sample" | "mean";
  /** Which images the batches are drawn from (dataset.ts: batchSampler). */
  sampling: ImageSampling;
  /** The stage folder whose last checkpoint (weights and EMA) this phase starts from. */
  continueFrom?: string;
}

export interface DiffusionStageOptions extends StageOptions {
  samples: readonly WorldSample[];
  /** The trained VAE's diffusers folder (stage 1). */
  vaeDir: string;
  /** Default: phase 1 from recipe.diffusion. */
  phase?: DiffusionPhase;
}

/** The recipe's four phases, in order. */
export function diffusionPhases(recipe: BaseModelRecipe, workDir: string): [DiffusionPhase, DiffusionPhase, DiffusionPhase, DiffusionPhase] {
  const r = recipe.diffusion;
  const c = recipe.continuation;
  const k = recipe.conditioning;
  const b = recipe.colourBalance;
  return [
    { name: "diffusion", steps: r.steps, learningRate: r.learningRate, warmupSteps: r.warmupSteps, schedule: "cosine", weighting: { kind: "none" }, latents: "sample",
      sampling: "uniform" },
    { name: "diffusion-2", steps: c.steps, learningRate: c.learningRate, warmupSteps: c.warmupSteps, schedule: "constant", weighting: { kind: "min-snr", gamma: c.snrGamma },
      latents: "mean", sampling: "uniform", continueFrom: path.join(workDir, "diffusion") },
    { name: "diffusion-3", steps: k.steps, learningRate: k.learningRate, warmupSteps: k.warmupSteps, schedule: "constant",
      weighting: { kind: "truncated-min-snr", gamma: k.snrGamma }, latents: "mean", sampling: "uniform", continueFrom: path.join(workDir, "diffusion-2") },
    { name: "diffusion-4", steps: b.steps, learningRate: b.learningRate, warmupSteps: b.warmupSteps, schedule: "constant",
      weighting: { kind: "truncated-min-snr", gamma: b.snrGamma }, latents: "mean", sampling: "hair-colour-balanced", continueFrom: path.join(workDir, "diffusion-3") },
  ];
}

export interface DiffusionStageResult {
  /** Folders of the trained (EMA) UNet and text encoder, float32, and the tokenizer they use. */
  unetDir: string;
  textEncoderDir: string;
  tokenizerDir: string;
  state: StageState;
  finished: boolean;
}

/** The text encoder's config for the written vocabulary (size and special-token ids taken from it). */
export function miniworldTextConfig(tokenizer: CLIPTokenizer): CLIPTextConfig {
  const bos = tokenizer.tokenToId("<|startoftext|>");
  const eos = tokenizer.tokenToId("<|endoftext|>");
  if (bos === undefined || eos === undefined) throw new Error("the mini-world tokenizer lacks <|startoftext|> or <|endoftext|>");
  return clipTextConfig({ ...MINIWORLD_TEXT_ENCODER_CONFIG, vocab_size: eos + 1, bos_token_id: bos, eos_token_id: eos, pad_token_id: eos });
}

export async function trainDiffusion(options: DiffusionStageOptions): Promise<DiffusionStageResult> {
  const { recipe, samples } = options;
  const phase = options.phase ?? diffusionPhases(recipe, options.workDir)[0];
  const stageDir = path.join(options.workDir, phase.name);
  const finalDir = path.join(stageDir, "final");
  const resultFile = path.join(finalDir, "result.json");
  if (existsSync(resultFile)) {
    const done = JSON.parse(readFileSync(resultFile, "utf8")) as DiffusionStageResult;
    // A finished constant-rate phase asked for more steps resumes from its last checkpoint (recipe.ts: sameRecipe).
    if (done.state.step >= phase.steps || phase.schedule !== "constant") return done;
  }
  const log = options.log ?? (() => {});

  const tokenizerDir = path.join(finalDir, "tokenizer");
  writeVocabulary(tokenizerDir);
  const tokenizer = CLIPTokenizer.fromFolder(tokenizerDir);
  const tokens = (texts: readonly string[]): Tensor => {
    const { inputIds } = tokenizer.call(texts, { padding: "max_length", truncation: true });
    return keep(tensor(inputIds, { dtype: "int64" }));
  };
  const captionIds = tokens(samples.map((s) => s.caption));
  const shortIds = tokens(samples.map((s) => s.shortCaption));
  const emptyIds = tokens([""]);
  const device = options.device ?? "cpu";
  const posterior = loadPosteriors(options.vaeDir, options.images, options.workDir, options.recipe.seed, log, device);

  manualSeed(recipe.seed + 1);
  const textConfig = miniworldTextConfig(tokenizer);
  // Initialised on the CPU (the same weights on any device), then moved.
  const textEncoder = new CLIPTextModel(textConfig).to(device).train();
  const unet = new UNet2DConditionModel(MINIWORLD_UNET_CONFIG).to(device).train();
  const noise = schedulerFromConfig({ _class_name: "DDPMScheduler", ...MINIWORLD_NOISE_SCHEDULE }, "DDPMScheduler");
  const r = recipe.diffusion;
  const parameters = [...unet.parameters(), ...textEncoder.parameters()];
  const optimizer = new AdamW(parameters, { lr: phase.learningRate, weightDecay: 1e-2 });
  const scheduler = phase.schedule === "cosine" ? cosineSchedule(optimizer, { warmupSteps: phase.warmupSteps, totalSteps: phase.steps })
    : constantWithWarmupSchedule(optimizer, { warmupSteps: phase.warmupSteps });
  const ema = new ExponentialMovingAverage(parameters, r.emaDecay);
  const modules = { unet, text_encoder: textEncoder };
  if (phase.continueFrom !== undefined && latestCheckpoint(stageDir) === null) {
    const from = startFrom(phase.continueFrom, modules, ema, phase.name);
    log(`${phase.name}: starting from ${phase.continueFrom} (step ${from})`);
  }
  const sampler = batchSampler(samples, phase.sampling);
  // A constant-rate phase's steps do not change the steps before them: more of them continue the same run.
  const { steps: _steps, continueFrom, ...phaseSettings } = phase;
  const { state, finished } = await runStage({
    name: phase.name, stageDir, steps: phase.steps, checkpointEvery: recipe.checkpointEvery, seed: recipe.seed,
    settings: {
      ...phaseSettings, ...(phase.schedule === "constant" ? {} : { steps: phase.steps }), continueFrom: continueFrom === undefined ? null : path.basename(continueFrom),
      batchSize: r.batchSize, emptyCaptionRate: r.emptyCaptionRate, shortCaptionRate: r.shortCaptionRate, emaDecay: r.emaDecay, datasetSize: recipe.datasetSize,
    },
    modules, parameters, optimizer, scheduler, ema, maxGradNorm: r.maxGradNorm,
    step: (g) => tidy(() => {
      const batch = r.batchSize;
      const indices = sampler.draw(batch, g);
      const u = rand([batch], { generator: g }).unsqueeze(1);
      const ids = where(u.lt(r.emptyCaptionRate), emptyIds.expand(batch, -1),
        where(u.lt(r.emptyCaptionRate + r.shortCaptionRate), shortIds.indexSelect(0, indices), captionIds.indexSelect(0, indices)));
      const mean = posterior.mean.indexSelect(0, indices);
      const std = posterior.std.indexSelect(0, indices);
      const latents = (phase.latents === "mean" ? mean : mean.add(std.mul(randn(mean.shape, { generator: g })))).mul(posterior.scalingFactor);
      const epsilon = randn(latents.shape, { generator: g });
      const timesteps = randint(0, MINIWORLD_NOISE_SCHEDULE.num_train_timesteps, [batch], { generator: g });
      const noisy = noise.addNoise(latents, epsilon, timesteps);
      const t = timesteps.to(device);
      const prediction = unet.forward(noisy.to(device), t, textEncoder.encode(ids.to(device)));
      const loss = diffusionLoss(prediction, epsilon.to(device), t, { scheduler: noise, weighting: phase.weighting }).total.sum();
      unet.backward(loss);
      return loss.item();
    }),
    ...(options.progress === undefined ? {} : { progress: options.progress }),
    log,
    ...(options.stopAfterSteps === undefined ? {} : { stopAfterSteps: options.stopAfterSteps }),
  });
  for (const t of [captionIds, shortIds, emptyIds, posterior.mean, posterior.std]) t.dispose();
  sampler.dispose();
  noise.dispose();
  const result: DiffusionStageResult = {
    unetDir: path.join(finalDir, "unet"), textEncoderDir: path.join(finalDir, "text_encoder"), tokenizerDir, state, finished,
  };
  if (finished) {
    ema.copyTo();
    saveDiffusersModel(result.unetDir, "UNet2DConditionModel", { ...MINIWORLD_UNET_CONFIG }, unet);
    saveCLIPTextModel(result.textEncoderDir, { ...textConfig }, textEncoder);
    writeJsonAtomic(resultFile, result);
  }
  ema.dispose();
  unet.dispose();
  textEncoder.dispose();
  return result;
}
