/**
 * Training the HyperNetwork, phase 1 (HyperDreamBooth §4.2), on the one training loop (src/training/loop.ts).
 *
 * Data: a weight set (src/miniworld/hypernetwork/weight-set.ts, or any DreamBooth run's folder): per identity
 * one photo and its pre-optimised LiDB file, all in one LiDB space. The photos' encoder features are computed
 * once (the encoder is frozen) and their VAE posteriors once (src/dreambooth/identity.ts: IdentityPhotos).
 *
 * Loss, per photo i of a batch, summed over the batch (as DreamBooth sums its identities' losses):
 *
 *     L_i = ‖ε − ε_θ(x_t, t, "a [V] face"; LiDB θ̂_i)‖²  +  β · ‖C(θ̂_i) − C(θ_i)‖² / ‖C(θ_i)‖²
 *
 * The first term is the DreamBooth loss with the predicted factors applied to sample i alone (the adapters'
 * per-sample path, so no second implementation of LiDB); the paper's α is 1 here, since only β/α matters to
 * Adam. The second compares predictions with the pre-optimised factors in a gauge-free space: C = A_train ·
 * B_train per layer (a×b), which determines ΔW exactly because the aux bases are isometric
 * (src/adapters/lidb/aux-bases.ts), while the raw factors are only defined up to A·c, B/c (prior-art mistake 3).
 * It is relative (1 for a prediction of zero), so β is on the diffusion loss's scale. β = 0 trains on the
 * diffusion loss alone and needs no pre-optimised set beyond the photos.
 *
 * `target: "teacher"` (not in the paper) replaces the drawn noise ε in the first term by ε_θ(x_t, t; θ_i), the
 * model's prediction with the identity's pre-optimised factors: the same gauge-free comparison as the weight loss,
 * made in the space that matters (what the weights do), without the variance of ε, which dominates the
 * diffusion loss of one photo. Measured in the mini-world because the pre-optimised factors are mostly
 * unpredictable from the photo: a ridge regression from the encoder's features explains ~3 % of their variance
 * on held-out identities (the mean alone: relative error 0.90, ridge 0.87), so the weight loss teaches little
 * beyond the mean. Measured (reports/miniworld/hypernetwork/teacher-variant/, 1,200 steps, 30 held-out ids):
 * held-out identity similarity 0.013 ± 0.018 against 0.034 ± 0.019 for the paper's loss and 0.009 for the base
 * model: the distillation loss falls on the training photos but does not generalise from 1,000 identities.
 *
 * `target: "description"` (not in the paper either) trains on people given directly, without pre-optimised weights
 * (β = 0), as many as there are photos: the target is what the model WITHOUT adapters predicts for the same noisy
 * latents when prompted with a description of the person ("a photo of a woman with purple hair in a bun, green
 * eyes, …"), so the prediction learns to make "a [V] face" draw what the description draws, from the photo alone.
 * The real-world counterpart is a face dataset with attribute annotations (CelebA's 40 attributes). The latents
 * denoised may come from another photo of the person than the one the network reads (`TrainingPhotos.targets`).
 * Measured in the mini-world (src/miniworld/hypernetwork/recipe.ts, its report): the base model prompted with a
 * full description draws the person at identity similarity 0.295 on the study's prompts, above per-identity LiDB
 * DreamBooth's 0.233, so this teacher is a ceiling the prediction can approach; what it cannot carry is what no
 * description names (exact shades, spacing, mole positions).
 *
 * Every draw (which photos, the posterior sample, noise, timesteps) comes from the job's per-step generator,
 * so a resumed run continues bit for bit.
 *
 * Data parallel (`distributed`: the loop's process group, from torchrun's or `--nproc`'s environment): every rank
 * draws the whole global batch alike and computes its contiguous share of the photos (training/loop.ts). The loss is
 * a sum over the batch's photos, and the ranks average their gradients, so each rank differentiates its shard's sum
 * times the world size: N ranks take the step one process takes on the whole batch. The logged terms are averaged
 * across the ranks too. Rank 0 alone logs, validates, checkpoints and saves.
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { backward, cat, distributedEnvironment, initProcessGroup, keep, manualSeed, noGrad, randint, tensor, tidy, type ProcessGroup, type Tensor } from "../engine/index.js";
import { AdamW, cosineSchedule } from "../engine/optim/index.js";
import { loadLidbFile, readLidbFileInfo } from "../adapters/lidb/file.js";
import { promptWithIdentifier, resolveConfig, type TrainingConfigInput } from "../dreambooth/config.js";
import { loadPixels } from "../dreambooth/data.js";
import { IdentityPhotos } from "../dreambooth/identity.js";
import { readManifest } from "../dreambooth/manifest.js";
import { DreamBoothTrainer } from "../dreambooth/trainer.js";
import { imageGrid, loadImage, savePng, type RgbImage } from "../pipeline/images.js";
import { shardRange, train, TrainingJob, type LoopHooks } from "../training/index.js";
import { writeLossPage } from "../training/loss-page.js";
import { hyperNetworkConfig, type HyperNetworkConfigInput } from "./config.js";
import { lidbSpaceOf, saveHyperNetwork } from "./file.js";
import { HyperNetwork } from "./hypernetwork.js";

/** Turns photos into encoder features: `files` → (N, T, hidden) float32 on the CPU. */
export interface FeatureEncoder {
  /** The id or folder recorded in the HyperNetwork's config. */
  id: string;
  hiddenSize: number;
  encode(files: readonly string[]): Promise<Tensor>;
}

export interface HyperNetworkTrainingSettings {
  steps: number;
  /** Photos per step. */
  batchSize: number;
  learningRate: number;
  weightDecay: number;
  warmupSteps: number;
  /** β, the weight of the gauge-free weight loss (0: diffusion loss only). */
  weightLoss: number;
  /**
   * The diffusion term's target: "noise", the paper's (the drawn ε), or "teacher", what the model predicts for the
   * same noisy latents with the identity's pre-optimised factors (see the module comment), or "description", what
   * the model without adapters predicts for them conditioned on the person's description (`photos.descriptions`).
   * Default "noise".
   */
  target?: "noise" | "teacher" | "description";
  checkpointEvery: number;
  seed: number;
  /** Use only the first N identities of the weight set (default all). */
  identities?: number;
}

/** Every `every` steps (and at the end), a contact sheet of predictions for photos the training never sees. */
export interface ValidationOptions {
  photos: string[];
  /** Prompts with "[V]" for the identifier (e.g. "a [V] face", "a [V] face as a pencil sketch"). */
  prompts: string[];
  every: number;
  /** Denoising steps, guidance and seed of the images (defaults 25, 5, 0). */
  inferenceSteps?: number;
  guidance?: number;
  seed?: number;
}

/**
 * Training people given directly instead of the weight set's (β = 0: they have no pre-optimised weights): per person
 * the photo the network reads, the photo the diffusion term denoises (the same file, or another photo of the person,
 * so that what the prediction must carry is the person rather than this photo's pose and light), and for target
 * "description" the prompt whose prediction by the base model is the target ("a photo of a woman with …").
 */
export interface TrainingPhotos {
  inputs: readonly string[];
  targets: readonly string[];
  descriptions?: readonly string[];
}

export interface HyperNetworkTrainingOptions {
  /**
   * The weight set's DreamBooth folder: manifest.json and the LiDB files. With `photos`, it gives only the base
   * model, the DreamBooth settings and the LiDB space.
   */
  weightSet: string;
  photos?: TrainingPhotos;
  /**
   * The base model, when not where the weight set's manifest recorded it (a clone in another folder); its LiDB
   * files record the targeted weights' hash, so another model of the same architecture is still caught at load.
   */
  model?: string;
  outputDir: string;
  encoder: FeatureEncoder;
  /** Sizes and rounds of the decoder (the LiDB space and encoder come from the data). */
  network?: Partial<HyperNetworkConfigInput>;
  settings: HyperNetworkTrainingSettings;
  validation?: ValidationOptions;
  hooks?: LoopHooks;
  /**
   * Data parallel over processes: a process group, or "environment" to join the one torchrun's (or `--nproc`'s)
   * environment describes, on the weight set's device (and leave it at the end).
   */
  distributed?: ProcessGroup | "environment";
}

export interface HyperNetworkTrainingResult {
  dir: string;
  finished: boolean;
  /** Per step: the summed loss over the batch's photos. */
  losses: number[];
  /** Per step: mean diffusion and weight losses per photo (the two terms, logged apart). */
  terms: { diffusion: number; weight: number }[];
  seconds: number;
}

/**
 * A weight set's photo: where its manifest recorded it, else in the `photos/` folder beside the weight set (the
 * layout hdb miniworld lidb-set writes, whose manifest records absolute paths of the machine that made it).
 */
function locatePhoto(recorded: string, weightSet: string): string {
  if (existsSync(recorded)) return recorded;
  const beside = path.join(weightSet, "..", "photos", path.basename(recorded));
  if (existsSync(beside)) return beside;
  throw new Error(`${weightSet}: the photo ${recorded} is missing (and ${beside} too); re-render the photos with the command that made the weight set`);
}

/** The people of `photos` (the first `settings.identities`), checked against the settings' loss. */
function givenPeople(photos: TrainingPhotos, settings: HyperNetworkTrainingSettings): { input: string; target: string; description: string | undefined }[] {
  const n = photos.inputs.length;
  if (photos.targets.length !== n) throw new Error(`photos: ${n} input photos but ${photos.targets.length} target photos`);
  if (photos.descriptions && photos.descriptions.length !== n) throw new Error(`photos: ${n} input photos but ${photos.descriptions.length} descriptions`);
  if (settings.weightLoss > 0) throw new Error(`photos given directly have no pre-optimised weights: the weight loss must be 0 (got β = ${settings.weightLoss})`);
  if (settings.target === "teacher") throw new Error("photos given directly have no pre-optimised weights to distil from (target 'teacher')");
  if (settings.target === "description" && !photos.descriptions) throw new Error("target 'description' needs photos.descriptions");
  const count = Math.min(n, settings.identities ?? n);
  return Array.from({ length: count }, (_, i) => ({ input: photos.inputs[i]!, target: photos.targets[i]!, description: photos.descriptions?.[i] }));
}

export async function trainHyperNetwork(options: HyperNetworkTrainingOptions): Promise<HyperNetworkTrainingResult> {
  const { settings } = options;
  // This process's place in the job, known before the group is joined (that needs the weight set's device).
  const place = options.distributed === "environment" ? distributedEnvironment() ?? { rank: 0, worldSize: 1 } : options.distributed ?? { rank: 0, worldSize: 1 };
  const log = place.rank !== 0 ? () => {} : options.hooks?.log ?? (() => {});
  const manifest = readManifest(options.weightSet);
  if (!manifest) throw new Error(`${options.weightSet} holds no DreamBooth manifest.json: make the weight set first (hdb miniworld lidb-set)`);
  // (with people given directly, the weight set's photos are not read: they need not be there)
  const entries = options.photos ? manifest.identities
    : manifest.identities.slice(0, settings.identities ?? manifest.identities.length).map((e) => ({ ...e, images: e.images.map((image) => locatePhoto(image, options.weightSet)) }));
  if (settings.target === "description" && !options.photos) throw new Error("target 'description' needs people given with their descriptions (options.photos)");
  const people = options.photos ? givenPeople(options.photos, settings) : entries.map((e) => ({ input: e.images[0]!, target: e.images[0]!, description: undefined }));
  if (people.length < settings.batchSize) throw new Error(`${options.photos ? "photos" : options.weightSet}: ${people.length} people, fewer than the batch size ${settings.batchSize}`);
  if (entries.length === 0) throw new Error(`${options.weightSet}: no finished identities (the LiDB space comes from their files)`);
  const info = readLidbFileInfo(path.join(options.weightSet, entries[0]!.file));
  const space = lidbSpaceOf(info);

  // The DreamBooth run's models, adapters (the weight set's LiDB space) and loss; nothing written to its folder.
  const runSettings = manifest.settings as Partial<TrainingConfigInput>;
  const config = resolveConfig({ ...runSettings, ...(options.model === undefined ? {} : { pretrainedModel: options.model }), adapter: "lidb", outputDir: options.outputDir, identities: entries.map((e) => ({ id: e.id, images: e.images })) } as TrainingConfigInput);
  if (config.lidbA !== space.a || config.lidbB !== space.b || config.rank !== space.rank || String(config.basisSeed) !== space.seed) {
    throw new Error(`${options.weightSet}: the manifest's LiDB settings (a ${config.lidbA}, b ${config.lidbB}, rank ${config.rank}, basis seed ${config.basisSeed}) ` +
      `differ from its files' (a ${space.a}, b ${space.b}, rank ${space.rank}, seed ${space.seed})`);
  }
  if (settings.batchSize % place.worldSize !== 0) {
    throw new Error(`--batch-size ${settings.batchSize} does not split into equal shards over ${place.worldSize} processes`);
  }
  const session = await DreamBoothTrainer.open(config, { log }, { manifest: false });
  const owned: { dispose(): void }[] = [session];
  let joined: ProcessGroup | null = null;
  try {
    if (options.distributed === "environment") joined = initProcessGroup({ device: config.device });
    const group = joined ?? (options.distributed === "environment" ? undefined : options.distributed);
    if (group) log(`hypernetwork: rank ${group.rank} of ${group.worldSize} (${group.backends.join(", ")}), ${settings.batchSize / group.worldSize} photos per rank per step`);
    log(`hypernetwork: ${people.length} people; encoding their photos`);
    const features = keep(await options.encoder.encode(people.map((p) => p.input)));
    owned.push(features);
    const validationFeatures = options.validation ? keep(await options.encoder.encode(options.validation.photos)) : null;
    if (validationFeatures) owned.push(validationFeatures);
    const photos = await Promise.all(people.map(async (p) => {
      const pixels = await loadPixels([p.target], session.resolution);
      try {
        return new IdentityPhotos(pixels, session.shared);
      } finally {
        pixels.dispose();
      }
    }));
    owned.push(...photos);
    // The pre-optimised factors, read once: the targets as gauge-free cores C = A_train · B_train per layer,
    // (N, L, a, b), and, when the diffusion term distils from them, the raw factors (N, L, a, r) and (N, L, r, b).
    // People given directly have none.
    const { cores, teacher } = options.photos ? { cores: null, teacher: null } : tidy(() => {
      const loaded = entries.map((e) => loadLidbFile(path.join(options.weightSet, e.file)).factors);
      try {
        const aTrain = cat(loaded.map((f) => f.aTrain.unsqueeze(0)));
        const bTrain = cat(loaded.map((f) => f.bTrain.unsqueeze(0)));
        return { cores: keep(aTrain.matmul(bTrain)), teacher: settings.target === "teacher" ? { aTrain: keep(aTrain), bTrain: keep(bTrain) } : null };
      } finally {
        for (const f of loaded) for (const t of [f.aTrain, f.bTrain]) t.dispose();
      }
    });
    if (cores) owned.push(cores);
    if (teacher) owned.push(teacher.aTrain, teacher.bTrain);

    // The initial weights come from the default generator: seeded, so a run's start does not depend on what ran before.
    manualSeed(settings.seed);
    const network = new HyperNetwork(hyperNetworkConfig({
      ...options.network, layers: space.targets.map((t) => t.name), lidb_a: space.a, lidb_b: space.b, lidb_rank: space.rank, lidb_seed: space.seed,
      base_model: space.baseModel.id, encoder: options.encoder.id, encoder_hidden_size: options.encoder.hiddenSize,
    }));
    owned.push(network);
    network.train();
    const parameters = network.parameters();
    const optimizer = new AdamW(parameters, { lr: settings.learningRate, weightDecay: settings.weightDecay });
    owned.push(optimizer);
    const terms: { diffusion: number; weight: number }[] = [];
    const job = new TrainingJob({
      name: "hypernetwork", dir: path.join(options.outputDir, "checkpoints"), steps: settings.steps, seed: settings.seed,
      settings: {
        ...settings, network: network.config, weightSet: path.basename(path.resolve(options.weightSet)), identities: people.length,
        ...(options.photos ? { photos: { first: path.basename(people[0]!.input), last: path.basename(people.at(-1)!.input), targets: path.basename(people[0]!.target) } } : {}),
      },
      tensors: () => network.stateDict(), load: (tensors) => void network.loadStateDict(tensors),
      parameters, optimizer, scheduler: cosineSchedule(optimizer, { warmupSteps: settings.warmupSteps, totalSteps: settings.steps }), maxGradNorm: 1,
    });
    /** Predictions for the validation photos (rows) under each prompt (columns), after the photo itself. */
    const validate = async (v: ValidationOptions, validationFeatures: Tensor, step: number): Promise<void> => {
      const sheet: RgbImage[] = [];
      network.eval();
      try {
        for (const [i, photo] of v.photos.entries()) {
          sheet.push(await loadImage(photo, { width: session.resolution, height: session.resolution }));
          const factors = noGrad(() => tidy(() => {
            const { aTrain, bTrain } = network.split(network.forward(validationFeatures.narrow(0, i, 1).to(config.device)));
            return new Map([["a_train", aTrain.select(0, 0)], ["b_train", bTrain.select(0, 0)]]);
          }));
          session.adapters.setFactors(factors);
          for (const t of factors.values()) t.dispose();
          try {
            for (const prompt of v.prompts) {
              const result = session.pipeline.generate({
                prompt: promptWithIdentifier(prompt, config.identifier), steps: v.inferenceSteps ?? 25, guidanceScale: v.guidance ?? 5, seed: v.seed ?? 0,
                height: session.resolution, width: session.resolution,
              });
              sheet.push(result.rgb[0]!);
              result.images.dispose();
              result.latents.dispose();
            }
          } finally {
            session.adapters.unbind();
          }
        }
      } finally {
        network.train();
      }
      const file = path.join(options.outputDir, "validation", `step-${String(step).padStart(6, "0")}.png`);
      mkdirSync(path.dirname(file), { recursive: true });
      await savePng(file, imageGrid(sheet, v.prompts.length + 1));
      log(`hypernetwork: validation sheet ${file}`);
    };
    const { stopped } = await train({
      label: "hypernetwork", jobs: [job], checkpointEvery: settings.checkpointEvery, logFile: path.join(options.outputDir, "train-log.jsonl"),
      ...(group ? { distributed: group } : {}),
      step: (_, shard) => {
        const g = job.generator;
        // The whole global batch is drawn on every rank (the same draws), then this rank keeps its shard.
        const drawn = tidy(() => Array.from(randint(0, people.length, [settings.batchSize], { generator: g }).data() as BigInt64Array, Number));
        const all = drawn.map((row) => photos[row]!.draw(session.shared, false, g));
        const [from, to] = shardRange(settings.batchSize, shard);
        for (const s of [...all.slice(0, from), ...all.slice(to)]) for (const t of [s.latents, s.noise, s.timesteps]) t.dispose();
        const rows = drawn.slice(from, to);
        const samples = all.slice(from, to);
        const scale = shard.worldSize;  // the ranks average their gradients of a sum over the batch
        return [tidy(() => {
          const index = tensor(BigInt64Array.from(rows, BigInt), { dtype: "int64" });
          const theta = network.forward(features.indexSelect(0, index).to(config.device));
          const { aTrain, bTrain } = network.split(theta);
          let weightLoss = Number.NaN;  // no pre-optimised weights to compare with (people given directly)
          if (cores) {
            const target = cores.indexSelect(0, index).to(config.device);
            // Σ_i ‖C_i − C̃_i‖² / ‖C̃_i‖²: per photo, relative to its own target.
            const weightLosses = aTrain.matmul(bTrain).sub(target).square().sum([1, 2, 3]).div(target.square().sum([1, 2, 3]));
            weightLoss = noGrad(() => weightLosses.mean().item());
            if (settings.weightLoss > 0) backward([weightLosses.sum().mul(settings.weightLoss * scale)], undefined, { retainGraph: true });
          }
          const factors = rows.map((_, i) => new Map([["a_train", aTrain.select(0, i)], ["b_train", bTrain.select(0, i)]]));
          const teachers = teacher ? rows.map((row) => new Map([["a_train", teacher.aTrain.select(0, row).to(config.device)], ["b_train", teacher.bTrain.select(0, row).to(config.device)]]))
            : settings.target === "description" ? { prompts: rows.map((row) => people[row]!.description!) } : undefined;
          const diffusion = session.batchLosses(factors, samples, true, scale, teachers);
          let diffusionLoss = diffusion.reduce((a, b) => a + b, 0) / diffusion.length;
          if (group) {
            // The terms of the whole batch: the mean of the ranks' means over their equal shards.
            const both = tensor([diffusionLoss, weightLoss], { dtype: "float64" });
            group.allReduce([both], "mean");
            const [d, w] = both.toArray() as number[];
            [diffusionLoss, weightLoss] = [d!, w!];
          }
          terms.push({ diffusion: diffusionLoss, weight: weightLoss });
          // The shard's sum times the world size: its mean across the ranks is the global batch's sum.
          return rows.length * scale * (diffusionLoss + (cores ? settings.weightLoss * weightLoss : 0));
        })];
      },
      logTerms: () => terms.at(-1) ?? {},
      afterStep: async (finished) => {
        const v = options.validation;
        const due = v !== undefined && validationFeatures !== null && (finished.step % v.every === 0 || finished.done);
        if (due) await validate(v, validationFeatures, finished.step);
        if (due || finished.step % settings.checkpointEvery === 0 || finished.done) {
          writeLossPage(path.join(options.outputDir, "train-log.jsonl"), path.join(options.outputDir, "losses.html"), "HyperNetwork training");
        }
      },
      finish: () => {
        saveHyperNetwork(path.join(options.outputDir, "hypernetwork"), network, space, {
          training: { ...settings, weightSet: path.resolve(options.weightSet), finalLoss: job.recentLoss(50), trainingSeconds: job.seconds },
        });
        log(`hypernetwork: saved to ${path.join(options.outputDir, "hypernetwork")}`);
      },
      hooks: options.hooks ?? {},
    });
    return { dir: path.join(options.outputDir, "hypernetwork"), finished: !stopped, losses: job.losses, terms, seconds: job.seconds };
  } finally {
    for (const item of owned.reverse()) item.dispose();
    joined?.destroy();
  }
}
