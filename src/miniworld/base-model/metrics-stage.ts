/**
 * The last stage of `hdb miniworld build`: the world's metric networks (src/evaluation/), trained with their
 * defaults into <out>/metrics/identity and <out>/metrics/fidelity, then checked on held-out identities (the
 * issue's bars: identity ROC-AUC ≥ 0.99 plain and ≥ 0.95 across styles; style accuracy ≥ 95 % on renders),
 * the numbers written to <out>/metrics/evaluation.json with their provenance (commit, command, threads, the
 * sha256 of the networks measured). A network already saved with the same training settings is not trained
 * again (its training record then comes from its own config.json); one killed mid-training resumes from its
 * own checkpoints. `hdb miniworld metrics` runs this stage alone.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { evaluateFidelityNetwork, evaluateIdentityNetwork, type FidelityEvaluation, type IdentityEvaluation } from "../../evaluation/evaluate.js";
import { PromptFidelityNetwork } from "../../evaluation/fidelity-network.js";
import { IdentityNetwork } from "../../evaluation/identity-network.js";
import { FIDELITY_TRAINING_DEFAULTS, trainFidelityNetwork } from "../../evaluation/training/fidelity.js";
import { IDENTITY_TRAINING_DEFAULTS, trainIdentityNetwork } from "../../evaluation/training/identity.js";
import { writeJsonAtomic } from "../../util/atomic.js";
import type { ProgressReporter } from "../../util/progress.js";
import { provenance, type Provenance } from "../../util/provenance.js";
import { splitIds } from "../splits.js";

export interface MetricsStageOptions {
  outDir: string;
  workDir: string;
  threads: number;
  /** Told each network's training steps (the CLI draws bars from it). */
  progress?: ProgressReporter;
  log?: (line: string) => void;
  /** The command line to record (program name and arguments). */
  command?: readonly string[];
}

/**
 * How a network was trained: by this run (seconds of its steps and of rendering its data), or earlier (what its
 * config.json recorded; seconds are null for networks saved before they were recorded there).
 */
export interface NetworkTraining {
  trainedBy: "this run" | "an earlier run";
  trainingSeconds: number | null;
  renderSeconds: number | null;
  finalLoss: number | null;
}

export interface MetricsStageResult {
  provenance: Provenance;
  identity: NetworkTraining & { evaluation: IdentityEvaluation };
  fidelity: NetworkTraining & { evaluation: FidelityEvaluation };
}

/** The training record a saved network's config.json holds. */
function savedTraining(dir: string): NetworkTraining {
  const training = (JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8")) as { training?: Record<string, unknown> }).training ?? {};
  const number = (key: string): number | null => (typeof training[key] === "number" ? training[key] : null);
  return { trainedBy: "an earlier run", trainingSeconds: number("trainingSeconds"), renderSeconds: number("renderSeconds"), finalLoss: number("finalLoss") };
}

/** Whether `<dir>/config.json` records a training with exactly these settings (ignoring threads, checkpoints). */
function alreadyTrained(dir: string, defaults: Record<string, unknown>): boolean {
  const file = path.join(dir, "config.json");
  if (!existsSync(file)) return false;
  const training = (JSON.parse(readFileSync(file, "utf8")) as { training?: Record<string, unknown> }).training ?? {};
  return Object.entries(defaults).every(([key, value]) => key === "threads" || key === "checkpointEvery" || key === "network" ||
    JSON.stringify(training[key]) === JSON.stringify(value));
}

const HELD_OUT_IDENTITIES = 200;

export async function trainMetricNetworks(options: MetricsStageOptions): Promise<MetricsStageResult> {
  const log = options.log ?? (() => {});
  const common = { threads: options.threads, log, ...(options.progress === undefined ? {} : { progress: options.progress }) };
  const identityDir = path.join(options.outDir, "metrics", "identity");
  const fidelityDir = path.join(options.outDir, "metrics", "fidelity");
  const heldOut = splitIds("held-out", HELD_OUT_IDENTITIES);

  let identityRun: NetworkTraining;
  if (!alreadyTrained(identityDir, { ...IDENTITY_TRAINING_DEFAULTS })) {
    const workDir = path.join(options.workDir, "metrics", "identity");
    const run = await trainIdentityNetwork({ ...common, outDir: identityDir, workDir });
    identityRun = { trainedBy: "this run", trainingSeconds: run.trainingSeconds, renderSeconds: run.renderSeconds, finalLoss: run.losses.at(-1) ?? null };
    rmSync(workDir, { recursive: true, force: true }); // the ~200 MB image cache
  } else {
    log(`metrics: ${identityDir} already holds the identity network trained with these settings`);
    identityRun = savedTraining(identityDir);
  }
  let fidelityRun: NetworkTraining;
  if (!alreadyTrained(fidelityDir, { ...FIDELITY_TRAINING_DEFAULTS })) {
    const workDir = path.join(options.workDir, "metrics", "fidelity");
    const run = await trainFidelityNetwork({ ...common, outDir: fidelityDir, workDir });
    fidelityRun = { trainedBy: "this run", trainingSeconds: run.trainingSeconds, renderSeconds: run.renderSeconds, finalLoss: run.losses.at(-1) ?? null };
    rmSync(workDir, { recursive: true, force: true });
  } else {
    log(`metrics: ${fidelityDir} already holds the fidelity network trained with these settings`);
    fidelityRun = savedTraining(fidelityDir);
  }

  const identityNetwork = IdentityNetwork.load(identityDir);
  const fidelityNetwork = PromptFidelityNetwork.load(fidelityDir);
  try {
    const result: MetricsStageResult = {
      provenance: provenance({ command: options.command ?? [], threads: options.threads, measured: [identityDir, fidelityDir] }),
      identity: { ...identityRun, evaluation: await evaluateIdentityNetwork(identityNetwork, { identities: heldOut, log }) },
      fidelity: { ...fidelityRun, evaluation: await evaluateFidelityNetwork(fidelityNetwork, { identities: heldOut, log }) },
    };
    writeJsonAtomic(path.join(options.outDir, "metrics", "evaluation.json"), result);
    const e = result.identity.evaluation;
    const f = result.fidelity.evaluation;
    log(`metrics: identity ROC-AUC ${e.plainAuc.toFixed(4)} plain, ${e.crossStyleAuc.toFixed(4)} across styles; ` +
      `style accuracy ${(100 * f.styleAccuracy).toFixed(1)}%, hair colour ${(100 * f.hairColourAccuracy).toFixed(1)}% (held-out renders)`);
    return result;
  } finally {
    identityNetwork.dispose();
    fidelityNetwork.dispose();
  }
}
