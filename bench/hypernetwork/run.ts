/**
 * bench/hypernetwork: the HyperNetwork (paper §4.2, src/hypernetwork/) on the CPU, ours vs a PyTorch reference of
 * the same architecture loading our weights (bench/hypernetwork/torch_worker.py: diffusers' BasicTransformerBlock,
 * which ours ports), same inputs, same threads, interleaved in one run, medians.
 *
 *   node dist/bench/hypernetwork/run.js [--presets miniworld,sd15] [--threads N] [--predict-threads 2,1]
 *       [--jobs parity,train,predict] [--rounds R] [--block K] [--predict-rounds R] [--predict-block K] [--out FILE]
 *
 * Presets (random weights: speed does not depend on their values; both sides load the same ones):
 *  - miniworld: the mini-world network (the recipe's sizes, src/miniworld/hypernetwork/recipe.ts, which are
 *    config.ts's defaults: hidden 256, 2 blocks of 4 × 64 heads, s = 4 rounds) in the mini-world LiDB space
 *    (the layers of the weight set's LiDB files, else of models/miniworld/base: 68 layers, a 32, b 16, r 1),
 *    training batch 16 (the recipe's); its encoder a small CLIPVisionModelWithProjection for the 64-px renders
 *    (models/miniworld/encoder's config when that folder exists, else the recipe's: patch 8, width 192,
 *    4 layers of 3 heads, so 65 tokens × 192).
 *  - sd15: the SD1.5-shaped network: 176 layers (SD1.5's attention projections, named as LoRA files name them),
 *    a 100, b 50, r 1, the config's default decoder, features 257 × 1280 (ViT-H/14 at 224 px), training batch 4;
 *    its encoder a ViT-H/14-shaped CLIPVisionModel (width 1280, 32 layers of 16 heads, patch 14, 224 px, MLP 5120).
 *  - toy: tiny sizes, for test/bench/hypernetwork.test.ts (keeps this script working between benchmark runs).
 *
 * Jobs:
 *  - parity: θ_s of the same features, ours vs the reference (max abs difference), and the first two training
 *    steps' losses and gradient norms on both sides (the second after one AdamW update);
 *  - train: one optimisation step of the HyperNetwork alone: fixed features → θ̂ → the gauge-free weight loss of
 *    src/hypernetwork/train.ts (Σ_i ‖A·B − C̃_i‖² / ‖C̃_i‖² against fixed random rank-r cores) → backward →
 *    clip_grad_norm(1) (the training loop's) → AdamW → zero grad; target ours / PyTorch ≤ 1.05;
 *  - predict: seconds per photo at batch 1, encoder (preprocessed pixels → hidden state config.encoder_layer)
 *    + HyperNetwork forward, no grad, at each of --predict-threads; ours vs transformers + the reference.
 *
 * The machine's state is recorded: every other process's CPU use during each measured section (from /proc), so a
 * result taken beside a background job says so. Writes bench/results/hypernetwork-cpu.json.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  backward, Generator, getNumThreads, keep, loadSafetensors, manualSeed, noGrad, randn, saveSafetensors, setNumThreads, tidy, type Tensor,
} from "../../src/engine/index.js";
import { clipGradNorm_, init } from "../../src/engine/nn/index.js";
import { AdamW } from "../../src/engine/optim/index.js";
import { readLidbFileInfo } from "../../src/adapters/lidb/file.js";
import { selectAttentionTargets } from "../../src/adapters/targets.js";
import { hyperNetworkConfig, type HyperNetworkConfigInput } from "../../src/hypernetwork/config.js";
import { HyperNetwork } from "../../src/hypernetwork/hypernetwork.js";
import { CLIPTextModel } from "../../src/models/clip/text-encoder.js";
import { clipVisionConfig, type CLIPVisionConfig } from "../../src/models/clip/vision-config.js";
import { CLIPVisionModel, CLIPVisionModelWithProjection } from "../../src/models/clip/vision-encoder.js";
import { UNet2DConditionModel } from "../../src/models/unet/index.js";
import { interleave, median, PythonWorker, repoRoot, seconds, writeResult } from "../harness.js";

const { values: args } = parseArgs({
  options: {
    presets: { type: "string", default: "miniworld,sd15" }, threads: { type: "string" }, "predict-threads": { type: "string" },
    jobs: { type: "string", default: "parity,train,predict" }, rounds: { type: "string", default: "8" }, block: { type: "string", default: "3" },
    "predict-rounds": { type: "string", default: "4" }, "predict-block": { type: "string", default: "2" }, "min-runs": { type: "string", default: "20" },
    out: { type: "string" },
  },
});
if (args.threads !== undefined) setNumThreads(Number(args.threads));
const threads = getNumThreads();
const predictThreads = (args["predict-threads"] ?? String(threads)).split(",").map(Number);
const jobs = new Set(args.jobs!.split(","));
const rounds = Number(args.rounds);
const block = Number(args.block);
const predictRounds = Number(args["predict-rounds"]);
const predictBlock = Number(args["predict-block"]);
const minRuns = Number(args["min-runs"]);
if (rounds * block < minRuns) throw new Error(`rounds × block must give at least ${minRuns} timed steps, got ${rounds * block}`);
for (const t of predictThreads) if (!Number.isInteger(t) || t < 1) throw new Error(`--predict-threads: positive integers, got ${args["predict-threads"]}`);

// ---- the machine's state: other processes' CPU use during each measured section (from /proc) --------------------

const CLOCK_TICKS = 100;  // USER_HZ on Linux
interface CpuSnapshot { at: number; busy: number; total: number; processes: Map<number, { ticks: number; parent: number; command: string }> }

function cpuSnapshot(): CpuSnapshot {
  const processes = new Map<number, { ticks: number; parent: number; command: string }>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ticks = Number(fields[11]) + Number(fields[12]);  // utime + stime
      const command = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ").slice(0, 160);
      processes.set(Number(entry), { ticks, parent: Number(fields[1]), command });
    } catch {
      // the process ended between readdir and read
    }
  }
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = line.reduce((a, b) => a + b, 0);
  return { at: performance.now(), busy: total - line[3]! - line[4]!, total, processes };
}

interface MachineState {
  seconds: number;
  /** Cores busy on average (all processes), of cpus().length. */
  busyCores: number;
  /** This benchmark's own processes (node + the PyTorch worker). */
  ownCores: number;
  /** Everything else, and the processes that used at least 0.05 cores. */
  otherCores: number;
  otherProcesses: { pid: number; cores: number; command: string }[];
  loadAverage: string;
}

/** CPU use between two snapshots; this process and its children (the PyTorch worker) count as our own. */
function machineState(before: CpuSnapshot, after: CpuSnapshot): MachineState {
  const wall = (after.at - before.at) / 1000;
  const cores = cpus().length;
  const busyCores = ((after.busy - before.busy) / Math.max(1, after.total - before.total)) * cores;
  let ownTicks = 0;
  const others: { pid: number; cores: number; command: string }[] = [];
  for (const [pid, { ticks, parent, command }] of after.processes) {
    const used = ticks - (before.processes.get(pid)?.ticks ?? 0);
    if (pid === process.pid || parent === process.pid) ownTicks += used;
    else if (used / CLOCK_TICKS / wall >= 0.05) others.push({ pid, cores: used / CLOCK_TICKS / wall, command });
  }
  const ownCores = ownTicks / CLOCK_TICKS / wall;
  return {
    seconds: wall, busyCores, ownCores, otherCores: Math.max(0, busyCores - ownCores),
    otherProcesses: others.sort((a, b) => b.cores - a.cores), loadAverage: readFileSync("/proc/loadavg", "utf8").trim(),
  };
}

// ---- presets ------------------------------------------------------------------------------------------------

interface Preset {
  layers: () => Promise<{ names: string[]; source: string }>;
  lidb: { a: number; b: number; rank: number };
  network: Partial<HyperNetworkConfigInput>;
  batch: number;
  encoder: () => { config: CLIPVisionConfig; withProjection: boolean; source: string };
}

/** SD1.5's 176 attention projections in LiDB-file order (src/adapters/targets.ts): UNet down, up, mid; then the text encoder. */
function sd15LayerNames(): string[] {
  const names: string[] = [];
  const block = (prefix: string): void => {
    for (const attention of ["attn1", "attn2"]) for (const p of ["to_q", "to_k", "to_v", "to_out.0"]) names.push(`unet.${prefix}.transformer_blocks.0.${attention}.${p}`);
  };
  for (const d of [0, 1, 2]) for (const a of [0, 1]) block(`down_blocks.${d}.attentions.${a}`);
  for (const u of [1, 2, 3]) for (const a of [0, 1, 2]) block(`up_blocks.${u}.attentions.${a}`);
  block("mid_block.attentions.0");
  for (let l = 0; l < 12; l++) for (const p of ["k_proj", "v_proj", "q_proj", "out_proj"]) names.push(`text_encoder.text_model.encoder.layers.${l}.self_attn.${p}`);
  return names;
}

/** The mini-world LiDB space's layers: a weight-set LiDB file's header, else the bundled base model's attention projections. */
async function miniworldLayerNames(): Promise<{ names: string[]; source: string }> {
  const lidbDir = path.join(repoRoot, "data", "miniworld-lidb-set", "lidb");
  const file = existsSync(lidbDir) ? readdirSync(lidbDir).find((f) => f.endsWith(".lidb.safetensors")) : undefined;
  if (file) {
    const info = readLidbFileInfo(path.join(lidbDir, file));
    if (info.dims.a !== 32 || info.dims.b !== 16 || info.dims.rank !== 1) throw new Error(`${file}: a ${info.dims.a}, b ${info.dims.b}, r ${info.dims.rank}; the preset says 32, 16, 1`);
    return { names: info.targets.map((t) => t.name), source: path.relative(repoRoot, path.join(lidbDir, file)) };
  }
  const base = path.join(repoRoot, "models", "miniworld", "base");
  if (!existsSync(base)) throw new Error("the miniworld preset needs the weight set (data/miniworld-lidb-set/lidb) or the bundled base model (models/miniworld/base)");
  const unet = UNet2DConditionModel.fromPretrained(path.join(base, "unet"));
  const textEncoder = CLIPTextModel.fromPretrained(path.join(base, "text_encoder"));
  const names = selectAttentionTargets({ unet, textEncoder }).map((t) => t.name);
  unet.dispose();
  textEncoder.dispose();
  return { names, source: "models/miniworld/base (selectAttentionTargets)" };
}

/** The mini-world encoder's config: models/miniworld/encoder's when it exists, else the recipe's (src/miniworld/hypernetwork/encoder.ts). */
function miniworldEncoder(): { config: CLIPVisionConfig; withProjection: boolean; source: string } {
  const file = path.join(repoRoot, "models", "miniworld", "encoder", "config.json");
  if (existsSync(file)) {
    const raw = JSON.parse(readFileSync(file, "utf8")) as Partial<CLIPVisionConfig> & { architectures?: string[] };
    const { architectures, ...fields } = raw;
    const config = clipVisionConfig(Object.fromEntries(Object.entries(fields).filter(([k]) => k in clipVisionConfig())) as Partial<CLIPVisionConfig>);
    return { config, withProjection: architectures?.some((a) => a.includes("WithProjection")) ?? false, source: "models/miniworld/encoder/config.json" };
  }
  return {
    config: clipVisionConfig({
      image_size: 64, patch_size: 8, num_channels: 3, hidden_size: 192, intermediate_size: 768, num_hidden_layers: 4,
      num_attention_heads: 3, projection_dim: 128, hidden_act: "gelu", layer_norm_eps: 1e-5, attention_dropout: 0,
    }),
    withProjection: true, source: "the recipe's ENCODER_VISION_CONFIG (src/miniworld/hypernetwork/encoder.ts; models/miniworld/encoder not built yet)",
  };
}

const PRESETS: Record<string, Preset> = {
  miniworld: {
    layers: miniworldLayerNames, lidb: { a: 32, b: 16, rank: 1 },
    network: { hidden_size: 256, num_layers: 2, num_heads: 4, head_dim: 64, rounds: 4, encoder_layer: -2 }, batch: 16, encoder: miniworldEncoder,
  },
  sd15: {
    layers: async () => ({ names: sd15LayerNames(), source: "SD1.5's attention projections (UNet 128 + text encoder 48)" }),
    lidb: { a: 100, b: 50, rank: 1 }, network: {}, batch: 4,
    encoder: () => ({
      config: clipVisionConfig({
        image_size: 224, patch_size: 14, hidden_size: 1280, intermediate_size: 5120, num_hidden_layers: 32, num_attention_heads: 16,
        projection_dim: 1024, hidden_act: "gelu", layer_norm_eps: 1e-5,
      }),
      withProjection: false, source: "ViT-H/14 (laion/CLIP-ViT-H-14-laion2B-s32B-b79K's vision tower shape)",
    }),
  },
  toy: {
    layers: async () => ({ names: sd15LayerNames().slice(0, 6), source: "the first 6 of SD1.5's" }),
    lidb: { a: 8, b: 4, rank: 1 }, network: { hidden_size: 32, num_layers: 1, num_heads: 2, head_dim: 16, rounds: 2 }, batch: 2,
    encoder: () => ({
      config: clipVisionConfig({
        image_size: 16, patch_size: 8, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, projection_dim: 16, hidden_act: "gelu",
      }),
      withProjection: true, source: "toy",
    }),
  },
};

// ---- one preset -----------------------------------------------------------------------------------------------

const timed = (job: () => void, n: number): number[] => Array.from({ length: n }, () => seconds(job));

/** Process CPU seconds (user + system, all threads) taken by fn. */
function cpuSeconds(fn: () => void): number {
  const before = process.cpuUsage();
  fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

interface Measured {
  medianSeconds: { ts: number; torch: number };
  /** ours / PyTorch of the medians: the target's number. */
  ratio: number;
  /** The median over rounds of each round's ours / PyTorch (block medians): less sensitive to load that drifts between rounds. */
  pairedRatio: number;
  /** Process CPU seconds (user + system) per run: what the work costs regardless of how much of a core the scheduler gave. */
  medianCpuSeconds: { ts: number; torch: number };
  cpuRatio: number;
  runs: number;
  machine: MachineState;
}

/**
 * Interleaved rounds (harness.interleave): per round a block of ours and a block of the worker's `cmd`, alternating
 * who goes first; wall and CPU seconds of every run, and the machine's state over the whole measurement.
 */
async function measure(worker: PythonWorker, roundsN: number, blockN: number, job: () => void, cmd: string): Promise<{ summary: Measured; times: Record<string, number[]> }> {
  const tsCpu: number[] = [];
  const torchCpu: number[] = [];
  const before = cpuSnapshot();
  const t = await interleave(roundsN, () => Array.from({ length: blockN }, () => {
    let wall = 0;
    tsCpu.push(cpuSeconds(() => void (wall = seconds(job))));
    return wall;
  }), async () => {
    const answer = await worker.ask<{ times: number[]; cpu_times: number[] }>({ cmd, n: blockN });
    torchCpu.push(...answer.cpu_times);
    return answer.times;
  });
  const machine = machineState(before, cpuSnapshot());
  const perRound = Array.from({ length: roundsN }, (_, r) =>
    median(t.ts.slice(r * blockN, (r + 1) * blockN)) / median(t.torch.slice(r * blockN, (r + 1) * blockN)));
  return {
    summary: {
      medianSeconds: { ts: median(t.ts), torch: median(t.torch) }, ratio: median(t.ts) / median(t.torch), pairedRatio: median(perRound),
      medianCpuSeconds: { ts: median(tsCpu), torch: median(torchCpu) }, cpuRatio: median(tsCpu) / median(torchCpu), runs: t.ts.length, machine,
    },
    times: { ts: t.ts, torch: t.torch, tsCpu, torchCpu },
  };
}

function maxAbsDifference(a: Tensor, b: Tensor): { maxAbs: number; maxAbsReference: number; relative: number } {
  return tidy(() => {
    const maxAbs = a.sub(b).abs().max().item();
    const maxAbsReference = b.abs().max().item();
    return { maxAbs, maxAbsReference, relative: maxAbs / maxAbsReference };
  });
}

function loadOne(file: string, name: string): Tensor {
  const { tensors } = loadSafetensors(file);
  for (const [key, t] of tensors) if (key !== name) t.dispose();
  const t = tensors.get(name);
  if (!t) throw new Error(`${file} holds no ${name}`);
  return t;
}

async function runPreset(name: string, preset: Preset): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(tmpdir(), `hdb-bench-hypernetwork-${name}-`));
  const { names: layers, source: layerSource } = await preset.layers();
  const encoder = preset.encoder();
  const tokens = (encoder.config.image_size / encoder.config.patch_size) ** 2 + 1;
  const width = encoder.config.hidden_size;
  const seed = 1234;
  manualSeed(seed);
  const network = new HyperNetwork(hyperNetworkConfig({
    ...preset.network, layers, lidb_a: preset.lidb.a, lidb_b: preset.lidb.b, lidb_rank: preset.lidb.rank, lidb_seed: "0",
    encoder: `random ${name} encoder`, encoder_hidden_size: width,
  }));
  // A trained head is far from its 1e-3 init: larger head, gains and offsets make every round's step count in the parity check.
  noGrad(() => {
    init.normal_(network.head.weight, 0, 0.02);
    init.normal_(network.head.bias!, 0, 0.01);
    init.normal_(network.outputGain, 1, 0.1);
    init.normal_(network.outputOffset, 0, 0.01);
  });
  const generator = new Generator("cpu", seed);
  const { a, b, rank } = preset.lidb;
  const features = keep(randn([preset.batch, tokens, width], { generator }));
  const targets = keep(tidy(() => randn([preset.batch, layers.length, a, rank], { generator }).mul(0.05).matmul(randn([preset.batch, layers.length, rank, b], { generator }))));
  const weightsFile = path.join(dir, "hypernetwork.safetensors");
  const inputsFile = path.join(dir, "inputs.safetensors");
  saveSafetensors(weightsFile, new Map<string, Tensor>([...network.stateDict(), ["initial", network.initial]]));
  saveSafetensors(inputsFile, new Map([["features", features], ["targets", targets]]));
  const parameters = network.parameters();
  const parameterCount = parameters.reduce((n, p) => n + p.numel, 0);

  const worker = new PythonWorker(path.join(repoRoot, "bench", "hypernetwork", "torch_worker.py"), {
    threads, config: network.config, weights: weightsFile, inputs: inputsFile, lr: 1e-3, weight_decay: 1e-2,
  });
  const info = await worker.ask<{ torch: string; parameters: number; threads: number }>(null);
  if (info.parameters !== parameterCount) throw new Error(`${name}: ours has ${parameterCount} parameters, the reference ${info.parameters}`);
  const result: Record<string, unknown> = {
    layers: layers.length, layerSource, lidb: preset.lidb, network: { ...network.config, layers: `${layers.length} names (${layerSource})` },
    parameters: parameterCount, trainBatch: preset.batch, features: { tokens, width },
  };
  const times: Record<string, Record<string, number[]>> = {};

  // Parity: θ_s of the same features, and the first two steps of training (losses, gradient norms before clipping).
  const optimizer = new AdamW(parameters, { lr: 1e-3, weightDecay: 1e-2 });
  const trainStep = (): { loss: number; norm: number } => {
    network.train();
    const loss = tidy(() => {
      const theta = network.forward(features);
      const { aTrain, bTrain } = network.split(theta);
      const losses = aTrain.matmul(bTrain).sub(targets).square().sum([1, 2, 3]).div(targets.square().sum([1, 2, 3]));
      const total = losses.sum();
      backward([total]);
      return total.item();
    });
    const norm = clipGradNorm_(parameters, 1);
    optimizer.step();
    optimizer.zeroGrad();
    const value = norm.item();
    norm.dispose();
    return { loss, norm: value };
  };
  if (jobs.has("parity")) {
    network.eval();
    const ours = noGrad(() => network.forward(features));
    await worker.ask({ cmd: "forward", out: path.join(dir, "theta.safetensors") });
    const reference = loadOne(path.join(dir, "theta.safetensors"), "theta");
    const delta = tidy(() => maxAbsDifference(ours.sub(network.initial), reference.sub(network.initial)));
    const forward = { theta: maxAbsDifference(ours, reference), deltaFromInitial: delta, rounds: network.config.rounds };
    ours.dispose();
    reference.dispose();
    const tsSteps = [trainStep(), trainStep()];
    const py = await worker.ask<{ losses: number[]; grad_norms: number[] }>({ cmd: "train", n: 2 });
    result["parity"] = {
      forward,
      trainSteps: {
        ts: { losses: tsSteps.map((s) => s.loss), gradNorms: tsSteps.map((s) => s.norm) },
        torch: { losses: py.losses, gradNorms: py.grad_norms },
        maxRelativeDifference: Math.max(
          ...tsSteps.map((s, i) => Math.abs(s.loss - py.losses[i]!) / Math.abs(py.losses[i]!)),
          ...tsSteps.map((s, i) => Math.abs(s.norm - py.grad_norms[i]!) / Math.abs(py.grad_norms[i]!)),
        ),
      },
    };
    console.log(`${name}: parity ${JSON.stringify(result["parity"])}`);
  }

  if (jobs.has("train")) {
    timed(() => void trainStep(), 2);
    await worker.ask({ cmd: "train", n: 2 });
    const measured = await measure(worker, rounds, block, () => void trainStep(), "train");
    times["train"] = measured.times;
    result["train"] = { ...measured.summary, threads };
    console.log(`${name}: train ${JSON.stringify({ ...measured.summary, machine: undefined })} others ${measured.summary.machine.otherCores.toFixed(2)} cores`);
  }
  optimizer.dispose();

  if (jobs.has("predict")) {
    const encoderDir = path.join(dir, "encoder");
    const made = await worker.ask<{ parameters: number }>({
      cmd: "encoder", config: encoder.config, with_projection: encoder.withProjection, dir: encoderDir, seed,
    });
    const vision = encoder.withProjection ? CLIPVisionModelWithProjection.fromFolder(encoderDir) : CLIPVisionModel.fromFolder(encoderDir);
    rmSync(encoderDir, { recursive: true, force: true });
    const visionParameters = vision.parameters().reduce((n, p) => n + p.numel, 0);
    if (visionParameters !== made.parameters) throw new Error(`${name}: our encoder has ${visionParameters} parameters, transformers' ${made.parameters}`);
    const pixels = keep(randn([1, 3, encoder.config.image_size, encoder.config.image_size], { generator }));
    const pixelsFile = path.join(dir, "pixels.safetensors");
    saveSafetensors(pixelsFile, new Map([["pixels", pixels]]));
    network.eval();
    const layer = network.config.encoder_layer;
    const predict = (): Tensor[] => noGrad(() => tidy(() => {
      const output = vision.forward(pixels, { outputHiddenStates: true });
      const photoFeatures = output.hiddenStates!.at(layer)!.float();
      return [photoFeatures, network.forward(photoFeatures)];
    }));
    const [oursFeatures, oursTheta] = predict() as [Tensor, Tensor];
    await worker.ask({ cmd: "predict_output", pixels: pixelsFile, out: path.join(dir, "predicted.safetensors") });
    const referenceFeatures = loadOne(path.join(dir, "predicted.safetensors"), "features");
    const referenceTheta = loadOne(path.join(dir, "predicted.safetensors"), "theta");
    const predictParity = { features: maxAbsDifference(oursFeatures, referenceFeatures), theta: maxAbsDifference(oursTheta, referenceTheta) };
    for (const t of [oursFeatures, oursTheta, referenceFeatures, referenceTheta]) t.dispose();
    console.log(`${name}: predict parity ${JSON.stringify(predictParity)}`);
    const perThreads: Record<string, unknown> = {};
    for (const n of predictThreads) {
      setNumThreads(n);
      const torchThreads = (await worker.ask<{ threads: number }>({ cmd: "threads", n })).threads;
      const warm = Math.min(...timed(() => predict().forEach((t) => t.dispose()), 2));
      await worker.ask({ cmd: "predict", n: 2 });
      // Fast predictions (the mini-world's) get longer blocks: about 2 s of each side per block, at most 25 runs.
      const blockN = Math.max(predictBlock, Math.min(25, Math.floor(2 / warm)));
      const measured = await measure(worker, predictRounds, blockN, () => predict().forEach((x) => x.dispose()), "predict");
      times[`predict_threads${n}`] = measured.times;
      const { medianSeconds, ...rest } = measured.summary;
      perThreads[String(n)] = { secondsPerPhoto: medianSeconds, ...rest, threads: { ts: getNumThreads(), torch: torchThreads } };
      console.log(`${name}: predict at ${n} threads ${JSON.stringify({ ...measured.summary, machine: undefined })} others ${measured.summary.machine.otherCores.toFixed(2)} cores`);
    }
    setNumThreads(threads);
    await worker.ask({ cmd: "threads", n: threads });
    result["predict"] = {
      encoder: { ...encoder.config, class: encoder.withProjection ? "CLIPVisionModelWithProjection" : "CLIPVisionModel", source: encoder.source, parameters: visionParameters },
      batch: 1, hiddenLayer: layer, rounds: network.config.rounds,
      timed: "preprocessed pixels (1, 3, H, W) → encoder (all hidden states) → hidden state encoder_layer → HyperNetwork θ_s, no grad",
      parity: predictParity, byThreads: perThreads,
    };
    await worker.ask({ cmd: "drop_encoder" });
    vision.dispose();
    pixels.dispose();
  }
  worker.close();
  network.dispose();
  features.dispose();
  targets.dispose();
  rmSync(dir, { recursive: true, force: true });
  return { ...result, torch: info.torch, timesSeconds: times };
}

// ---- all presets ----------------------------------------------------------------------------------------------

const presetNames = args.presets!.split(",");
for (const p of presetNames) if (!Object.hasOwn(PRESETS, p)) throw new Error(`--presets: one of ${Object.keys(PRESETS).join(", ")}, got '${p}'`);
/** Processes using ≥ 5 % of a core (ps's lifetime average) when the run started, commands cut at 160 characters. */
const startedWith = spawnSync("ps", ["-eo", "pid,pcpu,etime,args", "--sort=-pcpu", "--no-headers"], { encoding: "utf8" }).stdout.split("\n")
  .map((line) => line.trim()).filter((line) => line !== "" && Number(line.split(/\s+/)[1]) >= 5 && Number(line.split(/\s+/)[0]) !== process.pid)
  .map((line) => line.slice(0, 200));
const presets: Record<string, Record<string, unknown>> = {};
for (const p of presetNames) presets[p] = await runPreset(p, PRESETS[p]!);

/** ours / PyTorch per measurement: of the wall-clock medians (the target's), per round (paired), and of CPU seconds. */
const ratios: Record<string, number> = {};
const pairedRatios: Record<string, number> = {};
const cpuRatios: Record<string, number> = {};
const summarise = (key: string, m: { ratio: number; pairedRatio: number; cpuRatio: number }): void => {
  ratios[key] = m.ratio;
  pairedRatios[key] = m.pairedRatio;
  cpuRatios[key] = m.cpuRatio;
};
for (const [p, r] of Object.entries(presets)) {
  const train = r["train"] as Measured | undefined;
  if (train) summarise(`${p}_train`, train);
  const predict = r["predict"] as { byThreads: Record<string, Measured> } | undefined;
  for (const [n, v] of Object.entries(predict?.byThreads ?? {})) summarise(`${p}_predict_threads${n}`, v);
}
// What else ran: every measured section's other processes, and a plain note when they took a share of the cores.
const sections = Object.entries(presets).flatMap(([p, r]) => [
  ...(r["train"] ? [[`${p}_train`, (r["train"] as Measured).machine] as const] : []),
  ...Object.entries((r["predict"] as { byThreads: Record<string, Measured> } | undefined)?.byThreads ?? {}).map(([n, v]) => [`${p}_predict_threads${n}`, v.machine] as const),
]);
const otherCores = Object.fromEntries(sections.map(([key, m]) => [key, m.otherCores]));
const background = [...new Set(sections.flatMap(([, m]) => m.otherProcesses.filter((o) => o.cores >= 0.2).map((o) => o.command)))];
const busiest = Math.max(0, ...Object.values(otherCores));
const machine = {
  otherCores, otherProcesses: background,
  note: busiest >= 0.2
    ? `measured beside other processes (up to ${busiest.toFixed(2)} of ${cpus().length} cores busy with them: ${background.join("; ")}): wall-clock times include ` +
      "waiting for a core, and a team of more threads than the free cores waits for its busiest member (bench/contention); ours and PyTorch " +
      "alternate blocks, so both see the same load, and cpuRatios (process CPU seconds) compare the work itself"
    : "no other process used a significant share of the cores during the measurements",
};
const result = {
  benchmark: "hypernetwork: one training step (weight loss, backward, clip, AdamW) and prediction per photo (encoder + HyperNetwork), ours vs a PyTorch reference of the same architecture and weights, interleaved",
  date: new Date().toISOString(), cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, threads, predictThreads, node: process.version,
  torch: Object.values(presets)[0]?.["torch"],
  target: "train: ours / PyTorch step time <= 1.05",
  ratios, pairedRatios, cpuRatios,
  machine, psAtStart: startedWith,
  presets,
};
const out = writeResult("hypernetwork-cpu", result, args.out);
console.log(JSON.stringify({ ratios, pairedRatios, cpuRatios }, null, 2));
console.log(`wrote ${out}`);
