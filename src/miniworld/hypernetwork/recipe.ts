/**
 * `hdb miniworld hypernetwork`: the bundled HyperNetwork's recipe (HyperDreamBooth §4.2 in the mini-world).
 *
 *   1. train the HyperNetwork at equal compute on the weight set (weight-set.ts) with the frozen mini-world
 *      encoder, once per variant (HYPERNETWORK_VARIANTS; `variants` picks some): the paper's weight loss
 *      (β = RECIPE.weightLoss) plus the diffusion loss; the diffusion loss alone (β = 0); and the diffusion term
 *      distilled from the pre-optimised weights' predictions (target "teacher", β = 0: hypernetwork/train.ts); and
 *      the diffusion term distilled from the base model prompted with each person's full description (target
 *      "description", β = 0), on every person of the hypernetwork split (10,000: no pre-optimised weights are
 *      needed), the network reading the weight set's photo of each and the loss denoising a second photo;
 *   2. measure them, and the first at 1 round instead of s, against per-identity DreamBooth and the base
 *      model on held-out identities (src/evaluation/hypernetwork-in-world.ts);
 *   3. bundle the best (by overall identity similarity) as models/miniworld/hypernetwork, with
 *      recipe.json: the recipe, which variant won and why, the command, commit, threads and the sha256 of the
 *      weight set's files, the encoder and the result.
 *
 * Every step resumes after a kill (the training loop's checkpoints; DreamBooth's manifest; predictions are
 * cheap and redone).
 */
import { cpSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import path from "node:path";
import { getNumThreads } from "../../engine/index.js";
import type { PromptFidelityNetwork } from "../../evaluation/fidelity-network.js";
import { DREAMBOOTH_STUDY_LIDB } from "../../evaluation/dreambooth-in-world.js";
import { evaluateHyperNetworkInWorld, type HyperNetworkReport } from "../../evaluation/hypernetwork-in-world.js";
import type { IdentityNetwork } from "../../evaluation/identity-network.js";
import { VisionFeatureEncoder } from "../../hypernetwork/encoder.js";
import { trainHyperNetwork, type TrainingPhotos } from "../../hypernetwork/train.js";
import { savePng } from "../../pipeline/images.js";
import { fullDescription } from "../captions.js";
import { renderFaces } from "../render.js";
import { WEIGHT_SET_TRAINING } from "./weight-set.js";
import { writeDirectoryAtomic, writeJsonAtomic } from "../../util/atomic.js";
import type { ProgressReporter } from "../../util/progress.js";
import { readJsonObject } from "../../util/json.js";
import { provenance } from "../../util/provenance.js";
import { splitIds } from "../splits.js";
import type { StyleName } from "../styles.js";

/**
 * The recipe's settings. The step count fits a CPU session: one training step (16 photos) takes 1.6 s at one thread
 * (measured: 0.61 steps/s on 2026-12-05), so 1,200 steps are ≈ 33 min per network and the two variants with their
 * study about 1.5 h at one thread.
 */
export const HYPERNETWORK_RECIPE = Object.freeze({
  steps: 1200, batchSize: 16, learningRate: 1e-3, weightDecay: 1e-2, warmupSteps: 100, weightLoss: 1, seed: 0, checkpointEvery: 200,
  network: { hidden_size: 256, num_layers: 2, num_heads: 4, head_dim: 64, rounds: 4, encoder_layer: -2 },
  evaluation: { identities: 30, seeds: 2, inferenceSteps: 25, guidance: 5, referenceNuisanceSeed: 1 },
  /**
   * The described variant's people: the whole hypernetwork split (no pre-optimised weights needed), each seen as
   * the photo of the weight set's nuisance seed (what the network reads) and denoised in another photo.
   */
  described: { people: 10_000, targetNuisanceSeed: 2 },
});

/** The recipe's training variants, by the name the report gives them. */
export const HYPERNETWORK_VARIANTS: Readonly<Record<string, { weightLoss: number; target: "noise" | "teacher" | "description"; about: string }>> = Object.freeze({
  "hyper": { weightLoss: HYPERNETWORK_RECIPE.weightLoss, target: "noise", about: "the paper's loss: diffusion + β · weight loss" },
  "hyper-diffusion-only": { weightLoss: 0, target: "noise", about: "the diffusion loss alone (β = 0)" },
  "hyper-teacher": { weightLoss: 0, target: "teacher", about: "the diffusion term's target is the pre-optimised weights' prediction (β = 0)" },
  "hyper-described": {
    weightLoss: 0, target: "description",
    about: "the diffusion term's target is the base model prompted with the person's full description (β = 0), on every person of the hypernetwork split",
  },
});

export interface HyperNetworkRecipeOptions {
  modelDir: string;
  /** The weight set's DreamBooth folder (<lidb-set out>/lidb). */
  weightSet: string;
  /** The frozen image encoder's folder (models/miniworld/encoder). */
  encoder: string;
  /** Checkpoints, both networks, predictions and the DreamBooth comparison. */
  workDir: string;
  /** Where the chosen network is bundled (models/miniworld/hypernetwork). */
  outDir: string;
  /** Where report.md, report.json and the contact sheet go. */
  reportDir: string;
  identityNetwork: IdentityNetwork;
  fidelityNetwork: PromptFidelityNetwork;
  prompts: readonly (readonly StyleName[])[];
  command: readonly string[];
  /** Which of HYPERNETWORK_VARIANTS to train and compare (default all, in their order). */
  variants?: readonly string[];
  /** Overrides for tests and shorter runs (steps, batch size, evaluation sizes). */
  overrides?: { steps?: number; batchSize?: number; identities?: number; describedPeople?: number; seeds?: number; inferenceSteps?: number; dreamboothSteps?: number; network?: Record<string, number> };
  progress?: ProgressReporter;
  log?: (line: string) => void;
}

/**
 * `dir` when it holds a HyperNetwork trained to the end with these settings and decoder sizes (its config.json's
 * `training`, written at the end of training; a config without `target` was trained on the noise target), else null.
 */
function finishedNetwork(dir: string, settings: Record<string, unknown>, network: Record<string, unknown>): string | null {
  const file = path.join(dir, "config.json");
  if (!existsSync(file) || !existsSync(path.join(dir, "model.safetensors"))) return null;
  const config = readJsonObject(file, "HyperNetwork config");
  const training = { target: "noise", ...(config["training"] as Record<string, unknown> | undefined ?? {}) };
  const same = (a: Record<string, unknown>, b: Record<string, unknown>): boolean => Object.keys(a).every((k) => a[k] === b[k]);
  return same(settings, training) && same(network, config) ? dir : null;
}

/**
 * The described variant's people: the first `count` of the hypernetwork split, rendered into `<workDir>/people` (the
 * weight set's photo and a second photo of each; files already there are kept, so a rerun renders only what is
 * missing), with their full descriptions (captions.ts).
 */
async function describedPeople(workDir: string, count: number, log: (line: string) => void): Promise<TrainingPhotos> {
  const ids = splitIds("hypernetwork", count);
  const dir = path.join(workDir, "people");
  mkdirSync(dir, { recursive: true });
  const seeds = [WEIGHT_SET_TRAINING.photoNuisanceSeed, HYPERNETWORK_RECIPE.described.targetNuisanceSeed] as const;
  const file = (id: number, seed: number): string => path.join(dir, `${id}-n${seed}.png`);
  const missing = ids.flatMap((id) => seeds.map((nuisanceSeed) => ({ id, nuisanceSeed }))).filter((r) => !existsSync(file(r.id, r.nuisanceSeed)));
  if (missing.length > 0) log(`hypernetwork recipe: rendering ${missing.length} photos of ${count} people into ${dir}`);
  for (let start = 0; start < missing.length; start += 512) {
    const chunk = missing.slice(start, start + 512);
    const images = await renderFaces(chunk);
    await Promise.all(chunk.map((r, k) => savePng(file(r.id, r.nuisanceSeed), images[k]!)));
  }
  return { inputs: ids.map((id) => file(id, seeds[0])), targets: ids.map((id) => file(id, seeds[1])), descriptions: ids.map((id) => fullDescription(id)) };
}

export async function buildHyperNetwork(options: HyperNetworkRecipeOptions): Promise<{ report: HyperNetworkReport; chosen: string }> {
  const r = HYPERNETWORK_RECIPE;
  const o = options.overrides ?? {};
  const log = options.log ?? (() => {});
  const hooks = { ...(options.progress ? { progress: options.progress } : {}), log };
  const encoder = await VisionFeatureEncoder.fromPretrained(options.encoder, { layer: r.network.encoder_layer });
  const names = options.variants ?? Object.keys(HYPERNETWORK_VARIANTS);
  for (const name of names) {
    if (!(name in HYPERNETWORK_VARIANTS)) throw new Error(`hypernetwork recipe: no variant '${name}' (${Object.keys(HYPERNETWORK_VARIANTS).join(", ")})`);
  }
  if (names.length === 0) throw new Error("hypernetwork recipe: no variants to train");
  const variants = names.map((name) => ({ name, ...HYPERNETWORK_VARIANTS[name]!, dir: "" }));
  try {
    for (const variant of variants) {
      const settings = {
        steps: o.steps ?? r.steps, batchSize: o.batchSize ?? r.batchSize, learningRate: r.learningRate, weightDecay: r.weightDecay,
        warmupSteps: Math.min(r.warmupSteps, o.steps ?? r.steps), weightLoss: variant.weightLoss, target: variant.target, checkpointEvery: r.checkpointEvery, seed: r.seed,
        ...(variant.target === "description" ? { identities: o.describedPeople ?? r.described.people } : {}),
      };
      const outputDir = path.join(options.workDir, variant.name);
      // A variant trained to the end by an earlier run (its checkpoints are gone once it is saved) is not retrained.
      const done = finishedNetwork(path.join(outputDir, "hypernetwork"), settings, { ...r.network, ...o.network });
      if (done) {
        log(`hypernetwork recipe: ${variant.name} is already trained with these settings (${done})`);
        variant.dir = done;
        continue;
      }
      log(`hypernetwork recipe: training ${variant.name} (β = ${variant.weightLoss}, target ${variant.target})`);
      const photos = variant.target === "description" ? await describedPeople(options.workDir, settings.identities!, log) : undefined;
      const result = await trainHyperNetwork({
        weightSet: options.weightSet, model: options.modelDir, outputDir, encoder, network: { ...r.network, ...o.network }, settings, hooks, ...(photos ? { photos } : {}),
      });
      variant.dir = result.dir;
    }
  } finally {
    encoder.dispose();
  }
  const rounds = o.network?.["rounds"] ?? r.network.rounds;
  const e = r.evaluation;
  const t = DREAMBOOTH_STUDY_LIDB;
  const report = await evaluateHyperNetworkInWorld({
    modelDir: options.modelDir, identityNetwork: options.identityNetwork, fidelityNetwork: options.fidelityNetwork, outDir: options.reportDir,
    identities: splitIds("held-out", o.identities ?? e.identities), prompts: options.prompts,
    seeds: Array.from({ length: o.seeds ?? e.seeds }, (_, i) => i), generation: { steps: o.inferenceSteps ?? e.inferenceSteps, guidance: e.guidance },
    referenceNuisanceSeed: e.referenceNuisanceSeed,
    dreambooth: { steps: o.dreamboothSteps ?? t.steps, learningRate: t.learningRate, lidbA: t.lidbA, lidbB: t.lidbB, rank: t.rank, seed: t.seed, identitiesPerBatch: 16 },
    variants: [
      ...variants.map((v) => ({ name: v.name, dir: v.dir })),
      ...(rounds > 1 ? [{ name: `${variants[0]!.name}-1-round`, dir: variants[0]!.dir, rounds: 1 }] : []),
    ],
    ...hooks,
    provenance: provenance({ command: options.command, threads: getNumThreads(), measured: [options.modelDir, options.encoder, ...variants.map((v) => v.dir)] }),
  });
  // The default follows the measurement: the variant with the higher overall identity similarity.
  const identity = (name: string): number => report.study.overall.identity[name]!.mean;
  const chosen = variants.reduce((best, v) => (identity(v.name) > identity(best.name) ? v : best));
  writeDirectoryAtomic(options.outDir, (temporary) => {
    for (const name of readdirSync(chosen.dir)) cpSync(path.join(chosen.dir, name), path.join(temporary, name), { recursive: true });
    // The config names a local encoder relative to its own folder: relative to the bundle's, once moved there.
    const config = readJsonObject(path.join(temporary, "config.json"), "HyperNetwork config");
    if (typeof config["encoder"] === "string" && /^\.\.?[\\/]/.test(config["encoder"])) {
      const encoder = path.resolve(chosen.dir, config["encoder"]);
      config["encoder"] = path.relative(options.outDir, encoder).split(path.sep).join("/");
      writeJsonAtomic(path.join(temporary, "config.json"), config);
    }
  });
  writeJsonAtomic(path.join(options.outDir, "recipe.json"), {
    recipe: r, variants: Object.fromEntries(variants.map((v) => [v.name, { weightLoss: v.weightLoss, target: v.target }])), overrides: o, chosen: chosen.name,
    why: `overall identity similarity ${variants.map((v) => `${v.name} ${identity(v.name).toFixed(3)}`).join(", ")} (${path.join(options.reportDir, "report.md")})`,
    weightLoss: chosen.weightLoss, target: chosen.target,
    provenance: provenance({
      command: options.command, threads: getNumThreads(),
      measured: [options.modelDir, options.encoder, options.outDir, ...(existsSync(options.weightSet) ? [options.weightSet] : [])],
    }),
  });
  log(`hypernetwork recipe: bundled ${chosen.name} → ${options.outDir}`);
  return { report, chosen: chosen.name };
}
