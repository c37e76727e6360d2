/**
 * The hypernetwork's training set in the mini-world (HyperDreamBooth §4.2, "pre-optimised LiDB weights"):
 * for the first N identities of the hypernetwork split, one photo each (as in the paper) and the LiDB weights
 * that DreamBooth training reaches on it, with the same settings as the DreamBooth study
 * (src/evaluation/dreambooth-in-world.ts).
 *
 *     <out>/photos/<id>.png          the identity's photo (canonical render with nuisance seed 1)
 *     <out>/lidb/manifest.json       the DreamBooth run: settings, and per finished identity its photo,
 *     <out>/lidb/<id>.lidb.safetensors   LiDB file, final loss, seed
 *     <out>/weight-set.json          how it was made: settings, command, commit, sha256 of the base model
 *
 * Many identities train per batch on one forward/backward (src/dreambooth/trainer.ts); the run resumes after a
 * kill (finished identities are kept, in-flight ones continue from their checkpoints) and can be extended to
 * more identities by asking for a larger N with the same settings.
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { trainDreamBooth } from "../../dreambooth/trainer.js";
import { DREAMBOOTH_STUDY_LIDB } from "../../evaluation/dreambooth-in-world.js";
import { savePng } from "../../pipeline/images.js";
import { writeJsonAtomic } from "../../util/atomic.js";
import type { ProgressReporter } from "../../util/progress.js";
import { provenance, type Provenance } from "../../util/provenance.js";
import { renderFace } from "../render.js";
import { splitIds } from "../splits.js";

/**
 * The DreamBooth study's LiDB training, so that "per-identity LiDB DreamBooth" means the same thing in the
 * hypernetwork's report. (AdamW with ε = 1e-3 makes the fits less noisy but loses the identity: measured in
 * docs/hypernetwork-weight-set.md.)
 */
export const WEIGHT_SET_TRAINING = Object.freeze({ ...DREAMBOOTH_STUDY_LIDB, photoNuisanceSeed: 1 });

export interface WeightSetOptions {
  /** The base model's diffusers folder. */
  modelDir: string;
  outDir: string;
  /** Identities of the hypernetwork split, from its first id. */
  count: number;
  identitiesPerBatch: number;
  checkpointEvery: number;
  threads: number;
  command: readonly string[];
  progress?: ProgressReporter;
  log?: (line: string) => void;
  /** Tests: stop after this many batch steps, as a kill would. */
  stopAfterSteps?: number;
}

export interface WeightSetRecord {
  settings: typeof WEIGHT_SET_TRAINING & { count: number; split: "hypernetwork"; firstId: number };
  /** Identities with a LiDB file so far. */
  finished: number;
  provenance: Provenance;
}

export async function buildWeightSet(options: WeightSetOptions): Promise<{ record: WeightSetRecord; stopped: boolean }> {
  const log = options.log ?? (() => {});
  const t = WEIGHT_SET_TRAINING;
  const ids = splitIds("hypernetwork", options.count);
  const photos = path.join(options.outDir, "photos");
  mkdirSync(photos, { recursive: true });
  let rendered = 0;
  for (const id of ids) {
    const file = path.join(photos, `${id}.png`);
    if (existsSync(file)) continue;
    await savePng(file, await renderFace(id, { nuisanceSeed: t.photoNuisanceSeed }));
    rendered += 1;
  }
  if (rendered > 0) log(`weight set: rendered ${rendered} photos into ${photos}`);
  const run = await trainDreamBooth({
    adapter: "lidb", pretrainedModel: options.modelDir, outputDir: path.join(options.outDir, "lidb"),
    identities: ids.map((id) => ({ id: String(id), images: [path.join(photos, `${id}.png`)] })),
    maxTrainSteps: t.steps, learningRate: t.learningRate, lidbA: t.lidbA, lidbB: t.lidbB, rank: t.rank, seed: t.seed,
    identitiesPerBatch: options.identitiesPerBatch, checkpointingSteps: options.checkpointEvery, resumeFromCheckpoint: true, validationSteps: 0,
  }, {
    log, ...(options.progress ? { progress: options.progress } : {}), ...(options.stopAfterSteps === undefined ? {} : { stopAfterSteps: options.stopAfterSteps }),
  });
  const record: WeightSetRecord = {
    settings: { ...t, count: options.count, split: "hypernetwork", firstId: ids[0] ?? 0 },
    finished: run.manifest.identities.length,
    provenance: provenance({ command: options.command, threads: options.threads, measured: [options.modelDir] }),
  };
  writeJsonAtomic(path.join(options.outDir, "weight-set.json"), record);
  return { record, stopped: run.stopped };
}
