/**
 * The mini-world's image encoder for the HyperNetwork (HyperDreamBooth §4.2: a frozen CLIP ViT-H/14 reads the
 * photo): the same code at the world's scale, transformers' CLIPVisionModelWithProjection with a small config,
 * pretrained from scratch as CLIP was (Radford et al. 2021, §2.3 and Figure 3): an image tower and a text tower
 * trained so that each image's embedding is nearest its own caption's within the batch.
 *
 * Data: the base model's training set, planned by base-model/dataset.ts (planSamples: sample i is pretraining
 * identity i, a random photo of them, no style / one / two styles as 35 / 50 / 15 %, and the caption the base
 * model learned from). With the defaults (24,000 samples, seed 0) these are exactly the base model's images and
 * long captions; only PRETRAINING identities appear, never the hypernetwork's or the held-out ones. A caption
 * names one to three of a person's attributes, so each image gets `captionsPerImage` captions: the base model's
 * and more drawn by captions.ts the same way (other attributes, opener); an image paired with all of them over the
 * epochs must encode every attribute, not the few its one caption names. Each step takes `batchSize` distinct
 * samples (without replacement) and one of each one's captions, drawn from the job's per-step generator.
 *
 * Model: image tower CLIPVisionModelWithProjection (ENCODER_VISION_CONFIG: 64 px, patch 8 → 8 × 8 patches + the
 * class token, width 192, 4 layers of 3 heads, gelu as OpenCLIP's ViT-H/14, projection 128); text tower
 * CLIPTextModel on the world's tokenizer (vocabulary.ts), sized as the base model's text encoder (3 layers of
 * 128), plus a bias-free text_projection of its pooled output, as CLIPModel has. Initialised as transformers'
 * CLIPPreTrainedModel._init_weights does. Only the image tower is kept.
 *
 * Loss: CLIP's symmetric InfoNCE, the mean of the cross-entropies image → caption and caption → image over the
 * batch's cosine-similarity logits times exp(logit_scale); logit_scale is learned, starts at ln(1/0.07) and is
 * clamped to [0, ln 100] after every optimiser step (OpenCLIP's train loop; the CLIP paper: "clipped to prevent
 * scaling the logits by more than 100"). AdamW with β₂ 0.98 and ε 1e-6 as CLIP, weight decay on matrices only
 * (gains, biases, the class embedding and logit_scale excluded, as OpenCLIP), linear warmup then cosine decay.
 *
 * Training runs on the one training loop (src/training): checkpoints every `checkpointEvery` steps, bit-identical
 * resume, a JSONL log in the work folder. At the end both checks of encoder-evaluation.ts run on the trained
 * encoder and on the same architecture at its random initialisation (the very weights training started from: the
 * same seed), and the image tower is saved as a folder
 * CLIPVisionModelWithProjection.fromPretrained and CLIPImageProcessor.fromPretrained load unchanged:
 *
 *     config.json               model_type clip_vision_model, architectures [CLIPVisionModelWithProjection]
 *     model.safetensors         vision_model.* and visual_projection.weight, float32
 *     preprocessor_config.json  CLIPImageProcessor: shortest edge 64, centre crop 64, ÷255, mean/std 0.5
 *     training.json             settings, steps, final loss, seconds, both checks, provenance
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { arange, crossEntropy, full, getNumThreads, keep, manualSeed, multinomial, noGrad, ones, randint, saveSafetensors, setNumThreads, tensor, tidy, type Tensor } from "../../engine/index.js";
import { LayerNorm, Linear, Module, type Parameter } from "../../engine/nn/index.js";
import { normal_, ones_, zeros_ } from "../../engine/nn/init.js";
import { AdamW, cosineSchedule } from "../../engine/optim/index.js";
import { l2Normalize } from "../../evaluation/identity-network.js";
import { parseImageProcessorConfig, type ImageProcessorConfig } from "../../models/clip/image-processor.js";
import { clipTextConfig, type CLIPTextConfig } from "../../models/clip/text-config.js";
import { CLIPAttention, CLIPMLP, CLIPTextEmbeddings, CLIPTextModel } from "../../models/clip/text-encoder.js";
import { CLIPTokenizer } from "../../models/clip/tokenizer.js";
import { clipVisionConfig, type CLIPVisionConfig } from "../../models/clip/vision-config.js";
import { CLIPVisionEmbeddings, CLIPVisionModelWithProjection } from "../../models/clip/vision-encoder.js";
import { TRANSFORMERS_VERSION } from "../../pipeline/save-pretrained.js";
import { train, TrainingJob, type LoopHooks } from "../../training/index.js";
import { writeDirectoryAtomic, writeFileAtomic, writeJsonAtomic } from "../../util/atomic.js";
import { jsonWithFloats, TRANSFORMERS_CLIP_FLOAT_FIELDS } from "../../util/json.js";
import type { ProgressReporter } from "../../util/progress.js";
import { provenance, type Provenance } from "../../util/provenance.js";
import { IMAGE_SIZE, planSamples, renderDataset, type WorldSample } from "../base-model/dataset.js";
import { miniworldTextConfig } from "../base-model/train-diffusion.js";
import { caption } from "../captions.js";
import { Random } from "../random.js";
import { SPLITS } from "../splits.js";
import { writeVocabulary } from "../vocabulary.js";
import { evaluateEncoder, renderEvaluationData, type EncoderEvaluation, type EncoderEvaluationSizes } from "./encoder-evaluation.js";

/**
 * The image tower. 64-px renders in 8-px patches give 64 tokens (+ the class token), enough to resolve eyes,
 * moles and hairlines (a patch is an eye's width); width 192 (3 heads of 64, ViT-Tiny's width) and 4 layers keep a
 * step of 256 pairs at 4–5 s on one CPU thread (width 256 with 6 layers measured 2.7× slower, too slow for a run
 * of ~100,000 pairs in under 45 min); projection 128 as the world's text width.
 */
export const ENCODER_VISION_CONFIG: Readonly<CLIPVisionConfig> = Object.freeze(clipVisionConfig({
  image_size: IMAGE_SIZE, patch_size: 8, num_channels: 3, hidden_size: 192, intermediate_size: 768, num_hidden_layers: 4,
  num_attention_heads: 3, projection_dim: 128, hidden_act: "gelu", layer_norm_eps: 1e-5, attention_dropout: 0,
}));

/**
 * CLIPImageProcessor for the renders: a 64-px shortest edge and centre crop (a user's photo of any size is
 * brought to the renders' framing; a 64-px render passes unresampled), ÷255, then mean and std 0.5, which maps
 * pixels to [−1, 1] as everywhere else in this project (the VAE, the metric networks).
 */
export const ENCODER_PREPROCESSOR_CONFIG = Object.freeze({
  image_processor_type: "CLIPImageProcessor", do_resize: true, size: { shortest_edge: IMAGE_SIZE }, resample: 3, do_center_crop: true,
  crop_size: { height: IMAGE_SIZE, width: IMAGE_SIZE }, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true,
  image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], do_convert_rgb: true,
});

/** CLIP's initial temperature 0.07 and its cap of 100 on exp(logit_scale). */
export const LOGIT_SCALE_INIT = Math.log(1 / 0.07);
export const LOGIT_SCALE_MAX = Math.log(100);

export interface EncoderSettings {
  steps: number;
  batchSize: number;
  /** Samples of the base model's plan (pretraining identities 0 … datasetSize − 1, one photo each). */
  datasetSize: number;
  /** Captions per sample: the base model's, then others drawn the same way (1: the base model's alone). */
  captionsPerImage: number;
  learningRate: number;
  weightDecay: number;
  warmupSteps: number;
  betas: [number, number];
  eps: number;
  /** Seeds the data plan, the initialisation and the per-step draws. */
  seed: number;
  checkpointEvery: number;
  /** libtorch threads during training (restored afterwards). */
  threads: number;
  vision: CLIPVisionConfig;
  /** Changes to the base model's text-encoder config (base-model/config.ts) for the text tower; {}: none. */
  text: Partial<CLIPTextConfig>;
  evaluation: EncoderEvaluationSizes;
}

/**
 * Defaults sized for ≈ 35 min on one CPU thread of the shared 2-core machine beside other jobs (measured 4.2–5.7 s
 * per step of 256 as the load varied, 87 s to render the 24,000 images once): 360 steps of 256 = 92,160 pairs,
 * 3.8 passes over the samples. lr 5e-4 and weight decay 0.1 are OpenCLIP's small-model settings; 36 warmup
 * steps are 10 % of the run. Measured on the first 150 steps of a 450-step schedule (held-out, 50 identities ×
 * 2 photos): identity AUC 0.735 / 0.868 / 0.959 at steps 50 / 100 / 150 against 0.745 untrained, caption
 * retrieval 0.055 / 0.098 / 0.203 against 0.004 (chance 1/256).
 */
export const ENCODER_TRAINING_DEFAULTS: Readonly<EncoderSettings> = Object.freeze({
  steps: 360, batchSize: 256, datasetSize: 24_000, captionsPerImage: 4, learningRate: 5e-4, weightDecay: 0.1, warmupSteps: 36, betas: [0.9, 0.98] as [number, number], eps: 1e-6,
  seed: 0, checkpointEvery: 50, threads: 1, vision: ENCODER_VISION_CONFIG, text: {}, evaluation: { identities: 50, retrievalImages: 256 },
});

export interface EncoderTrainingOptions extends Partial<Omit<EncoderSettings, "vision" | "evaluation">>, Omit<LoopHooks, "progress"> {
  /** The saved image tower's folder. */
  outDir: string;
  /** Cached renders, the tokenizer, checkpoints and the JSONL log. */
  workDir: string;
  /** Changes to ENCODER_VISION_CONFIG. */
  vision?: Partial<CLIPVisionConfig>;
  evaluation?: Partial<EncoderEvaluationSizes>;
  /** The command line, for training.json's provenance. */
  command: readonly string[];
  progress?: ProgressReporter;
}

/** The defaults with `options` applied, checked (an error names the setting). */
export function resolveEncoderSettings(options: Partial<EncoderTrainingOptions>): EncoderSettings {
  const d = ENCODER_TRAINING_DEFAULTS;
  const pick = <K extends keyof EncoderSettings>(key: K): EncoderSettings[K] => (options[key as keyof typeof options] ?? d[key]) as EncoderSettings[K];
  const settings: EncoderSettings = {
    steps: pick("steps"), batchSize: pick("batchSize"), datasetSize: pick("datasetSize"), captionsPerImage: pick("captionsPerImage"), learningRate: pick("learningRate"), weightDecay: pick("weightDecay"),
    warmupSteps: pick("warmupSteps"), betas: [...pick("betas")], eps: pick("eps"), seed: pick("seed"), checkpointEvery: pick("checkpointEvery"),
    threads: pick("threads"), vision: clipVisionConfig({ ...d.vision, ...options.vision }), text: { ...options.text },
    evaluation: { ...d.evaluation, ...options.evaluation },
  };
  for (const key of ["steps", "captionsPerImage", "checkpointEvery", "threads"] as const) {
    if (!Number.isInteger(settings[key]) || settings[key] < 1) throw new Error(`${key} must be a positive integer, got ${settings[key]}`);
  }
  const identities = SPLITS.pretraining.count;
  if (!Number.isInteger(settings.datasetSize) || settings.datasetSize < 2 || settings.datasetSize > identities) {
    throw new Error(`datasetSize must be an integer in [2, ${identities}] (one pretraining identity each), got ${settings.datasetSize}`);
  }
  if (!Number.isInteger(settings.batchSize) || settings.batchSize < 2 || settings.batchSize > settings.datasetSize) {
    throw new Error(`batchSize must be an integer in [2, datasetSize = ${settings.datasetSize}] (a batch holds distinct samples), got ${settings.batchSize}`);
  }
  if (!(settings.learningRate > 0)) throw new Error(`learningRate must be > 0, got ${settings.learningRate}`);
  if (!(settings.weightDecay >= 0)) throw new Error(`weightDecay must be ≥ 0, got ${settings.weightDecay}`);
  if (!Number.isInteger(settings.warmupSteps) || settings.warmupSteps < 0) throw new Error(`warmupSteps must be an integer ≥ 0, got ${settings.warmupSteps}`);
  if (!Number.isSafeInteger(settings.seed) || settings.seed < 0) throw new Error(`seed must be an integer ≥ 0, got ${settings.seed}`);
  if (settings.vision.image_size !== IMAGE_SIZE) throw new Error(`vision.image_size must be ${IMAGE_SIZE} (the renders' size), got ${settings.vision.image_size}`);
  const heldOut = SPLITS["held-out"].count;
  for (const key of ["identities", "retrievalImages"] as const) {
    const value = settings.evaluation[key];
    if (!Number.isInteger(value) || value < 2 || value > heldOut) throw new Error(`evaluation.${key} must be an integer in [2, ${heldOut}], got ${value}`);
  }
  return settings;
}

/**
 * 8-bit renders (N, H, W, 3) → pixel values (N, 3, H, W): CLIPImageProcessor's rescale and normalize with its
 * arithmetic (float64 × rescale_factor, then float32 (x − mean) / std), so training sees what the saved
 * processor gives at inference, bit for bit (no resize: the renders are at the crop size already).
 */
export function pixelValues(images: Tensor, config: ImageProcessorConfig): Tensor {
  return tidy(() => {
    const values = images.permute(0, 3, 1, 2).to("float64").mul(config.rescale_factor).to("float32");
    const mean = tensor(config.image_mean, { dtype: "float32" }).view(1, 3, 1, 1);
    const std = tensor(config.image_std, { dtype: "float32" }).view(1, 3, 1, 1);
    return values.sub(mean).div(std).contiguous();
  });
}

/** CLIP's loss: symmetric cross-entropy over the batch's scaled cosine similarities (Radford et al. 2021, Fig. 3). */
export function clipLoss(imageEmbeds: Tensor, textEmbeds: Tensor, logitScale: Tensor): Tensor {
  return tidy(() => {
    const logits = l2Normalize(imageEmbeds).matmul(l2Normalize(textEmbeds).mT()).mul(logitScale.exp());
    const labels = arange(imageEmbeds.size(0), undefined, 1, { dtype: "int64" });
    return crossEntropy(logits, labels).add(crossEntropy(logits.mT(), labels)).div(2);
  });
}

/** CLIPModel in miniature: the image tower to keep, the text tower and its projection, the learned temperature. */
export class ContrastiveCLIP extends Module {
  readonly image: CLIPVisionModelWithProjection;
  readonly text: CLIPTextModel;
  readonly textProjection: Linear;
  readonly logitScale: Parameter;

  constructor(readonly visionConfig: CLIPVisionConfig, readonly textConfig: CLIPTextConfig) {
    super();
    this.image = this.registerModule("image", new CLIPVisionModelWithProjection(visionConfig));
    this.text = this.registerModule("text", new CLIPTextModel(textConfig));
    this.textProjection = this.registerModule("text_projection", new Linear(textConfig.hidden_size, visionConfig.projection_dim, { bias: false }));
    using scale = full([], LOGIT_SCALE_INIT);
    this.logitScale = this.registerParameter("logit_scale", scale);
    initializeClip(this);
  }

  /** Token ids (B, T) → text embeddings (B, projection_dim). */
  embedTexts(ids: Tensor): Tensor {
    return tidy(() => this.textProjection.forward(this.text.forward(ids).pooledOutput));
  }

  /** The contrastive loss of a batch of pixel values and their captions' token ids. */
  loss(pixels: Tensor, ids: Tensor): Tensor {
    return tidy(() => clipLoss(this.image.forward(pixels).imageEmbeds, this.embedTexts(ids), this.logitScale));
  }

  /** logit_scale into [0, ln 100], in place (after each optimiser step, as OpenCLIP). */
  clampLogitScale(): void {
    noGrad(() => this.logitScale.clamp_(0, LOGIT_SCALE_MAX));
  }
}

/**
 * transformers' CLIPPreTrainedModel._init_weights (initializer_factor 1, initializer_range 0.02): embeddings
 * N(0, 0.02) (the class embedding N(0, width^−½)); q/k/v and fc2 N(0, width^−½ · (2·layers)^−½), out_proj
 * N(0, width^−½), fc1 N(0, (2·width)^−½); projections N(0, width^−½); biases 0; LayerNorms 1 and 0.
 */
function initializeClip(model: ContrastiveCLIP): void {
  noGrad(() => {
    for (const [tower, config] of [[model.image, model.visionConfig], [model.text, model.textConfig]] as const) {
      const width = config.hidden_size;
      const inStd = width ** -0.5 * (2 * config.num_hidden_layers) ** -0.5;
      for (const module of tower.modules()) {
        if (module instanceof CLIPVisionEmbeddings) {
          normal_(module.classEmbedding, 0, width ** -0.5);
          normal_(module.patchEmbedding.weight, 0, 0.02);
          normal_(module.positionEmbedding.weight, 0, 0.02);
        } else if (module instanceof CLIPTextEmbeddings) {
          normal_(module.tokenEmbedding.weight, 0, 0.02);
          normal_(module.positionEmbedding.weight, 0, 0.02);
        } else if (module instanceof CLIPAttention) {
          for (const projection of [module.qProj, module.kProj, module.vProj]) normal_(projection.weight, 0, inStd);
          normal_(module.outProj.weight, 0, width ** -0.5);
        } else if (module instanceof CLIPMLP) {
          normal_(module.fc1.weight, 0, (2 * width) ** -0.5);
          normal_(module.fc2.weight, 0, inStd);
        } else if (module instanceof LayerNorm) {
          if (module.weight) ones_(module.weight);
          if (module.bias) zeros_(module.bias);
        }
        if (module instanceof Linear && module.bias) zeros_(module.bias);
      }
    }
    normal_(model.image.visualProjection.weight, 0, model.visionConfig.hidden_size ** -0.5);
    normal_(model.textProjection.weight, 0, model.textConfig.hidden_size ** -0.5);
  });
}

/** The record saved as training.json next to the weights. */
export interface EncoderRecord {
  settings: EncoderSettings & { textConfig: CLIPTextConfig; preprocessor: typeof ENCODER_PREPROCESSOR_CONFIG; captionTokens: number };
  steps: number;
  /** Mean loss of the last 50 steps (ln(batchSize) at chance). */
  finalLoss: number;
  /** exp(logit_scale) at the end: 1 / the learned temperature (at most 100). */
  logitScale: number;
  trainingSeconds: number;
  /** Rendering (or loading) the training images and tokenising their captions. */
  renderSeconds: number;
  /** The held-out checks (encoder-evaluation.ts): the trained encoder, and the same architecture at its initialisation. */
  evaluation: { sizes: EncoderEvaluationSizes; trained: EncoderEvaluation; untrained: EncoderEvaluation; chance: { identityAuc: number; retrieval: number } };
  provenance: Provenance;
}

export interface EncoderTrainingResult {
  /** False when `stopAfterSteps` stopped the run first (nothing is saved then). */
  finished: boolean;
  step: number;
  losses: number[];
  record: EncoderRecord | null;
}

/**
 * `count` captions per sample, variant-major (caption k of sample i at k·N + i): k = 0 is the base model's, the
 * others are captions.ts's captions of the same image with other seeds (another choice of attributes and opener).
 */
export function captionVariants(samples: readonly WorldSample[], count: number, seed: number): string[] {
  return Array.from({ length: count }, (_, k) => samples.map((s, i) => (k === 0 ? s.caption
    : caption(s.id, s.styles, Random.of("encoder-caption", seed, i, k).int(1_000_000), { nuisanceSeed: s.nuisanceSeed })))).flat();
}

/** The training run's label: names its progress bar, random stream, checkpoints and log. */
const LABEL = "miniworld-encoder";

/** Trains (or resumes) the encoder as `options` say, measures it and saves the image tower to `outDir`. */
export async function trainEncoder(options: EncoderTrainingOptions): Promise<EncoderTrainingResult> {
  const settings = resolveEncoderSettings(options);
  const { outDir, workDir } = options;
  const log = options.log ?? (() => {});
  if (existsSync(path.join(outDir, "training.json"))) throw new Error(`${outDir} holds a finished encoder (training.json): choose another folder, or delete it to train again`);
  const processor = parseImageProcessorConfig({ ...ENCODER_PREPROCESSOR_CONFIG }, "ENCODER_PREPROCESSOR_CONFIG");
  const tokenizerDir = path.join(workDir, "tokenizer");
  writeVocabulary(tokenizerDir);
  const tokenizer = CLIPTokenizer.fromFolder(tokenizerDir);
  const textConfig = clipTextConfig({ ...miniworldTextConfig(tokenizer), ...settings.text });
  const tokens = (texts: readonly string[]): Tensor => keep(tensor(tokenizer.call(texts, { padding: "longest", truncation: true }).inputIds, { dtype: "int64" }));

  const renderStarted = performance.now();
  const samples = planSamples(settings.datasetSize, settings.seed);
  const images = keep(await renderDataset(samples, settings.seed, workDir, (done, total) => options.progress?.({ label: "rendering", done, total })));
  const captionIds = tokens(captionVariants(samples, settings.captionsPerImage, settings.seed));
  const renderSeconds = (performance.now() - renderStarted) / 1000;
  log(`${LABEL}: ${samples.length} renders of pretraining identities, ${settings.captionsPerImage} captions each (${captionIds.size(1)} tokens)`);

  const previousThreads = getNumThreads();
  const owned: { dispose(): void }[] = [images, captionIds];
  try {
    setNumThreads(settings.threads);
    manualSeed(settings.seed);
    const model = new ContrastiveCLIP(settings.vision, textConfig);
    owned.push(model);
    const named = model.namedParameters();
    // OpenCLIP's exclusion: parameters of fewer than 2 dimensions (gains, biases, class embedding, logit_scale).
    const optimizer = new AdamW([
      { params: named.filter(([, p]) => p.ndim >= 2).map(([, p]) => p), weightDecay: settings.weightDecay },
      { params: named.filter(([, p]) => p.ndim < 2).map(([, p]) => p), weightDecay: 0 },
    ], { lr: settings.learningRate, betas: settings.betas, eps: settings.eps });
    owned.push(optimizer);
    const scheduler = cosineSchedule(optimizer, { warmupSteps: settings.warmupSteps, totalSteps: settings.steps });
    const uniform = ones([samples.length], { dtype: "float64" });
    owned.push(uniform);
    model.train();
    // Threads, checkpoint spacing and the evaluation's sizes do not change what a step computes: a resume may change them.
    const { threads: _threads, checkpointEvery: _checkpointEvery, evaluation: _evaluation, ...runSettings } = settings;
    const job = new TrainingJob({
      name: LABEL, dir: path.join(workDir, "checkpoints"), steps: settings.steps, seed: settings.seed, settings: { ...runSettings, textConfig },
      tensors: () => model.stateDict(), load: (tensors) => model.loadStateDict(tensors),
      parameters: named.map(([, p]) => p), optimizer, scheduler,
    });
    const saved: { record: EncoderRecord | null } = { record: null };
    const result = await train({
      label: LABEL, jobs: [job], checkpointEvery: settings.checkpointEvery, logFile: path.join(workDir, `${LABEL}.log.jsonl`),
      hooks: { ...(options.progress ? { progress: options.progress } : {}), log, ...(options.stopAfterSteps === undefined ? {} : { stopAfterSteps: options.stopAfterSteps }) },
      step: () => [tidy(() => {
        const { generator } = job;
        const rows = multinomial(uniform, settings.batchSize, { replacement: false, generator });
        const variants = randint(0, settings.captionsPerImage, [settings.batchSize], { generator });
        const ids = captionIds.indexSelect(0, variants.mul(samples.length).add(rows));
        const loss = model.loss(pixelValues(images.indexSelect(0, rows), processor), ids);
        loss.backward();
        return loss.item();
      })],
      afterStep: () => model.clampLogitScale(),
      logTerms: () => ({ logitScale: model.logitScale.item() }),
      finish: async () => {
        saved.record = await measureAndSave({
          model, settings, textConfig, processor, tokenizer, job, renderSeconds, captionTokens: captionIds.size(1), outDir, command: options.command, log,
        });
      },
    });
    return { finished: !result.stopped, step: job.step, losses: job.losses, record: saved.record };
  } finally {
    setNumThreads(previousThreads);
    for (const item of owned) item.dispose();
  }
}

interface FinishContext {
  model: ContrastiveCLIP;
  settings: EncoderSettings;
  textConfig: CLIPTextConfig;
  processor: ImageProcessorConfig;
  tokenizer: CLIPTokenizer;
  job: TrainingJob;
  renderSeconds: number;
  captionTokens: number;
  outDir: string;
  command: readonly string[];
  log: (line: string) => void;
}

/** The held-out checks on the trained model and on its initialisation, then the image tower's folder and training.json. */
async function measureAndSave(c: FinishContext): Promise<EncoderRecord> {
  const { settings, model } = c;
  const data = await renderEvaluationData(settings.evaluation, settings.seed);
  let trained: EncoderEvaluation;
  let untrained: EncoderEvaluation;
  try {
    trained = evaluateEncoder(underTest(model, c.processor, c.tokenizer), data);
    manualSeed(settings.seed);
    using initial = new ContrastiveCLIP(settings.vision, c.textConfig);
    untrained = evaluateEncoder(underTest(initial, c.processor, c.tokenizer), data);
  } finally {
    data.dispose();
  }
  saveImageTower(c.outDir, model.image);
  const record: EncoderRecord = {
    settings: { ...settings, textConfig: c.textConfig, preprocessor: ENCODER_PREPROCESSOR_CONFIG, captionTokens: c.captionTokens },
    steps: c.job.step, finalLoss: c.job.recentLoss(50), logitScale: Math.exp(model.logitScale.item()), trainingSeconds: c.job.seconds,
    renderSeconds: c.renderSeconds,
    evaluation: { sizes: settings.evaluation, trained, untrained, chance: { identityAuc: 0.5, retrieval: 1 / settings.evaluation.retrievalImages } },
    provenance: provenance({ command: c.command, threads: getNumThreads(), measured: [c.outDir] }),
  };
  writeJsonAtomic(path.join(c.outDir, "training.json"), record);
  const f = (x: number): string => x.toFixed(3);
  c.log(`${LABEL}: held-out identity AUC ${f(trained.identityAuc)} (untrained ${f(untrained.identityAuc)}), features ${f(trained.featureIdentityAuc)} ` +
    `(${f(untrained.featureIdentityAuc)}); caption retrieval ${f(trained.imageToCaption)} (${f(untrained.imageToCaption)}); saved to ${c.outDir}`);
  return record;
}

/** The evaluation's view of a model: both towers in eval mode, pixels through the saved processor's arithmetic. */
function underTest(model: ContrastiveCLIP, processor: ImageProcessorConfig, tokenizer: CLIPTokenizer): Parameters<typeof evaluateEncoder>[0] {
  model.eval();
  return {
    embedImages: (images) => {
      const output = model.image.forward(pixelValues(images, processor), { outputHiddenStates: true });
      return [output.imageEmbeds, output.hiddenStates!.at(-2)!.mean([1])];
    },
    embedCaptions: (captions) => model.embedTexts(tensor(tokenizer.call(captions, { padding: "longest", truncation: true }).inputIds, { dtype: "int64" })),
  };
}

/** The image tower as a transformers CLIPVisionModelWithProjection folder with its CLIPImageProcessor config. */
export function saveImageTower(outDir: string, tower: CLIPVisionModelWithProjection): void {
  writeDirectoryAtomic(outDir, (temporary) => {
    const weights = noGrad(() => new Map([...tower.stateDict()].map(([name, t]) => [name, t.detach().contiguous()])));
    try {
      saveSafetensors(path.join(temporary, "model.safetensors"), weights, { format: "pt" });
    } finally {
      for (const t of weights.values()) t.dispose();
    }
    writeFileAtomic(path.join(temporary, "config.json"), jsonWithFloats({
      architectures: ["CLIPVisionModelWithProjection"], model_type: "clip_vision_model", dtype: "float32", transformers_version: TRANSFORMERS_VERSION,
      initializer_factor: 1.0, initializer_range: 0.02, ...tower.config,
    }, TRANSFORMERS_CLIP_FLOAT_FIELDS));
    writeJsonAtomic(path.join(temporary, "preprocessor_config.json"), ENCODER_PREPROCESSOR_CONFIG);
  });
}
