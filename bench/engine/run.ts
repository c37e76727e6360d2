/**
 * bench/engine: one small-transformer training step (forward, backward, AdamW) in TypeScript on our engine and in
 * PyTorch (Python), same model, same data, same threads, interleaved in blocks so both see the same machine
 * state; medians of ≥ 20 timed steps after warm-up. Also the per-call overhead of a trivial op.
 *
 *   node dist/bench/engine/run.js [--device cpu|cuda] [--threads N] [--rounds R] [--block K] [--out FILE]
 *
 * Writes JSON (atomically) to bench/results/engine-<device>.json and prints it.
 */
import { cpus } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  buildInfo, devices, getNumThreads, keep, manualSeed, ones, randint, setNumThreads, synchronize, tidy,
} from "../../src/engine/index.js";
import { AdamW } from "../../src/engine/optim/index.js";
import { TinyTransformer, type TinyTransformerConfig } from "../../test/engine/tiny-transformer.js";
import { interleave, median, PythonWorker, repoRoot, seconds, writeResult } from "../harness.js";

const { values: args } = parseArgs({
  options: {
    device: { type: "string", default: "cpu" },
    threads: { type: "string" },
    rounds: { type: "string", default: "6" },
    block: { type: "string", default: "5" },
    warmup: { type: "string", default: "3" },
    out: { type: "string" },
  },
});
const device = args.device!;
const threads = Number(args.threads ?? getNumThreads());
const rounds = Number(args.rounds);
const block = Number(args.block);
const warmup = Number(args.warmup);
if (rounds * block < 20) throw new Error(`rounds × block must give at least 20 timed steps, got ${rounds * block}`);
if (device.startsWith("cuda") && devices().cuda === 0) throw new Error("--device cuda asked for, but this libtorch sees no CUDA device");

const modelConfig: TinyTransformerConfig = { vocabSize: 512, blockSize: 64, dim: 192, heads: 6, layers: 3 };
const batch = 8;
const seed = 1234;
// ---- the PyTorch side, as a child process ----------------------------------------------------------------
const worker = new PythonWorker(path.join(repoRoot, "bench", "engine", "torch_worker.py"), {
  model: { vocab_size: modelConfig.vocabSize, block_size: modelConfig.blockSize, dim: modelConfig.dim, heads: modelConfig.heads, layers: modelConfig.layers },
  batch, seed, threads, device,
});
const pyInfo = await worker.ask<{ params: number; torch: string; threads: number; device_name: string }>(null);

// ---- the TypeScript side ---------------------------------------------------------------------------------
setNumThreads(threads);
manualSeed(seed);
const model = new TinyTransformer(modelConfig);
model.to(device);
const data = keep(randint(0, modelConfig.vocabSize, [batch, modelConfig.blockSize + 1]).to(device));
const idx = keep(data.slice(1, 0, -1));
const targets = keep(data.slice(1, 1));
const optimizer = new AdamW(model.parameters(), { lr: 3e-4, weightDecay: 0.1 });
const tsParams = model.parameters().reduce((n, p) => n + p.numel, 0);
if (tsParams !== pyInfo.params) throw new Error(`model mismatch: TS has ${tsParams} parameters, PyTorch ${pyInfo.params}`);

function tsSteps(n: number): { times: number[]; losses: number[] } {
  const times: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < n; i++) {
    synchronize(device);
    let loss = NaN;
    times.push(seconds(() => {
      loss = tidy(() => {
        const l = model.loss(idx, targets);
        l.backward();
        return l.item();
      });
      optimizer.step();
      optimizer.zeroGrad();
      synchronize(device);
    }));
    losses.push(loss);
  }
  return { times, losses };
}

function tsOverhead(n: number): number {
  const a = ones([1]);
  const b = ones([1]);
  const run = (count: number): void => {
    for (let i = 0; i < count; i++) a.add(b).dispose();
  };
  run(n / 10);
  return (seconds(() => run(n)) * 1e6) / n;
}

// Warm-up, then check both sides computed the same first losses (same weights, same data).
const tsWarm = tsSteps(warmup);
const pyWarm = await worker.ask<{ times: number[]; losses: number[] }>({ cmd: "steps", n: warmup });
const firstLossDiff = Math.abs(tsWarm.losses[0]! - pyWarm.losses[0]!);

const { ts: tsTimes, torch: pyTimes } = await interleave(
  rounds, () => tsSteps(block).times, async () => (await worker.ask<{ times: number[] }>({ cmd: "steps", n: block })).times,
);
const overheadOps = device === "cpu" ? 200_000 : 50_000;
const tsOverheadUs = tsOverhead(overheadOps);
const pyOverheadUs = (await worker.ask<{ us_per_op: number }>({ cmd: "overhead", n: overheadOps })).us_per_op;
worker.close();

const tsMedian = median(tsTimes);
const pyMedian = median(pyTimes);
const result = {
  benchmark: "engine: small transformer training step (forward + backward + AdamW)",
  date: new Date().toISOString(),
  device, deviceName: pyInfo.device_name, cpu: cpus()[0]?.model ?? "unknown", threads,
  torch: pyInfo.torch, node: process.version, libtorchDir: buildInfo().libtorchDir,
  model: { ...modelConfig, batch, parameters: tsParams },
  timedSteps: { ts: tsTimes.length, torch: pyTimes.length, warmup },
  medianStepSeconds: { ts: tsMedian, torch: pyMedian },
  ratio: tsMedian / pyMedian,
  target: "ts <= 1.05 x torch",
  firstLoss: { ts: tsWarm.losses[0], torch: pyWarm.losses[0], absDiff: firstLossDiff },
  overheadMicrosecondsPerOp: { ts: tsOverheadUs, torch: pyOverheadUs, op: "add of two 1-element tensors (incl. freeing the result)" },
  stepTimesSeconds: { ts: tsTimes, torch: pyTimes },
};
const out = writeResult(`engine-${device.replace(/:.*/, "")}`, result, args.out);
const { stepTimesSeconds: _times, ...summary } = result;
console.log(JSON.stringify(summary, null, 2));
console.log(`ratio TS/PyTorch = ${result.ratio.toFixed(3)} (median step ${(tsMedian * 1e3).toFixed(1)} ms vs ${(pyMedian * 1e3).toFixed(1)} ms); wrote ${out}`);
