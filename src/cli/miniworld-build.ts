/**
 * `hdb miniworld build`: regenerate the bundled mini-world model from seeds (src/miniworld/base-model/recipe.ts).
 * Flags: MINIWORLD_BUILD_SPEC below (`hdb miniworld build --help`). Shows progress with an ETA; killed, the
 * same command resumes from the last checkpoint.
 */
import path from "node:path";
import { devices, setNumThreads } from "../engine/index.js";
import { DEFAULT_BASE_MODEL_RECIPE as R, baseModelRecipe } from "../miniworld/base-model/config.js";
import { trainMetricNetworks } from "../miniworld/base-model/metrics-stage.js";
import { BUILD_STAGES, buildMiniworld, bundledMiniworldDir, type BuildStage } from "../miniworld/base-model/recipe.js";
import { getNumThreads } from "../engine/index.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { formatDuration, progressBars } from "../util/progress.js";

export const MINIWORLD_BUILD_SPEC = defineCommand({
  name: "miniworld build",
  summary: "train the bundled base model from seeds (resumable; about 4.5 h on 2 cores)",
  usage: "[flags]",
  details: `Stages in order: the VAE, the diffusion model (UNet + text encoder) in four phases, the decoder fine-tune,
the diffusers export and the metric networks; build.json records the recipe, times and losses. Killed, the
same command resumes from the last checkpoint; a longer last phase (e.g. --balance-steps) continues it exactly.`,
  flags: {
    out: { type: "string", value: "<folder>", description: "where base/, metrics/ and build.json go", defaultText: "models/miniworld (the bundled one)" },
    work: { type: "string", value: "<folder>", description: "checkpoints, cached renders and posteriors", default: path.join("build", "miniworld-work") },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
    until: { type: "string", choices: BUILD_STAGES, description: "stop after this stage", defaultText: "all stages" },
    "dataset-size": { type: "integer", min: 1, description: "captioned renders of pretraining identities", defaultText: String(R.datasetSize) },
    "vae-steps": { type: "integer", min: 1, description: "stage 1: VAE steps", defaultText: String(R.vae.steps) },
    "decoder-steps": { type: "integer", min: 1, description: "stage 3: decoder fine-tune steps", defaultText: String(R.vae.decoderSteps) },
    "diffusion-steps": { type: "integer", min: 1, description: "diffusion phase 1 steps", defaultText: String(R.diffusion.steps) },
    "continuation-steps": { type: "integer", min: 1, description: "diffusion phase 2 steps: constant rate, min-SNR-γ", defaultText: String(R.continuation.steps) },
    "conditioning-steps": { type: "integer", min: 1, description: "diffusion phase 3 steps: high-noise steps weighted up", defaultText: String(R.conditioning.steps) },
    "balance-steps": { type: "integer", min: 1, description: "diffusion phase 4 steps: hair colours drawn equally often", defaultText: String(R.colourBalance.steps) },
    "batch-size": { type: "integer", min: 1, description: "the diffusion stages' batch size", defaultText: String(R.diffusion.batchSize) },
    "checkpoint-every": { type: "integer", min: 1, description: "steps between checkpoints", defaultText: String(R.checkpointEvery) },
    seed: { type: "integer", min: 0, description: "the recipe's seed: data, initialisation, noise", defaultText: String(R.seed) },
    device: { type: "string", value: "<device>", description: "where the stages train; data and random draws stay on the CPU", defaultText: "cpu" },
  },
  examples: [
    "hdb miniworld build --threads 2",
    "hdb miniworld build --out /tmp/mw --work /tmp/mw-work --dataset-size 64 --vae-steps 10 --until export",
  ],
});

/** A device this libtorch can use, or an error saying which exist. */
function checkedDevice(device: string): string {
  const cuda = devices().cuda;
  const match = /^cuda(?::(\d+))?$/.exec(device);
  if (device === "cpu" || (match && Number(match[1] ?? 0) < cuda)) return device;
  throw new Error(`--device ${device}: this libtorch has ${cuda === 0 ? "no CUDA device" : `CUDA devices cuda:0 … cuda:${cuda - 1}`}; use cpu${cuda > 0 ? " or one of those" : ""}`);
}

export async function runMiniworldBuild(argv: string[]): Promise<void> {
  const { values } = parseFlags(MINIWORLD_BUILD_SPEC, argv);
  if (values.threads !== undefined) setNumThreads(values.threads);
  const seed = values.seed;
  const vaeSteps = values["vae-steps"];
  const decoderSteps = values["decoder-steps"];
  const continuationSteps = values["continuation-steps"];
  const conditioningSteps = values["conditioning-steps"];
  const balanceSteps = values["balance-steps"];
  const diffusionSteps = values["diffusion-steps"];
  const batchSize = values["batch-size"];
  const recipe = baseModelRecipe({
    ...(seed === undefined ? {} : { seed }),
    ...(values["dataset-size"] === undefined ? {} : { datasetSize: values["dataset-size"] }),
    ...(values["checkpoint-every"] === undefined ? {} : { checkpointEvery: values["checkpoint-every"] }),
    vae: { ...(vaeSteps === undefined ? {} : { steps: vaeSteps }), ...(decoderSteps === undefined ? {} : { decoderSteps }) },
    diffusion: { ...(diffusionSteps === undefined ? {} : { steps: diffusionSteps }), ...(batchSize === undefined ? {} : { batchSize }) },
    continuation: { ...(continuationSteps === undefined ? {} : { steps: continuationSteps }) },
    conditioning: { ...(conditioningSteps === undefined ? {} : { steps: conditioningSteps }) },
    colourBalance: { ...(balanceSteps === undefined ? {} : { steps: balanceSteps }) },
  });
  const outDir = path.resolve(values.out ?? bundledMiniworldDir());
  const workDir = path.resolve(values.work);
  const started = Date.now();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  log(`building the mini-world model into ${outDir} (work folder ${workDir})`);
  const { record, finished, baseDir } = await buildMiniworld({
    recipe, outDir, workDir, progress: progressBars(), log, command: ["hdb", "miniworld", "build", ...argv].join(" "), argv: ["hdb", "miniworld", "build", ...argv],
    ...(values.until === undefined ? {} : { until: values.until as BuildStage }),
    ...(values.device === undefined ? {} : { device: checkedDevice(values.device) }),
  });
  const losses = Object.entries(record.stages).map(([name, stage]) => `${name} ${formatDuration(stage.seconds)}${stage.finalLoss === undefined ? "" : ` (final loss ${stage.finalLoss.toFixed(4)})`}`);
  process.stdout.write(`${finished ? "done" : "stopped"} in ${formatDuration((Date.now() - started) / 1000)}: ${losses.join(", ")}${finished && values.until === undefined ? `\n→ ${baseDir}` : ""}\n`);
}

export const MINIWORLD_METRICS_SPEC = defineCommand({
  name: "miniworld metrics",
  summary: "the build's last stage alone: train (or reuse) the metric networks and measure them on held-out identities",
  usage: "[flags]",
  details: `The identity and prompt-fidelity networks are trained on renders alone, so they need no base model. A network
already saved in <out>/metrics with the default training settings is reused; evaluation.json is rewritten with
the held-out numbers, how each network was trained, and the provenance (commit, command, threads, sha256).`,
  flags: {
    out: { type: "string", value: "<folder>", description: "where metrics/ goes", defaultText: "models/miniworld (the bundled one)" },
    work: { type: "string", value: "<folder>", description: "checkpoints and cached renders", default: path.join("build", "miniworld-work") },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
  },
  examples: ["hdb miniworld metrics", "hdb miniworld metrics --out /tmp/mw --threads 2"],
});

export async function runMiniworldMetrics(argv: string[]): Promise<void> {
  const { values } = parseFlags(MINIWORLD_METRICS_SPEC, argv);
  if (values.threads !== undefined) setNumThreads(values.threads);
  const outDir = path.resolve(values.out ?? bundledMiniworldDir());
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const result = await trainMetricNetworks({
    outDir, workDir: path.resolve(values.work), threads: getNumThreads(), log, progress: progressBars(), command: ["hdb", "miniworld", "metrics", ...argv],
  });
  const e = result.identity.evaluation;
  const f = result.fidelity.evaluation;
  process.stdout.write(`identity ROC-AUC ${e.plainAuc.toFixed(4)} plain, ${e.crossStyleAuc.toFixed(4)} across styles; style accuracy ` +
    `${(100 * f.styleAccuracy).toFixed(1)}%, hair colour ${(100 * f.hairColourAccuracy).toFixed(1)}%\n→ ${path.join(outDir, "metrics", "evaluation.json")}\n`);
}
