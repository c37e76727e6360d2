/**
 * bench/hypernetwork/weight-set: what a hypernetwork can learn from the mini-world's weight set. The weight loss of
 * HyperDreamBooth §4.2 can teach only the part of a pre-optimised LiDB file that its photo determines.
 *
 *   node dist/bench/hypernetwork/weight-set.js [--jobs noise,ridge] [--identities 16] [--steps 300] [--threads N] [--out FILE]
 *
 * All errors are relative errors of the gauge-free cores C = A_train·B_train per layer (the weight loss's space):
 * ‖Ĉ − C‖² / ‖C‖² over all layers, mean ± 95 % CI over identities.
 *
 * noise — is a fit a function of its photo? For each optimiser setting (the weight set's, which is the DreamBooth
 *   study's AdamW with ε = 1e-8; and AdamW with ε = 1e-3 at twice the learning rate, where small gradients move
 *   their coordinates proportionally less instead of by about the learning rate), the first --identities identities
 *   of the hypernetwork split, one photo each as in the weight set, are trained twice with run seeds 0 and 1 (the
 *   same frozen bases and initial values; only the noise and timestep draws differ):
 *     crossSeedError      the same photo's two fits, one against the other;
 *     meanPredictorError  the seed-0 fits' mean against each seed-1 fit: a predictor that ignores the photo;
 *     finalLoss           the fits' final training losses.
 * ridge — how much of the bundled weight set (data/miniworld-lidb-set) a linear map from the bundled encoder's
 *   features predicts: ridge regression from the photo's features (layer −2 of models/miniworld/encoder, the
 *   HyperNetwork's; the class token and the mean of the patch tokens, standardised) to the cores, fitted on the first
 *   900 identities with λ chosen on the last 100, then refitted on all and measured on the 30 held-out identities
 *   of the HyperNetwork report (reports/miniworld/hypernetwork/dreambooth, DreamBooth with the same settings), against
 *   the weight set's mean.
 * Writes bench/results/weight-set.json (with the commit, the command and the hashes of the files read).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { cat, eye, getNumThreads, keep, linalgSolve, noGrad, setNumThreads, stack, tidy, type Tensor } from "../../src/engine/index.js";
import { disposeLidbFile, loadLidbFile } from "../../src/adapters/lidb/file.js";
import { trainDreamBooth } from "../../src/dreambooth/trainer.js";
import { DREAMBOOTH_STUDY_LIDB } from "../../src/evaluation/dreambooth-in-world.js";
import { meanConfidenceInterval } from "../../src/evaluation/metrics.js";
import { VisionFeatureEncoder } from "../../src/hypernetwork/encoder.js";
import { WEIGHT_SET_TRAINING } from "../../src/miniworld/hypernetwork/weight-set.js";
import { renderFace } from "../../src/miniworld/render.js";
import { splitIds } from "../../src/miniworld/splits.js";
import { savePng } from "../../src/pipeline/images.js";
import { fileHashes } from "../../src/util/provenance.js";
import { repoRoot, writeResult } from "../harness.js";

const { values: args } = parseArgs({
  options: {
    jobs: { type: "string", default: "noise,ridge" }, identities: { type: "string", default: "16" }, steps: { type: "string", default: String(WEIGHT_SET_TRAINING.steps) },
    threads: { type: "string" }, out: { type: "string" },
  },
});
if (args.threads !== undefined) setNumThreads(Number(args.threads));
const jobs = new Set(args.jobs!.split(","));
for (const job of jobs) if (job !== "noise" && job !== "ridge") throw new Error(`--jobs: noise and/or ridge, got '${job}'`);
const count = Number(args.identities);
const steps = Number(args.steps);
if (!Number.isInteger(count) || count < 2) throw new Error(`--identities: an integer ≥ 2 (the mean predictor needs several), got ${args.identities}`);
if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps: a positive integer, got ${args.steps}`);

const model = path.join(repoRoot, "models", "miniworld", "base");
const encoderDir = path.join(repoRoot, "models", "miniworld", "encoder");
const weightSet = path.join(repoRoot, "data", "miniworld-lidb-set", "lidb");
const heldOutTargets = path.join(repoRoot, "reports", "miniworld", "hypernetwork", "dreambooth");
const OPTIMISERS = {
  "weight-set": { learningRate: WEIGHT_SET_TRAINING.learningRate, adamEpsilon: 1e-8 },
  "epsilon-1e-3": { learningRate: 2 * WEIGHT_SET_TRAINING.learningRate, adamEpsilon: 1e-3 },
} as const;

/** (N, L, a, b) cores of LiDB files. */
function cores(files: readonly string[]): Tensor {
  return tidy(() => stack(files.map((file) => {
    const loaded = loadLidbFile(file);
    try {
      return loaded.factors.aTrain.matmul(loaded.factors.bTrain);
    } finally {
      disposeLidbFile(loaded);
    }
  }), 0));
}

/** Per row, ‖p − t‖² / ‖t‖² over all of its other dims. */
function relativeErrors(predicted: Tensor, target: Tensor): number[] {
  return tidy(() => {
    const dims = Array.from({ length: target.ndim - 1 }, (_, i) => i + 1);
    return Array.from(predicted.sub(target).square().sum(dims).div(target.square().sum(dims)).data() as Float32Array);
  });
}

/** Photos of `ids` (nuisance seed `seed`), rendered into `dir`. */
async function renderPhotos(ids: readonly number[], dir: string, seed: number): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const id of ids) {
    const file = path.join(dir, `${id}.png`);
    await savePng(file, await renderFace(id, { nuisanceSeed: seed }));
    files.push(file);
  }
  return files;
}

async function noise(work: string): Promise<Record<string, unknown>> {
  const ids = splitIds("hypernetwork", count);
  const photos = await renderPhotos(ids, path.join(work, "photos"), WEIGHT_SET_TRAINING.photoNuisanceSeed);
  const results: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(OPTIMISERS)) {
    const fits: Tensor[] = [];
    const losses: number[] = [];
    for (const seed of [0, 1]) {
      const dir = path.join(work, `${name}-seed${seed}`);
      const started = performance.now();
      const run = await trainDreamBooth({
        adapter: "lidb", pretrainedModel: model, outputDir: dir, identities: ids.map((id, k) => ({ id: String(id), images: [photos[k]!] })),
        maxTrainSteps: steps, learningRate: s.learningRate, adamEpsilon: s.adamEpsilon,
        lidbA: DREAMBOOTH_STUDY_LIDB.lidbA, lidbB: DREAMBOOTH_STUDY_LIDB.lidbB, rank: DREAMBOOTH_STUDY_LIDB.rank, seed,
        identitiesPerBatch: count, checkpointingSteps: steps, validationSteps: 0,
      });
      for (const entry of run.manifest.identities) losses.push(entry.finalLoss);
      process.stderr.write(`noise: ${name}, seed ${seed}: ${count} identities × ${steps} steps in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
      fits.push(cores(ids.map((id) => path.join(dir, `${id}.lidb.safetensors`))));
    }
    const [first, second] = fits as [Tensor, Tensor];
    const mean = tidy(() => first.mean(0, true).expand(...second.shape));
    results[name] = {
      ...s, crossSeedError: meanConfidenceInterval(relativeErrors(first, second)), meanPredictorError: meanConfidenceInterval(relativeErrors(mean, second)),
      finalLoss: meanConfidenceInterval(losses),
    };
    for (const t of [first, second, mean]) t.dispose();
    process.stderr.write(`noise: ${name}: ${JSON.stringify(results[name])}\n`);
  }
  return { identities: ids, steps, lidb: { a: DREAMBOOTH_STUDY_LIDB.lidbA, b: DREAMBOOTH_STUDY_LIDB.lidbB, rank: DREAMBOOTH_STUDY_LIDB.rank }, results };
}

async function ridge(work: string): Promise<Record<string, unknown>> {
  for (const dir of [weightSet, heldOutTargets]) if (!existsSync(dir)) throw new Error(`ridge: ${dir} is missing (the bundled weight set and the HyperNetwork report's DreamBooth files)`);
  const trainIds = readdirSync(weightSet).filter((f) => f.endsWith(".lidb.safetensors")).map((f) => Number.parseInt(f, 10)).sort((a, b) => a - b);
  const heldIds = readdirSync(heldOutTargets).filter((f) => f.endsWith(".lidb.safetensors")).map((f) => Number.parseInt(f, 10)).sort((a, b) => a - b);
  if (trainIds.length < 200) throw new Error(`ridge: ${weightSet} has ${trainIds.length} identities; 200 or more are needed (900/100 split of the first 1,000)`);
  const trainPhotos = await renderPhotos(trainIds, path.join(work, "train"), WEIGHT_SET_TRAINING.photoNuisanceSeed);
  const heldPhotos = await renderPhotos(heldIds, path.join(work, "held-out"), 1);
  const encoder = await VisionFeatureEncoder.fromPretrained(encoderDir, { layer: -2 });
  const pooled = async (files: string[]): Promise<Tensor> => {
    const hidden = await encoder.encode(files);
    try {
      return tidy(() => cat([hidden.select(1, 0), hidden.narrow(1, 1, hidden.shape[1]! - 1).mean(1)], 1));
    } finally {
      hidden.dispose();
    }
  };
  let xTrain: Tensor, xHeld: Tensor;
  try {
    [xTrain, xHeld] = [await pooled(trainPhotos), await pooled(heldPhotos)];
  } finally {
    encoder.dispose();
  }
  const yTrain = tidy(() => cores(trainIds.map((id) => path.join(weightSet, `${id}.lidb.safetensors`))).flatten(1));
  const yHeld = tidy(() => cores(heldIds.map((id) => path.join(heldOutTargets, `${id}.lidb.safetensors`))).flatten(1));
  /** Ridge from standardised features (fitted on the rows given) with intercept = the targets' mean. */
  const fit = (x: Tensor, y: Tensor, lambda: number): ((z: Tensor) => Tensor) => {
    const [mx, sx, my] = tidy(() => [keep(x.mean(0, true)), keep(x.std(0, { keepdim: true }).add(1e-6)), keep(y.mean(0, true))]);
    const xs = tidy(() => x.sub(mx).div(sx));
    const w = tidy(() => linalgSolve(xs.mT().matmul(xs).add(eye(xs.shape[1]!).mul(lambda)), xs.mT().matmul(y.sub(my))));
    xs.dispose();
    return (z) => tidy(() => z.sub(mx).div(sx).matmul(w).add(my));
  };
  const split = trainIds.length - 100;
  const lambdas = [1e1, 1e2, 1e3, 1e4];
  const validation: Record<string, number> = {};
  const result = noGrad(() => {
    const [xa, ya, xb, yb] = [xTrain.narrow(0, 0, split), yTrain.narrow(0, 0, split), xTrain.narrow(0, split, 100), yTrain.narrow(0, split, 100)];
    for (const lambda of lambdas) validation[String(lambda)] = meanConfidenceInterval(relativeErrors(fit(xa, ya, lambda)(xb), yb)).mean;
    const meanOnValidation = meanConfidenceInterval(tidy(() => relativeErrors(ya.mean(0, true).expand(...yb.shape), yb)));
    const best = lambdas.reduce((a, b) => (validation[String(b)]! < validation[String(a)]! ? b : a));
    const heldRidge = meanConfidenceInterval(relativeErrors(fit(xTrain, yTrain, best)(xHeld), yHeld));
    const heldMean = meanConfidenceInterval(tidy(() => relativeErrors(yTrain.mean(0, true).expand(...yHeld.shape), yHeld)));
    return { validation: { byLambda: validation, mean: meanOnValidation.mean }, lambda: best, heldOut: { ridge: heldRidge, mean: heldMean } };
  });
  for (const t of [xTrain, xHeld, yTrain, yHeld]) t.dispose();
  process.stderr.write(`ridge: ${JSON.stringify(result)}\n`);
  return { trainIdentities: trainIds.length, heldOutIdentities: heldIds, features: "encoder layer −2: class token ‖ mean of patch tokens", ...result };
}

const work = mkdtempSync(path.join(tmpdir(), "hdb-weight-set-"));
try {
  const result: Record<string, unknown> = {
    about: "relative error of cores C = A_train·B_train per layer, mean ± 95% CI over identities (see the script's header)",
  };
  if (jobs.has("noise")) result["noise"] = await noise(path.join(work, "noise"));
  if (jobs.has("ridge")) result["ridge"] = await ridge(path.join(work, "ridge"));
  result["files"] = fileHashes([model, encoderDir, ...(jobs.has("ridge") ? [weightSet, heldOutTargets] : [])].map((p) => path.relative(repoRoot, p)), repoRoot);
  const out = writeResult("weight-set", { ...result, threads: getNumThreads() }, args.out);
  process.stdout.write(`wrote ${out}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
