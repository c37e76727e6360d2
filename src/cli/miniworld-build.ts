/**
 * `hdb miniworld build`: regenerate the bundled mini-world model from seeds (src/miniworld/base-model/recipe.ts).
 *
 *   hdb miniworld build [--out models/miniworld] [--work build/miniworld-work] [--threads N]
 *       [--until vae|diffusion|diffusion-2|diffusion-3|diffusion-4|vae-decoder|export|metrics] [--dataset-size N] [--vae-steps N]
 *       [--decoder-steps N] [--diffusion-steps N] [--continuation-steps N] [--conditioning-steps N] [--balance-steps N]
 *       [--batch-size N (the diffusion stages')] [--checkpoint-every N] [--seed N] [--device cpu|cuda:0]
 *
 * Shows progress with an ETA; killed, the same command resumes from the last checkpoint.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { devices, setNumThreads } from "../engine/index.js";
import { baseModelRecipe } from "../miniworld/base-model/config.js";
import { BUILD_STAGES, buildMiniworld, bundledMiniworldDir, type BuildStage } from "../miniworld/base-model/recipe.js";
import { formatDuration } from "./progress.js";

function positiveInteger(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${flag} must be a positive integer, got '${text}'`);
  return value;
}

/** A device this libtorch can use, or an error saying which exist. */
function checkedDevice(device: string): string {
  const cuda = devices().cuda;
  const match = /^cuda(?::(\d+))?$/.exec(device);
  if (device === "cpu" || (match && Number(match[1] ?? 0) < cuda)) return device;
  throw new Error(`--device ${device}: this libtorch has ${cuda === 0 ? "no CUDA device" : `CUDA devices cuda:0 … cuda:${cuda - 1}`}; use cpu${cuda > 0 ? " or one of those" : ""}`);
}

export async function runMiniworldBuild(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: "string" }, work: { type: "string" }, threads: { type: "string" }, until: { type: "string" },
      "dataset-size": { type: "string" }, "vae-steps": { type: "string" }, "decoder-steps": { type: "string" }, "diffusion-steps": { type: "string" }, "continuation-steps": { type: "string" },
      "conditioning-steps": { type: "string" }, "balance-steps": { type: "string" },
      "batch-size": { type: "string" }, "checkpoint-every": { type: "string" }, seed: { type: "string" }, device: { type: "string" },
    },
  });
  const threads = positiveInteger(values.threads, "threads");
  if (threads !== undefined) setNumThreads(threads);
  if (values.until !== undefined && !BUILD_STAGES.includes(values.until as BuildStage)) {
    throw new Error(`--until must be one of ${BUILD_STAGES.join(", ")}, got '${values.until}'`);
  }
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0)) throw new Error(`--seed must be an integer ≥ 0, got '${values.seed}'`);
  const vaeSteps = positiveInteger(values["vae-steps"], "vae-steps");
  const decoderSteps = positiveInteger(values["decoder-steps"], "decoder-steps");
  const continuationSteps = positiveInteger(values["continuation-steps"], "continuation-steps");
  const conditioningSteps = positiveInteger(values["conditioning-steps"], "conditioning-steps");
  const balanceSteps = positiveInteger(values["balance-steps"], "balance-steps");
  const diffusionSteps = positiveInteger(values["diffusion-steps"], "diffusion-steps");
  const batchSize = positiveInteger(values["batch-size"], "batch-size");
  const recipe = baseModelRecipe({
    ...(seed === undefined ? {} : { seed }),
    ...(values["dataset-size"] === undefined ? {} : { datasetSize: positiveInteger(values["dataset-size"], "dataset-size")! }),
    ...(values["checkpoint-every"] === undefined ? {} : { checkpointEvery: positiveInteger(values["checkpoint-every"], "checkpoint-every")! }),
    vae: { ...(vaeSteps === undefined ? {} : { steps: vaeSteps }), ...(decoderSteps === undefined ? {} : { decoderSteps }) },
    diffusion: { ...(diffusionSteps === undefined ? {} : { steps: diffusionSteps }), ...(batchSize === undefined ? {} : { batchSize }) },
    continuation: { ...(continuationSteps === undefined ? {} : { steps: continuationSteps }) },
    conditioning: { ...(conditioningSteps === undefined ? {} : { steps: conditioningSteps }) },
    colourBalance: { ...(balanceSteps === undefined ? {} : { steps: balanceSteps }) },
  });
  const outDir = path.resolve(values.out ?? bundledMiniworldDir());
  const workDir = path.resolve(values.work ?? path.join("build", "miniworld-work"));
  const started = Date.now();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  log(`building the mini-world model into ${outDir} (work folder ${workDir})`);
  const { record, finished, baseDir } = await buildMiniworld({
    recipe, outDir, workDir, progress: true, log, command: ["hdb", "miniworld", "build", ...argv].join(" "),
    ...(values.until === undefined ? {} : { until: values.until as BuildStage }),
    ...(values.device === undefined ? {} : { device: checkedDevice(values.device) }),
  });
  const losses = Object.entries(record.stages).map(([name, stage]) => `${name} ${formatDuration(stage.seconds)}${stage.finalLoss === undefined ? "" : ` (final loss ${stage.finalLoss.toFixed(4)})`}`);
  process.stdout.write(`${finished ? "done" : "stopped"} in ${formatDuration((Date.now() - started) / 1000)}: ${losses.join(", ")}${finished && values.until === undefined ? `\n→ ${baseDir}` : ""}\n`);
}
