/**
 * bench/gpu/sd15: Stable Diffusion 1.5's real shapes (random weights from its published configs: speed depends on
 * shapes, not values) on an accelerator, our engine vs diffusers, same files, same inputs, interleaved in blocks,
 * medians, with each side's peak device memory (the caching allocator's max_memory_allocated over the block):
 *
 *  - UNet forward at 64×64 latents (512 px), no grad, in float16 and bfloat16 weights, batch 1 and 4;
 *  - txt2img: 25 PNDM steps at 512 px with classifier-free guidance (7.5), 1 and 4 images per prompt, VAE decode
 *    and 8-bit conversion included (diffusers' output_type="np");
 *  - a LiDB DreamBooth training step (paper §4.1; UNet + text encoder adapters, our DreamBoothTrainer) vs diffusers'
 *    DreamBooth-LoRA step (rank 4, --train_text_encoder), mixed precision fp16 and bf16, batch 1 and 4, from a cached
 *    VAE posterior on both sides;
 *  - the rank-relaxed fast fine-tuning step (paper §4.3: `hdb personalize`'s 40 steps; a rank-r LoRA on the UNet
 *    and text encoder, on the weights the HyperNetwork's prediction was merged into, which does not change its
 *    cost) vs diffusers' DreamBooth-LoRA step at the same rank (`--jobs finetune`; r from --finetune-rank, default
 *    personalize's). Its dtype float32 is full precision (the CPU's case), float16/bfloat16 mixed precision.
 *
 *   node dist/bench/gpu/sd15.js [--device cuda:0] [--dtypes float16,bfloat16] [--batches 1,4] [--steps 25]
 *                               [--shapes sd15|mini] [--jobs unet,txt2img,train,finetune] [--finetune-rank R] [--out FILE]
 *
 *   on a CPU: node dist/bench/gpu/sd15.js --device cpu --dtypes float32 --batches 1 --jobs finetune
 *
 * `--shapes mini` runs the same code at toy widths: a dry run for a CPU, not a benchmark. Writes
 * bench/results/sd15-<device type>.json (atomically) and prints a summary.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { deviceMemory, emptyCache, Generator, keep, noGrad, randn, synchronize, tidy, type DType } from "../../src/engine/index.js";
import { resolveConfig, type MixedPrecision } from "../../src/dreambooth/config.js";
import { personalizeSettings } from "../../src/personalize/config.js";
import { DreamBoothTrainer } from "../../src/dreambooth/trainer.js";
import { savePng } from "../../src/pipeline/images.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";
import { interleave, median, PythonWorker, repoRoot, seconds, writeResult } from "../harness.js";

const { values: args } = parseArgs({
  options: {
    device: { type: "string", default: "cuda:0" }, dtypes: { type: "string", default: "float16,bfloat16" },
    batches: { type: "string", default: "1,4" }, steps: { type: "string", default: "25" },
    shapes: { type: "string", default: "sd15" }, jobs: { type: "string", default: "unet,txt2img,train,finetune" }, out: { type: "string" },
    "finetune-rank": { type: "string", default: String(personalizeSettings().rank) },
  },
});
const device = args.device!;
const dtypes = args.dtypes!.split(",") as DType[];
const batches = args.batches!.split(",").map(Number);
const steps = Number(args.steps);
const jobs = new Set(args.jobs!.split(","));
if (!["sd15", "mini"].includes(args.shapes!)) throw new Error(`--shapes must be sd15 or mini, got '${args.shapes}'`);
for (const dtype of dtypes) if (!["float16", "bfloat16", "float32"].includes(dtype)) throw new Error(`--dtypes: each must be float16, bfloat16 or float32, got '${dtype}'`);
for (const batch of batches) if (!Number.isInteger(batch) || batch < 1) throw new Error(`--batches: each must be a positive integer, got '${args.batches}'`);
if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got '${args.steps}'`);
for (const job of jobs) if (!["unet", "txt2img", "train", "finetune"].includes(job)) throw new Error(`--jobs: each must be unet, txt2img, train or finetune, got '${job}'`);
const finetuneRank = Number(args["finetune-rank"]);
if (!Number.isInteger(finetuneRank) || finetuneRank < 1) throw new Error(`--finetune-rank must be a positive integer, got '${args["finetune-rank"]}'`);
const accelerator = device !== "cpu";
const size = args.shapes === "mini" ? 128 : 512;
const loraRank = 4;

/** Timed runs of `job` with the device drained after each; the block's peak allocated bytes (accelerators). */
function timed(job: () => void, n: number): { times: number[]; peak: number } {
  if (accelerator) deviceMemory(device, { resetPeak: true });
  const times = Array.from({ length: n }, () => seconds(() => {
    job();
    synchronize(device);
  }));
  return { times, peak: accelerator ? deviceMemory(device).peakAllocated : 0 };
}

interface PyTimes { times: number[]; peak_allocated?: number }
interface Job { ts: number; torch: number; ratio: number; runs: number; peakBytes: { ts: number; torch: number } }
const results: Record<string, Job> = {};
const rawTimes: Record<string, { ts: number[]; torch: number[] }> = {};

/** Warm-up, then `rounds` interleaved blocks of `block` runs per side; medians, ratio and peaks. */
async function compare(name: string, ts: () => void, py: object, rounds: number, block: number, warm: number): Promise<void> {
  timed(ts, warm);
  await worker.ask({ ...py, n: warm });
  let tsPeak = 0;
  let pyPeak = 0;
  const times = await interleave(rounds, () => {
    const r = timed(ts, block);
    tsPeak = Math.max(tsPeak, r.peak);
    return r.times;
  }, async () => {
    const r = await worker.ask<PyTimes>({ ...py, n: block });
    pyPeak = Math.max(pyPeak, r.peak_allocated ?? 0);
    return r.times;
  });
  results[name] = {
    ts: median(times.ts), torch: median(times.torch), ratio: median(times.ts) / median(times.torch), runs: times.ts.length,
    peakBytes: { ts: tsPeak, torch: pyPeak },
  };
  rawTimes[name] = times;
  save(false);
  const r = results[name];
  console.log(`${name}: ours ${(r.ts * 1000).toFixed(1)} ms, diffusers ${(r.torch * 1000).toFixed(1)} ms, ratio ${r.ratio.toFixed(3)}; ` +
    `peak ${(r.peakBytes.ts / 2 ** 30).toFixed(2)} vs ${(r.peakBytes.torch / 2 ** 30).toFixed(2)} GiB`);
}

/** The result so far (written after every job, so a run cut short still leaves what it measured). */
function save(complete: boolean): { file: string; result: Record<string, unknown> } {
  const result = {
    benchmark: "sd15: SD1.5-shaped UNet forward, 25-step txt2img and LiDB-vs-LoRA DreamBooth training step, ours vs diffusers (random weights)",
    date: new Date().toISOString(), complete, device, deviceName: info.device_name, cpu: cpus()[0]?.model ?? "unknown", torch: info.torch,
    diffusers: info.diffusers, node: process.version, shapes: args.shapes, parameters: info.parameters, resolution: size, txt2imgSteps: steps,
    guidanceScale: 7.5, loraRank, lidb: { a: 100, b: 50, rank: 1 }, finetuneRank, target: "ours <= 1.05 x diffusers",
    medianSeconds: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { ts: v.ts, torch: v.torch, runs: v.runs }])),
    ratios: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.ratio])),
    peakAllocatedBytes: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.peakBytes])),
    outputChecks, timesSeconds: rawTimes,
  };
  return { file: writeResult(`sd15-${device.replace(/:.*/, "")}`, result, args.out), result };
}

const dir = mkdtempSync(path.join(tmpdir(), "hdb-bench-sd15-"));
const tokenizer = path.join(repoRoot, "test", "fixtures", "generated", "tiny_sd", "sd1", "tokenizer");
const started = Date.now();
const worker = new PythonWorker(path.join(repoRoot, "bench", "gpu", "sd15_worker.py"), { dir, tokenizer, device, make: true, shapes: args.shapes });
const info = await worker.ask<{ torch: string; diffusers: string; device_name: string; parameters: Record<string, number> }>(null);
console.log(`${info.device_name}: random SD1.5-shaped pipeline written in ${((Date.now() - started) / 1000).toFixed(1)} s (${JSON.stringify(info.parameters)})`);
const outputChecks: Record<string, { ts: number; torch: number; relativeDifference: number }> = {};

try {
  for (const dtype of dtypes) {
    if (jobs.has("unet") || jobs.has("txt2img")) {
      await worker.ask({ cmd: "load", dtype });
      const pipeline = await StableDiffusionPipeline.fromPretrained(dir, { device, dtype });
      for (const batch of batches) {
        if (jobs.has("unet")) {
          const latent = pipeline.unet.sampleSize?.[0] ?? 64;
          const generator = new Generator("cpu", 1);
          const sample = keep(randn([batch, 4, latent, latent], { generator }).to({ device, dtype }));
          const text = keep(randn([batch, 77, 768], { generator }).to({ device, dtype }));
          const forward = (): void => noGrad(() => tidy(() => void pipeline.unet.forward(sample, 500, text)));
          const ours = noGrad(() => tidy(() => pipeline.unet.forward(sample, 500, text).float().abs().sum().item()));
          const theirs = (await worker.ask<{ abs_sum: number }>({ cmd: "unet_output", batch })).abs_sum;
          outputChecks[`unet_${dtype}_b${batch}`] = { ts: ours, torch: theirs, relativeDifference: Math.abs(ours - theirs) / theirs };
          await compare(`unet_forward_${dtype}_b${batch}`, forward, { cmd: "unet", batch }, 4, 5, 3);
          for (const t of [sample, text]) t.dispose();
        }
        if (jobs.has("txt2img")) {
          const generate = (): void => {
            const result = pipeline.generate({ prompt: "a photo of a sks face", steps, guidanceScale: 7.5, height: size, width: size, imagesPerPrompt: batch, seed: 0 });
            result.images.dispose();
            result.latents.dispose();
          };
          await compare(`txt2img_${steps}steps_${dtype}_b${batch}`, generate, { cmd: "txt2img", batch, steps, size }, 3, 2, 1);
        }
      }
      pipeline.dispose();
    }
    const mixedPrecision: MixedPrecision = dtype === "float16" ? "fp16" : dtype === "bfloat16" ? "bf16" : "no";
    // Training steps take seconds each on a CPU at 512 px: fewer, still interleaved.
    const [rounds, block, warm] = accelerator ? [4, 5, 3] : [3, 2, 1];
    for (const [job, adapter, rank] of [["train", "lidb", loraRank], ["finetune", "lora", finetuneRank]] as const) {
      if (!jobs.has(job)) continue;
      if (accelerator) emptyCache(device);
      const photo = path.join(dir, "face.png");
      await savePng(photo, { width: size, height: size, data: new Uint8Array(size * size * 3).map((_, i) => (i * 37) % 251) });
      for (const batch of batches) {
        await worker.ask({ cmd: "train_setup", dtype, batch, rank, size });
        const trainer = await DreamBoothTrainer.open(resolveConfig({
          pretrainedModel: dir, outputDir: path.join(dir, `${job}-${dtype}-${batch}`), identities: [{ id: "face", images: [photo] }],
          adapter, ...(adapter === "lora" ? { rank } : {}), resolution: size, trainBatchSize: batch, mixedPrecision, device, checkpointingSteps: 0,
        }));
        const run = await trainer.startIdentity({ id: "face", images: [photo] });
        const name = job === "train" ? `train_lidb_vs_diffusers_lora_${mixedPrecision}_b${batch}` : `finetune_lora_r${rank}_vs_diffusers_lora_${mixedPrecision}_b${batch}`;
        await compare(name, () => trainer.trainStep([run]), { cmd: "train" }, rounds, block, warm);
        run.dispose();
        trainer.dispose();
        if (accelerator) emptyCache(device);
      }
    }
  }
} finally {
  worker.close();
  rmSync(dir, { recursive: true, force: true });
}

const { file: out, result } = save(true);
const { timesSeconds: _times, ...summary } = result;
console.log(JSON.stringify(summary, null, 2));
console.log(`wrote ${out}`);
