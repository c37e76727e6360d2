/**
 * bench/engine: one small-transformer training step (forward, backward, AdamW) in TypeScript on our engine and in
 * PyTorch (Python), same model, same data, same threads, interleaved in blocks so both see the same machine
 * state; medians of ≥ 20 timed steps after warm-up. Also the per-call overhead of a trivial op.
 *
 *   node dist/bench/engine/run.js [--device cpu|cuda] [--threads N] [--rounds R] [--block K] [--out FILE]
 *
 * Writes JSON (atomically) to bench/results/engine-<device>.json and prints it.
 */
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import {
  buildInfo, devices, getNumThreads, keep, manualSeed, ones, randint, setNumThreads, synchronize, tidy,
} from "../../src/engine/index.js";
import { packageRoot } from "../../src/engine/native/libtorch.js";
import { AdamW } from "../../src/engine/optim/index.js";
import { TinyTransformer, type TinyTransformerConfig } from "../../test/engine/tiny-transformer.js";

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
const root = packageRoot();

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// ---- the PyTorch side, as a child process ----------------------------------------------------------------
const python = path.join(root, ".venv", "bin", "python");
const worker = spawn(python, [path.join(root, "bench", "engine", "torch_worker.py"),
  JSON.stringify({ model: { vocab_size: modelConfig.vocabSize, block_size: modelConfig.blockSize, dim: modelConfig.dim, heads: modelConfig.heads, layers: modelConfig.layers }, batch, seed, threads, device })], { stdio: ["pipe", "pipe", "inherit"] });
const lines = createInterface({ input: worker.stdout })[Symbol.asyncIterator]();
async function ask<T>(message: object | null): Promise<T> {
  if (message) worker.stdin.write(JSON.stringify(message) + "\n");
  const next = await lines.next();
  if (next.done) throw new Error("the PyTorch worker exited early");
  return JSON.parse(next.value) as T;
}
const pyInfo = await ask<{ params: number; torch: string; threads: number; device_name: string }>(null);

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
    const started = process.hrtime.bigint();
    const loss = tidy(() => {
      const l = model.loss(idx, targets);
      l.backward();
      return l;
    });
    optimizer.step();
    optimizer.zeroGrad();
    synchronize(device);
    times.push(Number(process.hrtime.bigint() - started) / 1e9);
    losses.push(loss.item());
    loss.dispose();
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
  const started = process.hrtime.bigint();
  run(n);
  return Number(process.hrtime.bigint() - started) / 1e3 / n;
}

// Warm-up, then check both sides computed the same first losses (same weights, same data).
const tsWarm = tsSteps(warmup);
const pyWarm = await ask<{ times: number[]; losses: number[] }>({ cmd: "steps", n: warmup });
const firstLossDiff = Math.abs(tsWarm.losses[0]! - pyWarm.losses[0]!);

const tsTimes: number[] = [];
const pyTimes: number[] = [];
for (let r = 0; r < rounds; r++) {
  // Alternate who goes first so neither side always runs on a "warmer" or "cooler" machine.
  const order = r % 2 === 0 ? ["ts", "py"] : ["py", "ts"];
  for (const side of order) {
    if (side === "ts") tsTimes.push(...tsSteps(block).times);
    else pyTimes.push(...(await ask<{ times: number[] }>({ cmd: "steps", n: block })).times);
  }
}
const overheadOps = device === "cpu" ? 200_000 : 50_000;
const tsOverheadUs = tsOverhead(overheadOps);
const pyOverheadUs = (await ask<{ us_per_op: number }>({ cmd: "overhead", n: overheadOps })).us_per_op;
worker.stdin.write(JSON.stringify({ cmd: "quit" }) + "\n");

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
const out = args.out ?? path.join(root, "bench", "results", `engine-${device.replace(/:.*/, "")}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out + ".tmp", JSON.stringify(result, null, 2) + "\n");
renameSync(out + ".tmp", out);
const { stepTimesSeconds: _times, ...summary } = result;
console.log(JSON.stringify(summary, null, 2));
console.log(`ratio TS/PyTorch = ${result.ratio.toFixed(3)} (median step ${(tsMedian * 1e3).toFixed(1)} ms vs ${(pyMedian * 1e3).toFixed(1)} ms); wrote ${out}`);
