/**
 * bench/hypernetwork/weight-set-noise: is a pre-optimised LiDB file a function of its photo, or of the optimiser's
 * noise? The weight loss of HyperDreamBooth §4.2 can teach a hypernetwork only what the photo determines.
 *
 *   node dist/bench/hypernetwork/weight-set-noise.js [--identities 16] [--steps 300] [--threads N] [--out FILE]
 *
 * For each optimiser setting — the weight set's, which is the DreamBooth study's (src/evaluation/dreambooth-in-world.ts:
 * AdamW, ε = 1e-8), and AdamW with ε = 1e-3 at twice the learning rate (small gradients then move their coordinates
 * proportionally less instead of by about the learning rate) — the first identities of the hypernetwork split,
 * one photo each as in the weight set, are trained twice in the mini-world, with run seeds 0 and 1: the same frozen
 * bases and initial values, only the noise and timestep draws differ. Per setting it reports, with C = A_train·B_train
 * per layer (the weight loss's gauge-free space):
 *  - crossSeedError: ‖C₀ − C₁‖² / ‖C₁‖², mean over identities: how far the same photo's two fits are apart;
 *  - meanPredictorError: the seed-0 cores' mean over identities against each identity's seed-1 core: what a
 *    predictor that ignores the photo reaches. A weight set whose crossSeedError is not well below this one holds
 *    little a hypernetwork can learn from the photo;
 *  - finalLoss: the fits' final training losses (the manifest's), mean over identities and seeds.
 * Writes bench/results/weight-set-noise.json (with the commit, command and the base model's hash).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { getNumThreads, keep, setNumThreads, stack, tidy, type Tensor } from "../../src/engine/index.js";
import { disposeLidbFile, loadLidbFile } from "../../src/adapters/lidb/file.js";
import { trainDreamBooth } from "../../src/dreambooth/trainer.js";
import { DREAMBOOTH_STUDY_LIDB } from "../../src/evaluation/dreambooth-in-world.js";
import { WEIGHT_SET_TRAINING } from "../../src/miniworld/hypernetwork/weight-set.js";
import { renderFace } from "../../src/miniworld/render.js";
import { splitIds } from "../../src/miniworld/splits.js";
import { savePng } from "../../src/pipeline/images.js";
import { meanConfidenceInterval } from "../../src/evaluation/metrics.js";
import { fileHashes } from "../../src/util/provenance.js";
import { repoRoot, writeResult } from "../harness.js";

const { values: args } = parseArgs({
  options: { identities: { type: "string", default: "16" }, steps: { type: "string", default: String(WEIGHT_SET_TRAINING.steps) }, threads: { type: "string" }, out: { type: "string" } },
});
if (args.threads !== undefined) setNumThreads(Number(args.threads));
const count = Number(args.identities);
const steps = Number(args.steps);
if (!Number.isInteger(count) || count < 2) throw new Error(`--identities: an integer ≥ 2 (the mean predictor needs several), got ${args.identities}`);
if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps: a positive integer, got ${args.steps}`);

const model = path.join(repoRoot, "models", "miniworld", "base");
const settings = {
  "weight-set": { learningRate: WEIGHT_SET_TRAINING.learningRate, adamEpsilon: 1e-8 },
  "epsilon-1e-3": { learningRate: 2 * WEIGHT_SET_TRAINING.learningRate, adamEpsilon: 1e-3 },
} as const;

const work = mkdtempSync(path.join(tmpdir(), "hdb-weight-set-noise-"));
try {
  const ids = splitIds("hypernetwork", count);
  const photos = path.join(work, "photos");
  mkdirSync(photos);
  for (const id of ids) await savePng(path.join(photos, `${id}.png`), await renderFace(id, { nuisanceSeed: WEIGHT_SET_TRAINING.photoNuisanceSeed }));

  /** Per identity, the stacked per-layer cores A_train·B_train of one LiDB file. */
  const cores = (dir: string): Tensor[] => ids.map((id) => {
    const file = loadLidbFile(path.join(dir, `${id}.lidb.safetensors`));
    try {
      return tidy(() => keep(file.factors.aTrain.matmul(file.factors.bTrain)));
    } finally {
      disposeLidbFile(file);
    }
  });
  const relative = (a: Tensor, b: Tensor): number => tidy(() => a.sub(b).square().sum().item() / b.square().sum().item());

  const results: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(settings)) {
    const dirs: string[] = [];
    const losses: number[] = [];
    for (const seed of [0, 1]) {
      const dir = path.join(work, `${name}-seed${seed}`);
      const started = performance.now();
      const run = await trainDreamBooth({
        adapter: "lidb", pretrainedModel: model, outputDir: dir,
        identities: ids.map((id) => ({ id: String(id), images: [path.join(photos, `${id}.png`)] })),
        maxTrainSteps: steps, learningRate: s.learningRate, adamEpsilon: s.adamEpsilon,
        lidbA: DREAMBOOTH_STUDY_LIDB.lidbA, lidbB: DREAMBOOTH_STUDY_LIDB.lidbB, rank: DREAMBOOTH_STUDY_LIDB.rank, seed,
        identitiesPerBatch: count, checkpointingSteps: steps, validationSteps: 0,
      });
      for (const entry of run.manifest.identities) losses.push(entry.finalLoss);
      process.stderr.write(`${name} seed ${seed}: ${count} identities × ${steps} steps in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
      dirs.push(dir);
    }
    const [first, second] = [cores(dirs[0]!), cores(dirs[1]!)];
    try {
      const mean = tidy(() => keep(stack(first, 0).mean(0)));
      const crossSeed = ids.map((_, k) => relative(first[k]!, second[k]!));
      const meanPredictor = ids.map((_, k) => relative(mean, second[k]!));
      mean.dispose();
      results[name] = {
        ...s, crossSeedError: meanConfidenceInterval(crossSeed), meanPredictorError: meanConfidenceInterval(meanPredictor),
        finalLoss: meanConfidenceInterval(losses),
      };
      process.stderr.write(`${name}: cross-seed error ${JSON.stringify(results[name])}\n`);
    } finally {
      for (const t of [...first, ...second]) t.dispose();
    }
  }
  const out = writeResult("weight-set-noise", {
    about: "relative core error (C = A_train·B_train per layer) between two fits of the same photo (run seeds 0, 1) vs the seed-0 mean's error: mean ± 95% CI over identities",
    identities: ids, steps, lidb: { a: DREAMBOOTH_STUDY_LIDB.lidbA, b: DREAMBOOTH_STUDY_LIDB.lidbB, rank: DREAMBOOTH_STUDY_LIDB.rank },
    model: fileHashes([model]), threads: getNumThreads(), results,
  }, args.out);
  process.stdout.write(`${JSON.stringify(results, null, 2)}\nwrote ${out}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
