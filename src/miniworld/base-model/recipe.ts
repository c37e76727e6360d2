/**
 * `hdb miniworld build`: the recipe that regenerates the bundled default from seeds.
 *
 *   1. dataset    render the training images (cached in the work folder)
 *   2. vae        train the AutoencoderKL                      (train-vae.ts)
 *   3. diffusion  train the UNet and the CLIP text encoder     (train-diffusion.ts), then diffusion-2 continues
 *                 it (constant rate, min-SNR-γ, posterior means) and diffusion-3 continues that with the
 *                 high-noise steps weighted up, so the words are learned (truncated-SNR weights), and
 *                 diffusion-4 continues that with every hair colour drawn equally often
 *   4. vae-decoder  fine-tune the VAE decoder, encoder frozen  (train-decoder.ts)
 *   5. export     write the diffusers folder <out>/base (float16 weights, PNDM scheduler as SD1.5 ships)
 *   6. metrics    the identity and prompt-fidelity networks, trained and checked (metrics-stage.ts)
 *
 * Every stage checkpoints into the work folder and is skipped when its result exists, so running the same
 * command again after a kill resumes where it stopped. <out>/build.json records the recipe, the command,
 * each stage's time and final loss.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { getNumThreads, type Tensor } from "../../engine/index.js";
import { packageRoot } from "../../engine/native/libtorch.js";
import { CLIPTextModel } from "../../models/clip/text-encoder.js";
import { UNet2DConditionModel } from "../../models/unet/index.js";
import { AutoencoderKL } from "../../models/vae/index.js";
import { copyTokenizer, saveCLIPTextModel, saveDiffusersModel, saveSchedulerConfig, writeModelIndex } from "../../pipeline/save-pretrained.js";
import { writeDirectoryAtomic, writeJsonAtomic } from "../../util/atomic.js";
import type { ProgressReporter } from "../../util/progress.js";
import { commitOf, fileHashes } from "../../util/provenance.js";
import type { LossRecord } from "./stage.js";
import { MINIWORLD_NOISE_SCHEDULE, type BaseModelRecipe } from "./config.js";
import { planSamples, renderDataset } from "./dataset.js";
import { trainMetricNetworks } from "./metrics-stage.js";
import { finetuneDecoder } from "./train-decoder.js";
import { diffusionPhases, trainDiffusion, type DiffusionStageResult } from "./train-diffusion.js";
import { trainVae } from "./train-vae.js";

export const BUILD_STAGES = ["vae", "diffusion", "diffusion-2", "diffusion-3", "diffusion-4", "vae-decoder", "export", "metrics"] as const;
export type BuildStage = (typeof BUILD_STAGES)[number];

/** Where the bundled default lives in the package: models/miniworld (base/ and metrics/). */
export function bundledMiniworldDir(): string {
  return path.join(packageRoot(), "models", "miniworld");
}

export interface BuildOptions {
  recipe: BaseModelRecipe;
  /** Output folder (default: the bundled models/miniworld). */
  outDir: string;
  /** Work folder for caches and checkpoints (default build/miniworld-work). */
  workDir: string;
  /** Stop after this stage. */
  until?: BuildStage;
  /** Told every training loop's steps (the CLI draws bars from it). */
  progress?: ProgressReporter;
  log?: (line: string) => void;
  /** The command line to record in build.json. */
  command?: string;
  /** The same command as its arguments (program name first), for the metrics' provenance record. */
  argv?: readonly string[];
  /** Where the VAE, diffusion and decoder stages train (default "cpu"; see StageOptions.device). */
  device?: string;
  /** Tests: stop each training stage after this many steps (as a kill would). */
  stopAfterSteps?: number;
  /** Train the metric networks after the export (default true; tests of the base model skip them). */
  withMetrics?: boolean;
}

export interface StageRecord {
  seconds: number;
  steps?: number;
  finalLoss?: number;
  losses?: LossRecord[];
}

/** A recipe as recorded in a work folder's build.json (phase 4 may be missing: see sameRecipe). */
export type RecordedRecipe = Omit<BaseModelRecipe, "colourBalance"> & Partial<Pick<BaseModelRecipe, "colourBalance">>;

export interface BuildRecord {
  recipe: BaseModelRecipe;
  /** The command that started the work folder, and its thread count. */
  command: string;
  threads: number;
  /** Later commands on the same work folder that differ from the one before (a longer last phase, other threads). */
  laterCommands?: { command: string; threads: number; commit?: string | null }[];
  /** The repository commit of the command that started the folder (null outside a git checkout). */
  commit?: string | null;
  /** sha256 of every file of the exported <out>/base, by path (repository-relative when inside it). */
  baseModelFiles?: Record<string, string>;
  stages: Partial<Record<BuildStage | "dataset", StageRecord>>;
  scalingFactor?: number;
  /** Bytes of every file under <out>/base. */
  baseModelBytes?: number;
  /** The metric networks' held-out results (metrics-stage.ts). */
  metrics?: { identityPlainAuc: number; identityCrossStyleAuc: number; styleAccuracy: number; hairColourAccuracy: number };
}

export interface BuildResult {
  record: BuildRecord;
  /** False when a stage stopped early (stopAfterSteps). */
  finished: boolean;
  baseDir: string;
}

export async function buildMiniworld(options: BuildOptions): Promise<BuildResult> {
  const { recipe, workDir } = options;
  const log = options.log ?? (() => {});
  const baseDir = path.join(options.outDir, "base");
  const recordFile = path.join(workDir, "build.json");
  const record: BuildRecord = existsSync(recordFile) ? JSON.parse(readFileSync(recordFile, "utf8")) as BuildRecord
    : { recipe, command: options.command ?? "", threads: getNumThreads(), commit: commitOf(packageRoot()), stages: {} };
  if (!sameRecipe(record.recipe, recipe)) {
    throw new Error(`${recordFile} was made with another recipe (${JSON.stringify(record.recipe)}); use another --work folder or delete it`);
  }
  // The last phase runs at a constant rate with per-step seeds, so more of its steps extend the same run exactly.
  record.recipe = recipe;
  const previous = record.laterCommands?.at(-1) ?? { command: record.command, threads: record.threads };
  const current = { command: options.command ?? "", threads: getNumThreads(), commit: commitOf(packageRoot()) };
  const sameCommit = current.commit === (previous.commit ?? record.commit ?? current.commit);
  if (current.command !== previous.command || current.threads !== previous.threads || !sameCommit) (record.laterCommands ??= []).push(current);
  mkdirSync(workDir, { recursive: true });
  const saveRecord = (): void => writeJsonAtomic(recordFile, record);
  // Recorded before any training, so a killed first stage cannot be resumed with another recipe.
  saveRecord();
  const stop = (stage: BuildStage): boolean => options.until === stage;
  const common = {
    recipe, workDir, log,
    ...(options.device === undefined ? {} : { device: options.device }),
    ...(options.progress === undefined ? {} : { progress: options.progress }),
    ...(options.stopAfterSteps === undefined ? {} : { stopAfterSteps: options.stopAfterSteps }),
  };

  let started = performance.now();
  const samples = planSamples(recipe.datasetSize, recipe.seed);
  const images: Tensor = await renderDataset(samples, recipe.seed, workDir, (done, total) => log(`dataset: rendered ${done}/${total}`));
  record.stages.dataset ??= { seconds: (performance.now() - started) / 1000 };
  try {
    const vae = await trainVae({ ...common, images });
    record.stages.vae = stageRecord(vae.state);
    saveRecord();
    if (!vae.finished) return { record, finished: false, baseDir };
    record.scalingFactor = vae.scalingFactor;
    if (stop("vae")) return { record, finished: true, baseDir };

    // The phases in order, each continuing the previous one; the last one's weights are exported.
    let diffusion: DiffusionStageResult | undefined;
    for (const phase of diffusionPhases(recipe, workDir)) {
      diffusion = await trainDiffusion({ ...common, images, samples, vaeDir: vae.dir, phase });
      record.stages[phase.name] = stageRecord(diffusion.state);
      saveRecord();
      if (!diffusion.finished) return { record, finished: false, baseDir };
      if (stop(phase.name)) return { record, finished: true, baseDir };
    }
    if (!diffusion) throw new Error("the recipe has no diffusion phase");

    const decoder = await finetuneDecoder({ ...common, images, samples, vaeDir: vae.dir });
    record.stages["vae-decoder"] = stageRecord(decoder.state);
    saveRecord();
    if (!decoder.finished) return { record, finished: false, baseDir };
    if (stop("vae-decoder")) return { record, finished: true, baseDir };

    started = performance.now();
    exportPipeline(baseDir, { vaeDir: decoder.dir, unetDir: diffusion.unetDir, textEncoderDir: diffusion.textEncoderDir, tokenizerDir: diffusion.tokenizerDir });
    record.stages.export = { seconds: (performance.now() - started) / 1000 };
    record.baseModelBytes = folderBytes(baseDir);
    record.baseModelFiles = fileHashes([baseDir]);
    saveRecord();
    log(`base model written to ${baseDir} (${(record.baseModelBytes / 1e6).toFixed(1)} MB)`);
    if (!stop("export") && options.withMetrics !== false) {
      started = performance.now();
      const metrics = await trainMetricNetworks({
        outDir: options.outDir, workDir, threads: getNumThreads(), log, command: options.argv ?? [options.command ?? ""],
        ...(options.progress === undefined ? {} : { progress: options.progress }),
      });
      record.stages.metrics = { seconds: (performance.now() - started) / 1000 };
      record.metrics = {
        identityPlainAuc: metrics.identity.evaluation.plainAuc, identityCrossStyleAuc: metrics.identity.evaluation.crossStyleAuc,
        styleAccuracy: metrics.fidelity.evaluation.styleAccuracy, hairColourAccuracy: metrics.fidelity.evaluation.hairColourAccuracy,
      };
      saveRecord();
    }
    writeJsonAtomic(path.join(options.outDir, "build.json"), record);
    return { record, finished: true, baseDir };
  } finally {
    images.dispose();
  }
}

function stageRecord(state: { step: number; losses: LossRecord[]; seconds: number }): StageRecord {
  return { seconds: state.seconds, steps: state.step, ...(state.losses.length > 0 ? { finalLoss: state.losses.at(-1)!.loss } : {}), losses: state.losses };
}

interface TrainedComponents {
  vaeDir: string;
  unetDir: string;
  textEncoderDir: string;
  tokenizerDir: string;
}

/**
 * The diffusers folder of the trained model, weights in float16 (half the bytes; the loaders cast back to
 * float32). Written next to the target and renamed over it, so a kill never leaves half a model.
 */
export function exportPipeline(baseDir: string, parts: TrainedComponents): void {
  writeDirectoryAtomic(baseDir, (tmp) => {
    const vae = AutoencoderKL.fromPretrained(parts.vaeDir);
    saveDiffusersModel(path.join(tmp, "vae"), "AutoencoderKL", { ...vae.config }, vae, { dtype: "float16" });
    vae.dispose();
    const unet = UNet2DConditionModel.fromPretrained(parts.unetDir);
    saveDiffusersModel(path.join(tmp, "unet"), "UNet2DConditionModel", { ...unet.config }, unet, { dtype: "float16" });
    unet.dispose();
    const textEncoder = CLIPTextModel.fromPretrained(parts.textEncoderDir);
    saveCLIPTextModel(path.join(tmp, "text_encoder"), { ...textEncoder.config }, textEncoder, { dtype: "float16" });
    textEncoder.dispose();
    copyTokenizer(parts.tokenizerDir, path.join(tmp, "tokenizer"));
    const { prediction_type, ...schedule } = MINIWORLD_NOISE_SCHEDULE;
    saveSchedulerConfig(path.join(tmp, "scheduler"), "PNDMScheduler", { ...schedule, prediction_type, skip_prk_steps: true, trained_betas: null });
    writeModelIndex(tmp, "PNDMScheduler");
  });
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

/**
 * Whether a work folder made with `recorded` can serve `requested`: the same recipe, except that the last
 * diffusion phase may be longer, since its first steps are the same either way. Work folders made before
 * phase 4 existed record no `colourBalance`: their last phase is phase 3, and phase 4 continues it.
 */
export function sameRecipe(recorded: RecordedRecipe, requested: BaseModelRecipe): boolean {
  const last = recorded.colourBalance === undefined ? "conditioning" : "colourBalance";
  const withoutLastSteps = (r: RecordedRecipe): string => JSON.stringify({
    ...r, colourBalance: last === "conditioning" ? undefined : r.colourBalance, [last]: { ...r[last], steps: 0 },
  });
  return withoutLastSteps(recorded) === withoutLastSteps(requested) && requested[last].steps >= recorded[last]!.steps;
}
