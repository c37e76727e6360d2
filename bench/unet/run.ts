/**
 * bench/unet: UNet2DConditionModel forward and forward+backward, TypeScript (our engine) vs diffusers, same
 * weights, same inputs, same threads, interleaved, medians; plus txt2img wall time on the tiny pipeline.
 *
 *   node dist/bench/unet/run.js [--preset mid|sd15|miniworld] [--device cpu|cuda] [--dtype float32|float16|bfloat16]
 *                               [--rounds R] [--block K] [--out FILE]
 *
 * mid (default, for CPUs): SD1.5's block layout (3 cross-attention down blocks + 1 plain, mirrored up blocks,
 * 2 layers per block, 8 heads, 768-d text) with channels (64, 128, 256, 256) at 32×32 latents, batch 2 (a
 * classifier-free-guidance pair). sd15 (for GPUs): SD1.5's real config at 64×64 latents. Weights are random
 * (speed does not depend on their values); both sides load the same ones, and their outputs are compared.
 * miniworld: the bundled mini-world UNet (src/miniworld/base-model/config.ts) at its training batch of 32, the
 * step that `hdb miniworld build` repeats ~20,000 times, so its time decides the build's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { randn, Generator, getNumThreads, noGrad, synchronize, tidy, keep, type DType } from "../../src/engine/index.js";
import { MINIWORLD_UNET_CONFIG } from "../../src/miniworld/base-model/config.js";
import { UNet2DConditionModel } from "../../src/models/unet/index.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";
import { interleave, median, PythonWorker, repoRoot, seconds, writeResult } from "../harness.js";

const { values: args } = parseArgs({
  options: {
    preset: { type: "string", default: "mid" }, device: { type: "string", default: "cpu" }, dtype: { type: "string", default: "float32" },
    rounds: { type: "string", default: "8" }, block: { type: "string", default: "3" }, out: { type: "string" },
  },
});
const device = args.device!;
const dtype = args.dtype as DType;
const rounds = Number(args.rounds);
const block = Number(args.block);
if (rounds * block < 20) throw new Error(`rounds × block must give at least 20 timed runs, got ${rounds * block}`);
const threads = getNumThreads();

const layout = {
  in_channels: 4, out_channels: 4,
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  layers_per_block: 2, attention_head_dim: 8, cross_attention_dim: 768, norm_num_groups: 32,
};
const presets: Record<string, { config: Record<string, unknown> & { cross_attention_dim: number }; latent: number; batch: number }> = {
  mid: { config: { ...layout, sample_size: 32, block_out_channels: [64, 128, 256, 256] }, latent: 32, batch: 2 },
  sd15: { config: { ...layout, sample_size: 64, block_out_channels: [320, 640, 1280, 1280] }, latent: 64, batch: 2 },
  miniworld: { config: { ...MINIWORLD_UNET_CONFIG }, latent: MINIWORLD_UNET_CONFIG.sample_size, batch: 32 },
};
const preset = Object.hasOwn(presets, args.preset!) ? presets[args.preset!] : undefined;
if (!preset) throw new Error(`--preset must be one of ${Object.keys(presets).join(", ")}, got '${args.preset}'`);
const batch = preset.batch;
const weightsDir = mkdtempSync(path.join(tmpdir(), "hdb-bench-unet-"));
const tinyPipeline = path.join(repoRoot, "test", "fixtures", "generated", "tiny_sd", "sd1");
const txt2imgSteps = 10;

const worker = new PythonWorker(path.join(repoRoot, "bench", "unet", "torch_worker.py"), {
  config: preset.config, weights_dir: weightsDir, batch, latent: preset.latent, threads, device, dtype,
  tiny_pipeline: device === "cpu" ? tinyPipeline : null, txt2img_steps: txt2imgSteps,
});
const info = await worker.ask<{ torch: string; parameters: number; device_name: string }>(null);

const unet = UNet2DConditionModel.fromPretrained(weightsDir, { dtype, device });
rmSync(weightsDir, { recursive: true, force: true });
const generator = new Generator("cpu", 1);
const sample = keep(randn([batch, 4, preset.latent, preset.latent], { generator }).to({ device, dtype }));
const text = keep(randn([batch, 77, preset.config.cross_attention_dim], { generator }).to({ device, dtype }));

function timed(job: () => void, n: number): number[] {
  return Array.from({ length: n }, () => seconds(() => {
    job();
    synchronize(device);
  }));
}
const forward = (): void => noGrad(() => tidy(() => void unet.forward(sample, 500, text)));
const train = (): void => {
  tidy(() => unet.backward(unet.forward(sample, 500, text).float().square().mean()));
  unet.zeroGrad();
};

// Same weights and inputs ⇒ same output (a check that both sides do the same work).
const tsOutput = noGrad(() => tidy(() => {
  const out = unet.forward(sample, 500, text).float();
  return { sum: out.sum().item(), absSum: out.abs().sum().item() };
}));
const pyOutput = await worker.ask<{ sum: number; abs_sum: number }>({ cmd: "output" });
const outputRelativeDifference = Math.abs(tsOutput.absSum - pyOutput.abs_sum) / pyOutput.abs_sum;

const results: Record<string, { ts: number; torch: number; ratio: number; runs: number }> = {};
const allTimes: Record<string, { ts: number[]; torch: number[] }> = {};
/** Keeps a job's raw times and its medians and ratio. */
function record(job: string, times: { ts: number[]; torch: number[] }): void {
  results[job] = { ts: median(times.ts), torch: median(times.torch), ratio: median(times.ts) / median(times.torch), runs: times.ts.length };
  allTimes[job] = times;
}
for (const job of ["forward", "train"] as const) {
  const run = job === "forward" ? forward : train;
  timed(run, 2);
  await worker.ask({ cmd: job, n: 2 });
  const times = await interleave(rounds, () => timed(run, block), async () => (await worker.ask<{ times: number[] }>({ cmd: job, n: block })).times);
  record(job, times);
}
unet.dispose();

if (device === "cpu") {
  const pipeline = await StableDiffusionPipeline.fromPretrained(tinyPipeline);
  const txt2img = (): void => {
    const result = pipeline.generate({ prompt: "a sks face", steps: txt2imgSteps, seed: 0 });
    result.images.dispose();
    result.latents.dispose();
  };
  timed(txt2img, 2);
  await worker.ask({ cmd: "txt2img", n: 2 });
  const times = await interleave(rounds, () => timed(txt2img, block), async () => (await worker.ask<{ times: number[] }>({ cmd: "txt2img", n: block })).times);
  record("txt2img_tiny", times);
  pipeline.dispose();
}
worker.close();

const result = {
  benchmark: "unet: UNet2DConditionModel forward / forward+backward, TS vs diffusers; txt2img on the tiny pipeline",
  date: new Date().toISOString(), device, deviceName: info.device_name, cpu: cpus()[0]?.model ?? "unknown", threads, dtype,
  torch: info.torch, node: process.version, preset: args.preset, unetConfig: preset.config, latent: preset.latent, batch,
  parameters: info.parameters, txt2imgSteps,
  medianSeconds: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { ts: v.ts, torch: v.torch, runs: v.runs }])),
  ratios: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.ratio])),
  target: "ts <= 1.05 x diffusers",
  outputCheck: { ts: tsOutput, torch: pyOutput, relativeDifferenceOfAbsSum: outputRelativeDifference },
  timesSeconds: allTimes,
};
const out = writeResult(`unet-${args.preset}-${device.replace(/:.*/, "")}-${dtype}`, result, args.out);
const { timesSeconds: _times, ...summary } = result;
console.log(JSON.stringify(summary, null, 2));
console.log(`wrote ${out}`);
