/**
 * bench/lidb: DreamBooth training speed on the tiny SD1 pipeline, our trainer vs diffusers' DreamBooth-LoRA
 * script step (bench/lidb/torch_worker.py), same batch, resolution, threads and CPU, interleaved, medians.
 *
 *   node dist/bench/lidb/run.js [--rounds R] [--block K] [--steps-per-identity 400] [--out FILE]
 *
 * Measured:
 *  - steps/s of one identity's LiDB training step (paper §4.1: a=100, b=50, r=1, UNet + text encoder) and of our
 *    LoRA step (rank 4), vs diffusers' LoRA step as the script runs it (VAE-encoding the batch every step) and
 *    from a cached posterior (what our trainer does without augmentation: the like-for-like comparison);
 *  - per-identity time with 1 and 16 identities per batch (each with its own factors and optimiser), and the
 *    identities per hour that gives at `--steps-per-identity` steps each.
 * Writes bench/results/lidb-cpu.json.
 */
import { mkdtempSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { getNumThreads } from "../../src/engine/index.js";
import { resolveConfig, type IdentitySpec, type TrainingConfigInput } from "../../src/dreambooth/config.js";
import type { IdentityRun } from "../../src/dreambooth/identity.js";
import { DreamBoothTrainer } from "../../src/dreambooth/trainer.js";
import { savePng } from "../../src/pipeline/images.js";
import { interleave, median, PythonWorker, repoRoot, seconds, writeResult } from "../harness.js";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "8" }, block: { type: "string", default: "5" },
    "steps-per-identity": { type: "string", default: "400" }, out: { type: "string" },
  },
});
const rounds = Number(args.rounds);
const block = Number(args.block);
const stepsPerIdentity = Number(args["steps-per-identity"]);
if (rounds * block < 20) throw new Error(`rounds × block must give at least 20 timed steps, got ${rounds * block}`);
const threads = getNumThreads();
const pipeline = path.join(repoRoot, "test", "fixtures", "generated", "tiny_sd", "sd1");
const resolution = 32;
const batch = 1;
const loraRank = 4;
const manyIdentities = 16;

/** Synthetic 32×32 photos, one per identity (speed does not depend on the picture). */
async function writePhotos(count: number): Promise<IdentitySpec[]> {
  const dir = mkdtempSync(path.join(tmpdir(), "hdb-bench-lidb-"));
  const identities: IdentitySpec[] = [];
  for (let k = 0; k < count; k++) {
    const data = new Uint8Array(resolution * resolution * 3).map((_, i) => (i * (k + 7) * 31 + k * 17) % 256);
    const file = path.join(dir, `id${k}.png`);
    await savePng(file, { width: resolution, height: resolution, data });
    identities.push({ id: `id${k}`, images: [file] });
  }
  return identities;
}

const identities = await writePhotos(manyIdentities);
const base = (overrides: Partial<TrainingConfigInput>): TrainingConfigInput => ({
  pretrainedModel: pipeline, outputDir: mkdtempSync(path.join(tmpdir(), "hdb-bench-lidb-out-")), identities, resolution,
  trainBatchSize: batch, checkpointingSteps: 0, ...overrides,
});

async function openTrainer(overrides: Partial<TrainingConfigInput>, count: number): Promise<{ trainer: DreamBoothTrainer; runs: IdentityRun[] }> {
  const trainer = await DreamBoothTrainer.open(resolveConfig(base(overrides)));
  const runs: IdentityRun[] = [];
  for (const identity of identities.slice(0, count)) runs.push(await trainer.startIdentity(identity));
  return { trainer, runs };
}

const lidb = await openTrainer({ adapter: "lidb", identitiesPerBatch: manyIdentities }, manyIdentities);
const lora = await openTrainer({ adapter: "lora", rank: loraRank }, 1);
const worker = new PythonWorker(path.join(repoRoot, "bench", "lidb", "torch_worker.py"), { pipeline, threads, rank: loraRank, batch, resolution });
const info = await worker.ask<{ torch: string; lora_parameters: number }>(null);

const timed = (job: () => void, n: number): number[] => Array.from({ length: n }, () => seconds(job));
const lidbOne = (): void => void lidb.trainer.trainStep([lidb.runs[0]!]);
const lidbMany = (): void => void lidb.trainer.trainStep(lidb.runs);
const loraOne = (): void => void lora.trainer.trainStep([lora.runs[0]!]);
const python = (cmd: string, n: number) => async (): Promise<number[]> => (await worker.ask<{ times: number[] }>({ cmd, n })).times;

// Warm-up: libtorch builds its kernels for each new shape on first use, and the allocator settles.
for (const job of [lidbOne, loraOne, lidbMany]) timed(job, 10);
await python("train", 10)();
await python("train_cached", 10)();

const results: Record<string, { ts: number; torch: number; ratio: number; runs: number }> = {};
const allTimes: Record<string, { ts: number[]; torch: number[] }> = {};
for (const [name, job, cmd] of [
  ["lidb_vs_diffusers_lora_cached", lidbOne, "train_cached"], ["lidb_vs_diffusers_lora_script", lidbOne, "train"],
  ["lora_vs_diffusers_lora_cached", loraOne, "train_cached"],
] as const) {
  const times = await interleave(rounds, () => timed(job, block), python(cmd, block));
  results[name] = { ts: median(times.ts), torch: median(times.torch), ratio: median(times.ts) / median(times.torch), runs: times.ts.length };
  allTimes[name] = times;
}

// Per-identity time: one identity per step vs 16 (alternating blocks, as above).
const many = await interleave(Math.max(4, Math.ceil(rounds / 2)), () => timed(lidbOne, block), async () => timed(lidbMany, Math.max(2, Math.ceil(block / 2))));
worker.close();
for (const { trainer } of [lidb, lora]) trainer.dispose();

const perIdentityStep = { batch1: median(many.ts), batch16: median(many.torch) / manyIdentities };
const identitiesPerHour = (stepSeconds: number): number => 3600 / (stepSeconds * stepsPerIdentity);
const result = {
  benchmark: "lidb: DreamBooth training steps on the tiny SD1 pipeline, ours (LiDB, LoRA) vs diffusers' DreamBooth-LoRA step; identities/hour at 1 vs 16 identities per batch",
  date: new Date().toISOString(), cpu: cpus()[0]?.model ?? "unknown", threads, torch: info.torch, node: process.version,
  setup: {
    pipeline: "test/fixtures/generated/tiny_sd/sd1", resolution, trainBatchSize: batch, textEncoderTrained: true,
    lidb: { a: 100, b: 50, rank: 1 }, loraRank, diffusersLoraParameters: info.lora_parameters,
  },
  medianSecondsPerStep: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { ts: v.ts, torch: v.torch, runs: v.runs }])),
  stepsPerSecond: {
    lidb: 1 / results["lidb_vs_diffusers_lora_cached"]!.ts, lora: 1 / results["lora_vs_diffusers_lora_cached"]!.ts,
    diffusersLoraCached: 1 / results["lidb_vs_diffusers_lora_cached"]!.torch, diffusersLoraScript: 1 / results["lidb_vs_diffusers_lora_script"]!.torch,
  },
  ratios: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.ratio])),
  target: "ours / diffusers step time <= 1.1",
  multiIdentity: {
    identitiesPerBatch: [1, manyIdentities], stepsPerIdentity,
    medianSecondsPerBatchStep: { batch1: median(many.ts), batch16: median(many.torch) },
    secondsPerIdentityStep: perIdentityStep,
    secondsPerIdentity: { batch1: perIdentityStep.batch1 * stepsPerIdentity, batch16: perIdentityStep.batch16 * stepsPerIdentity },
    identitiesPerHour: { batch1: identitiesPerHour(perIdentityStep.batch1), batch16: identitiesPerHour(perIdentityStep.batch16) },
    speedup: perIdentityStep.batch1 / perIdentityStep.batch16,
  },
  timesSeconds: { ...allTimes, multiIdentity: { batch1: many.ts, batch16: many.torch } },
};
const out = writeResult("lidb-cpu", result, args.out);
const { timesSeconds: _times, ...summary } = result;
console.log(JSON.stringify(summary, null, 2));
console.log(`wrote ${out}`);
